//! The launcher of the dispatch images: picks the fastest build of a server this CPU can run
//! and `exec`s it, so the server keeps the launcher's PID, stdio, arguments and environment.
//!
//! In-image layout (written by `cargo xtask image`):
//! `/opt/mcp/<variant>/<server>` holds each variant's binary and
//! `/usr/local/bin/<server>` is a symlink to `/usr/local/bin/mcp-launcher`, so the server
//! name comes from `argv[0]`.
//!
//! Environment:
//! - `MCP_FOUNDRY_VARIANT=auto|<variant>`: `auto` (or unset) picks, among the variants whose
//!   every feature this CPU has and whose build the image holds, the one needing the most (a
//!   variant whose features include another's is better; today znver4 > x86-64-v4 >
//!   x86-64-v3 > generic, all from the table); a variant name forces it, and is refused with
//!   the list of missing features when this CPU cannot run it (never a SIGILL).
//! - `MCP_FOUNDRY_SERVER`: the server to run, instead of the name in `argv[0]`.
//! - `MCP_FOUNDRY_VARIANTS_DIR`: the directory holding `<variant>/<server>` (default `/opt/mcp`).
//! - `RUST_LOG` / `--log-level` (the servers' own filter): at `debug` for the default or the
//!   `mcp_launcher` target, the launcher explains its choice on stderr;
//!   `MCP_FOUNDRY_LAUNCHER_VERBOSE=1` does the same whatever the filter.
//!
//! The variants and their features are derived at build time from the workspace table by
//! the `cpu-variants` crate (see build.rs), which also supplies the choice code
//! (`cpu_variants::choice`, compiled here from generated source so the launcher stays std
//! only).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

include!(concat!(env!("OUT_DIR"), "/choice.rs"));
pub use choice::{ChoiceError, VariantRequest, VariantSpec, candidates, missing_features};
include!(concat!(env!("OUT_DIR"), "/variants.rs"));

pub const VARIANT_ENV: &str = "MCP_FOUNDRY_VARIANT";
pub const SERVER_ENV: &str = "MCP_FOUNDRY_SERVER";
pub const VARIANTS_DIR_ENV: &str = "MCP_FOUNDRY_VARIANTS_DIR";
pub const VERBOSE_ENV: &str = "MCP_FOUNDRY_LAUNCHER_VERBOSE";
/// The servers' log filter, read here too so `RUST_LOG=debug` explains the choice.
pub const LOG_ENV: &str = "RUST_LOG";
pub const DEFAULT_VARIANTS_DIR: &str = "/opt/mcp";
/// The launcher's own file name: `argv[0]` with this name does not name a server.
pub const LAUNCHER_NAME: &str = "mcp-launcher";
/// The launcher's target in log filters (`RUST_LOG=mcp_launcher=debug`).
const LOG_TARGET: &str = "mcp_launcher";

#[derive(Debug, PartialEq, Eq)]
pub enum LaunchError {
    /// No variant could be chosen (unknown or unrunnable request, or nothing runs here).
    Choice(ChoiceError),
    NoServerName,
    InvalidServerName(String),
    BinaryMissing {
        variant: &'static str,
        path: PathBuf,
        /// The variants whose build of the server is there.
        installed: Vec<&'static str>,
    },
    /// A build's path exists (or may) but cannot be inspected: never guessed past.
    Unreadable {
        path: PathBuf,
        error: String,
    },
    Exec {
        path: PathBuf,
        error: String,
    },
}

impl fmt::Display for LaunchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Choice(error @ ChoiceError::UnknownVariant { requested, .. }) => {
                write!(f, "{VARIANT_ENV}={requested}: {error}")
            }
            Self::Choice(error @ ChoiceError::CpuLacksFeatures { variant, .. }) => write!(
                f,
                "{VARIANT_ENV}={variant}: {error} (unset {VARIANT_ENV} or set it to `auto`)"
            ),
            Self::Choice(error) => write!(f, "{error}"),
            Self::NoServerName => write!(
                f,
                "cannot tell which server to run: invoke the launcher through a link named after \
                 the server or set {SERVER_ENV}"
            ),
            Self::InvalidServerName(name) => write!(
                f,
                "{name:?} is not a server name (it must be a plain file name); fix {SERVER_ENV} or argv[0]"
            ),
            Self::BinaryMissing {
                variant,
                path,
                installed,
            } => {
                let held = if installed.is_empty() {
                    "no build of this server".to_owned()
                } else {
                    format!("the builds {}", installed.join(", "))
                };
                write!(
                    f,
                    "the {variant} build is missing at {}; the directory holds {held} (a wrong \
                     {VARIANTS_DIR_ENV}, or an incomplete image)",
                    path.display()
                )
            }
            Self::Unreadable { path, error } => {
                write!(f, "cannot inspect {}: {error}", path.display())
            }
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
            Self::Exec { .. } | Self::Unreadable { .. } => 126,
            _ => 2,
        }
    }
}

