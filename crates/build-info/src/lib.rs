//! Facts about the build of this binary, embedded at compile time by `build.rs`.
//!
//! `--version` prints them so a user (or a bug report) can tell which CPU variant, compiler
//! and commit an artifact came from.

/// What a binary was built from and for. See [`BUILD_INFO`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildInfo {
    /// CPU variant name from `[workspace.metadata.mcp-foundry.variants]` (`MCP_FOUNDRY_VARIANT`),
    /// or `generic`/`custom` for ad-hoc builds without / with a `target-cpu` in RUSTFLAGS.
    pub variant: &'static str,
    /// The `-C target-cpu` the code was generated for (`generic` when none was given).
    pub target_cpu: &'static str,
    /// Target features enabled at compile time (`CARGO_CFG_TARGET_FEATURE`), sorted.
    pub target_features: &'static [&'static str],
    /// Output of `rustc -V` for the compiler that built this crate.
    pub rustc_version: &'static str,
    /// Git commit (`MCP_FOUNDRY_GIT_COMMIT`, else `git rev-parse HEAD`, else `unknown`).
    pub git_commit: &'static str,
    /// Cargo profile (`debug`, `release`, ...; custom profiles inheriting release read `release`).
    pub profile: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/build_info.rs"));

/// The multi-line text `--version` prints for a server built from `crate_name` `crate_version`.
///
/// The first line is `<name> <version>` as tools expect; the rest are `key: value` lines.
pub fn version_string(crate_name: &str, crate_version: &str) -> String {
    let info = &BUILD_INFO;
    format!(
        "{crate_name} {crate_version}\n\
         variant: {}\n\
         target-cpu: {}\n\
         target-features: {}\n\
         rustc: {}\n\
         commit: {}\n\
         profile: {}",
        info.variant,
        info.target_cpu,
        info.target_features.join(","),
        info.rustc_version,
        info.git_commit,
        info.profile,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_string_names_the_crate_and_every_build_fact() {
        let text = version_string("bash-god", "1.2.3");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("bash-god 1.2.3"));
        for key in [
            "variant",
            "target-cpu",
            "target-features",
            "rustc",
            "commit",
            "profile",
        ] {
            assert!(
                text.lines()
                    .any(|line| line.starts_with(&format!("{key}: "))),
                "missing {key} in {text}"
            );
        }
        assert!(text.contains(BUILD_INFO.rustc_version));
    }

    #[test]
    fn build_info_is_filled_from_the_real_build() {
        assert!(
            BUILD_INFO.rustc_version.starts_with("rustc "),
            "{BUILD_INFO:?}"
        );
        assert!(!BUILD_INFO.variant.is_empty());
        assert!(!BUILD_INFO.target_cpu.is_empty());
        // Every x86_64 and aarch64 target has at least one baseline feature (sse2 / neon).
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        assert!(!BUILD_INFO.target_features.is_empty());
        // Tests run in the `debug` (test) profile here; a build script bug would give "unknown".
        assert_ne!(BUILD_INFO.profile, "unknown");
    }
}
