//! The launcher of the dispatch images: picks the fastest build of a server this CPU can run
//! and `exec`s it, so the server keeps the launcher's PID, stdio, arguments and environment.
//!
//! In-image layout (written by `cargo xtask image`):
//! `/opt/mcp/<variant>/<server>` holds each variant's binary and
//! `/usr/local/bin/<server>` is a symlink to `/usr/local/bin/mcp-launcher`, so the server
//! name comes from `argv[0]`.
//!
//! Environment:
//! - `MCP_FOUNDRY_VARIANT=auto|<variant>`: `auto` (or unset) picks the variant needing the
//!   most CPU features among those this CPU has; a variant name forces it, and is refused
//!   with the list of missing features when this CPU cannot run it (never a SIGILL).
//! - `MCP_FOUNDRY_SERVER`: the server to run, instead of the name in `argv[0]`.
//! - `MCP_FOUNDRY_VARIANTS_DIR`: the directory holding `<variant>/<server>` (default `/opt/mcp`).
//! - `MCP_FOUNDRY_LAUNCHER_VERBOSE=1`: explain the choice on stderr.
//!
//! The variants and their features are derived at build time from the workspace table by
//! the `cpu-variants` crate (see build.rs).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

include!(concat!(env!("OUT_DIR"), "/variants.rs"));

pub const VARIANT_ENV: &str = "MCP_FOUNDRY_VARIANT";
pub const SERVER_ENV: &str = "MCP_FOUNDRY_SERVER";
pub const VARIANTS_DIR_ENV: &str = "MCP_FOUNDRY_VARIANTS_DIR";
pub const VERBOSE_ENV: &str = "MCP_FOUNDRY_LAUNCHER_VERBOSE";
pub const DEFAULT_VARIANTS_DIR: &str = "/opt/mcp";
/// The launcher's own file name: `argv[0]` with this name does not name a server.
pub const LAUNCHER_NAME: &str = "mcp-launcher";

/// A CPU variant and the target features (beyond the target's baseline) its binaries need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    pub required_features: &'static [&'static str],
}

/// What the user asked for through `MCP_FOUNDRY_VARIANT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantRequest {
    Auto,
    Named(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum LaunchError {
    UnknownVariant {
        requested: String,
        known: Vec<&'static str>,
    },
    CpuLacksFeatures {
        variant: &'static str,
        missing: Vec<&'static str>,
    },
    NoRunnableVariant {
        missing_per_variant: Vec<(&'static str, Vec<&'static str>)>,
    },
    NoServerName,
    InvalidServerName(String),
    BinaryMissing {
        variant: &'static str,
        path: PathBuf,
    },
    Exec {
        path: PathBuf,
        error: String,
    },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVariant { requested, known } => write!(
                f,
                "{VARIANT_ENV}={requested:?} names no variant; use `auto` or one of: {}",
                known.join(", ")
            ),
            Self::CpuLacksFeatures { variant, missing } => write!(
                f,
                "{VARIANT_ENV}={variant} needs CPU features this CPU lacks: {}; unset {VARIANT_ENV} \
                 (or set it to `auto`) to run the best build this CPU supports",
                missing.join(", ")
            ),
            Self::NoRunnableVariant {
                missing_per_variant,
            } => {
                write!(f, "this CPU can run none of the variants:")?;
                for (variant, missing) in missing_per_variant {
                    write!(f, " {variant} lacks {};", missing.join(", "))?;
                }
                Ok(())
            }
            Self::NoServerName => write!(
                f,
                "cannot tell which server to run: invoke the launcher through a link named after \
                 the server or set {SERVER_ENV}"
            ),
            Self::InvalidServerName(name) => write!(
                f,
                "{name:?} is not a server name (it must be a plain file name); fix {SERVER_ENV} or argv[0]"
            ),
            Self::BinaryMissing { variant, path } => write!(
                f,
                "the {variant} build is missing at {}; the image is incomplete (or set {VARIANTS_DIR_ENV})",
                path.display()
            ),
            Self::Exec { path, error } => write!(f, "cannot execute {}: {error}", path.display()),
        }
    }
}

