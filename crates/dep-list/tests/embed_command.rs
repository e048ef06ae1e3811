//! The `dep-list embed` command as the Nix packages run it, on a real ELF file, read back
//! with cargo-auditable's own reader.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `dep-list embed --package <package> --target x86_64-unknown-linux-musl <files>`.
fn embed(package: &str, files: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dep-list"))
        .args(["embed", "--package", package, "--target", TARGET])
        .args(files)
        .current_dir(workspace_root())
        .output()
        .unwrap()
}

const TARGET: &str = "x86_64-unknown-linux-musl";

#[test]
fn embed_writes_the_librarys_list_and_bad_input_is_an_error_that_changes_nothing() {
    let objcopy = dep_list::toolchain_objcopy(&workspace_root()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("bash-god");
    let status = Command::new(&objcopy)
        .arg("--strip-all")
        .arg(std::env::current_exe().unwrap())
        .arg(&binary)
        .status()
        .unwrap();
    assert!(status.success());
    let before = std::fs::read(&binary).unwrap();

    let unknown = embed("no-such-crate", &[&binary]);
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains("not a package of the workspace"),
        "{stderr}"
    );
    // A missing file anywhere in the list: nothing is changed, not even the files before it.
    let missing = embed("bash-god", &[&binary, &dir.path().join("absent")]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no such file"));
    assert_eq!(
        std::fs::read(&binary).unwrap(),
        before,
        "a failed run changed the file"
    );

    let embedded = embed("bash-god", &[&binary]);
    assert!(
        embedded.status.success(),
        "{}",
        String::from_utf8_lossy(&embedded.stderr)
    );
    let read =
        auditable_info::audit_info_from_file(&binary, auditable_info::Limits::default()).unwrap();
    let resolution = dep_list::resolve(&workspace_root(), TARGET, &[]).unwrap();
    let expected = dep_list::LinkedCrates::of(&resolution, "bash-god").unwrap();
    assert_eq!(read, expected.to_auditable().unwrap());
    // The exact bytes the library (what `cargo xtask dist` embeds) gives.
    let again = dir.path().join("again");
    std::fs::write(&again, &before).unwrap();
    dep_list::embed(&objcopy, &again, &expected.section_bytes().unwrap()).unwrap();
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&binary).unwrap()
    );
}
