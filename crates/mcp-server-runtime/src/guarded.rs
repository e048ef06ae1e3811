//! [`Guarded`]: the wrapper that enforces the [`Limits`] on every tool call.
//!
//! `Guarded` is a `ServerHandler` around the server's own, because rmcp's streamable HTTP
//! service accepts only `ServerHandler`s. It intercepts `call_tool` and forwards every
//! other method by hand. A method rmcp adds to the trait with a default body would answer
//! for the server instead of reaching it, so a test (`every_handler_method_is_forwarded`)
//! reads rmcp's own `ServerHandler` trait and fails when it has a method this file does
//! not forward (and, where rmcp's source cannot be found, when the rmcp version in
//! `Cargo.lock` changes from the one last reviewed).

// rmcp marks some legacy handler methods deprecated; the wrapper must still forward them.
#![allow(deprecated)]

use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt as _;
use rmcp::model::*;
use rmcp::service::{
    MaybeSendFuture, NotificationContext, RequestContext, RoleServer, SubscriptionContext,
};
use rmcp::{ErrorData as McpError, ServerHandler};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::limits::Limits;
use crate::tool::{CancelFlag, ToolError, ToolErrorKind, panic_message, with_cancel_flag};
use crate::truncate::truncate_middle;

/// A [`ServerHandler`] that enforces [`Limits`] on the server it wraps.
///
/// Every `tools/call` runs under a timeout, inside a scope whose [`CancelFlag`] (see
/// [`crate::run_blocking`]) is set on `notifications/cancelled`, on timeout and on
/// shutdown; a panic in the tool becomes an `isError` result and the server keeps serving;
/// the result is capped to [`Limits::max_output_bytes`]; at most
/// [`Limits::max_concurrent_calls`] calls run at once (a call beyond that is answered at
/// once with an `isError` result). Everything else is forwarded unchanged.
#[derive(Debug, Clone)]
pub struct Guarded<S> {
    inner: S,
    limits: Limits,
    /// Shared by every session of an HTTP server, so the limit is per process.
    call_slots: Arc<Semaphore>,
    /// Held for as long as this session's service lives (HTTP session cap).
    session: Option<Arc<OwnedSemaphorePermit>>,
}

impl<S: ServerHandler> Guarded<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, limits: Limits) -> Self {
        Self {
            inner,
            limits,
            call_slots: Arc::new(Semaphore::new(limits.max_concurrent_calls)),
            session: None,
        }
    }
    /// The wrapped server.
    pub fn inner(&self) -> &S {
        &self.inner
    }
    /// The limits being enforced.
    pub fn limits(&self) -> Limits {
        self.limits
    }
    /// Counts calls against `slots` (shared with other sessions) instead of its own.
    pub(crate) fn with_call_slots(mut self, slots: Arc<Semaphore>) -> Self {
        self.call_slots = slots;
        self
    }
    /// Keeps `permit` until this service (and every clone of it) is dropped.
    pub(crate) fn with_session_permit(mut self, permit: OwnedSemaphorePermit) -> Self {
        self.session = Some(Arc::new(permit));
        self
    }

    async fn guarded_call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let tool = request.name.to_string();
        let Ok(_slot) = Arc::clone(&self.call_slots).try_acquire_owned() else {
            tracing::warn!(tool, "tool call refused: every call slot is busy");
            return Ok(ToolError::new(
                ToolErrorKind::Failed,
                format!(
                    "the server is busy: {} tool calls are already running; retry when one \
                     has finished (the operator can raise --max-concurrent-calls)",
                    self.limits.max_concurrent_calls
                ),
            )
            .into_call_tool_result()
            .into());
        };
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

    // Everything below forwards to the wrapped server unchanged. Every method of the
    // trait must be here: one left to its default body would answer for the server.

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

/// Applies the output cap to a finished tool result.
fn cap_output(tool: &str, mut result: CallToolResult, max_bytes: usize) -> CallToolResult {
    if let Some(structured) = &result.structured_content {
        let size = serialized_len(structured);
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

/// Bytes `value` takes as JSON, counted without building the text: the structured output
/// can be most of the cap, and a copy only to measure it doubles the work of large answers.
fn serialized_len(value: &serde_json::Value) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests;
