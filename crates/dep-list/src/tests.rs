//! Tests of the linked-crate list against this workspace's real resolution, and of the
//! embedded section read back with cargo-auditable's own reader (`auditable-info`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::*;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
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
fn the_embedded_list_reads_back_with_cargo_auditables_reader() {
    let resolution = resolve(&workspace_root(), "x86_64-unknown-linux-musl", &[]).unwrap();
    let list = LinkedCrates::of(&resolution, "devops").unwrap();
    let objcopy = toolchain_objcopy(&workspace_root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Any ELF file does: this test's own executable, stripped like a shipped artifact.
    let binary = dir.path().join("artifact");
    output(
        Command::new(&objcopy)
            .arg("--strip-all")
            .arg(std::env::current_exe().unwrap())
            .arg(&binary),
    )
    .unwrap();
    let limits = auditable_info::Limits::default();
    assert!(auditable_info::audit_info_from_file(&binary, limits).is_err());
    let bytes = list.section_bytes().unwrap();
    assert_eq!(bytes, list.section_bytes().unwrap(), "not deterministic");
    embed(&objcopy, &binary, &bytes).unwrap();
    let read = auditable_info::audit_info_from_file(&binary, limits).unwrap();
    assert_eq!(read, list.to_auditable().unwrap());
    assert_eq!(read.packages.iter().filter(|p| p.root).count(), 1);
    // A second list is refused (objcopy would quietly add a second section, and readers
    // take the first); the file keeps the first.
    let err = embed(&objcopy, &binary, &bytes).unwrap_err();
    assert!(format!("{err:#}").contains(SECTION), "{err:#}");
    assert_eq!(
        auditable_info::audit_info_from_file(&binary, limits).unwrap(),
        read
    );
}

#[test]
fn sources_map_to_the_auditable_kinds() {
    let io = "registry+https://github.com/rust-lang/crates.io-index";
    assert_eq!(auditable_source(Some(io)), Source::CratesIo);
    assert_eq!(
        auditable_source(Some("sparse+https://index.crates.io/")),
        Source::CratesIo
    );
    assert_eq!(auditable_source(None), Source::Local);
    assert_eq!(
        auditable_source(Some("git+https://example.org/a#abc")),
        Source::Git
    );
}

/// A workspace with a cargo-hakari hack (path crates only, so cargo needs no network).
fn hakari_fixture(with_config: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"app\", \"hack\"]\n",
    );
    write(
        "app/Cargo.toml",
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
         [dependencies]\nworkspace-hack = { path = \"../hack\" }\n",
    );
    write("app/src/main.rs", "fn main() {}\n");
    write(
        "hack/Cargo.toml",
        "# This file is generated by `cargo hakari`.\n[package]\nname = \"workspace-hack\"\n\
         version = \"0.1.0\"\nedition = \"2024\"\n",
    );
    write("hack/src/lib.rs", "");
    if with_config {
        write(
            ".config/hakari.toml",
            "hakari-package = \"workspace-hack\"\n",
        );
    }
    output(
        Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["generate-lockfile", "--offline"])
            .current_dir(dir.path()),
    )
    .unwrap();
    dir
}

#[test]
fn a_hakari_hack_without_its_config_is_an_error_not_a_longer_list() {
    let target = "x86_64-unknown-linux-gnu";
    let unconfigured = hakari_fixture(false);
    let err = resolve(unconfigured.path(), target, &[])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`workspace-hack`") && err.contains(".config/hakari.toml"),
        "{err}"
    );
    let configured = hakari_fixture(true);
    let resolution = resolve(configured.path(), target, &[]).unwrap();
    let app = LinkedCrates::of(&resolution, "app").unwrap();
    assert_eq!(names(&app), BTreeSet::from(["app"]));
}
