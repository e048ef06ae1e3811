//! Derives, for every CPU variant of the workspace, the target features a CPU needs to run
//! that variant's binaries, and generates the detection code for them.
//!
//! The variants come from `[workspace.metadata.mcp-foundry.variants]` in the workspace
//! `Cargo.toml` (the only place they are defined); the features of each from
//! `$RUSTC --print cfg --target $TARGET <variant rustflags>`, minus the features of the
//! target's baseline (which the launcher itself needs, so they are present if it runs).
//! Nothing about znver4 is hard-coded here.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

include!("src/undetectable.rs");

struct Variant {
    name: String,
    rustflags: Vec<String>,
    architectures: Vec<String>,
}

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace_manifest = manifest_dir.join("../../Cargo.toml");
    println!("cargo:rerun-if-changed={}", workspace_manifest.display());
    println!("cargo:rerun-if-changed=src/undetectable.rs");
    println!("cargo:rerun-if-env-changed=RUSTC");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let target = env::var("TARGET").expect("cargo sets TARGET");
    let target_arch = env::var("CARGO_CFG_TARGET_ARCH").expect("cargo sets CARGO_CFG_TARGET_ARCH");

    let baseline = target_features(&rustc, &target, &[]);
    refuse_non_baseline_build(&baseline);

    let variants: Vec<Variant> = read_variants(&workspace_manifest)
        .into_iter()
        .filter(|variant| variant.architectures.contains(&target_arch))
        .collect();
    assert!(
        !variants.is_empty(),
        "no variant in {} lists architecture {target_arch}; add it to a variant's `architectures`",
        workspace_manifest.display()
    );

    let undetectable: BTreeSet<&str> = UNDETECTABLE_FEATURES
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let mut required: Vec<(String, Vec<String>)> = Vec::new();
    for variant in &variants {
        let features: Vec<String> = target_features(&rustc, &target, &variant.rustflags)
            .difference(&baseline)
            .filter(|feature| !undetectable.contains(feature.as_str()))
            .cloned()
            .collect();
        required.push((variant.name.clone(), features));
    }

    let all_features: BTreeSet<String> = required
        .iter()
        .flat_map(|(_, f)| f.iter().cloned())
        .collect();
    let is_x86 = target_arch == "x86_64" || target_arch == "x86";
    if is_x86 {
        let unsupported = probe_unsupported(&rustc, &target, &all_features);
        assert!(
            unsupported.is_empty(),
            "is_x86_feature_detected! cannot check target feature(s) {unsupported:?} that a variant \
             enables; add real detection for them (e.g. via cpuid) or, if they are not CPU \
             features, list them with the reason in crates/mcp-launcher/src/undetectable.rs"
        );
    } else {
        assert!(
            all_features.is_empty(),
            "variants for {target_arch} need CPU features {all_features:?}, but the launcher can only \
             detect x86 features; teach it this architecture's detection macro"
        );
    }

    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("variants.rs");
    fs::write(&out, generate(&required, &all_features, is_x86))
        .expect("write generated variants.rs");
}

