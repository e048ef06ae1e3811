//! `system_info`: the host as sysinfo sees it, plus which CPU variants of this workspace
//! the CPU can run (the feature lists are derived at build time by build.rs).

use mcp_server_runtime::host::HostSnapshot;
pub use mcp_server_runtime::host::LoadAverage;
use schemars::JsonSchema;
use serde::Serialize;

include!(concat!(env!("OUT_DIR"), "/variant_features.rs"));

/// Whether this CPU can run one CPU variant of the mcp-foundry binaries.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct VariantSupport {
    /// Variant name from the workspace table, e.g. `generic` or `znver4`.
    pub name: String,
    pub supported: bool,
    /// Target features the variant is compiled with that this CPU lacks.
    pub missing_features: Vec<String>,
    /// Target features the variant needs beyond the architecture baseline.
    pub required_features: Vec<String>,
}

/// The build of this server.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BuildSummary {
    pub variant: String,
    pub target_cpu: String,
    pub rustc_version: String,
    pub git_commit: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SystemInfo {
    pub os_name: Option<String>,
    pub os_version: Option<String>,
    pub kernel_version: Option<String>,
    pub hostname: Option<String>,
    pub architecture: String,
    pub cpu_model: Option<String>,
    pub logical_cores: usize,
    pub physical_cores: Option<usize>,
    pub total_memory_bytes: u64,
    pub available_memory_bytes: u64,
    pub used_memory_bytes: u64,
    pub load_average: Option<LoadAverage>,
    pub uptime_secs: Option<u64>,
    /// Every CPU variant of the workspace for this architecture.
    pub cpu_variants: Vec<VariantSupport>,
    pub build: BuildSummary,
}

/// Which variants this CPU can run, from the build-time feature lists.
pub fn variant_support() -> Vec<VariantSupport> {
    VARIANT_FEATURES
        .iter()
        .map(|(name, features)| {
            // `None` (a feature unknown to the detector) counts as missing: never promise
            // a variant the CPU may not run.
            let missing: Vec<String> = features
                .iter()
                .filter(|f| cpu_has_feature(f) != Some(true))
                .map(|f| (*f).to_owned())
                .collect();
            VariantSupport {
                name: (*name).to_owned(),
                supported: missing.is_empty(),
                missing_features: missing,
                required_features: features.iter().map(|f| (*f).to_owned()).collect(),
            }
        })
        .collect()
}

/// Collects the report (blocking: reads /proc).
pub fn collect() -> Result<SystemInfo, String> {
    let host = HostSnapshot::collect()?;
    let build = mcp_server_runtime::BUILD_INFO;
    Ok(SystemInfo {
        os_name: host.os_name,
        os_version: host.os_version,
        kernel_version: host.kernel_version,
        hostname: host.hostname,
        architecture: host.architecture.to_owned(),
        cpu_model: host.cpu_brand,
        // What this process may use (affinity, cgroup quota), else what the OS lists.
        logical_cores: std::thread::available_parallelism().map_or(host.logical_cores, usize::from),
        physical_cores: host.physical_cores,
        total_memory_bytes: host.memory.total,
        available_memory_bytes: host.memory.available,
        used_memory_bytes: host.memory.used,
        load_average: host.load_average,
        uptime_secs: host.uptime_secs,
        cpu_variants: variant_support(),
        build: BuildSummary {
            variant: build.variant.to_owned(),
            target_cpu: build.target_cpu.to_owned(),
            rustc_version: build.rustc_version.to_owned(),
            git_commit: build.git_commit.to_owned(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_the_host() {
        let info = collect().unwrap();
        assert!(info.logical_cores >= 1);
        assert!(info.total_memory_bytes > 0);
        assert!(info.available_memory_bytes <= info.total_memory_bytes);
    }

    #[test]
    fn every_variant_of_the_table_for_this_architecture_is_reported() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let expected: Vec<String> = cpu_variants::from_manifest(&root)
            .unwrap()
            .into_iter()
            .filter(|v| v.supports(std::env::consts::ARCH))
            .map(|v| v.name)
            .collect();
        let reported: Vec<String> = variant_support().into_iter().map(|v| v.name).collect();
        assert_eq!(reported, expected);
    }

    #[test]
    fn variants_come_from_the_workspace_table() {
        let variants = variant_support();
        if cfg!(target_arch = "x86_64") {
            let names: Vec<_> = variants.iter().map(|v| v.name.as_str()).collect();
            assert!(
                names.contains(&"generic") && names.contains(&"znver4"),
                "{names:?}"
            );
            let generic = variants.iter().find(|v| v.name == "generic").unwrap();
            assert!(generic.supported && generic.required_features.is_empty());
            let znver4 = variants.iter().find(|v| v.name == "znver4").unwrap();
            assert!(znver4.required_features.iter().any(|f| f == "avx512f"));
            // A CPU running this test may or may not be a Zen 4; the verdict must match
            // the missing list either way.
            assert_eq!(znver4.supported, znver4.missing_features.is_empty());
        }
    }
}
