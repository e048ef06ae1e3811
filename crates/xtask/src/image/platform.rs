//! Which images get a standard OCI platform, and the multi-platform index over them.
//!
//! The image spec names amd64 levels as platform variants `v2`, `v3`, `v4` (the x86-64 psABI
//! micro-architecture levels), and containerd, podman and skopeo select by them: a v3 host
//! takes `linux/amd64/v3` over `linux/amd64`. A variant gets a platform only when its build
//! is exactly such a level (`target-cpu = "x86-64-vN"`) or the architecture's baseline; a
//! CPU-specific build (`znver4`: AVX-512 *and* SSE4A) is no level, since labelling it `v4`
//! would let an Intel v4 host pull code it cannot run. It keeps its own tag and its place in
//! the dispatch image.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use oci_spec::image::Arch;

use crate::dist::{BASELINE_CPU, sha256_hex};

/// Tag of the multi-platform image index (one entry per standard platform).
pub const PLATFORM_INDEX_TAG: &str = "platforms";

/// The standard platform variant of a build: `Some(None)` for the baseline (plain
/// `linux/<arch>`), `Some(Some("v3"))` for `x86-64-v3` on amd64, `None` when the build has no
/// standard platform and stays out of the index.
pub fn standard_variant(architecture: &Arch, target_cpu: &str) -> Option<Option<String>> {
    if target_cpu == BASELINE_CPU {
        return Some(None);
    }
    if *architecture != Arch::Amd64 {
        return None;
    }
    let level = target_cpu.strip_prefix("x86-64-v")?;
    // v1 is the baseline itself, spelled without a variant.
    match level {
        "1" => Some(None),
        "2" | "3" | "4" => Some(Some(format!("v{level}"))),
        _ => None,
    }
}

/// `linux/amd64/v3`-style name of a platform, for messages and docs.
pub fn platform_name(architecture: &Arch, variant: Option<&str>) -> String {
    match variant {
        Some(variant) => format!("linux/{architecture}/{variant}"),
        None => format!("linux/{architecture}"),
    }
}

/// The tag of a baseline build for an architecture other than the layout's main one
/// (e.g. `generic-arm64`): such an image is reachable by tag and through the index.
pub fn foreign_tag(variant: &str, architecture: &Arch) -> String {
    format!("{variant}-{architecture}")
}

/// One expected selection: a client on `architecture`/`variant` must get `manifest_digest`.
#[derive(Debug, Clone)]
pub struct Selection {
    pub tag: String,
    pub architecture: Arch,
    pub variant: Option<String>,
    /// `sha256:<hex>` of the image manifest the platform must select.
    pub manifest_digest: String,
}

/// Asks skopeo, as a client on each platform, to copy the index tag of the layout in
/// `layout_dir`, and checks it copies exactly that platform's image manifest. This is the
/// selection containerd, podman and Docker make from the same index.
pub fn check_selection(layout_dir: &Path, selections: &[Selection]) -> Result<String> {
    let mut chosen = Vec::new();
    for selection in selections {
        let out = tempfile::tempdir().context("creating a temporary directory for skopeo")?;
        let mut command = Command::new("skopeo");
        command
            .args([
                "copy",
                "--quiet",
                "--override-os",
                "linux",
                "--override-arch",
            ])
            .arg(selection.architecture.to_string());
        if let Some(variant) = &selection.variant {
            command.args(["--override-variant", variant]);
        }
        let platform = platform_name(&selection.architecture, selection.variant.as_deref());
        let output = command
            .arg(format!("oci:{}:{PLATFORM_INDEX_TAG}", layout_dir.display()))
            .arg(format!("dir:{}", out.path().display()))
            .output()
            .context("cannot run skopeo (Debian package `skopeo`)")?;
        if !output.status.success() {
            bail!(
                "skopeo copy of {PLATFORM_INDEX_TAG} as {platform} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        let manifest = std::fs::read(out.path().join("manifest.json"))
            .context("skopeo copy wrote no manifest.json")?;
        let digest = format!("sha256:{}", sha256_hex(&manifest));
        if digest != selection.manifest_digest {
            bail!(
                "as {platform} skopeo selected manifest {digest} from {PLATFORM_INDEX_TAG}, \
                 not the {} image ({})",
                selection.tag,
                selection.manifest_digest
            );
        }
        chosen.push(format!("{platform}->{}", selection.tag));
    }
    Ok(chosen.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_baseline_and_exact_levels_get_a_platform() {
        assert_eq!(standard_variant(&Arch::Amd64, "generic"), Some(None));
        assert_eq!(standard_variant(&Arch::ARM64, "generic"), Some(None));
        assert_eq!(standard_variant(&Arch::Amd64, "x86-64-v1"), Some(None));
        assert_eq!(
            standard_variant(&Arch::Amd64, "x86-64-v3"),
            Some(Some("v3".into()))
        );
        assert_eq!(
            standard_variant(&Arch::Amd64, "x86-64-v4"),
            Some(Some("v4".into()))
        );
        // CPU-specific builds have no standard platform, whatever AVX-512 they share with v4.
        assert_eq!(standard_variant(&Arch::Amd64, "znver4"), None);
        assert_eq!(standard_variant(&Arch::Amd64, "haswell"), None);
        assert_eq!(standard_variant(&Arch::Amd64, "x86-64-v5"), None);
        assert_eq!(standard_variant(&Arch::ARM64, "x86-64-v3"), None);
    }

    #[test]
    fn names_follow_the_os_arch_variant_convention() {
        assert_eq!(platform_name(&Arch::Amd64, Some("v3")), "linux/amd64/v3");
        assert_eq!(platform_name(&Arch::ARM64, None), "linux/arm64");
        assert_eq!(foreign_tag("generic", &Arch::ARM64), "generic-arm64");
    }
}
