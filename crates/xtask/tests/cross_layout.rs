//! `cargo xtask image` on the dist layout a cross build produces: a manifest whose baseline
//! server also has a build for another architecture (placed where dist places it,
//! `dist::artifact_dir`) must give that build its own tag and the standard platform entry
//! (`linux/arm64` for aarch64) in the `platforms` index, holding exactly its bytes. Stand-in
//! bytes instead of real binaries: nothing here runs them (CI's `images` and `emulate` steps
//! run the real ones).

use std::io::Read as _;
use std::path::Path;

use serde_json::{Value, json};
use xtask::dist::{self, Manifest};
use xtask::image::ImageArgs;
use xtask::metadata::{Role, Workspace};
use xtask::provenance::{self, referrer};

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> std::path::PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// `path → bytes` of the regular files in an image's (gzip) layer.
fn layer_files(layout: &Path, manifest_digest: &str) -> Vec<(String, Vec<u8>)> {
    let manifest = read_json(&blob(layout, manifest_digest));
    let mut files = Vec::new();
    for layer in manifest["layers"].as_array().unwrap() {
        let data = std::fs::read(blob(layout, layer["digest"].as_str().unwrap())).unwrap();
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(data.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        for entry in tar::Archive::new(tar.as_slice()).entries().unwrap() {
            let mut entry = entry.unwrap();
            if entry.header().entry_type() == tar::EntryType::Regular {
                let path = entry.path().unwrap().display().to_string();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                files.push((path, bytes));
            }
        }
    }
    files
}

#[test]
fn a_cross_built_baseline_becomes_the_indexs_arm64_entry() {
    let workspace = Workspace::load().unwrap();
    let server = workspace.servers().next().unwrap();
    let launcher = workspace
        .crates
        .iter()
        .find(|c| c.role == Role::Launcher)
        .unwrap();
    let host = std::env::consts::ARCH;
    let foreign = if host == "aarch64" {
        "x86_64"
    } else {
        "aarch64"
    };
    let dir = tempfile::tempdir().unwrap();
    let dist_dir = dir.path().join("dist");

    let mut artifacts = Vec::new();
    let mut add = |crate_name: &str, role: Role, variant: &str, target_cpu: &str, arch: &str| {
        let target = format!("{arch}-unknown-linux-musl");
        let relative = dist::artifact_dir(variant, &target)
            .join("bin")
            .join(crate_name);
        let bytes = format!("{crate_name} {variant} {arch}").into_bytes();
        let path = dist_dir.join(&relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &bytes).unwrap();
        // The SBOM and provenance `cargo xtask dist` writes beside each artifact, which the
        // image attaches as referrers (stand-ins too).
        for (kind, suffix, _) in referrer::RECORDS {
            let record = dist_dir.join(provenance::record_path(
                &relative.to_string_lossy(),
                kind,
                suffix,
            ));
            std::fs::create_dir_all(record.parent().unwrap()).unwrap();
            std::fs::write(&record, format!("{{\"{kind}\": \"{crate_name}\"}}\n")).unwrap();
        }
        artifacts.push(json!({
            "path": relative.to_string_lossy(), "kind": "server-binary",
            "crate": crate_name, "crate_version": "0.1.0", "role": role.as_str(),
            "variant": variant, "target": target, "target_cpu": target_cpu, "rustflags": [],
            "sha256": dist::sha256_hex(&bytes), "size": bytes.len(),
            "unstripped_path": null, "unstripped_sha256": null,
            "rustc_version": "rustc", "git_commit": "abc", "cargo_lock_sha256": "00"
        }));
        relative
    };
    let mut variants = Vec::new();
    let mut cross_built = None;
    for variant in &workspace.variants {
        variants.push(
            json!({"name": variant.name, "target_cpu": variant.target_cpu,
            "rustflags": variant.rustflags, "description": ""}),
        );
        if variant.architectures.iter().any(|a| a == host) {
            add(
                &server.name,
                Role::Server,
                &variant.name,
                &variant.target_cpu,
                host,
            );
        }
        if variant.target_cpu == dist::BASELINE_CPU {
            add(
                &launcher.name,
                Role::Launcher,
                &variant.name,
                "generic",
                host,
            );
            if variant.architectures.iter().any(|a| a == foreign) {
                add(
                    &launcher.name,
                    Role::Launcher,
                    &variant.name,
                    "generic",
                    foreign,
                );
                cross_built = Some(add(
                    &server.name,
                    Role::Server,
                    &variant.name,
                    "generic",
                    foreign,
                ));
            }
        }
    }
    let cross_built = cross_built.expect("the baseline variant declares a second architecture");
    assert!(
        cross_built.starts_with(format!("generic/{foreign}")),
        "{}",
        cross_built.display()
    );
    let manifest = json!({
        "schema_version": Manifest::SCHEMA_VERSION, "git_commit": "abc", "git_dirty": false,
        "source_date_epoch": 1_763_769_600u64, "rustc_version": "rustc",
        "cargo_lock_sha256": "00", "profile": "audit", "variants": variants,
        "artifacts": artifacts
    });
    std::fs::write(
        dist_dir.join(Manifest::FILE_NAME),
        serde_json::to_string_pretty(&manifest).unwrap(),
    )
    .unwrap();

    let out = dir.path().join("images");
    xtask::image::run(
        &workspace,
        &ImageArgs {
            crates: vec![server.name.clone()],
            variants: vec![],
            dist: Some(dist_dir.clone()),
            out: Some(out.clone()),
            launcher: None,
            smoke: false,
        },
    )
    .unwrap();

    let layout = out.join(&server.name);
    let index = read_json(&layout.join("index.json"));
    let by_tag = |tag: &str| -> String {
        index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .unwrap_or_else(|| panic!("no tag {tag} in {index:#}"))["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let oci_arch = if foreign == "aarch64" {
        "arm64"
    } else {
        "amd64"
    };
    let platforms = read_json(&blob(&layout, &by_tag("platforms")));
    let entry = platforms["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["platform"]["architecture"] == oci_arch)
        .unwrap_or_else(|| panic!("no {oci_arch} entry in {platforms:#}"));
    assert_eq!(entry["platform"]["os"], "linux");
    assert!(entry["platform"].get("variant").is_none(), "{entry:#}");
    let digest = entry["digest"].as_str().unwrap();
    assert_eq!(digest, by_tag(&format!("generic-{oci_arch}")));
    let expected = std::fs::read(dist_dir.join(&cross_built)).unwrap();
    let files = layer_files(&layout, digest);
    let entrypoint = format!("usr/local/bin/{}", server.name);
    let shipped = files
        .iter()
        .find(|(path, _)| path.trim_start_matches("./") == entrypoint)
        .unwrap_or_else(|| panic!("no {entrypoint} in the {oci_arch} image"));
    assert_eq!(
        shipped.1, expected,
        "the {oci_arch} image ships the cross build"
    );
    // The foreign build is in no image of this machine's architecture.
    let latest = layer_files(&layout, &by_tag("latest"));
    assert!(latest.iter().all(|(_, bytes)| *bytes != expected));
}
