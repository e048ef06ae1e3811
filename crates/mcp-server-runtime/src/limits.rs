//! Limits every server shares, and [`Guarded`], the wrapper that enforces them.
//!
//! The runtime wraps every server in [`Guarded`] before serving it, so a tool author gets
//! these for free: a per-call timeout, cancellation through `notifications/cancelled`,
//! an output size cap, and panics turned into `isError` results.

// rmcp marks some legacy handler methods deprecated; the wrapper must still forward them.
#![allow(deprecated)]

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures::FutureExt as _;
use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};
use rmcp::{ErrorData as McpError, ServerHandler};

use crate::tool::{CancelFlag, ToolError, ToolErrorKind, panic_message, with_cancel_flag};

/// Resource limits applied to every tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on a tool result: text content is truncated in the middle to fit, structured
    /// content larger than this turns the result into an error asking to narrow the request.
    pub max_output_bytes: usize,
    /// Wall-clock limit of one tool call; the call then returns an `isError` result and its
    /// [`CancelFlag`] is set so blocking work stops.
    pub tool_timeout: Duration,
}

impl Limits {
    /// Default [`Limits::max_output_bytes`]: 256 KiB, several pages of text for a model.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;
    /// Default [`Limits::tool_timeout`].
    pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            tool_timeout: Self::DEFAULT_TOOL_TIMEOUT,
        }
    }
}

/// Shortens `text` to at most `max_bytes` by cutting out its middle, keeping the head and
/// the tail (both cut on UTF-8 character boundaries) around a marker line
/// `[… N bytes truncated …]`. Returns the text and whether it was truncated.
///
/// Text within the limit is returned unchanged. When `max_bytes` is smaller than the
/// marker itself, the result is just the marker (slightly over the limit, but still
/// telling the reader what happened).
pub fn truncate_middle(text: &str, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text.to_owned(), false);
    }
    // The marker's length depends on N; size it for the largest possible N (all of it).
    let marker_budget = marker(text.len()).len();
    let keep = max_bytes.saturating_sub(marker_budget);
    let head_end = text.floor_char_boundary(keep / 2);
    let tail_start = text.ceil_char_boundary(text.len() - (keep - keep / 2));
    let removed = tail_start - head_end;
    let mut out = String::with_capacity(max_bytes.max(marker_budget));
    out.push_str(&text[..head_end]);
    out.push_str(&marker(removed));
    out.push_str(&text[tail_start..]);
    (out, true)
}

fn marker(removed: usize) -> String {
    format!("\n[… {removed} bytes truncated …]\n")
}

/// Applies the output cap to a finished tool result.
fn cap_output(tool: &str, mut result: CallToolResult, max_bytes: usize) -> CallToolResult {
    if let Some(structured) = &result.structured_content {
        let size = serde_json::to_vec(structured).map_or(usize::MAX, |bytes| bytes.len());
        if size > max_bytes {
            tracing::warn!(tool, size, max_bytes, "structured output over the cap");
            return ToolError::new(
                ToolErrorKind::TooLarge,
                format!(
                    "tool `{tool}` produced {size} bytes of structured output, more than the \
                     {max_bytes}-byte limit; narrow the request (a smaller range, fewer results, \
                     a more specific pattern) or restart the server with a larger --max-output-bytes"
                ),
            )
            .into_call_tool_result();
        }
    }
    let text_blocks = result
        .content
        .iter()
        .filter(|block| block.as_text().is_some())
        .count();
    if text_blocks == 0 {
        return result;
    }
    // An even share per block keeps the total bounded without favouring the first block.
    let per_block = max_bytes / text_blocks;
    for block in &mut result.content {
        if let ContentBlock::Text(text) = block
            && text.text.len() > per_block
        {
            let (shortened, _) = truncate_middle(&text.text, per_block);
            tracing::debug!(
                tool,
                from = text.text.len(),
                to = shortened.len(),
                "truncated text output"
            );
            text.text = shortened;
        }
    }
    result
}

/// A [`ServerHandler`] that enforces [`Limits`] on the server it wraps.
///
/// Every `tools/call` runs under a timeout, inside a scope whose [`CancelFlag`] (see
/// [`crate::run_blocking`]) is set on `notifications/cancelled`, on timeout and on
/// shutdown; a panic in the tool becomes an `isError` result and the server keeps serving;
/// the result is capped to [`Limits::max_output_bytes`]. Everything else is forwarded
/// unchanged.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    limits: Limits,
}

