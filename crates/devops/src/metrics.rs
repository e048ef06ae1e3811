//! Host metrics through `sysinfo`: CPU, memory, load, disks, network interfaces, and sampling
//! of one metric over time.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sysinfo::{Disks, MINIMUM_CPU_UPDATE_INTERVAL, Networks, System};

use crate::anomaly::{AnomalyMethod, AnomalyReport, detect_anomalies};
use crate::error::DevopsError;

/// A snapshot of CPU, memory, load and uptime.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SystemMetrics {
    pub hostname: Option<String>,
    pub os: Option<String>,
    pub kernel: Option<String>,
    pub uptime_secs: Option<u64>,
    /// Boot time in seconds since the Unix epoch.
    pub boot_time_unix: Option<u64>,
    pub cpu: CpuMetrics,
    pub memory: MemoryMetrics,
    /// Unavailable on Windows.
    pub load_average: Option<LoadAverage>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CpuMetrics {
    pub brand: String,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    /// Usage over all cores during the sampling interval, 0-100.
    pub usage_percent: f64,
    pub per_core: Vec<CoreUsage>,
    /// How long CPU time was measured for the usage figures.
    pub sample_interval_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CoreUsage {
    pub name: String,
    pub usage_percent: f64,
    pub frequency_mhz: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MemoryMetrics {
    pub total_bytes: u64,
    pub used_bytes: u64,
    pub available_bytes: u64,
    pub free_bytes: u64,
    /// `used_bytes` as a share of `total_bytes`, 0-100.
    pub used_percent: f64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub swap_free_bytes: u64,
}

use mcp_server_runtime::host::HostSnapshot;
/// The host's load averages, shared with bash-god's `system_info`.
pub use mcp_server_runtime::host::LoadAverage;

fn new_system() -> Result<System, DevopsError> {
    System::new().map_err(|e| DevopsError::Failed(format!("cannot read system information: {e}")))
}

/// Runs `work` on tokio's blocking pool: sysinfo reads `/proc` and `/sys` synchronously
/// (tens of milliseconds for all processes), which must not stall the async workers.
pub(crate) async fn off_async_workers<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, DevopsError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        DevopsError::Failed(format!(
            "internal error: reading system information failed ({e}); retry the request"
        ))
    })
}

/// Measures CPU usage over sysinfo's minimum interval (two refreshes) and reads the rest.
pub async fn system_metrics() -> Result<SystemMetrics, DevopsError> {
    let system = off_async_workers(|| {
        let mut system = new_system()?;
        system.refresh_cpu_all();
        Ok::<_, DevopsError>(system)
    })
    .await??;
    tokio::time::sleep(MINIMUM_CPU_UPDATE_INTERVAL).await;
    off_async_workers(move || {
        let mut system = system;
        system.refresh_cpu_usage();
        system.refresh_memory();
        read_system_metrics(&system)
    })
    .await
}

fn read_system_metrics(system: &System) -> SystemMetrics {
    // The facts shared with bash-god's system_info; CPU usage is devops' own (two readings).
    let host = HostSnapshot::from_system(system);
    let cpus = system.cpus();
    let cpu = CpuMetrics {
        brand: host.cpu_brand.unwrap_or_default(),
        logical_cores: host.logical_cores,
        physical_cores: host.physical_cores,
        usage_percent: round2(f64::from(system.global_cpu_usage())),
        per_core: cpus
            .iter()
            .map(|c| CoreUsage {
                name: c.name().to_owned(),
                usage_percent: round2(f64::from(c.usage())),
                frequency_mhz: c.frequency(),
            })
            .collect(),
        sample_interval_ms: MINIMUM_CPU_UPDATE_INTERVAL.as_millis() as u64,
    };
    let memory = host.memory;
    SystemMetrics {
        hostname: host.hostname,
        os: host.os_version,
        kernel: host.kernel_version,
        uptime_secs: host.uptime_secs,
        boot_time_unix: host.boot_time_unix,
        cpu,
        memory: MemoryMetrics {
            total_bytes: memory.total,
            used_bytes: memory.used,
            available_bytes: memory.available,
            free_bytes: memory.free,
            used_percent: percent(memory.used, memory.total),
            swap_total_bytes: memory.swap_total,
            swap_used_bytes: memory.swap_used,
            swap_free_bytes: memory.swap_free,
        },
        load_average: host.load_average,
    }
}

/// Mounted filesystems.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DiskUsageReport {
    pub disks: Vec<DiskInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DiskInfo {
    /// Device or source name.
    pub name: String,
    pub mount_point: String,
    pub file_system: String,
    /// HDD, SSD or unknown.
    pub kind: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    pub used_bytes: u64,
    /// Used space as a share of the total, 0-100 (0 for filesystems reporting no size).
    pub used_percent: f64,
    pub removable: bool,
    pub read_only: bool,
}