impl std::error::Error for LaunchError {}

impl LaunchError {
    /// Exit code of the launcher for this error: 2 like every other startup error of the
    /// project, 126/127 like a shell for a binary that cannot run or does not exist.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::BinaryMissing { .. } => 127,
            Self::Exec { .. } => 126,
            _ => 2,
        }
    }
}

/// Reads `MCP_FOUNDRY_VARIANT`; empty or `auto` (any case) means automatic choice.
pub fn parse_request(value: Option<&OsStr>) -> VariantRequest {
    match value.map(|v| v.to_string_lossy().trim().to_owned()) {
        None => VariantRequest::Auto,
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("auto") => VariantRequest::Auto,
        Some(v) => VariantRequest::Named(v),
    }
}

/// The features of `variant` for which `has_feature` does not answer `Some(true)`.
pub fn missing_features(
    variant: &VariantSpec,
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Vec<&'static str> {
    variant
        .required_features
        .iter()
        .copied()
        .filter(|feature| has_feature(feature) != Some(true))
        .collect()
}

/// Picks the variant to run. `Auto` takes, among the variants whose every feature is
/// present, the one needing the most features (the most specialized build); the baseline
/// variant needs none and so is the fallback.
pub fn choose_variant(
    request: &VariantRequest,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<VariantSpec, LaunchError> {
    match request {
        VariantRequest::Named(name) => {
            let variant = variants.iter().find(|v| v.name == name).ok_or_else(|| {
                LaunchError::UnknownVariant {
                    requested: name.clone(),
                    known: variants.iter().map(|v| v.name).collect(),
                }
            })?;
            let missing = missing_features(variant, has_feature);
            if missing.is_empty() {
                Ok(*variant)
            } else {
                Err(LaunchError::CpuLacksFeatures {
                    variant: variant.name,
                    missing,
                })
            }
        }
        VariantRequest::Auto => variants
            .iter()
            .filter(|v| missing_features(v, has_feature).is_empty())
            .max_by_key(|v| v.required_features.len())
            .copied()
            .ok_or_else(|| LaunchError::NoRunnableVariant {
                missing_per_variant: variants
                    .iter()
                    .map(|v| (v.name, missing_features(v, has_feature)))
                    .collect(),
            }),
    }
}

/// The server to run: `MCP_FOUNDRY_SERVER`, else the file name of `argv[0]` unless that is
/// the launcher itself. Only plain file names are accepted so the path cannot leave the
/// variants directory.
pub fn server_name(
    env_value: Option<&OsStr>,
    argv0: Option<&OsStr>,
) -> Result<OsString, LaunchError> {
    let name = match env_value.filter(|v| !v.is_empty()) {
        Some(v) => v.to_owned(),
        None => argv0
            .and_then(|a| Path::new(a).file_name())
            .filter(|n| *n != OsStr::new(LAUNCHER_NAME))
            .map(OsStr::to_owned)
            .ok_or(LaunchError::NoServerName)?,
    };
    let is_plain = {
        let mut components = Path::new(&name).components();
        matches!(components.next(), Some(std::path::Component::Normal(_)))
            && components.next().is_none()
    };
    if is_plain {
        Ok(name)
    } else {
        Err(LaunchError::InvalidServerName(
            name.to_string_lossy().into_owned(),
        ))
    }
}

pub fn binary_path(variants_dir: &Path, variant: &VariantSpec, server: &OsStr) -> PathBuf {
    variants_dir.join(variant.name).join(server)
}

/// Chooses the variant from the environment and this CPU, then replaces this process with
/// the server. Returns only on failure.
pub fn launch() -> LaunchError {
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let verbose = std::env::var_os(VERBOSE_ENV).is_some_and(|v| !v.is_empty() && v != "0");
    let run = || -> Result<(PathBuf, VariantSpec), LaunchError> {
        let server = server_name(std::env::var_os(SERVER_ENV).as_deref(), argv0.as_deref())?;
        let request = parse_request(std::env::var_os(VARIANT_ENV).as_deref());
        let variant = choose_variant(&request, VARIANTS, &cpu_has_feature)?;
        let variants_dir = std::env::var_os(VARIANTS_DIR_ENV)
            .map_or_else(|| PathBuf::from(DEFAULT_VARIANTS_DIR), PathBuf::from);
        let path = binary_path(&variants_dir, &variant, &server);
        if !path.is_file() {
            return Err(LaunchError::BinaryMissing {
                variant: variant.name,
                path,
            });
        }
        Ok((path, variant))
    };
    let (path, variant) = match run() {
        Ok(chosen) => chosen,
        Err(error) => return error,
    };
    if verbose {
        for candidate in VARIANTS {
            let missing = missing_features(candidate, &cpu_has_feature);
            eprintln!(
                "{LAUNCHER_NAME}: variant {} needs {} features beyond the baseline, this CPU lacks {:?}",
                candidate.name,
                candidate.required_features.len(),
                missing
            );
        }
        eprintln!(
            "{LAUNCHER_NAME}: running the {} build: {}",
            variant.name,
            path.display()
        );
    }
    let mut command = Command::new(&path);
    command.args(args);
    if let Some(argv0) = argv0 {
        command.arg0(argv0);
    }
    let error: io::Error = command.exec();
    LaunchError::Exec {
        path,
        error: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERIC: VariantSpec = VariantSpec {
        name: "generic",
        required_features: &[],
    };
    const FAST: VariantSpec = VariantSpec {
        name: "fast",
        required_features: &["avx2", "fma"],
    };
    const FASTER: VariantSpec = VariantSpec {
        name: "faster",
        required_features: &["avx2", "fma", "avx512f"],
    };
    const ALL: &[VariantSpec] = &[GENERIC, FASTER, FAST];

    fn cpu_with(features: &'static [&'static str]) -> impl Fn(&str) -> Option<bool> {
        move |f: &str| Some(features.contains(&f))
    }

    #[test]
    fn auto_picks_the_most_specialized_runnable_variant() {
        let full = cpu_with(&["avx2", "fma", "avx512f"]);
        assert_eq!(
            choose_variant(&VariantRequest::Auto, ALL, &full)
                .unwrap()
                .name,
            "faster"
        );
        let avx2 = cpu_with(&["avx2", "fma"]);
        assert_eq!(
            choose_variant(&VariantRequest::Auto, ALL, &avx2)
                .unwrap()
                .name,
            "fast"
        );
    }

    #[test]
    fn auto_falls_back_to_the_baseline_when_one_feature_is_missing() {
        let almost = cpu_with(&["avx2"]);
        assert_eq!(
            choose_variant(&VariantRequest::Auto, ALL, &almost)
                .unwrap()
                .name,
            "generic"
        );
    }

    #[test]
    fn a_feature_the_launcher_cannot_check_counts_as_missing() {
        let unknown = |_: &str| None;
        assert_eq!(missing_features(&FAST, &unknown), vec!["avx2", "fma"]);
        assert_eq!(
            choose_variant(&VariantRequest::Auto, ALL, &unknown)
                .unwrap()
                .name,
            "generic"
        );
    }

    #[test]
    fn forcing_a_variant_the_cpu_cannot_run_is_an_error_naming_the_missing_features() {
        let avx2 = cpu_with(&["avx2", "fma"]);
        let error =
            choose_variant(&VariantRequest::Named("faster".into()), ALL, &avx2).unwrap_err();
        assert_eq!(
            error,
            LaunchError::CpuLacksFeatures {
                variant: "faster",
                missing: vec!["avx512f"]
            }
        );
        assert!(error.to_string().contains("avx512f"));
        assert_eq!(error.exit_code(), 2);
    }

    #[test]
    fn forcing_the_baseline_works_on_a_cpu_that_could_do_better() {
        let full = cpu_with(&["avx2", "fma", "avx512f"]);
        let chosen = choose_variant(&VariantRequest::Named("generic".into()), ALL, &full).unwrap();
        assert_eq!(chosen, GENERIC);
    }

    #[test]
    fn an_unknown_variant_lists_the_valid_names() {
        let error = choose_variant(&VariantRequest::Named("znver9".into()), ALL, &cpu_with(&[]))
            .unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("znver9") && message.contains("generic, faster, fast"),
            "{message}"
        );
    }

    #[test]
    fn no_runnable_variant_reports_what_each_lacks() {
        let error =
            choose_variant(&VariantRequest::Auto, &[FAST], &cpu_with(&["fma"])).unwrap_err();
        assert_eq!(
            error,
            LaunchError::NoRunnableVariant {
                missing_per_variant: vec![("fast", vec!["avx2"])]
            }
        );
    }

    #[test]
    fn the_request_comes_from_the_environment_value() {
        assert_eq!(parse_request(None), VariantRequest::Auto);
        assert_eq!(parse_request(Some(OsStr::new(""))), VariantRequest::Auto);
        assert_eq!(
            parse_request(Some(OsStr::new("AUTO"))),
            VariantRequest::Auto
        );
        assert_eq!(
            parse_request(Some(OsStr::new(" znver4 "))),
            VariantRequest::Named("znver4".into())
        );
    }

    #[test]
    fn the_server_name_comes_from_the_environment_or_argv0() {
        let argv0 = Some(OsStr::new("/usr/local/bin/bash-god"));
        assert_eq!(server_name(None, argv0).unwrap(), "bash-god");
        assert_eq!(
            server_name(Some(OsStr::new("other")), argv0).unwrap(),
            "other"
        );
        assert_eq!(
            server_name(Some(OsStr::new("")), argv0).unwrap(),
            "bash-god"
        );
        assert_eq!(
            server_name(None, Some(OsStr::new("/x/mcp-launcher"))),
            Err(LaunchError::NoServerName)
        );
        assert_eq!(server_name(None, None), Err(LaunchError::NoServerName));
    }

    #[test]
    fn server_names_cannot_leave_the_variants_directory() {
        for bad in ["../etc/passwd", "a/b", "..", "/bin/sh", "."] {
            assert!(
                matches!(
                    server_name(Some(OsStr::new(bad)), None),
                    Err(LaunchError::InvalidServerName(_))
                ),
                "{bad} was accepted"
            );
        }
    }

    #[test]
    fn the_generated_table_has_a_baseline_and_only_checkable_features() {
        assert!(
            VARIANTS.iter().any(|v| v.required_features.is_empty()),
            "{VARIANTS:?}"
        );
        for variant in VARIANTS {
            for feature in variant.required_features {
                assert!(
                    cpu_has_feature(feature).is_some(),
                    "{feature} of {} cannot be checked",
                    variant.name
                );
                assert!(
                    !UNDETECTABLE_FEATURES
                        .iter()
                        .any(|(name, _)| name == feature)
                );
            }
        }
    }

    #[test]
    fn the_table_follows_the_workspace_table() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let expected: Vec<String> = cpu_variants::from_manifest(&root)
            .unwrap()
            .into_iter()
            .filter(|v| v.supports(std::env::consts::ARCH))
            .map(|v| v.name)
            .collect();
        let generated: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        assert_eq!(generated, expected);
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_znver4_variant_needs_avx512_and_sse4a() {
        // The reason the dispatch image exists: x86-64-v4 alone is not enough for znver4.
        let znver4 = VARIANTS
            .iter()
            .find(|v| v.name == "znver4")
            .expect("znver4 variant in the workspace table");
        for feature in ["avx512f", "avx512vl", "sse4a", "avx2"] {
            assert!(
                znver4.required_features.contains(&feature),
                "{feature} missing from {znver4:?}"
            );
        }
        // Baseline features are not re-checked.
        assert!(!znver4.required_features.contains(&"sse2"));
    }
}