impl<S: ServerHandler> Guarded<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limits: Limits) -> Self {
        Self { inner, limits }
    }
    /// The wrapped server.
    pub fn inner(&self) -> &S {
        &self.inner
    }
    /// The limits being enforced.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    async fn guarded_call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tool = request.name.to_string();
        let started = Instant::now();
        // A child of the request token: set by rmcp on `notifications/cancelled` and on
        // shutdown, by us on timeout, and when this call ends so stray blocking work stops.
        let flag = CancelFlag::from_token(context.ct.child_token());
        let _stop_leftover_work = flag.cancel_on_drop();

        let call = with_cancel_flag(flag.clone(), self.inner.call_tool(request, context));
        let outcome = tokio::select! {
            biased;
            () = flag.cancelled() => {
                tracing::info!(tool, "tool call cancelled");
                return Ok(ToolError::cancelled().into_call_tool_result().into());
            }
            outcome = tokio::time::timeout(self.limits.tool_timeout, AssertUnwindSafe(call).catch_unwind()) => outcome,
        };
        let elapsed_ms = started.elapsed().as_millis();
        match outcome {
            Err(_elapsed) => {
                flag.cancel();
                tracing::warn!(tool, elapsed_ms, "tool call timed out");
                Ok(
                    ToolError::timeout(format_args!("tool `{tool}`"), self.limits.tool_timeout)
                        .into_call_tool_result()
                        .into(),
                )
            }
            Ok(Err(panic)) => {
                let message = panic_message(panic.as_ref());
                tracing::error!(tool, panic = %message, "tool panicked");
                Ok(ToolError::failed(format!(
                    "internal error: tool `{tool}` panicked ({message}); this is a bug, please report it"
                ))
                .into_call_tool_result()
                .into())
            }
            Ok(Ok(Ok(CallToolResponse::Complete(result)))) => {
                tracing::debug!(tool, elapsed_ms, is_error = ?result.is_error, "tool call finished");
                Ok(cap_output(&tool, result, self.limits.max_output_bytes).into())
            }
            Ok(Ok(other)) => other,
        }
    }
}