/// Reads `MCP_FOUNDRY_VARIANT`; unset, empty or `auto` (any case) means automatic choice.
pub fn parse_request(value: Option<&OsStr>) -> VariantRequest {
    choice::parse_request(value.map(OsStr::to_string_lossy).as_deref())
}

/// Picks the variant to run with the shared rule (`cpu_variants::choice`): for `Auto`, the
/// variant needing the most features among those this CPU fully supports.
pub fn choose_variant(
    request: &VariantRequest,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<VariantSpec, LaunchError> {
    choice::choose(request, variants, has_feature).map_err(LaunchError::Choice)
}

/// Whether the launcher explains its choice: at debug level of the servers' own log filter
/// (`--log-level`, which wins like in the servers, else `RUST_LOG`), for the default level
/// or the `mcp_launcher` target, or when `MCP_FOUNDRY_LAUNCHER_VERBOSE` is set and not `0`.
pub fn debug_logging(args: &[OsString], rust_log: Option<&OsStr>, verbose: Option<&OsStr>) -> bool {
    if verbose.is_some_and(|v| !v.is_empty() && v != "0") {
        return true;
    }
    let from_args = args.iter().enumerate().find_map(|(i, arg)| {
        let arg = arg.to_str()?;
        match arg.strip_prefix("--log-level") {
            Some("") => args.get(i + 1).map(|v| v.to_string_lossy().into_owned()),
            Some(value) => value.strip_prefix('=').map(str::to_owned),
            None => None,
        }
    });
    let filter = from_args.or_else(|| rust_log.map(|v| v.to_string_lossy().into_owned()));
    let Some(filter) = filter else {
        return false;
    };
    // Like tracing's EnvFilter: a bare level sets the default, `target=level` one target
    // (the most specific matching target wins); anything else is ignored here.
    let mut default_level = None;
    let mut target_level: Option<(usize, String)> = None;
    for directive in filter.split(',').map(str::trim) {
        match directive.split_once('=') {
            Some((target, level)) if LOG_TARGET.starts_with(target) && !target.is_empty() => {
                if target_level
                    .as_ref()
                    .is_none_or(|(len, _)| target.len() >= *len)
                {
                    target_level = Some((target.len(), level.to_ascii_lowercase()));
                }
            }
            Some(_) => {}
            None => default_level = Some(directive.to_ascii_lowercase()),
        }
    }
    let level = target_level.map(|(_, level)| level).or(default_level);
    matches!(level.as_deref(), Some("debug" | "trace"))
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

/// The first of `candidates` (best first) whose build of `server` is installed, with its
/// path: an image may hold only some variants (`cargo xtask ci` builds some crates in some
/// variants), and a runnable variant whose build is absent is passed over, never exec'd. A
/// path that cannot be inspected (permissions, I/O) is an error, not a reason to run a
/// slower build. Missing all, the error names the last candidate's path (for `auto`, the
/// baseline's) and what is installed.
pub fn first_installed(
    candidates: &[VariantSpec],
    variants_dir: &Path,
    server: &OsStr,
) -> Result<(PathBuf, VariantSpec), LaunchError> {
    for variant in candidates {
        let path = binary_path(variants_dir, variant, server);
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_file() => return Ok((path, *variant)),
            // A directory or other non-file there is no build either.
            Ok(_) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => {
                return Err(LaunchError::Unreadable {
                    path,
                    error: error.to_string(),
                });
            }
        }
    }
    let last = candidates
        .last()
        .ok_or(LaunchError::Choice(ChoiceError::NoRunnableVariant {
            missing_per_variant: Vec::new(),
        }))?;
    Err(LaunchError::BinaryMissing {
        variant: last.name,
        path: binary_path(variants_dir, last, server),
        installed: VARIANTS
            .iter()
            .filter(|v| binary_path(variants_dir, v, server).is_file())
            .map(|v| v.name)
            .collect(),
    })
}

/// Chooses the variant from the environment and this CPU, then replaces this process with
/// the server. Returns only on failure.
pub fn launch() -> LaunchError {
    let mut args = std::env::args_os();
    let argv0 = args.next();
    let args: Vec<OsString> = args.collect();
    let debug = debug_logging(
        &args,
        std::env::var_os(LOG_ENV).as_deref(),
        std::env::var_os(VERBOSE_ENV).as_deref(),
    );
    let run = || -> Result<(PathBuf, VariantSpec), LaunchError> {
        let server = server_name(std::env::var_os(SERVER_ENV).as_deref(), argv0.as_deref())?;
        let request = parse_request(std::env::var_os(VARIANT_ENV).as_deref());
        if debug {
            log_candidates(&request);
        }
        let best_first =
            candidates(&request, VARIANTS, &cpu_has_feature).map_err(LaunchError::Choice)?;
        let variants_dir = std::env::var_os(VARIANTS_DIR_ENV)
            .map_or_else(|| PathBuf::from(DEFAULT_VARIANTS_DIR), PathBuf::from);
        let (path, variant) = first_installed(&best_first, &variants_dir, &server)?;
        if debug {
            for passed_over in best_first.iter().take_while(|c| **c != variant) {
                eprintln!(
                    "{LAUNCHER_NAME}: no {} build in {}; passing over it",
                    passed_over.name,
                    variants_dir.display()
                );
            }
        }
        Ok((path, variant))
    };
    let (path, variant) = match run() {
        Ok(chosen) => chosen,
        Err(error) => return error,
    };
    if debug {
        // `cargo xtask image` reads this line's wording: keep it.
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

/// One debug line per variant: what it needs and what this CPU lacks of it.
fn log_candidates(request: &VariantRequest) {
    eprintln!("{LAUNCHER_NAME}: {VARIANT_ENV} request: {request:?}");
    for candidate in VARIANTS {
        let missing = missing_features(candidate, &cpu_has_feature);
        eprintln!(
            "{LAUNCHER_NAME}: variant {} needs {} features beyond the baseline, this CPU lacks {:?}",
            candidate.name,
            candidate.required_features.len(),
            missing
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    fn a_cpu_with_everything(feature: &str) -> Option<bool> {
        cpu_has_feature(feature).map(|_| true)
    }

    #[test]
    fn errors_name_the_environment_variable_and_what_is_missing() {
        let error = choose_variant(
            &VariantRequest::Named("generic-plus".into()),
            VARIANTS,
            &cpu_has_feature,
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(
            message.starts_with("MCP_FOUNDRY_VARIANT=generic-plus: ")
                && message.contains("generic"),
            "{message}"
        );
        assert_eq!(error.exit_code(), 2);
        let lacking = LaunchError::Choice(ChoiceError::CpuLacksFeatures {
            variant: "v",
            missing: vec!["avx512f"],
        });
        let message = lacking.to_string();
        assert!(
            message.starts_with("MCP_FOUNDRY_VARIANT=v: ")
                && message.contains("avx512f")
                && message.contains("unset MCP_FOUNDRY_VARIANT"),
            "{message}"
        );
    }

    #[test]
    fn the_request_comes_from_the_environment_value() {
        assert_eq!(parse_request(None), VariantRequest::Auto);
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
    fn debug_logging_follows_the_servers_log_filter() {
        let none: &[OsString] = &[];
        let rust_log = |v: &'static str| Some(OsStr::new(v));
        assert!(!debug_logging(none, None, None));
        assert!(!debug_logging(none, rust_log("info"), None));
        assert!(debug_logging(none, rust_log("debug"), None));
        assert!(debug_logging(none, rust_log("TRACE"), None));
        assert!(debug_logging(
            none,
            rust_log("warn,mcp_launcher=debug"),
            None
        ));
        assert!(!debug_logging(
            none,
            rust_log("debug,mcp_launcher=info"),
            None
        ));
        assert!(!debug_logging(none, rust_log("info,rmcp=debug"), None));
        // --log-level wins over RUST_LOG, as in the servers.
        assert!(debug_logging(
            &os(&["--log-level", "debug"]),
            rust_log("info"),
            None
        ));
        assert!(!debug_logging(
            &os(&["--log-level=info"]),
            rust_log("debug"),
            None
        ));
        assert!(debug_logging(none, None, Some(OsStr::new("1"))));
        assert!(!debug_logging(none, None, Some(OsStr::new("0"))));
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

    /// The order issue 14 asks for, as it follows from today's table (nothing in the code
    /// lists it): each variant's features include the next one's.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn on_x86_64_the_preference_is_znver4_v4_v3_generic_by_feature_inclusion() {
        let order: Vec<&str> = choice::runnable_best_first(VARIANTS, &a_cpu_with_everything)
            .iter()
            .map(|v| v.name)
            .collect();
        let issue_14_order = ["znver4", "x86-64-v4", "x86-64-v3", "generic"];
        let declared: Vec<&str> = issue_14_order
            .into_iter()
            .filter(|name| VARIANTS.iter().any(|v| v.name == *name))
            .collect();
        assert_eq!(order, declared);
        let by_name = |name: &str| {
            VARIANTS
                .iter()
                .find(|v| v.name == name)
                .unwrap_or_else(|| panic!("{name} in the workspace table"))
        };
        for pair in order.windows(2) {
            let (better, worse) = (by_name(pair[0]), by_name(pair[1]));
            for feature in worse.required_features {
                assert!(
                    better.required_features.contains(feature),
                    "{} lacks {feature} of {}",
                    better.name,
                    worse.name
                );
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_znver4_variant_needs_avx512_and_sse4a() {
        // Why znver4 is its own build: x86-64-v4 alone does not have SSE4A.
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
