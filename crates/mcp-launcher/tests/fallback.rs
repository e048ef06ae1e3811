//! Runs the real launcher binary natively and under `qemu-x86_64 -cpu <model>` against
//! stand-in servers that report which variant ran, with which PID, arguments and
//! environment: qemu64 (x86-64 v1 only) must get generic, Haswell (AVX2, no AVX-512)
//! x86-64-v3, an AVX-512 model x86-64-v4 where qemu can emulate AVX-512 (qemu 7.2's TCG
//! cannot: it drops those CPUID bits with a warning, and the test then checks the model
//! gets x86-64-v3 and says so on stderr).
//!
//! The qemu tests need Debian's `qemu-user` (`qemu-x86_64` on PATH); set
//! `MCP_FOUNDRY_SKIP_QEMU_TESTS=1` to skip them on a machine without it.
#![cfg(target_arch = "x86_64")]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_mcp-launcher");

/// A variants directory with a shell-script "server" per variant that prints its variant,
/// PID, arguments and one environment variable.
fn variants_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("create temp dir");
    for variant in mcp_launcher::VARIANTS {
        let variant_dir = dir.path().join(variant.name);
        fs::create_dir(&variant_dir).expect("create variant dir");
        let script = variant_dir.join("fake-server");
        let body = format!(
            "#!/bin/sh\nprintf 'variant=%s pid=%s args=%s probe=%s\\n' {} \"$$\" \"$*\" \"$PROBE\"\n",
            variant.name
        );
        fs::write(&script, body).expect("write fake server");
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).expect("chmod fake server");
    }
    dir
}

fn qemu_available() -> bool {
    if std::env::var_os("MCP_FOUNDRY_SKIP_QEMU_TESTS").is_some() {
        return false;
    }
    let found = Command::new("qemu-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "qemu-x86_64 (Debian qemu-user) is required; set MCP_FOUNDRY_SKIP_QEMU_TESTS=1 to skip"
    );
    true
}

/// Runs the launcher (through `runner` if given) and returns its output and PID.
fn launch(runner: &[&str], dir: &Path, variant: Option<&str>, args: &[&str]) -> (Output, u32) {
    let mut command = match runner.split_first() {
        Some((program, runner_args)) => {
            let mut c = Command::new(program);
            c.args(runner_args).arg(LAUNCHER);
            c
        }
        None => Command::new(LAUNCHER),
    };
    command
        .args(args)
        .env("MCP_FOUNDRY_SERVER", "fake-server")
        .env("MCP_FOUNDRY_VARIANTS_DIR", dir)
        .env("PROBE", "kept")
        .env_remove("MCP_FOUNDRY_VARIANT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(variant) = variant {
        command.env("MCP_FOUNDRY_VARIANT", variant);
    }
    let child = command.spawn().expect("spawn launcher");
    let pid = child.id();
    (child.wait_with_output().expect("wait for launcher"), pid)
}

