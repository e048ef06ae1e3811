//! Embeds the build facts `--version` reports (see `src/build_info.rs`).
//!
//! Everything comes from the environment cargo gives build scripts, so the numbers describe
//! the artifact actually being compiled (its target, its RUSTFLAGS), not the host.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in [
        "MCP_FOUNDRY_VARIANT",
        "MCP_FOUNDRY_GIT_COMMIT",
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTC",
    ] {
        println!("cargo:rerun-if-env-changed={var}");
    }

    let rustflags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let target_cpu = target_cpu_from_rustflags(&rustflags);
    let variant = non_empty_env("MCP_FOUNDRY_VARIANT").unwrap_or_else(|| {
        if target_cpu.is_some() {
            "custom"
        } else {
            "generic"
        }
        .to_owned()
    });
    let target_cpu = target_cpu.unwrap_or_else(|| "generic".to_owned());

    // Sorted so the embedded list (and thus the binary) does not depend on cargo's order.
    let mut target_features: Vec<String> = env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .filter(|feature| !feature.is_empty())
        .map(str::to_owned)
        .collect();
    target_features.sort();

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
    let rustc_version = command_stdout(&rustc, &["-V"]).unwrap_or_else(|| "unknown".to_owned());
    let git_commit = non_empty_env("MCP_FOUNDRY_GIT_COMMIT")
        .or_else(git_head_commit)
        .unwrap_or_else(|| "unknown".to_owned());
    let profile = env::var("PROFILE").unwrap_or_else(|_| "unknown".to_owned());

    let features_literal = target_features
        .iter()
        .map(|feature| format!("{feature:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let out_dir = env::var("OUT_DIR").expect("cargo sets OUT_DIR for build scripts");
    let generated = format!(
        "/// Facts about this build, embedded by `build.rs`.\n\
         pub const BUILD_INFO: BuildInfo = BuildInfo {{\n\
         \x20   variant: {variant:?},\n\
         \x20   target_cpu: {target_cpu:?},\n\
         \x20   target_features: &[{features_literal}],\n\
         \x20   rustc_version: {rustc_version:?},\n\
         \x20   git_commit: {git_commit:?},\n\
         \x20   profile: {profile:?},\n\
         }};\n"
    );
    std::fs::write(format!("{out_dir}/build_info.rs"), generated)
        .expect("writing build_info.rs into OUT_DIR");
}

fn non_empty_env(name: &str) -> Option<String> {
    env::var(name).ok().filter(|value| !value.trim().is_empty())
}

/// The last `-C target-cpu=X` (or `-Ctarget-cpu=X`) wins, as it does for rustc.
fn target_cpu_from_rustflags(encoded: &str) -> Option<String> {
    let flags: Vec<&str> = encoded.split('\x1f').collect();
    let mut cpu = None;
    for (index, flag) in flags.iter().enumerate() {
        let codegen = if *flag == "-C" || *flag == "--codegen" {
            flags.get(index + 1).copied()
        } else {
            flag.strip_prefix("-C")
                .or_else(|| flag.strip_prefix("--codegen="))
        };
        if let Some(value) = codegen.and_then(|option| option.strip_prefix("target-cpu=")) {
            cpu = Some(value.to_owned());
        }
    }
    cpu
}

fn command_stdout(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// `git rev-parse HEAD`. Absent in Nix builds (no `.git`), which is why
/// `MCP_FOUNDRY_GIT_COMMIT` is checked first.
///
/// Only non-debug builds rebuild when HEAD moves: several people commit to this checkout
/// all day, and re-running this script on every commit would rebuild every server's dev
/// build. A debug build may therefore report the commit it was first built at.
fn git_head_commit() -> Option<String> {
    let git_dir = command_stdout("git", &["rev-parse", "--absolute-git-dir"])?;
    if env::var("PROFILE").as_deref() != Ok("debug") {
        let mut watched = vec![format!("{git_dir}/HEAD"), format!("{git_dir}/packed-refs")];
        if let Some(reference) = std::fs::read_to_string(format!("{git_dir}/HEAD"))
            .ok()
            .and_then(|head| head.strip_prefix("ref: ").map(|r| r.trim().to_owned()))
        {
            watched.push(format!("{git_dir}/{reference}"));
        }
        // A watched path that does not exist makes cargo rerun the script on every build.
        for path in watched
            .iter()
            .filter(|path| std::path::Path::new(path).exists())
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    command_stdout("git", &["rev-parse", "HEAD"])
}
