//! What a tool returns, and how it runs heavy work without blocking the server.
//!
//! Tools return [`ToolResult<T>`]: `Ok(Json(value))` becomes structured output (with the
//! output schema rmcp derives from `T`), `Err(ToolError)` becomes a tool result with
//! `isError: true` whose text tells the caller what went wrong and what to do. Protocol
//! errors (`Err(rmcp::ErrorData)`) are reserved for unroutable requests; rmcp produces those
//! itself for unknown tools. (Arguments that do not match the input schema come back from
//! rmcp as `isError` results reading `failed to deserialize parameters: ...`.)

use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use rmcp::handler::server::tool::IntoCallToolResult;
use rmcp::model::{CallToolResponse, CallToolResult, ContentBlock};
use tokio_util::sync::CancellationToken;

use confined_fs::ConfineError;

/// What a tool returns: structured output on success, an `isError` result otherwise.
///
/// **In `#[tool]` signatures write `Result<Json<T>, ToolError>` out in full.** rmcp's
/// `#[tool]` macro derives the tool's output schema from the return type *as written*
/// (`Json<T>` or `Result<Json<T>, E>`); behind this alias it sees neither and the tool
/// would be listed without an output schema. Use the alias for helper functions.
pub type ToolResult<T> = Result<rmcp::Json<T>, ToolError>;

/// The class of a tool failure; it becomes the prefix of the message the caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolErrorKind {
    /// The arguments are wrong in a way the caller can fix.
    InvalidInput,
    /// A file, record or other named thing does not exist.
    NotFound,
    /// Refused by policy: outside the roots, execution disabled, dangerous command...
    Denied,
    /// The work itself failed (I/O error, command failed to start, internal panic...).
    Failed,
    /// The work did not finish within its time limit.
    Timeout,
    /// The request was cancelled by the client (or the server is shutting down).
    Cancelled,
    /// The result is larger than the output limit and cannot be shortened meaningfully.
    TooLarge,
}

impl ToolErrorKind {
    fn label(self) -> &'static str {
        match self {
            Self::InvalidInput => "invalid input",
            Self::NotFound => "not found",
            Self::Denied => "denied",
            Self::Failed => "failed",
            Self::Timeout => "timed out",
            Self::Cancelled => "cancelled",
            Self::TooLarge => "output too large",
        }
    }
}

/// A tool failure the caller should read: becomes a `CallToolResult` with `isError: true`.
///
/// The message should say what went wrong *and* what to do about it, e.g.
/// `ToolError::denied("execution is disabled; restart the server with --allow-exec")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    kind: ToolErrorKind,
    message: String,
}

impl ToolError {
    /// A failure of the given kind.
    pub fn new(kind: ToolErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
    /// The arguments are wrong in a way the caller can fix.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::InvalidInput, message)
    }
    /// Something named in the request does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::NotFound, message)
    }
    /// Refused by policy.
    pub fn denied(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::Denied, message)
    }
    /// The work itself failed.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::new(ToolErrorKind::Failed, message)
    }
    /// The work exceeded `limit`; `what` names it ("tool grep", "command `make`").
    pub fn timeout(what: impl fmt::Display, limit: Duration) -> Self {
        Self::new(
            ToolErrorKind::Timeout,
            format!(
                "{what} did not finish within {}; narrow the request or raise the limit",
                format_duration(limit)
            ),
        )
    }
    /// The request was cancelled before it finished.
    pub fn cancelled() -> Self {
        Self::new(
            ToolErrorKind::Cancelled,
            "the request was cancelled before it finished",
        )
    }
    /// The class of failure.
    pub fn kind(&self) -> ToolErrorKind {
        self.kind
    }
    /// The message without the kind prefix.
    pub fn message(&self) -> &str {
        &self.message
    }
    /// This error as the `isError` tool result the caller receives.
    pub fn into_call_tool_result(self) -> CallToolResult {
        CallToolResult::error(vec![ContentBlock::text(self.to_string())])
    }
}