/// Lists mounted filesystems sorted by mount point.
pub fn disk_usage() -> Result<DiskUsageReport, DevopsError> {
    let disks = Disks::new_with_refreshed_list()
        .map_err(|e| DevopsError::Failed(format!("cannot list mounted filesystems: {e}")))?;
    let mut disks: Vec<DiskInfo> = disks
        .iter()
        .map(|d| {
            let used = d.total_space().saturating_sub(d.available_space());
            DiskInfo {
                name: d.name().to_string_lossy().into_owned(),
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                file_system: d.file_system().to_string_lossy().into_owned(),
                kind: d.kind().to_string(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
                used_bytes: used,
                used_percent: percent(used, d.total_space()),
                removable: d.is_removable(),
                read_only: d.is_read_only(),
            }
        })
        .collect();
    disks.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
    Ok(DiskUsageReport { disks })
}

/// Network interfaces with their counters since boot.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NetworkReport {
    pub interfaces: Vec<InterfaceStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct InterfaceStats {
    pub name: String,
    pub received_bytes: u64,
    pub transmitted_bytes: u64,
    pub received_packets: u64,
    pub transmitted_packets: u64,
    pub receive_errors: u64,
    pub transmit_errors: u64,
    pub mac_address: String,
    /// Addresses with prefix length, e.g. `127.0.0.1/8`.
    pub ip_networks: Vec<String>,
    pub mtu: u64,
    /// up, down, unknown, ...
    pub state: String,
}

/// Lists network interfaces sorted by name.
pub fn network_stats() -> Result<NetworkReport, DevopsError> {
    let networks = Networks::new_with_refreshed_list()
        .map_err(|e| DevopsError::Failed(format!("cannot list network interfaces: {e}")))?;
    let mut interfaces: Vec<InterfaceStats> = networks
        .iter()
        .map(|(name, data)| InterfaceStats {
            name: name.to_string_lossy().into_owned(),
            received_bytes: data.total_received(),
            transmitted_bytes: data.total_transmitted(),
            received_packets: data.total_packets_received(),
            transmitted_packets: data.total_packets_transmitted(),
            receive_errors: data.total_errors_on_received(),
            transmit_errors: data.total_errors_on_transmitted(),
            mac_address: data.mac_address().to_string(),
            ip_networks: data.ip_networks().iter().map(ToString::to_string).collect(),
            mtu: data.mtu(),
            state: data.operational_state().to_string(),
        })
        .collect();
    interfaces.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(NetworkReport { interfaces })
}

/// A metric that can be sampled repeatedly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SampledMetric {
    /// Overall CPU usage in percent.
    Cpu,
    /// Used memory in percent of the total.
    Memory,
    /// One-minute load average.
    Load,
}

impl SampledMetric {
    fn unit(self) -> &'static str {
        match self {
            Self::Cpu | Self::Memory => "percent",
            Self::Load => "load",
        }
    }
}

/// Fewest samples: anomaly scores need a population.
pub const MIN_SAMPLES: usize = 3;
/// Most samples per call.
pub const MAX_SAMPLES: usize = 300;
/// Shortest interval; sysinfo needs this long between two CPU readings.
pub const MIN_SAMPLE_INTERVAL_MS: u64 = 200;
/// Longest interval between samples.
pub const MAX_SAMPLE_INTERVAL_MS: u64 = 10_000;
/// Longest total sampling time, so a call stays well inside a client's patience.
pub const MAX_SAMPLING_DURATION_MS: u64 = 60_000;

/// How many samples to take and how far apart; validated on construction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamplingPlan {
    samples: usize,
    interval: Duration,
}

impl SamplingPlan {
    pub fn new(samples: usize, interval_ms: u64) -> Result<Self, DevopsError> {
        if !(MIN_SAMPLES..=MAX_SAMPLES).contains(&samples) {
            return Err(DevopsError::invalid(format!(
                "samples must be between {MIN_SAMPLES} and {MAX_SAMPLES}, got {samples}"
            )));
        }
        if !(MIN_SAMPLE_INTERVAL_MS..=MAX_SAMPLE_INTERVAL_MS).contains(&interval_ms) {
            return Err(DevopsError::invalid(format!(
                "interval_ms must be between {MIN_SAMPLE_INTERVAL_MS} and \
                 {MAX_SAMPLE_INTERVAL_MS}, got {interval_ms}"
            )));
        }
        let total = samples as u64 * interval_ms;
        if total > MAX_SAMPLING_DURATION_MS {
            return Err(DevopsError::invalid(format!(
                "{samples} samples every {interval_ms} ms take {total} ms; at most \
                 {MAX_SAMPLING_DURATION_MS} ms are allowed, take fewer samples or shorten the interval"
            )));
        }
        Ok(Self {
            samples,
            interval: Duration::from_millis(interval_ms),
        })
    }
}

/// Sampled values of a metric and their anomaly scores.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MetricSamples {
    pub metric: SampledMetric,
    /// percent or load.
    pub unit: String,
    pub interval_ms: u64,
    /// The sampled values in time order; anomaly indexes point into this list.
    pub values: Vec<f64>,
    pub report: AnomalyReport,
}