/// The target features `rustc` enables for `target` with `rustflags`.
fn target_features(rustc: &str, target: &str, rustflags: &[String]) -> BTreeSet<String> {
    let output = Command::new(rustc)
        .args(["--print", "cfg", "--target", target])
        .args(rustflags)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{rustc} --print cfg`: {e}"));
    assert!(
        output.status.success(),
        "`{rustc} --print cfg --target {target} {}` failed:\n{}",
        rustflags.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.strip_prefix("target_feature=\""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

/// The launcher exists to run on CPUs that lack a variant's features, so it must itself be
/// compiled for nothing more than the target's baseline.
fn refuse_non_baseline_build(baseline: &BTreeSet<String>) {
    let enabled = env::var("CARGO_CFG_TARGET_FEATURE").unwrap_or_default();
    let extra: Vec<&str> = enabled
        .split(',')
        .filter(|feature| !feature.is_empty() && !baseline.contains(*feature))
        .collect();
    assert!(
        extra.is_empty(),
        "mcp-launcher must be built for the baseline CPU, but RUSTFLAGS enable {extra:?}; \
         build it without -C target-cpu / -C target-feature (role \"launcher\")"
    );
}

fn read_variants(workspace_manifest: &Path) -> Vec<Variant> {
    let text = fs::read_to_string(workspace_manifest).unwrap_or_else(|e| {
        panic!(
            "cannot read the workspace manifest {}: {e}",
            workspace_manifest.display()
        )
    });
    let manifest: toml::Table = text
        .parse()
        .unwrap_or_else(|e| panic!("cannot parse {}: {e}", workspace_manifest.display()));
    let variants = manifest
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("mcp-foundry"))
        .and_then(|m| m.get("variants"))
        .and_then(toml::Value::as_table)
        .unwrap_or_else(|| {
            panic!(
                "{} has no [workspace.metadata.mcp-foundry.variants] table",
                workspace_manifest.display()
            )
        });
    let strings = |variant: &toml::Value, key: &str| -> Vec<String> {
        variant
            .get(key)
            .and_then(toml::Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    variants
        .iter()
        .map(|(name, variant)| Variant {
            name: name.clone(),
            rustflags: strings(variant, "rustflags"),
            architectures: strings(variant, "architectures"),
        })
        .collect()
}

/// Compiles one probe file that asks `is_x86_feature_detected!` about every feature, one per
/// line; the macro rejects names it cannot detect with a compile error on that line.
fn probe_unsupported(rustc: &str, target: &str, features: &BTreeSet<String>) -> Vec<String> {
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let probe = out_dir.join("feature_probe.rs");
    let ordered: Vec<&String> = features.iter().collect();
    let mut source = String::from("pub fn probe() -> usize {\n    [\n");
    for feature in &ordered {
        writeln!(source, "std::arch::is_x86_feature_detected!({feature:?}),")
            .expect("write to String");
    }
    source.push_str("    ].len()\n}\n");
    fs::write(&probe, &source).expect("write feature probe");

    let output = Command::new(rustc)
        .args([
            "--crate-type",
            "lib",
            "--emit",
            "metadata",
            "--error-format",
            "short",
            "--edition",
            "2024",
        ])
        .args(["--target", target, "--crate-name", "feature_probe", "-o"])
        .arg(out_dir.join("feature_probe.rmeta"))
        .arg(&probe)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {rustc} for the feature probe: {e}"));
    if output.status.success() {
        return Vec::new();
    }
    // Lines look like `<path>:<line>:<col>: error: unknown x86 target feature: <name>`; the
    // probe's feature lines start at line 3.
    let stderr = String::from_utf8_lossy(&output.stderr);
    let probe_path = probe.display().to_string();
    let unsupported: Vec<String> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix(&probe_path)?.strip_prefix(':'))
        .filter_map(|rest| rest.split(':').next()?.parse::<usize>().ok())
        .filter_map(|line| ordered.get(line.checked_sub(3)?))
        .map(|feature| (*feature).clone())
        .collect();
    assert!(
        !unsupported.is_empty(),
        "the feature probe failed for another reason than an unknown feature:\n{stderr}"
    );
    unsupported
}

fn generate(
    required: &[(String, Vec<String>)],
    all_features: &BTreeSet<String>,
    is_x86: bool,
) -> String {
    let mut code = String::from("// Generated by crates/mcp-launcher/build.rs; do not edit.\n\n");
    code.push_str("/// Every variant of the workspace for this architecture, with the CPU features it needs.\n");
    code.push_str("pub const VARIANTS: &[VariantSpec] = &[\n");
    for (name, features) in required {
        writeln!(
            code,
            "    VariantSpec {{ name: {name:?}, required_features: &{features:?} }},"
        )
        .expect("write to String");
    }
    code.push_str("];\n\n");
    code.push_str("/// Whether this CPU has `feature`; `None` for a name the launcher was not built to check.\n");
    code.push_str("pub fn cpu_has_feature(feature: &str) -> Option<bool> {\n    match feature {\n");
    if is_x86 {
        for feature in all_features {
            writeln!(
                code,
                "        {feature:?} => Some(std::arch::is_x86_feature_detected!({feature:?})),"
            )
            .expect("write to String");
        }
    }
    code.push_str("        _ => None,\n    }\n}\n");
    code
}
