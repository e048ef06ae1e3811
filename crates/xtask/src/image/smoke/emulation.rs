//! Running an image of another architecture (linux/arm64 here) without binfmt_misc: the
//! static qemu-user of its architecture (`qemu-aarch64-static`, Debian `qemu-user-static`)
//! is copied into the unpacked rootfs and chroot starts it in front of every program. A
//! static emulator needs nothing from the host inside the chroot, so the image's own files
//! are all the program sees, as in a container.
//!
//! qemu emulates the oldest core of the architecture it models ([`baseline_model`]:
//! armv8.0-A Cortex-A53, no LSE atomics, SVE or dot product), so a baseline build meets no
//! such instruction that qemu's default CPU would quietly execute.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::cpu;
use crate::cross::emulate::baseline_model;

/// Where the emulator is put inside the rootfs.
const IN_ROOTFS: &str = "qemu-static";

/// The emulator of one image's architecture, installed in its rootfs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulation {
    /// `qemu-aarch64-static`.
    pub program: String,
    /// The emulated CPU: qemu's model name and rustc's name of the same core.
    pub cpu: (&'static str, &'static str),
}

/// The target-triple architecture of an OCI architecture and the CPU qemu emulates for it
/// ([`baseline_model`]), for those the smoke test can emulate.
fn emulated(oci_architecture: &str) -> Option<(&'static str, (&'static str, &'static str))> {
    let arch = match oci_architecture {
        "arm64" => "aarch64",
        "amd64" => "x86_64",
        _ => return None,
    };
    Some((arch, baseline_model(arch)?))
}

/// The static qemu-user program of a target-triple architecture.
pub fn static_qemu(arch: &str) -> String {
    format!("{}-static", crate::cross::emulate::qemu_program(arch))
}

/// Copies the emulator of `oci_architecture` into `rootfs`; `Err` is the loud notice of
/// what is not run and why (no emulator for it here).
pub fn install(
    rootfs: &Path,
    oci_architecture: &str,
    what: &str,
) -> Result<Result<Emulation, String>> {
    let Some((arch, cpu)) = emulated(oci_architecture) else {
        return Ok(Err(format!(
            "!!! SKIPPED: {what}: no emulator for linux/{oci_architecture} images !!!"
        )));
    };
    let program = static_qemu(arch);
    let Some(host) = find(&program) else {
        return Ok(Err(format!(
            "!!! SKIPPED: {what}: {program} is not installed (Debian/Ubuntu package \
             qemu-user-static; `cargo xtask setup` installs it as root); its layout, config \
             and labels were checked !!!"
        )));
    };
    let inside = rootfs.join(IN_ROOTFS);
    std::fs::copy(&host, &inside)
        .with_context(|| format!("copying {} into the rootfs", host.display()))?;
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&inside, std::fs::Permissions::from_mode(0o755))?;
    Ok(Ok(Emulation { program, cpu }))
}

fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

impl Emulation {
    /// What chroot runs in front of the image's program: the emulator and its CPU.
    pub fn prefix(&self) -> Vec<String> {
        vec![
            format!("/{IN_ROOTFS}"),
            "-cpu".to_owned(),
            self.cpu.0.to_owned(),
        ]
    }

    /// Whether a build for `target_cpu` runs on the emulated CPU.
    pub fn support(&self, target: &str, target_cpu: &str) -> Result<cpu::Support> {
        let wanted = cpu::target_features(target, target_cpu)?;
        let baseline = cpu::target_features(target, crate::dist::BASELINE_CPU)?;
        let model = cpu::target_features(target, self.cpu.1)?;
        let lacking = cpu::missing(&wanted, &baseline, &model);
        Ok(if lacking.is_empty() {
            cpu::Support::Runs
        } else {
            cpu::Support::Lacks(lacking)
        })
    }

    /// For the report: `qemu-aarch64-static -cpu cortex-a53`.
    pub fn describe(&self) -> String {
        format!("{} -cpu {}", self.program, self.cpu.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arm64_images_run_on_the_oldest_armv8_core_qemu_models() {
        let (arch, cpu) = emulated("arm64").unwrap();
        assert_eq!(static_qemu(arch), "qemu-aarch64-static");
        let emulation = Emulation {
            program: static_qemu(arch),
            cpu,
        };
        // The generic build runs there; one needing LSE or SVE does not.
        assert!(
            emulation
                .support("aarch64-unknown-linux-musl", "generic")
                .unwrap()
                .runs()
        );
        for beyond in ["neoverse-n1", "neoverse-v1"] {
            assert!(
                !emulation
                    .support("aarch64-unknown-linux-musl", beyond)
                    .unwrap()
                    .runs(),
                "{beyond} needs more than a Cortex-A53"
            );
        }
        assert_eq!(emulation.prefix(), ["/qemu-static", "-cpu", "cortex-a53"]);
        assert!(emulated("riscv64").is_none());
    }
}
