//! Runs the real launcher binary natively and under `qemu-x86_64 -cpu Haswell` (a CPU with
//! AVX2 but no AVX-512 or SSE4A) against stand-in servers that report which variant ran, with
//! which PID, arguments and environment.
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

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn native_run_picks_the_best_variant_and_keeps_pid_args_and_env() {
    let dir = variants_dir();
    let (output, pid) = launch(&[], dir.path(), None, &["--flag", "two words"]);
    assert!(output.status.success(), "{output:?}");
    let expected = mcp_launcher::choose_variant(
        &mcp_launcher::VariantRequest::Auto,
        mcp_launcher::VARIANTS,
        &mcp_launcher::cpu_has_feature,
    )
    .expect("some variant runs here");
    assert_eq!(
        stdout(&output),
        format!(
            "variant={} pid={pid} args=--flag two words probe=kept\n",
            expected.name
        )
    );
}

#[test]
fn haswell_under_qemu_falls_back_to_generic() {
    if !qemu_available() {
        return;
    }
    let dir = variants_dir();
    let (output, pid) = launch(
        &["qemu-x86_64", "-cpu", "Haswell"],
        dir.path(),
        None,
        &["x"],
    );
    assert!(output.status.success(), "{output:?}");
    assert_eq!(
        stdout(&output),
        format!("variant=generic pid={pid} args=x probe=kept\n")
    );
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
}