fn format_duration(limit: Duration) -> String {
    if limit.subsec_millis() == 0 {
        format!("{} s", limit.as_secs())
    } else {
        format!("{} ms", limit.as_millis())
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.label(), self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<ConfineError> for ToolError {
    fn from(error: ConfineError) -> Self {
        let kind = match &error {
            ConfineError::NotFound { .. } => ToolErrorKind::NotFound,
            ConfineError::NulByte | ConfineError::Empty | ConfineError::WrongKind { .. } => {
                ToolErrorKind::InvalidInput
            }
            ConfineError::OutsideRoots { .. }
            | ConfineError::Escape { .. }
            | ConfineError::NoRoots
            | ConfineError::BadRoot { .. } => ToolErrorKind::Denied,
            ConfineError::Io { source, .. } => match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory => {
                    ToolErrorKind::NotFound
                }
                std::io::ErrorKind::PermissionDenied => ToolErrorKind::Denied,
                _ => ToolErrorKind::Failed,
            },
        };
        Self::new(kind, error.to_string())
    }
}

/// rmcp turns the `Err` side of a tool's `Result<T, E>` into an `isError` result when `E`
/// implements this trait (it sets `is_error` itself; we set it too for direct use).
impl IntoCallToolResult for ToolError {
    fn into_call_tool_result(self) -> Result<CallToolResponse, rmcp::ErrorData> {
        Ok(ToolError::into_call_tool_result(self).into())
    }
}

/// Set when the request that owns some work is cancelled or times out.
///
/// Cheap to clone. Long loops in [`run_blocking`] closures check
/// [`is_cancelled`](Self::is_cancelled) and return early (typically with
/// `Err(ToolError::cancelled())`); async code can `await` [`cancelled`](Self::cancelled).
#[derive(Debug, Clone, Default)]
pub struct CancelFlag {
    token: CancellationToken,
}

impl CancelFlag {
    /// A flag nobody has set yet, not tied to any request.
    pub fn new() -> Self {
        Self::default()
    }
    /// True once the work should stop.
    pub fn is_cancelled(&self) -> bool {
        self.token.is_cancelled()
    }
    /// Sets the flag (idempotent).
    pub fn cancel(&self) {
        self.token.cancel();
    }
    /// Resolves once the flag is set.
    pub async fn cancelled(&self) {
        self.token.cancelled().await;
    }
    /// `Err(ToolError::cancelled())` once the flag is set: `flag.check()?` in a loop.
    pub fn check(&self) -> Result<(), ToolError> {
        if self.is_cancelled() {
            Err(ToolError::cancelled())
        } else {
            Ok(())
        }
    }
    /// A flag that is set when this one is, and can also be set on its own.
    pub fn child(&self) -> Self {
        Self {
            token: self.token.child_token(),
        }
    }
    pub(crate) fn from_token(token: CancellationToken) -> Self {
        Self { token }
    }
    /// Sets the flag when the returned guard is dropped.
    pub(crate) fn cancel_on_drop(&self) -> tokio_util::sync::DropGuard {
        self.token.clone().drop_guard()
    }
}

tokio::task_local! {
    /// The cancel flag of the tool call running on this task; scoped by `Guarded`.
    static CURRENT_CANCEL: CancelFlag;
}

/// The cancel flag of the tool call being served on this task, or a fresh unset flag when
/// called outside a guarded tool call (unit tests, startup code).
pub fn current_cancel_flag() -> CancelFlag {
    CURRENT_CANCEL
        .try_with(CancelFlag::clone)
        .unwrap_or_default()
}

/// Runs `future` with `flag` as the [`current_cancel_flag`].
pub(crate) fn with_cancel_flag<F: Future>(
    flag: CancelFlag,
    future: F,
) -> impl Future<Output = F::Output> {
    CURRENT_CANCEL.scope(flag, future)
}

/// Runs CPU- or IO-heavy work on tokio's blocking pool so the server keeps answering.
///
/// `work` receives a [`CancelFlag`] that is set when the tool call is cancelled
/// (`notifications/cancelled`), times out, or when this future is dropped; loops should
/// check it and stop early. A panic inside `work` becomes `ToolError::failed` instead of
/// taking the server down.
pub async fn run_blocking<T, F>(work: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce(&CancelFlag) -> Result<T, ToolError> + Send + 'static,
{
    let flag = current_cancel_flag().child();
    // Dropping this future (timeout, cancellation, disconnect) must tell the thread to stop:
    // the blocking pool cannot abort a running closure.
    let _stop_on_drop = flag.cancel_on_drop();
    let worker_flag = flag.clone();
    let handle = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(AssertUnwindSafe(|| work(&worker_flag)))
    });
    match handle.await {
        Ok(Ok(result)) => result,
        Ok(Err(panic)) => Err(ToolError::failed(format!(
            "internal error: the tool panicked ({}); this is a bug, please report it",
            panic_message(panic.as_ref())
        ))),
        Err(join_error) => Err(ToolError::failed(format!(
            "internal error: the worker thread was lost ({join_error}); retry the request"
        ))),
    }
}

