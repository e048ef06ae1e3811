//! An artifact's bits are a function of (crate, variant, target, sources) only: every shipped
//! crate's dependencies resolve to the same features when it is built alone (as Nix does,
//! `-p <crate>`) and when it is built with the other crates of its dist job (as
//! `cargo xtask dist` does). Before crates/workspace-hack, devops alone and devops in the
//! full dist differed in ten dependencies.

use xtask::dist::isolation;
use xtask::metadata::Workspace;

#[test]
fn every_shipped_crate_resolves_the_same_alone_and_with_the_others() {
    let workspace = Workspace::load().unwrap();
    let differences = isolation::differences(&workspace).unwrap();
    assert!(
        differences.is_empty(),
        "dependency features depend on what is built together:\n  {}\n\
         run `cargo hakari generate` and `cargo hakari manage-deps` (see .config/hakari.toml)",
        differences.join("\n  ")
    );
}
