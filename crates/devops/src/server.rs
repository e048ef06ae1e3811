//! The MCP face of devops: one `#[tool]` per operation, thin wrappers over the logic modules.

use std::sync::Arc;

use mcp_server_runtime::{ServerContext, ToolError, run_blocking};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::anomaly::{AnomalyMethod, AnomalyReport, detect_anomalies};
use crate::endpoint::{
    CheckEndpointParams, DEFAULT_TIMEOUT_MS, EndpointChecker, EndpointReport, EndpointRequest,
};
use crate::error::DevopsError;
use crate::logs::{LogAnalysis, LogQuery, analyze_open_log};
use crate::metrics::{
    DiskUsageReport, MetricSamples, NetworkReport, SampledMetric, SamplingPlan, SystemMetrics,
    disk_usage, network_stats, sample_metric_anomalies, system_metrics,
};
use crate::processes::{ProcessDetails, ProcessListing, ProcessSort, process_info, process_list};

impl From<DevopsError> for ToolError {
    fn from(error: DevopsError) -> Self {
        match error {
            DevopsError::InvalidInput(m) => ToolError::invalid_input(m),
            DevopsError::NotFound(m) => ToolError::not_found(m),
            DevopsError::Denied(m) => ToolError::denied(m),
            DevopsError::Failed(m) => ToolError::failed(m),
            DevopsError::Cancelled => ToolError::cancelled(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProcessListParams {
    /// Order: cpu (default, highest first), memory (largest first), pid, or name.
    #[serde(default)]
    pub sort_by: ProcessSort,
    /// Most processes returned (default 25, at most 1000).
    pub limit: Option<usize>,
    /// Keep processes whose name or command line contains this text (case-insensitive).
    pub name_filter: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ProcessInfoParams {
    /// Process id.
    pub pid: u32,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnalyzeLogParams {
    /// Log file, relative to the first root or absolute inside a root.
    pub path: String,
    /// Regex (Rust syntax) whose matching lines are counted and listed.
    pub pattern: Option<String>,
    /// Only analyze lines at or after this time: "2024-05-01" or "2024-05-01T12:00:00Z"
    /// (times without a zone are UTC).
    pub since: Option<String>,
    /// Most top errors and most pattern matches listed (default 20, at most 1000).
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct DetectAnomaliesParams {
    /// The series, in order (at least 2 numbers).
    pub values: Vec<f64>,
    /// zscore: distance from the mean of the whole series; ewma: distance from a moving
    /// average (follows trends).
    pub method: AnomalyMethod,
    /// Score above which a point is anomalous, in standard deviations (default 3).
    pub threshold: Option<f64>,
    /// EWMA smoothing factor in (0, 1] (default 0.3; ewma only).
    pub alpha: Option<f64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct SampleMetricParams {
    /// cpu (overall usage %), memory (used %), or load (one-minute load average).
    pub metric: SampledMetric,
    /// Number of samples, 3-300.
    pub samples: usize,
    /// Milliseconds between samples, 200-10000; samples × interval must stay within 60 s.
    pub interval_ms: u64,
    pub method: AnomalyMethod,
    /// Score above which a sample is anomalous, in standard deviations (default 3).
    pub threshold: Option<f64>,
}

/// The devops MCP server.
#[derive(Clone)]
pub struct Devops {
    context: ServerContext,
    endpoints: Arc<EndpointChecker>,
    tool_router: ToolRouter<Self>,
}

impl std::fmt::Debug for Devops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devops")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Devops {
    /// A server over `context` whose `check_endpoint` uses `endpoints` (policy, trust).
    pub fn new(context: ServerContext, endpoints: EndpointChecker) -> Self {
        Self {
            context,
            endpoints: Arc::new(endpoints),
            tool_router: Self::tool_router(),
        }
    }
}

// Tools spell out `Result<Json<T>, ToolError>` rather than an alias such as `ToolResult<T>`:
// rmcp's `#[tool]` macro derives the output schema from the return type as written and does
// not see through aliases.
#[tool_router]
impl Devops {
    /// CPU usage (overall and per core, measured over 200 ms), memory and swap, load average,
    /// uptime, host and OS names.
    #[tool(annotations(
        title = "System metrics",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn system_metrics(&self) -> Result<Json<SystemMetrics>, ToolError> {
        Ok(Json(system_metrics().await?))
    }

    /// Mounted filesystems with type, total, available and used space, and percent used.
    #[tool(annotations(
        title = "Disk usage",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn disk_usage(&self) -> Result<Json<DiskUsageReport>, ToolError> {
        // statfs on a hung network mount blocks: keep it off the async workers.
        Ok(Json(run_blocking(|_| Ok(disk_usage()?)).await?))
    }

    /// Network interfaces with bytes, packets and errors received and transmitted since boot,
    /// addresses, MTU and state.
    #[tool(annotations(
        title = "Network statistics",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn network_stats(&self) -> Result<Json<NetworkReport>, ToolError> {
        Ok(Json(run_blocking(|_| Ok(network_stats()?)).await?))
    }

    /// Running processes with CPU (measured over 200 ms) and memory, sorted by cpu, memory,
    /// pid or name, optionally filtered by name or command line.
    #[tool(annotations(
        title = "Process list",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn process_list(
        &self,
        Parameters(params): Parameters<ProcessListParams>,
    ) -> Result<Json<ProcessListing>, ToolError> {
        let listing =
            process_list(params.sort_by, params.limit, params.name_filter.as_deref()).await?;
        Ok(Json(listing))
    }

    /// Details of one process: command line, parent, status, start time, CPU, memory, disk
    /// I/O, open files and threads. The environment is never returned.
    #[tool(annotations(
        title = "Process details",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn process_info(
        &self,
        Parameters(params): Parameters<ProcessInfoParams>,
    ) -> Result<Json<ProcessDetails>, ToolError> {
        Ok(Json(process_info(params.pid).await?))
    }

    /// Checks an HTTP(S) URL (status, headers of interest, redirect chain, timing of DNS,
    /// connect, TLS and first byte, TLS version, certificate expiry in days) or a TCP port
    /// (optionally with a TLS handshake). Unreachable hosts, refused connections, timeouts,
    /// untrusted certificates, redirect loops and addresses refused by the server's endpoint
    /// policy are reported in the result, not as errors.
    #[tool(annotations(
        title = "Check endpoint",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = true
    ))]
    pub async fn check_endpoint(
        &self,
        Parameters(mut params): Parameters<CheckEndpointParams>,
    ) -> Result<Json<EndpointReport>, ToolError> {
        let tool_timeout = self.context.limits.tool_timeout;
        // The default budget leaves room to report within a short tool time limit.
        let tool_timeout_ms = u64::try_from(tool_timeout.as_millis()).unwrap_or(u64::MAX);
        params.timeout_ms = params.timeout_ms.or(Some(
            DEFAULT_TIMEOUT_MS.min(tool_timeout_ms / 10 * 9).max(1),
        ));
        let request = EndpointRequest::new(params)?;
        if request.timeout() >= tool_timeout {
            return Err(ToolError::invalid_input(format!(
                "timeout_ms ({} ms) must be below the server's tool time limit ({} ms) so the \
                 check can report its result; pass a smaller timeout_ms",
                request.timeout().as_millis(),
                tool_timeout.as_millis()
            )));
        }
        Ok(Json(self.endpoints.check(&request).await))
    }

    /// Streams a log file (plain, syslog or JSON lines): counts per level, most frequent error
    /// messages with numbers and ids normalized, first and last timestamps, and lines
    /// matching an optional regex. The path must be inside the server's roots.
    #[tool(annotations(
        title = "Analyze log",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn analyze_log(
        &self,
        Parameters(params): Parameters<AnalyzeLogParams>,
    ) -> Result<Json<LogAnalysis>, ToolError> {
        // Opened beneath its root (a symlink swapped in cannot redirect it); FIFOs, sockets
        // and directories are refused without blocking.
        let file = self.context.roots.open_file(&params.path)?;
        let query = LogQuery::new(
            params.pattern.as_deref(),
            params.since.as_deref(),
            params.limit,
        )?;
        let shown = file.path().display().to_string();
        let analysis = run_blocking(move |flag| {
            Ok(analyze_open_log(file.into_file(), &shown, &query, &|| {
                flag.is_cancelled()
            })?)
        })
        .await?;
        Ok(Json(analysis))
    }

    /// Indexes and scores of anomalous points in a series, by z-score or EWMA.
    #[tool(annotations(
        title = "Detect anomalies",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn detect_anomalies(
        &self,
        Parameters(params): Parameters<DetectAnomaliesParams>,
    ) -> Result<Json<AnomalyReport>, ToolError> {
        let report = run_blocking(move |_| {
            Ok(detect_anomalies(
                &params.values,
                params.method,
                params.threshold,
                params.alpha,
            )?)
        })
        .await?;
        Ok(Json(report))
    }

    /// Samples cpu, memory or load `samples` times `interval_ms` apart, then reports the
    /// values and the anomalous samples (z-score or EWMA).
    #[tool(annotations(
        title = "Sample a metric and detect anomalies",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    pub async fn sample_metric_anomalies(
        &self,
        Parameters(params): Parameters<SampleMetricParams>,
    ) -> Result<Json<MetricSamples>, ToolError> {
        let plan = SamplingPlan::new(params.samples, params.interval_ms)?;
        let samples =
            sample_metric_anomalies(params.metric, plan, params.method, params.threshold).await?;
        Ok(Json(samples))
    }
}

#[tool_handler(
    router = self.tool_router,
    name = "devops",
    instructions = "Operations tools for this host: system_metrics, disk_usage, network_stats, \
process_list/process_info, check_endpoint (HTTP(S) URL with redirects, timings and \
certificate expiry, or a TCP/TLS port), analyze_log (files inside \
the server roots), detect_anomalies over numbers you pass, and sample_metric_anomalies over a \
live metric. All tools are read-only."
)]
impl ServerHandler for Devops {}
