//! Limits every server shares; [`Guarded`](crate::Guarded) enforces them on every tool call.

use std::time::Duration;

/// Resource limits applied to every tool call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Cap on a tool result: text content is truncated in the middle to fit, structured
    /// content larger than this turns the result into an error asking to narrow the request.
    pub max_output_bytes: usize,
    /// Wall-clock limit of one tool call; the call then returns an `isError` result and its
    /// [`CancelFlag`](crate::CancelFlag) is set so blocking work stops.
    pub tool_timeout: Duration,
    /// Tool calls running at once in the whole server (all sessions together); a call
    /// beyond it is answered at once with an `isError` result asking to retry.
    pub max_concurrent_calls: usize,
}

impl Limits {
    /// Default [`Limits::max_output_bytes`]: 256 KiB, several pages of text for a model.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;
    /// Default [`Limits::tool_timeout`].
    pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(60);
    /// Default [`Limits::max_concurrent_calls`]: far more than one client issues at once,
    /// few enough that a flood cannot queue unbounded work on the blocking pool.
    pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 32;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
            tool_timeout: Self::DEFAULT_TOOL_TIMEOUT,
            max_concurrent_calls: Self::DEFAULT_MAX_CONCURRENT_CALLS,
        }
    }
}
