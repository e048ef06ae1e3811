//! One snapshot of the host, read through `sysinfo`, that every server reports from
//! (bash-god's `system_info`, devops' `system_metrics`). Cargo feature `host`.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sysinfo::{CpuRefreshKind, MemoryRefreshKind, RefreshKind, System};

/// The 1, 5 and 15 minute load averages.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct LoadAverage {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

impl LoadAverage {
    /// The current load averages, where the OS has them (not on Windows).
    pub fn now() -> Option<Self> {
        System::load_average().ok().map(|load| Self {
            one: load.one,
            five: load.five,
            fifteen: load.fifteen,
        })
    }
}

/// Memory and swap, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemorySnapshot {
    pub total: u64,
    pub used: u64,
    pub available: u64,
    pub free: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    pub swap_free: u64,
}

/// What the host is and how it is doing, read at one moment. CPU *usage* is not part of
/// it: that needs two readings some time apart (see devops' `system_metrics`).
#[derive(Debug, Clone, PartialEq)]
pub struct HostSnapshot {
    pub hostname: Option<String>,
    /// `Debian GNU/Linux`...
    pub os_name: Option<String>,
    /// `Linux 12 Debian GNU/Linux`...: sysinfo's long OS version.
    pub os_version: Option<String>,
    pub kernel_version: Option<String>,
    /// Rust's name for the architecture (`x86_64`, `aarch64`).
    pub architecture: &'static str,
    pub uptime_secs: Option<u64>,
    /// Boot time in seconds since the Unix epoch.
    pub boot_time_unix: Option<u64>,
    pub load_average: Option<LoadAverage>,
    /// The first CPU's brand string, trimmed; `None` when the OS gives none.
    pub cpu_brand: Option<String>,
    /// CPUs the OS lists (not limited by this process's affinity).
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub memory: MemorySnapshot,
}

impl HostSnapshot {
    /// Reads the host (blocking: it reads `/proc`; call it off the async workers).
    pub fn collect() -> Result<Self, String> {
        let system = System::new_with_specifics(
            RefreshKind::nothing()
                .with_cpu(CpuRefreshKind::nothing())
                .with_memory(MemoryRefreshKind::everything()),
        )
        .map_err(|error| format!("cannot read system information: {error}"))?;
        Ok(Self::from_system(&system))
    }

    /// The snapshot from a `System` the caller refreshed (CPU list and memory).
    pub fn from_system(system: &System) -> Self {
        let cpus = system.cpus();
        Self {
            hostname: System::host_name().ok(),
            os_name: System::name().ok(),
            os_version: System::long_os_version().ok(),
            kernel_version: System::kernel_version().ok(),
            architecture: std::env::consts::ARCH,
            uptime_secs: System::uptime().ok(),
            boot_time_unix: System::boot_time().ok(),
            load_average: LoadAverage::now(),
            cpu_brand: cpus
                .first()
                .map(|cpu| cpu.brand().trim().to_owned())
                .filter(|brand| !brand.is_empty()),
            logical_cores: cpus.len(),
            physical_cores: System::physical_core_count().ok(),
            memory: MemorySnapshot {
                total: system.total_memory(),
                used: system.used_memory(),
                available: system.available_memory(),
                free: system.free_memory(),
                swap_total: system.total_swap(),
                swap_used: system.used_swap(),
                swap_free: system.free_swap(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_snapshot_describes_this_host() {
        let host = HostSnapshot::collect().unwrap();
        assert!(host.logical_cores >= 1);
        assert!(host.memory.total > 0);
        assert!(host.memory.available <= host.memory.total);
        assert_eq!(host.architecture, std::env::consts::ARCH);
        if cfg!(target_os = "linux") {
            assert!(host.load_average.is_some());
            assert!(host.uptime_secs.is_some());
        }
    }
}
