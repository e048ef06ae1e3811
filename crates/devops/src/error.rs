//! The error type of the devops logic, independent of the MCP layer.

/// Why a devops operation failed. Each variant maps onto one kind of MCP tool error, so the
/// server can tell the caller whether to fix the input, pick another target, or retry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DevopsError {
    /// The arguments are invalid; the message says which and what is accepted.
    #[error("{0}")]
    InvalidInput(String),
    /// The target (process, file) does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The operating system refused access.
    #[error("{0}")]
    Denied(String),
    /// The operation could not be completed (an I/O or system error).
    #[error("{0}")]
    Failed(String),
    /// The request was cancelled or timed out before the work finished.
    #[error("the operation was cancelled before it finished")]
    Cancelled,
}

impl DevopsError {
    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Self::InvalidInput(msg.into())
    }
}
