//! The target features a CPU needs to run a variant, derived from `rustc --print cfg`, and
//! which of them this crate's users can check at run time.
//!
//! A variant needs what rustc enables with the variant's rustflags minus what it enables for
//! the target's baseline (the baseline is present on any CPU that runs the target at all),
//! minus [`NOT_CPU_FEATURES`].

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use crate::{Error, Variant};

/// `target_feature` values rustc reports that describe how a binary is linked rather than an
/// instruction set the CPU must have, each with the reason skipping it is safe. Anything
/// else rustc reports must be checked on the running CPU: [`undetectable`] refuses a feature
/// that cannot be checked unless it is listed here.
pub const NOT_CPU_FEATURES: &[(&str, &str)] = &[(
    "crt-static",
    "links the C runtime statically: a property of the binary, not an instruction set the CPU must have",
)];

/// A `rustc` and the target it compiles for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rustc {
    program: String,
    target: String,
}

impl Rustc {
    /// `program` (e.g. `$RUSTC`, or `rustc` from PATH) compiling for the target triple `target`.
    pub fn new(program: impl Into<String>, target: impl Into<String>) -> Self {
        Self {
            program: program.into(),
            target: target.into(),
        }
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// The target features rustc enables for this target with `rustflags`.
    pub fn target_features(&self, rustflags: &[String]) -> Result<BTreeSet<String>, Error> {
        let mut command = Command::new(&self.program);
        command
            .args(["--print", "cfg", "--target", &self.target])
            .args(rustflags);
        Ok(parse_target_features(&run(command)?))
    }
}

/// What a CPU needs beyond the baseline to run one variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredFeatures {
    pub variant: String,
    /// Sorted; empty for the baseline variant.
    pub features: Vec<String>,
}