impl<S: ServerHandler> ServerHandler for Guarded<S> {
    fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CallToolResponse, McpError>> + MaybeSendFuture + '_ {
        self.guarded_call_tool(request, context)
    }

    // Everything below forwards to the wrapped server unchanged.

    fn ping(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.ping(context)
    }
    fn initialize(
        &self,
        request: InitializeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<InitializeResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.initialize(request, context)
    }
    fn negotiate_initialize(
        &self,
        request: &InitializeRequestParams,
    ) -> Result<InitializeResult, McpError> {
        self.inner.negotiate_initialize(request)
    }
    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        self.inner.supported_protocol_versions()
    }
    fn discover(
        &self,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<DiscoverResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.discover(context)
    }
    fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CompleteResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.complete(request, context)
    }
    fn set_level(
        &self,
        request: SetLevelRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.set_level(request, context)
    }
    fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetPromptResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_prompt(request, context)
    }
    fn list_prompts(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListPromptsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_prompts(request, context)
    }
    fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourcesResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_resources(request, context)
    }
    fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListResourceTemplatesResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.list_resource_templates(request, context)
    }
    fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceResponse, McpError>> + MaybeSendFuture + '_ {
        self.inner.read_resource(request, context)
    }
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        self.inner.accepted_subscription_filter(requested)
    }
    fn listen(
        &self,
        context: SubscriptionContext,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.listen(context)
    }
    fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.subscribe(request, context)
    }
    fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.unsubscribe(request, context)
    }
    fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListToolsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_tools(request, context)
    }
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.inner.get_tool(name)
    }
    fn on_custom_request(
        &self,
        request: CustomRequest,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<CustomResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.on_custom_request(request, context)
    }
    fn on_cancelled(
        &self,
        notification: CancelledNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_cancelled(notification, context)
    }
    fn on_progress(
        &self,
        notification: ProgressNotificationParam,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_progress(notification, context)
    }
    fn on_initialized(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_initialized(context)
    }
    fn on_roots_list_changed(
        &self,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_roots_list_changed(context)
    }
    fn on_custom_notification(
        &self,
        notification: CustomNotification,
        context: NotificationContext<RoleServer>,
    ) -> impl Future<Output = ()> + MaybeSendFuture + '_ {
        self.inner.on_custom_notification(notification, context)
    }
    fn get_info(&self) -> ServerConfig {
        self.inner.get_info()
    }
    fn get_task(
        &self,
        request: GetTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetTaskResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_task(request, context)
    }
    fn update_task(
        &self,
        request: UpdateTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.update_task(request, context)
    }
    fn cancel_task(
        &self,
        request: CancelTaskParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<(), McpError>> + MaybeSendFuture + '_ {
        self.inner.cancel_task(request, context)
    }
    fn list_skills(
        &self,
        request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ListSkillsResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.list_skills(request, context)
    }
    fn get_skill(
        &self,
        request: GetSkillRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<GetSkillResult, McpError>> + MaybeSendFuture + '_ {
        self.inner.get_skill(request, context)
    }
    fn read_resource_directory(
        &self,
        request: ReadResourceDirectoryRequestParams,
        context: RequestContext<RoleServer>,
    ) -> impl Future<Output = Result<ReadResourceDirectoryResult, McpError>> + MaybeSendFuture + '_
    {
        self.inner.read_resource_directory(request, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{ToolResult, run_blocking};
    use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
    use rmcp::service::{PeerRequestOptions, RunningService};
    use rmcp::{Json, RoleClient, ServiceExt as _, tool, tool_handler, tool_router};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::sync::Notify;

    // ---- truncate_middle ----

    fn marker_count(text: &str) -> usize {
        let start = text.find("[… ").expect("marker present") + "[… ".len();
        let rest = &text[start..];
        rest[..rest.find(' ').unwrap()].parse().unwrap()
    }

    #[test]
    fn text_within_the_limit_is_untouched() {
        assert_eq!(truncate_middle("hello", 10), ("hello".to_owned(), false));
        assert_eq!(truncate_middle("hello", 5), ("hello".to_owned(), false));
        assert_eq!(truncate_middle("", 0), (String::new(), false));
    }

    #[test]
    fn long_text_keeps_head_and_tail_around_an_exact_marker() {
        let text = format!("{}{}", "a".repeat(1000), "z".repeat(1000));
        let (out, truncated) = truncate_middle(&text, 200);
        assert!(truncated);
        assert!(out.len() <= 200, "{} bytes", out.len());
        assert!(out.starts_with("aaaa") && out.ends_with("zzzz"), "{out}");
        assert!(out.contains(" bytes truncated …]"), "{out}");
        let kept = out.len() - marker(marker_count(&out)).len();
        assert_eq!(
            marker_count(&out),
            text.len() - kept,
            "marker states the removed byte count"
        );
    }

    #[test]
    fn cuts_fall_on_char_boundaries_for_every_limit() {
        let text = "é😀ab€".repeat(40);
        for max in 0..text.len() {
            let (out, truncated) = truncate_middle(&text, max);
            assert!(truncated);
            let at = out.find("\n[… ").unwrap();
            let end = out.rfind("…]\n").unwrap() + "…]\n".len();
            assert!(
                text.starts_with(&out[..at]),
                "head is a prefix at max={max}"
            );
            assert!(text.ends_with(&out[end..]), "tail is a suffix at max={max}");
            let marker_len = end - at;
            if max >= marker_len {
                assert!(out.len() <= max, "max={max} got {}", out.len());
            }
            assert_eq!(marker_count(&out), text.len() - (out.len() - marker_len));
        }
    }

    // ---- Guarded, end to end through rmcp's in-process transport ----

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    struct Size {
        bytes: usize,
    }

    #[derive(serde::Serialize, schemars::JsonSchema)]
    struct Items {
        items: Vec<String>,
    }

    #[derive(Clone, Default)]
    struct Probe {
        spin_started: Arc<Notify>,
        spins_stopped_by_flag: Arc<AtomicUsize>,
    }

    #[derive(Clone)]
    struct TestTools {
        tool_router: ToolRouter<Self>,
        probe: Probe,
    }

    #[tool_router]
    impl TestTools {
        /// Answers immediately.
        #[tool]
        async fn ping_tool(&self) -> String {
            "pong".to_owned()
        }
        /// Never finishes on its own.
        #[tool]
        async fn sleep_forever(&self) -> String {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            "woke up".to_owned()
        }
        /// Blocking loop that only stops when its CancelFlag is set.
        #[tool]
        async fn spin(&self) -> ToolResult<u64> {
            let probe = self.probe.clone();
            run_blocking(move |flag| {
                probe.spin_started.notify_one();
                let mut rounds = 0u64;
                while !flag.is_cancelled() {
                    rounds += 1;
                    std::thread::sleep(Duration::from_millis(1));
                }
                probe.spins_stopped_by_flag.fetch_add(1, Ordering::SeqCst);
                Ok(Json(rounds))
            })
            .await
        }
        /// Panics.
        #[tool]
        async fn boom(&self) -> String {
            panic!("deliberate test panic")
        }
        /// Text of the requested size.
        #[tool]
        async fn big_text(&self, Parameters(size): Parameters<Size>) -> String {
            "x".repeat(size.bytes)
        }
        /// Structured output of roughly the requested size.
        #[tool]
        async fn big_json(&self, Parameters(size): Parameters<Size>) -> ToolResult<Items> {
            Ok(Json(Items {
                items: vec!["y".repeat(100); size.bytes / 100],
            }))
        }
    }

    #[tool_handler(router = self.tool_router)]
    impl ServerHandler for TestTools {}

    async fn connect(limits: Limits) -> (RunningService<RoleClient, ()>, Probe) {
        let probe = Probe::default();
        let server = TestTools {
            tool_router: TestTools::tool_router(),
            probe: probe.clone(),
        };
        let (server_io, client_io) = tokio::io::duplex(1 << 20);
        tokio::spawn(async move {
            let running = Guarded::new(server, limits).serve(server_io).await.unwrap();
            let _ = running.waiting().await;
        });
        (().serve(client_io).await.unwrap(), probe)
    }

    fn limits(max_output_bytes: usize, timeout: Duration) -> Limits {
        Limits {
            max_output_bytes,
            tool_timeout: timeout,
        }
    }

    async fn call(
        client: &RunningService<RoleClient, ()>,
        name: &'static str,
        args: serde_json::Value,
    ) -> CallToolResult {
        let mut params = CallToolRequestParams::new(name);
        if let serde_json::Value::Object(map) = args {
            params = params.with_arguments(map);
        }
        client.call_tool(params).await.unwrap()
    }

    fn text_of(result: &CallToolResult) -> &str {
        &result.content[0].as_text().expect("text content").text
    }

    /// Upper bound for waits that should end promptly; reaching it fails the test
    /// instead of hanging the suite. Not a speed assertion.
    const HANG_GUARD: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn timeout_becomes_is_error_and_server_keeps_serving() {
        let (client, _) = connect(limits(1 << 20, Duration::from_millis(200))).await;
        let result = call(&client, "sleep_forever", serde_json::json!({})).await;
        assert_eq!(result.is_error, Some(true));
        assert!(
            text_of(&result).starts_with("timed out: tool `sleep_forever`"),
            "{}",
            text_of(&result)
        );
        assert_eq!(
            text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
            "pong"
        );
    }

    #[tokio::test]
    async fn timeout_sets_the_cancel_flag_of_blocking_work() {
        let (client, probe) = connect(limits(1 << 20, Duration::from_millis(200))).await;
        let result = call(&client, "spin", serde_json::json!({})).await;
        assert_eq!(result.is_error, Some(true), "{result:?}");
        tokio::time::timeout(HANG_GUARD, async {
            while probe.spins_stopped_by_flag.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the blocking loop saw its CancelFlag");
    }

    #[tokio::test]
    async fn panic_becomes_is_error_and_server_keeps_serving() {
        let (client, _) = connect(Limits::default()).await;
        let result = call(&client, "boom", serde_json::json!({})).await;
        assert_eq!(result.is_error, Some(true));
        assert!(
            text_of(&result).contains("deliberate test panic"),
            "{}",
            text_of(&result)
        );
        assert_eq!(
            text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
            "pong"
        );
    }

    #[tokio::test]
    async fn cancellation_notification_stops_the_work() {
        let (client, probe) = connect(Limits::default()).await;
        let started = probe.spin_started.notified();
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new("spin"),
        ));
        let handle = client
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .unwrap();
        tokio::time::timeout(HANG_GUARD, started)
            .await
            .expect("spin started");
        handle
            .cancel(Some("test cancels".to_owned()))
            .await
            .unwrap();
        tokio::time::timeout(HANG_GUARD, async {
            while probe.spins_stopped_by_flag.load(Ordering::SeqCst) == 0 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("the blocking loop saw its CancelFlag after notifications/cancelled");
        assert_eq!(
            text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
            "pong"
        );
    }

    #[tokio::test]
    async fn text_output_is_truncated_to_the_cap() {
        let (client, _) = connect(limits(1000, Limits::DEFAULT_TOOL_TIMEOUT)).await;
        let result = call(&client, "big_text", serde_json::json!({"bytes": 50_000})).await;
        assert_ne!(result.is_error, Some(true));
        let text = text_of(&result);
        assert!(text.len() <= 1000, "{} bytes", text.len());
        assert!(text.contains(" bytes truncated …]"));
        let small = call(&client, "big_text", serde_json::json!({"bytes": 10})).await;
        assert_eq!(text_of(&small), "x".repeat(10));
    }

    #[tokio::test]
    async fn oversized_structured_output_asks_to_narrow_the_request() {
        let (client, _) = connect(limits(1000, Limits::DEFAULT_TOOL_TIMEOUT)).await;
        let result = call(&client, "big_json", serde_json::json!({"bytes": 50_000})).await;
        assert_eq!(result.is_error, Some(true));
        assert!(result.structured_content.is_none());
        assert!(
            text_of(&result).contains("narrow the request"),
            "{}",
            text_of(&result)
        );
        let fits = call(&client, "big_json", serde_json::json!({"bytes": 300})).await;
        assert_ne!(fits.is_error, Some(true));
        assert_eq!(
            fits.structured_content.unwrap()["items"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
