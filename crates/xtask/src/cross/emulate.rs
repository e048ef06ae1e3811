//! `cargo xtask emulate`: runs every foreign-architecture binary of `dist/` under qemu-user
//! (`qemu-aarch64` for aarch64), so a cross build is tested as a program, not only as a file.
//!
//! - a server: `--version` must name its variant, then a full MCP session over its stdio
//!   (initialize, tools/list, one tools/call: [`crate::mcp_client::mcp_session`]);
//! - the launcher: it must pick its architecture's baseline variant and exec that build with
//!   the arguments it was given. qemu-user runs only the first program: the launcher's
//!   `execve` goes to this machine's kernel, so the build it execs is a host script that
//!   reports how it was called.
//!
//! Missing qemu is an error with its fix, never a silent skip: a step that runs foreign code
//! checks for its emulator first.

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::target_arch;
use crate::dist::{Artifact, ArtifactKind, BASELINE_CPU, Manifest};
use crate::mcp_client::mcp_session;
use crate::metadata::{Role, Workspace};
use crate::process;

#[derive(Debug, Clone, Default, clap::Args)]
pub struct EmulateArgs {
    /// The dist directory (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<std::path::PathBuf>,
}

/// The qemu-user program of an architecture (Debian package `qemu-user`).
pub fn qemu_program(arch: &str) -> String {
    format!("qemu-{arch}")
}

/// The oldest core of `arch` that qemu models, as `(qemu's name, rustc's name)`: baseline
/// builds run on it, so an instruction beyond the baseline that qemu's default (`max`) CPU
/// would quietly execute traps instead (on aarch64: LSE atomics, SVE, dot product; the
/// Cortex-A53 does have the AES/SHA/CRC32 extensions, which only the audit covers).
pub fn baseline_model(arch: &str) -> Option<(&'static str, &'static str)> {
    match arch {
        "aarch64" => Some(("cortex-a53", "cortex-a53")),
        "x86_64" => Some(("qemu64", "x86-64")),
        _ => None,
    }
}

/// `qemu-<arch> [-cpu <oldest model>]` for a build of `target_cpu`.
fn qemu_command(qemu: &str, arch: &str, target_cpu: &str) -> Command {
    let mut command = Command::new(qemu);
    if target_cpu == BASELINE_CPU
        && let Some((model, _)) = baseline_model(arch)
    {
        command.args(["-cpu", model]);
    }
    command
}

/// The foreign-architecture server binaries and launchers of a manifest.
pub fn foreign_binaries(manifest: &Manifest) -> Vec<&Artifact> {
    manifest
        .artifacts
        .iter()
        .filter(|a| a.kind == ArtifactKind::ServerBinary && super::is_foreign(&a.target))
        .collect()
}

/// Runs every foreign binary of the dist directory under qemu; returns one line per binary.
/// Fails when the workspace declares a foreign architecture but dist built nothing for it.
pub fn run(workspace: &Workspace, args: &EmulateArgs) -> Result<Vec<String>> {
    let dist = args
        .dist
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    let manifest = Manifest::load(&dist)?;
    let binaries = foreign_binaries(&manifest);
    if binaries.is_empty() {
        let declared: Vec<&str> = workspace
            .variants
            .iter()
            .flat_map(|v| v.architectures.iter())
            .map(String::as_str)
            .filter(|arch| *arch != std::env::consts::ARCH)
            .collect();
        if !declared.is_empty() {
            bail!(
                "the variants declare {} but {}/manifest.json has no build for it; run \
                 `cargo xtask dist` (without --arch, or with --arch {})",
                declared.join(", "),
                dist.display(),
                declared[0]
            );
        }
        eprintln!("emulate: no variant declares another architecture than this machine's");
        return Ok(Vec::new());
    }
    let mut lines = Vec::new();
    for artifact in binaries {
        let arch = target_arch(&artifact.target);
        let qemu = qemu_program(arch);
        if !process::on_path(&qemu) {
            bail!(
                "{qemu} is not on PATH; it runs the {arch} builds here (Debian/Ubuntu package \
                 qemu-user; `cargo xtask setup` installs it as root)"
            );
        }
        let binary = dist.join(&artifact.path);
        crate::dist::hash_file(&binary)
            .with_context(|| format!("{} is listed in the manifest", artifact.path))?;
        let spec = workspace.crate_spec(&artifact.crate_name)?;
        let qemu_for = || qemu_command(&qemu, arch, &artifact.target_cpu);
        let line = match artifact.role {
            Role::Launcher => launcher(qemu_for, &binary, workspace)?,
            _ => server(qemu_for, &binary, artifact, spec.smoke_call.as_ref())?,
        };
        let model = baseline_model(arch)
            .filter(|_| artifact.target_cpu == BASELINE_CPU)
            .map_or(String::new(), |(model, _)| format!(" -cpu {model}"));
        let line = format!("{line} (under {qemu}{model})");
        let line = format!("{} ({}): {line}", artifact.path, artifact.target);
        eprintln!("emulate: {line}");
        lines.push(line);
    }
    Ok(lines)
}