/// The first of `preferred` that the variants table declares: the tests follow the table, so
/// a checkout without the x86-64-v3/v4 entries expects the next best variant.
fn best_declared(preferred: &[&'static str]) -> &'static str {
    preferred
        .iter()
        .copied()
        .find(|name| mcp_launcher::VARIANTS.iter().any(|v| v.name == *name))
        .unwrap_or("generic")
}

/// The variant the launcher's rule picks on this CPU when every build is installed.
fn best_runnable_here() -> mcp_launcher::VariantSpec {
    mcp_launcher::choose_variant(
        &mcp_launcher::VariantRequest::Auto,
        mcp_launcher::VARIANTS,
        &mcp_launcher::cpu_has_feature,
    )
    .expect("some variant runs here")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn native_run_picks_the_best_variant_and_keeps_pid_args_and_env() {
    let dir = variants_dir();
    let (output, pid) = launch(&[], dir.path(), None, &["--flag", "two words"]);
    assert!(output.status.success(), "{output:?}");
    let expected = best_runnable_here();
    assert_eq!(
        stdout(&output),
        format!(
            "variant={} pid={pid} args=--flag two words probe=kept\n",
            expected.name
        )
    );
}

/// The variant the launcher picks under `qemu-x86_64 -cpu model`, with qemu's stderr.
fn variant_under_qemu(model: &str) -> (String, String) {
    let dir = variants_dir();
    let (output, pid) = launch(&["qemu-x86_64", "-cpu", model], dir.path(), None, &["x"]);
    assert!(output.status.success(), "{model}: {output:?}");
    let stdout = stdout(&output);
    let variant = stdout
        .strip_prefix("variant=")
        .and_then(|rest| rest.strip_suffix(&format!(" pid={pid} args=x probe=kept\n")))
        .unwrap_or_else(|| panic!("{model}: unexpected server output {stdout:?}"))
        .to_owned();
    (
        variant,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn an_x86_64_v1_cpu_under_qemu_gets_generic() {
    if !qemu_available() {
        return;
    }
    assert_eq!(variant_under_qemu("qemu64").0, "generic");
}

#[test]
fn haswell_under_qemu_gets_x86_64_v3() {
    if !qemu_available() {
        return;
    }
    assert_eq!(
        variant_under_qemu("Haswell").0,
        best_declared(&["x86-64-v3"])
    );
}

#[test]
fn avx512_models_under_qemu_get_x86_64_v4_where_qemu_emulates_avx512() {
    if !qemu_available() {
        return;
    }
    // Intel models: AVX-512 F/BW/CD/DQ/VL but no SSE4A, so never znver4.
    for model in ["Skylake-Server", "Cascadelake-Server", "Icelake-Server"] {
        let (variant, stderr) = variant_under_qemu(model);
        if stderr.contains("doesn't support requested feature: CPUID.07H:EBX.avx512f") {
            eprintln!(
                "NOTE: this qemu cannot emulate AVX-512 (it dropped avx512f from {model}); \
                 checked that {model} falls back to x86-64-v3 instead of testing x86-64-v4"
            );
            assert_eq!(variant, best_declared(&["x86-64-v3"]), "{model}: {stderr}");
        } else {
            assert_eq!(
                variant,
                best_declared(&["x86-64-v4", "x86-64-v3"]),
                "{model}: {stderr}"
            );
        }
    }
}

#[test]
fn this_machines_choice_is_explained_at_debug_level() {
    let dir = variants_dir();
    let mut command = Command::new(LAUNCHER);
    command
        .env("MCP_FOUNDRY_SERVER", "fake-server")
        .env("MCP_FOUNDRY_VARIANTS_DIR", dir.path())
        .env("RUST_LOG", "info,mcp_launcher=debug")
        .env_remove("MCP_FOUNDRY_VARIANT")
        .env_remove("MCP_FOUNDRY_LAUNCHER_VERBOSE");
    let output = command.output().expect("run launcher");
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let chosen = stdout(&output);
    let chosen = chosen
        .strip_prefix("variant=")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_default();
    assert!(
        stderr.contains(&format!("mcp-launcher: running the {chosen} build: ")),
        "{stderr}"
    );
    let cpu = fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    // The record asked for by issue 14: what this machine runs (see with --nocapture).
    eprintln!("this machine ({cpu}) runs the {chosen} build; the launcher said:\n{stderr}");
    // Without debug logging the launcher says nothing.
    command.env("RUST_LOG", "info");
    let quiet = command.output().expect("run launcher");
    assert!(quiet.stderr.is_empty(), "{quiet:?}");
}

#[test]
fn forcing_znver4_on_haswell_is_a_clear_error_not_sigill() {
    if !qemu_available() {
        return;
    }
    let dir = variants_dir();
    let (output, _) = launch(
        &["qemu-x86_64", "-cpu", "Haswell"],
        dir.path(),
        Some("znver4"),
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "the server must not have run: {output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MCP_FOUNDRY_VARIANT=znver4") && stderr.contains("avx512f"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("sse4.2"),
        "Haswell has SSE4.2, it must not be reported missing: {stderr}"
    );
}

#[test]
fn forcing_generic_runs_generic() {
    let dir = variants_dir();
    let (output, _) = launch(&[], dir.path(), Some("generic"), &[]);
    assert!(
        stdout(&output).starts_with("variant=generic "),
        "{output:?}"
    );
}

#[test]
fn a_missing_variant_binary_is_reported_with_its_path() {
    let dir = variants_dir();
    fs::remove_file(dir.path().join("generic/fake-server")).expect("remove generic build");
    let (output, _) = launch(&[], dir.path(), Some("generic"), &[]);
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("generic/fake-server"), "{stderr}");
    // What is there instead is named.
    let others: Vec<&str> = mcp_launcher::VARIANTS
        .iter()
        .map(|v| v.name)
        .filter(|name| *name != "generic")
        .collect();
    assert!(
        stderr.contains(&format!("holds the builds {}", others.join(", "))),
        "{stderr}"
    );
}

/// A build that cannot be inspected (here a symlink loop) stops the launcher: it does not
/// quietly run a slower build instead.
#[test]
fn an_uninspectable_build_is_an_error_not_a_fallback() {
    let dir = variants_dir();
    let best = best_runnable_here();
    let path = dir.path().join(best.name).join("fake-server");
    fs::remove_file(&path).expect("remove the best build");
    std::os::unix::fs::symlink(&path, &path).expect("make a symlink loop");
    let (output, _) = launch(&[], dir.path(), None, &[]);
    assert_eq!(output.status.code(), Some(126), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot inspect"), "{stderr}");
    assert!(output.stdout.is_empty(), "no build ran: {output:?}");
}

/// An image holding some variants only (what `cargo xtask ci` builds): `auto` passes over a
/// runnable variant whose build is not there and takes the best one that is.
#[test]
fn auto_takes_the_best_build_the_image_holds() {
    let dir = variants_dir();
    let best = best_runnable_here();
    // Only the baseline and a variant this CPU cannot run stay installed, unless the best
    // runnable one is the baseline (then there is nothing better to leave out).
    let unrunnable = mcp_launcher::VARIANTS
        .iter()
        .find(|v| !mcp_launcher::missing_features(v, &mcp_launcher::cpu_has_feature).is_empty());
    for variant in mcp_launcher::VARIANTS {
        let keep = variant.name == "generic" || Some(variant) == unrunnable;
        if !keep {
            fs::remove_dir_all(dir.path().join(variant.name)).expect("remove a variant");
        }
    }
    let (output, _) = launch(&[], dir.path(), None, &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).starts_with("variant=generic "),
        "best runnable here is {}, but only generic is installed of those: {output:?}",
        best.name
    );

    // Verbose, it says which better build it passed over.
    let mut command = Command::new(LAUNCHER);
    command
        .env("MCP_FOUNDRY_SERVER", "fake-server")
        .env("MCP_FOUNDRY_VARIANTS_DIR", dir.path())
        .env("MCP_FOUNDRY_LAUNCHER_VERBOSE", "1")
        .env_remove("MCP_FOUNDRY_VARIANT");
    let output = command.output().expect("run launcher");
    let stderr = String::from_utf8_lossy(&output.stderr);
    if best.name != "generic" {
        assert!(
            stderr.contains(&format!("no {} build in", best.name)),
            "{stderr}"
        );
    }
    assert!(stderr.contains("running the generic build"), "{stderr}");

    // Nothing this CPU runs is installed: the baseline's path is reported, exit 127.
    fs::remove_dir_all(dir.path().join("generic")).expect("remove generic");
    let (output, _) = launch(&[], dir.path(), None, &[]);
    assert_eq!(output.status.code(), Some(127), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("generic/fake-server"), "{stderr}");
}

#[test]
fn haswell_with_only_generic_and_znver4_installed_gets_generic() {
    if !qemu_available() {
        return;
    }
    let dir = variants_dir();
    for variant in mcp_launcher::VARIANTS {
        if !matches!(variant.name, "generic" | "znver4") {
            fs::remove_dir_all(dir.path().join(variant.name)).expect("remove a variant");
        }
    }
    let (output, _) = launch(&["qemu-x86_64", "-cpu", "Haswell"], dir.path(), None, &[]);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).starts_with("variant=generic "),
        "{output:?}"
    );
}
