//! devops: an MCP server for operations work — host metrics, processes, disks, network
//! interfaces, endpoint checks, log analysis and anomaly detection.
//!
//! The modules hold the logic and know nothing about MCP; `server` exposes them as tools.

pub mod anomaly;
pub mod endpoint;
pub mod error;
pub mod logs;
pub mod metrics;
pub mod processes;
pub mod redact;
mod server;
mod text;

pub use endpoint::CheckEndpointParams;
pub use error::DevopsError;
pub use server::{
    AnalyzeLogParams, DetectAnomaliesParams, Devops, ProcessInfoParams, ProcessListParams,
    SampleMetricParams,
};