/// `--version` names the variant, then an MCP session, both under qemu (`qemu` makes the
/// emulator's command).
fn server(
    qemu: impl Fn() -> Command,
    binary: &Path,
    artifact: &Artifact,
    call: Option<&crate::mcp_client::SmokeCall>,
) -> Result<String> {
    let version = process::output(qemu().arg(binary).arg("--version"))
        .with_context(|| format!("{} --version under qemu", artifact.path))?;
    let variant = version
        .lines()
        .find_map(|line| line.strip_prefix("variant:"))
        .map(str::trim)
        .with_context(|| format!("`--version` names no variant:\n{version}"))?;
    if variant != artifact.variant {
        bail!(
            "{} says it was built as variant {variant}, the manifest says {}",
            artifact.path,
            artifact.variant
        );
    }
    // The servers refuse `/` as an implicit root: give them an empty one of their own.
    let root = tempfile::tempdir().context("creating a root directory for the server")?;
    let mut command = qemu();
    command
        .arg(binary)
        .arg("--root")
        .arg(root.path())
        .current_dir(root.path());
    let session = mcp_session(command, call)
        .with_context(|| format!("MCP session with {} under qemu", artifact.path))?;
    Ok(format!(
        "[{}] {} tools | called {}{} | {}",
        session.server_name,
        session.tool_count,
        session.called,
        if session.call_is_error {
            " (isError)"
        } else {
            ""
        },
        version.lines().next().unwrap_or_default()
    ))
}

/// The launcher picks the baseline (the one variant of a foreign architecture that every CPU
/// of it runs) and execs `<dir>/<variant>/<server>` with its arguments.
fn launcher(qemu: impl Fn() -> Command, binary: &Path, workspace: &Workspace) -> Result<String> {
    let baseline = workspace
        .variants
        .iter()
        .find(|v| v.target_cpu == BASELINE_CPU)
        .context("the variants table has no baseline (target-cpu = \"generic\") variant")?;
    let dir = tempfile::tempdir().context("creating a variants directory")?;
    let server = "probe-server";
    let report = dir.path().join("called");
    // Every variant gets a build, so the choice is the launcher's, not the only file there.
    for variant in &workspace.variants {
        let script = dir.path().join(&variant.name).join(server);
        fs::create_dir_all(script.parent().unwrap_or(dir.path()))?;
        fs::write(
            &script,
            format!(
                "#!/bin/sh\nprintf '%s %s\\n' {} \"$*\" > '{}'\n",
                variant.name,
                report.display()
            ),
        )?;
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755))?;
    }
    let output = qemu()
        .arg(binary)
        .args(["--probe", "x"])
        .env("MCP_FOUNDRY_SERVER", server)
        .env("MCP_FOUNDRY_VARIANTS_DIR", dir.path())
        .env("MCP_FOUNDRY_LAUNCHER_VERBOSE", "1")
        .env_remove("MCP_FOUNDRY_VARIANT")
        .output()
        .with_context(|| format!("running {} under qemu", binary.display()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "the launcher failed under qemu ({}):\n{stderr}",
            output.status
        );
    }
    let called = fs::read_to_string(&report).with_context(|| {
        format!("the launcher exec'd no variant build under qemu; its stderr:\n{stderr}")
    })?;
    let expected = format!("{} --probe x", baseline.name);
    if called.trim() != expected {
        bail!(
            "under qemu the launcher ran `{}`, expected `{expected}`; its stderr:\n{stderr}",
            called.trim()
        );
    }
    Ok(format!(
        "chose {} and exec'd it with its arguments",
        baseline.name
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: &str, target: &str, kind: &str) -> Artifact {
        serde_json::from_value(serde_json::json!({
            "path": path, "kind": kind, "crate": "bash-god",
            "crate_version": "0.1.0", "role": "server", "variant": "generic",
            "target": target, "target_cpu": "generic",
            "rustflags": [], "sha256": "00", "size": 1,
            "unstripped_path": null, "unstripped_sha256": null,
            "rustc_version": "rustc 1.95.0", "git_commit": "abc", "cargo_lock_sha256": "00"
        }))
        .unwrap()
    }

    #[test]
    fn only_foreign_executables_are_emulated() {
        let host = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        let foreign = if std::env::consts::ARCH == "aarch64" {
            "x86_64-unknown-linux-musl"
        } else {
            "aarch64-unknown-linux-musl"
        };
        let manifest: Manifest = serde_json::from_value(serde_json::json!({
            "schema_version": Manifest::SCHEMA_VERSION, "git_commit": "abc", "git_dirty": false,
            "source_date_epoch": 0, "rustc_version": "r", "cargo_lock_sha256": "00",
            "profile": "p", "variants": [], "artifacts": [
                artifact("generic/bin/bash-god", &host, "server-binary"),
                artifact("generic/aarch64/bin/bash-god", foreign, "server-binary"),
                artifact("generic/aarch64/lib/libm.so", foreign, "shared-library"),
            ]
        }))
        .unwrap();
        let paths: Vec<&str> = foreign_binaries(&manifest)
            .iter()
            .map(|a| a.path.as_str())
            .collect();
        assert_eq!(paths, ["generic/aarch64/bin/bash-god"]);
        assert_eq!(qemu_program("aarch64"), "qemu-aarch64");
    }
}
