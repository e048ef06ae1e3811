//! The CycloneDX SBOM of a real artifact's list, checked against the list embedded in it
//! and read back with cargo-auditable's own reader (`auditable-info`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::*;
use crate::process;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The toolchain's `rust-objcopy` (what dist strips and embeds with).
pub(crate) fn rust_objcopy() -> PathBuf {
    dep_list::toolchain_objcopy(&workspace_root()).unwrap()
}

#[test]
fn the_sbom_describes_the_embedded_list() {
    let resolution = resolve(&workspace_root(), "x86_64-unknown-linux-musl", &[]).unwrap();
    let list = LinkedCrates::of(&resolution, "devops").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Any ELF file does: this test's own executable, stripped like a shipped artifact.
    let binary = dir.path().join("artifact");
    process::output(
        Command::new(rust_objcopy())
            .arg("--strip-all")
            .arg(std::env::current_exe().unwrap())
            .arg(&binary),
    )
    .unwrap();
    embed(&rust_objcopy(), &binary, &list.section_bytes().unwrap()).unwrap();
    let read =
        auditable_info::audit_info_from_file(&binary, auditable_info::Limits::default()).unwrap();

    let sbom = cyclonedx(&list, "generic/bin/devops", "ab12").unwrap();
    let components = sbom["components"].as_array().unwrap();
    // Every linked crate but the artifact's own package (metadata.component) is a component.
    assert_eq!(components.len() + 1, read.packages.len());
    assert_eq!(sbom["metadata"]["component"]["name"], "devops");
    assert_eq!(
        sbom["metadata"]["component"]["hashes"][0]["content"],
        "ab12"
    );
    assert_eq!(
        sbom["dependencies"].as_array().unwrap().len(),
        read.packages.len()
    );
    let refs: BTreeSet<&str> = components
        .iter()
        .map(|c| c["bom-ref"].as_str().unwrap())
        .collect();
    assert_eq!(refs.len(), components.len(), "bom-refs are unique");
    assert!(refs.iter().any(|r| r.starts_with("pkg:cargo/tokio@")));
    let embedded: BTreeSet<String> = read
        .packages
        .iter()
        .filter(|p| !p.root)
        .map(|p| format!("pkg:cargo/{}@{}", p.name, p.version))
        .collect();
    let listed: BTreeSet<String> = refs.iter().map(|r| r.to_string()).collect();
    assert_eq!(
        listed, embedded,
        "the SBOM and the embedded list name other crates"
    );
}

#[test]
fn sources_map_to_purls() {
    let crate_with = |source: Option<&str>| LinkedCrate {
        name: "a".into(),
        version: "1.0.0".into(),
        source: source.map(str::to_owned),
        dependencies: vec![],
        root: false,
    };
    let io = "registry+https://github.com/rust-lang/crates.io-index";
    assert_eq!(purl(&crate_with(Some(io))), "pkg:cargo/a@1.0.0");
    assert_eq!(purl(&crate_with(None)), "pkg:cargo/a@1.0.0");
    assert_eq!(
        purl(&crate_with(Some("git+https://example.org/a?rev=1#abc"))),
        "pkg:cargo/a@1.0.0?vcs_url=git%2Bhttps://example.org/a%3Frev%3D1%23abc"
    );
    assert_eq!(
        purl(&crate_with(Some("registry+https://example.org/index"))),
        "pkg:cargo/a@1.0.0?repository_url=registry%2Bhttps://example.org/index"
    );
}
