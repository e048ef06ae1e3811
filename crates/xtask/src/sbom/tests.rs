//! Tests of the linked-crate list against this workspace's real resolution, and of the
//! embedded section read back with cargo-auditable's own reader (`auditable-info`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The toolchain's `rust-objcopy` (what dist strips and embeds with).
pub(crate) fn rust_objcopy() -> PathBuf {
    let sysroot = process::output(Command::new("rustc").args(["--print", "sysroot"])).unwrap();
    let host = process::output(Command::new("rustc").args(["--print", "host-tuple"])).unwrap();
    Path::new(sysroot.trim())
        .join("lib/rustlib")
        .join(host.trim())
        .join("bin/rust-objcopy")
}

fn names(list: &LinkedCrates) -> BTreeSet<&str> {
    list.crates.iter().map(|c| c.name.as_str()).collect()
}

#[test]
fn a_server_lists_what_it_links_and_nothing_of_the_build_or_other_targets() {
    let metadata = resolve(&workspace_root(), "x86_64-unknown-linux-musl", &[]).unwrap();
    let devops = LinkedCrates::of(&metadata, "devops").unwrap();
    let linked = names(&devops);
    assert_eq!(devops.root().unwrap().name, "devops");
    assert_eq!(devops.crates.iter().filter(|c| c.root).count(), 1);
    for expected in ["tokio", "rmcp", "serde_json", "mcp-server-runtime"] {
        assert!(linked.contains(expected), "{expected} missing: {linked:?}");
    }
    // xtask's own dependencies, proc-macros, Windows-only and dev-only crates are not linked.
    for absent in [
        "indicatif",
        "cargo_metadata",
        "serde_derive",
        "windows-sys",
        "tempfile",
        "xtask",
        // Empty, and never loaded by rustc: see the module documentation.
        "workspace-hack",
    ] {
        assert!(!linked.contains(absent), "{absent} listed: {linked:?}");
    }
    // Far fewer than the whole lock file.
    assert!(devops.crates.len() < metadata.metadata.packages.len() / 2);
    // Indices are in range and the format's own validation (one root, acyclic) passes.
    let info = devops.to_auditable().unwrap();
    assert_eq!(info.packages.len(), devops.crates.len());
    // The python feature reaches the module's list only when asked for.
    let plain = resolve(&workspace_root(), "x86_64-unknown-linux-gnu", &[]).unwrap();
    let with_python = resolve(
        &workspace_root(),
        "x86_64-unknown-linux-gnu",
        &["mcp-rust-core/python".to_owned()],
    )
    .unwrap();
    assert!(!names(&LinkedCrates::of(&plain, "mcp-rust-core").unwrap()).contains("pyo3"));
    assert!(names(&LinkedCrates::of(&with_python, "mcp-rust-core").unwrap()).contains("pyo3"));
    let err = LinkedCrates::of(&metadata, "no-such-crate").unwrap_err();
    assert!(err.to_string().contains("not a package"), "{err}");
}

#[test]
fn each_servers_list_is_what_cargo_links_into_it_not_the_workspaces() {
    let target = "x86_64-unknown-linux-musl";
    let resolution = resolve(&workspace_root(), target, &[]).unwrap();
    assert_eq!(resolution.unifier.as_deref(), Some("workspace-hack"));
    let bash_god = LinkedCrates::of(&resolution, "bash-god").unwrap();
    let devops = LinkedCrates::of(&resolution, "devops").unwrap();
    // devops checks HTTPS endpoints (rustls with ring and webpki-roots); bash-god has no TLS.
    // Both serve MCP over HTTP (axum, so hyper).
    for tls in ["rustls", "ring", "webpki-roots", "rustls-webpki"] {
        assert!(names(&devops).contains(tls), "devops lacks {tls}");
        assert!(!names(&bash_god).contains(tls), "bash-god lists {tls}");
    }
    assert!(names(&bash_god).contains("hyper"));
    // bash-god's sandbox (landlock, seccompiler) is not in devops.
    for sandbox in ["landlock", "seccompiler", "exec-sandbox"] {
        assert!(
            names(&bash_god).contains(sandbox),
            "bash-god lacks {sandbox}"
        );
        assert!(!names(&devops).contains(sandbox), "devops lists {sandbox}");
    }
    // Nothing only the workspace-hack reaches, nor the hack itself.
    assert!(!names(&bash_god).contains("workspace-hack"));
    // Every dependency index points into the list, and the format's checks pass.
    bash_god.to_auditable().unwrap();
    // A package that does not depend on the workspace-hack (the launcher is std-only) is
    // listed too: the full CI dist once failed on it.
    let launcher = LinkedCrates::of(&resolution, "mcp-launcher").unwrap();
    assert_eq!(names(&launcher), BTreeSet::from(["mcp-launcher"]));
}

#[test]
fn the_embedded_list_reads_back_with_cargo_auditables_reader_and_matches_the_sbom() {
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
    let limits = auditable_info::Limits::default();
    assert!(auditable_info::audit_info_from_file(&binary, limits).is_err());
    let bytes = list.section_bytes().unwrap();
    assert_eq!(bytes, list.section_bytes().unwrap(), "not deterministic");
    embed(&rust_objcopy(), &binary, &bytes).unwrap();
    let copy = dir.path().join("again");
    std::fs::copy(&binary, &copy).unwrap();
    let read = auditable_info::audit_info_from_file(&binary, limits).unwrap();
    assert_eq!(read, list.to_auditable().unwrap());
    assert_eq!(read.packages.iter().filter(|p| p.root).count(), 1);

    let sbom = list.cyclonedx("generic/bin/devops", "ab12").unwrap();
    let components = sbom["components"].as_array().unwrap();
    // Every linked crate but the artifact's own package (metadata.component) is a component.
    assert_eq!(components.len() + 1, read.packages.len());
    assert_eq!(sbom["metadata"]["component"]["name"], "devops");
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
}

#[test]
fn sources_map_to_the_auditable_kinds_and_purls() {
    let crate_with = |source: Option<&str>| LinkedCrate {
        name: "a".into(),
        version: "1.0.0".into(),
        source: source.map(str::to_owned),
        dependencies: vec![],
        root: false,
    };
    let io = "registry+https://github.com/rust-lang/crates.io-index";
    assert_eq!(auditable_source(Some(io)), Source::CratesIo);
    assert_eq!(auditable_source(None), Source::Local);
    assert_eq!(
        auditable_source(Some("git+https://example.org/a#abc")),
        Source::Git
    );
    assert_eq!(purl(&crate_with(Some(io))), "pkg:cargo/a@1.0.0");
    assert_eq!(
        purl(&crate_with(Some("git+https://example.org/a?rev=1#abc"))),
        "pkg:cargo/a@1.0.0?vcs_url=git%2Bhttps://example.org/a%3Frev%3D1%23abc"
    );
}