/// Samples `metric` `plan.samples` times, `plan.interval` apart, then scores the series.
/// Waiting is async so a cancelled request stops sampling at once.
pub async fn sample_metric_anomalies(
    metric: SampledMetric,
    plan: SamplingPlan,
    method: AnomalyMethod,
    threshold: Option<f64>,
) -> Result<MetricSamples, DevopsError> {
    let values = sample_metric(metric, plan).await?;
    let report = detect_anomalies(&values, method, threshold, None)?;
    Ok(MetricSamples {
        metric,
        unit: metric.unit().to_owned(),
        interval_ms: plan.interval.as_millis() as u64,
        values,
        report,
    })
}

async fn sample_metric(metric: SampledMetric, plan: SamplingPlan) -> Result<Vec<f64>, DevopsError> {
    let mut system = off_async_workers(move || {
        let mut system = new_system()?;
        if metric == SampledMetric::Cpu {
            // CPU usage is a difference between two readings: take the baseline now.
            system.refresh_cpu_usage();
        }
        Ok::<_, DevopsError>(system)
    })
    .await??;
    let mut values = Vec::with_capacity(plan.samples);
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await; // the first tick completes immediately
    for _ in 0..plan.samples {
        ticker.tick().await;
        let (returned, value) = off_async_workers(move || {
            let value = read_sample(&mut system, metric);
            (system, value)
        })
        .await?;
        system = returned;
        values.push(round2(value?));
    }
    Ok(values)
}

fn read_sample(system: &mut System, metric: SampledMetric) -> Result<f64, DevopsError> {
    Ok(match metric {
        SampledMetric::Cpu => {
            system.refresh_cpu_usage();
            f64::from(system.global_cpu_usage())
        }
        SampledMetric::Memory => {
            system.refresh_memory();
            percent(system.used_memory(), system.total_memory())
        }
        SampledMetric::Load => {
            System::load_average()
                .map_err(|e| DevopsError::Failed(format!("cannot read the load average: {e}")))?
                .one
        }
    })
}

pub(crate) fn percent(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        round2(part as f64 * 100.0 / total as f64)
    }
}

pub(crate) use mcp_server_runtime::round2;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn system_metrics_are_consistent() {
        let m = system_metrics().await.unwrap();
        assert!(m.cpu.logical_cores >= 1);
        assert_eq!(m.cpu.per_core.len(), m.cpu.logical_cores);
        assert!((0.0..=100.0).contains(&m.cpu.usage_percent), "{m:?}");
        assert!(m.memory.total_bytes > 0);
        assert!(m.memory.used_bytes <= m.memory.total_bytes);
        assert!(m.uptime_secs.unwrap() > 0);
        let load = m.load_average.expect("load average exists on Linux");
        assert!(load.one >= 0.0);
    }

    #[test]
    fn disk_usage_lists_the_root_filesystem() {
        let report = disk_usage().unwrap();
        for d in &report.disks {
            assert!(d.used_bytes <= d.total_bytes, "{d:?}");
            assert!((0.0..=100.0).contains(&d.used_percent), "{d:?}");
        }
        let mounts: Vec<&str> = report
            .disks
            .iter()
            .map(|d| d.mount_point.as_str())
            .collect();
        let mut sorted = mounts.clone();
        sorted.sort();
        assert_eq!(mounts, sorted);
    }

    #[test]
    fn network_stats_include_loopback() {
        let report = network_stats().unwrap();
        let lo = report
            .interfaces
            .iter()
            .find(|i| i.name == "lo")
            .expect("loopback interface");
        assert!(
            lo.ip_networks.iter().any(|n| n.starts_with("127.")),
            "{lo:?}"
        );
    }

    #[test]
    fn sampling_plan_bounds() {
        assert!(SamplingPlan::new(3, 200).is_ok());
        assert!(
            SamplingPlan::new(2, 200)
                .unwrap_err()
                .to_string()
                .contains("samples")
        );
        assert!(SamplingPlan::new(301, 200).is_err());
        assert!(
            SamplingPlan::new(5, 199)
                .unwrap_err()
                .to_string()
                .contains("interval_ms")
        );
        assert!(SamplingPlan::new(5, 10_001).is_err());
        let err = SamplingPlan::new(100, 1_000).unwrap_err().to_string();
        assert!(err.contains("60000"), "{err}");
    }

    #[tokio::test]
    async fn samples_memory_and_cpu() {
        let plan = SamplingPlan::new(3, 200).unwrap();
        for metric in [
            SampledMetric::Memory,
            SampledMetric::Cpu,
            SampledMetric::Load,
        ] {
            let result = sample_metric_anomalies(metric, plan, AnomalyMethod::Zscore, None)
                .await
                .unwrap();
            assert_eq!(result.values.len(), 3);
            assert_eq!(result.report.count, 3);
            if metric != SampledMetric::Load {
                assert!(
                    result.values.iter().all(|v| (0.0..=100.0).contains(v)),
                    "{result:?}"
                );
            }
        }
    }

    #[test]
    fn percent_handles_zero_total() {
        assert_eq!(percent(5, 0), 0.0);
        assert_eq!(percent(1, 3), 33.33);
    }
}