/// The `target_feature="…"` values in the output of `rustc --print cfg`.
pub fn parse_target_features(print_cfg: &str) -> BTreeSet<String> {
    print_cfg
        .lines()
        .filter_map(|line| line.trim().strip_prefix("target_feature=\""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

/// The features of `variant` that `baseline` lacks, without [`NOT_CPU_FEATURES`], sorted.
pub fn beyond_baseline(variant: &BTreeSet<String>, baseline: &BTreeSet<String>) -> Vec<String> {
    variant
        .difference(baseline)
        .filter(|feature| !NOT_CPU_FEATURES.iter().any(|(name, _)| name == feature))
        .cloned()
        .collect()
}

/// For every variant that supports `target_arch` (in table order), the features it needs
/// beyond the baseline of `rustc`'s target.
pub fn required_features(
    rustc: &Rustc,
    target_arch: &str,
    variants: &[Variant],
) -> Result<Vec<RequiredFeatures>, Error> {
    let baseline = rustc.target_features(&[])?;
    variants
        .iter()
        .filter(|variant| variant.supports(target_arch))
        .map(|variant| {
            Ok(RequiredFeatures {
                variant: variant.name.clone(),
                features: beyond_baseline(&rustc.target_features(&variant.rustflags)?, &baseline),
            })
        })
        .collect()
}

/// Every feature any of `required` needs.
pub fn union(required: &[RequiredFeatures]) -> BTreeSet<String> {
    required
        .iter()
        .flat_map(|r| r.features.iter().cloned())
        .collect()
}

/// The run-time check this crate's code generation uses on `target_arch`, if any.
pub fn detection_macro(target_arch: &str) -> Option<&'static str> {
    matches!(target_arch, "x86_64" | "x86").then_some("std::arch::is_x86_feature_detected")
}

/// The features of `features` that the generated detection code cannot check on
/// `target_arch`. On x86 this compiles one probe file in `scratch_dir` asking
/// `is_x86_feature_detected!` about every feature (the macro rejects names it does not
/// know with a compile error on that line); elsewhere no detection exists, so all of them.
pub fn undetectable(
    rustc: &Rustc,
    target_arch: &str,
    scratch_dir: &Path,
    features: &BTreeSet<String>,
) -> Result<Vec<String>, Error> {
    let Some(detect) = detection_macro(target_arch) else {
        return Ok(features.iter().cloned().collect());
    };
    if features.is_empty() {
        return Ok(Vec::new());
    }
    let ordered: Vec<&String> = features.iter().collect();
    let probe = scratch_dir.join("cpu_variants_feature_probe.rs");
    let mut source = String::from("pub fn probe() -> usize {\n    [\n");
    for feature in &ordered {
        // invariant: writing to a String cannot fail.
        writeln!(source, "{detect}!({feature:?}),").expect("write to String");
    }
    source.push_str("    ].len()\n}\n");
    std::fs::write(&probe, &source).map_err(|source| Error::Write {
        path: probe.clone(),
        source,
    })?;
    let mut command = Command::new(rustc.program());
    command
        .args(["--crate-type", "lib", "--emit", "metadata"])
        .args(["--error-format", "short", "--edition", "2024"])
        .args(["--target", rustc.target(), "--crate-name", "feature_probe"])
        .arg("-o")
        .arg(scratch_dir.join("cpu_variants_feature_probe.rmeta"))
        .arg(&probe);
    let description = describe(&command);
    let output = command.output().map_err(|source| Error::Spawn {
        command: description.clone(),
        source,
    })?;
    if output.status.success() {
        return Ok(Vec::new());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let rejected = probe_rejections(&stderr, &probe.display().to_string(), &ordered);
    if rejected.is_empty() {
        return Err(Error::Rustc {
            command: description,
            stderr: format!("the feature probe failed for another reason:\n{stderr}"),
        });
    }
    Ok(rejected)
}

/// Fails with [`Error::Undetectable`] when any of `features` cannot be checked at run time.
pub fn ensure_detectable(
    rustc: &Rustc,
    target_arch: &str,
    scratch_dir: &Path,
    features: &BTreeSet<String>,
) -> Result<(), Error> {
    let rejected = undetectable(rustc, target_arch, scratch_dir, features)?;
    if rejected.is_empty() {
        return Ok(());
    }
    let why = match detection_macro(target_arch) {
        Some(detect) => format!("{detect}! does not know them"),
        None => "only x86 feature detection is implemented".to_owned(),
    };
    Err(Error::Undetectable {
        arch: target_arch.to_owned(),
        features: rejected,
        why,
    })
}

/// The features whose probe line (line 3 onwards, one per feature) has an error, from rustc's
/// short diagnostics `<path>:<line>:<col>: error: …`.
fn probe_rejections(stderr: &str, probe_path: &str, ordered: &[&String]) -> Vec<String> {
    let mut rejected: Vec<String> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix(probe_path)?.strip_prefix(':'))
        .filter(|rest| rest.contains("error"))
        .filter_map(|rest| rest.split(':').next()?.parse::<usize>().ok())
        .filter_map(|line| ordered.get(line.checked_sub(3)?))
        .map(|feature| (*feature).clone())
        .collect();
    rejected.dedup();
    rejected
}

fn describe(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(mut command: Command) -> Result<String, Error> {
    let description = describe(&command);
    let output = command.output().map_err(|source| Error::Spawn {
        command: description.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(Error::Rustc {
            command: description,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    /// The host triple of the `rustc` on PATH (the one running these tests).
    fn host_rustc() -> Rustc {
        let output = Command::new("rustc").arg("-vV").output().unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let host = text
            .lines()
            .find_map(|l| l.strip_prefix("host: "))
            .unwrap()
            .to_owned();
        Rustc::new("rustc", host)
    }

    #[test]
    fn print_cfg_output_is_parsed() {
        let output = "debug_assertions\npanic=\"unwind\"\ntarget_arch=\"x86_64\"\n\
                      target_feature=\"fxsr\"\ntarget_feature=\"sse2\"\ntarget_feature=\"crt-static\"\n\
                      target_os=\"linux\"\n";
        assert_eq!(
            parse_target_features(output),
            set(&["crt-static", "fxsr", "sse2"])
        );
        assert!(parse_target_features("").is_empty());
    }

    #[test]
    fn requirements_exclude_the_baseline_and_link_properties() {
        let baseline = set(&["fxsr", "sse", "sse2"]);
        let variant = set(&["fxsr", "sse", "sse2", "avx2", "crt-static", "avx512f"]);
        assert_eq!(beyond_baseline(&variant, &baseline), ["avx2", "avx512f"]);
        assert!(beyond_baseline(&baseline, &baseline).is_empty());
        // A static baseline (musl) does not make crt-static a requirement either.
        let musl = set(&["crt-static", "sse2"]);
        assert!(beyond_baseline(&musl, &set(&["sse2"])).is_empty());
    }

    #[test]
    fn probe_errors_map_back_to_the_features() {
        let a = "avx2".to_owned();
        let b = "crt-static".to_owned();
        let c = "sse4a".to_owned();
        let ordered = [&a, &b, &c];
        let stderr = "/o/probe.rs:4:1: error: unknown x86 target feature: crt-static\n\
                      /o/probe.rs:4:1: error: another diagnostic on the same line\n\
                      /o/other.rs:3:1: error: not the probe\n\
                      error: aborting due to 1 previous error\n";
        assert_eq!(
            probe_rejections(stderr, "/o/probe.rs", &ordered),
            ["crt-static"]
        );
        assert!(probe_rejections("error: linker", "/o/probe.rs", &ordered).is_empty());
    }

    #[test]
    fn the_real_rustc_derives_features_of_a_target_cpu() {
        let rustc = host_rustc();
        if !rustc.target().starts_with("x86_64") {
            eprintln!("skipped: the host is not x86_64");
            return;
        }
        let variants = crate::from_manifest_text(
            r#"
[workspace.metadata.mcp-foundry.variants.base]
description = "b"
target-cpu = "generic"
architectures = ["x86_64"]
[workspace.metadata.mcp-foundry.variants.haswell]
description = "h"
target-cpu = "haswell"
rustflags = ["-C", "target-cpu=haswell"]
architectures = ["x86_64"]
[workspace.metadata.mcp-foundry.variants.arm]
description = "a"
target-cpu = "generic"
architectures = ["aarch64"]
"#,
            "test",
        )
        .unwrap();
        let required = required_features(&rustc, "x86_64", &variants).unwrap();
        let names: Vec<_> = required.iter().map(|r| r.variant.as_str()).collect();
        assert_eq!(
            names,
            ["base", "haswell"],
            "aarch64-only variants are left out"
        );
        assert!(required[0].features.is_empty());
        let haswell = &required[1].features;
        for feature in ["avx2", "bmi2", "fma"] {
            assert!(haswell.contains(&feature.to_owned()), "{haswell:?}");
        }
        assert!(
            !haswell.contains(&"sse2".to_owned()),
            "baseline feature kept"
        );
        assert_eq!(union(&required), haswell.iter().cloned().collect());
    }

    #[test]
    fn the_probe_finds_what_the_launcher_cannot_detect() {
        let rustc = host_rustc();
        if !rustc.target().starts_with("x86_64") {
            eprintln!("skipped: the host is not x86_64");
            return;
        }
        let scratch = tempfile::tempdir().unwrap();
        let detectable = set(&["avx2", "avx512f", "sse4a"]);
        assert!(
            undetectable(&rustc, "x86_64", scratch.path(), &detectable)
                .unwrap()
                .is_empty()
        );
        ensure_detectable(&rustc, "x86_64", scratch.path(), &detectable).unwrap();

        let mixed = set(&["avx2", "crt-static", "no-such-feature"]);
        assert_eq!(
            undetectable(&rustc, "x86_64", scratch.path(), &mixed).unwrap(),
            ["crt-static", "no-such-feature"]
        );
        let err = ensure_detectable(&rustc, "x86_64", scratch.path(), &mixed).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("no-such-feature") && message.contains("NOT_CPU_FEATURES"),
            "{message}"
        );
        // No detection exists on other architectures: every feature is refused, none silently.
        assert_eq!(
            undetectable(&rustc, "aarch64", scratch.path(), &set(&["neon"])).unwrap(),
            ["neon"]
        );
        assert!(
            undetectable(&rustc, "aarch64", scratch.path(), &BTreeSet::new())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_broken_rustc_is_a_clear_error() {
        let err = Rustc::new("/nonexistent/rustc", "x86_64-unknown-linux-gnu")
            .target_features(&[])
            .unwrap_err();
        assert!(err.to_string().contains("/nonexistent/rustc"), "{err}");
        let err = Rustc::new("rustc", "no-such-target-triple")
            .target_features(&[])
            .unwrap_err();
        assert!(matches!(err, Error::Rustc { .. }), "{err}");
    }
}