/// `value` rounded to two decimals, as tool results show percentages and scores.
pub fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The text of a panic payload (`&str` or `String`), or a placeholder.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-text panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    #[test]
    fn tool_error_becomes_is_error_result_with_kind_and_message() {
        let result = ToolError::denied("execution is disabled; restart with --allow-exec")
            .into_call_tool_result();
        assert_eq!(result.is_error, Some(true));
        let text = &result.content[0].as_text().unwrap().text;
        assert_eq!(
            text,
            "denied: execution is disabled; restart with --allow-exec"
        );
    }

    #[test]
    fn err_side_of_tool_result_is_an_is_error_result_not_a_protocol_error() {
        let outcome: ToolResult<u32> = Err(ToolError::not_found("no record 7"));
        match IntoCallToolResult::into_call_tool_result(outcome).unwrap() {
            CallToolResponse::Complete(result) => {
                assert_eq!(result.is_error, Some(true));
                assert!(
                    result.content[0]
                        .as_text()
                        .unwrap()
                        .text
                        .contains("no record 7")
                );
            }
            other => panic!("expected a complete result, got {other:?}"),
        }
    }

    #[test]
    fn timeout_message_names_the_limit() {
        let error = ToolError::timeout("tool `grep`", Duration::from_secs(30));
        assert_eq!(error.kind(), ToolErrorKind::Timeout);
        assert!(error.to_string().contains("30 s"), "{error}");
        let error = ToolError::timeout("command", Duration::from_millis(1500));
        assert!(error.to_string().contains("1500 ms"), "{error}");
    }

    #[test]
    fn confine_errors_map_to_kinds() {
        let outside = ConfineError::OutsideRoots {
            path: "../x".into(),
            resolved: "/x".into(),
            roots: "/srv".into(),
        };
        assert_eq!(ToolError::from(outside).kind(), ToolErrorKind::Denied);
        assert_eq!(
            ToolError::from(ConfineError::NulByte).kind(),
            ToolErrorKind::InvalidInput
        );
        let fifo = ConfineError::WrongKind {
            path: "/srv/Cargo.toml".into(),
            found: "a FIFO (named pipe)",
            expected: "a regular file",
        };
        assert_eq!(ToolError::from(fifo).kind(), ToolErrorKind::InvalidInput);
        let escape = ConfineError::Escape {
            path: "/srv/a".into(),
            dir: "/srv".into(),
            reason: "a link",
        };
        assert_eq!(ToolError::from(escape).kind(), ToolErrorKind::Denied);
        let vanished = ConfineError::Io {
            path: "/srv/a".into(),
            source: std::io::ErrorKind::NotFound.into(),
        };
        assert_eq!(ToolError::from(vanished).kind(), ToolErrorKind::NotFound);
    }

    #[tokio::test]
    async fn run_blocking_returns_the_closure_result() {
        assert_eq!(run_blocking(|_| Ok(21 * 2)).await.unwrap(), 42);
        let error = run_blocking(|_| Err::<(), _>(ToolError::invalid_input("bad"))).await;
        assert_eq!(error.unwrap_err().kind(), ToolErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn run_blocking_turns_a_panic_into_failed() {
        let error = run_blocking(|_| -> Result<(), ToolError> { panic!("boom 17") })
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ToolErrorKind::Failed);
        assert!(error.message().contains("boom 17"), "{error}");
    }

    #[tokio::test]
    async fn run_blocking_sees_the_current_flag_being_set() {
        let request_flag = CancelFlag::new();
        let setter = request_flag.clone();
        let outcome = with_cancel_flag(request_flag, async move {
            run_blocking(move |flag| {
                setter.cancel();
                // The closure observes the request's flag through its child flag.
                flag.check()
            })
            .await
        })
        .await;
        assert_eq!(outcome.unwrap_err().kind(), ToolErrorKind::Cancelled);
    }

    #[tokio::test]
    async fn dropping_run_blocking_sets_the_flag_for_the_thread() {
        let stopped = Arc::new(AtomicBool::new(false));
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let stopped_in_worker = stopped.clone();
        let work = tokio::spawn(run_blocking(move |flag| {
            let _ = started_tx.send(());
            while !flag.is_cancelled() {
                std::thread::sleep(Duration::from_millis(1));
            }
            stopped_in_worker.store(true, Ordering::SeqCst);
            Ok(())
        }));
        started_rx.await.unwrap();
        work.abort();
        let _ = work.await;
        // The worker notices the flag within one loop iteration; wait for it without a
        // wall-clock assertion (a hang here would be the failure).
        while !stopped.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[test]
    fn round2_keeps_two_decimals() {
        assert_eq!(round2(1.234_9), 1.23);
        assert_eq!(round2(1.235_1), 1.24);
        assert_eq!(round2(100.0), 100.0);
        assert_eq!(round2(-2.005_1), -2.01);
    }

    #[test]
    fn current_flag_outside_a_tool_call_is_unset() {
        assert!(!current_cancel_flag().is_cancelled());
    }
}
