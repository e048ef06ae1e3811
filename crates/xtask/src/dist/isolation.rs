//! Whether a shipped crate's dependencies get the same features whichever crates it is built
//! with. Cargo unifies features across the packages of one invocation, so without the
//! workspace-hack (`crates/workspace-hack`, cargo-hakari) `cargo build -p devops` and the
//! full dist's `-p bash-god -p devops …` compile some dependencies with different features
//! and give different devops binaries; Nix builds each crate alone, xtask builds a target's
//! crates together. Asked of `cargo tree`, which resolves features exactly as a build of the
//! same selection would, without compiling anything. (The bits themselves are compared by
//! `cargo xtask verify --rebuild`, which rebuilds a server alone and compares it with the
//! full dist's.)

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::Result;

use super::{BASELINE_CPU, plan};
use crate::metadata::{CrateSpec, Role, Workspace};
use crate::process;

/// `target name vX.Y.Z` or `host name vX.Y.Z` (proc-macros and what they depend on) → the
/// feature lists it is resolved with (one, unless cargo tree shows two instances).
type Resolution = BTreeMap<String, BTreeSet<String>>;

/// For every baseline dist job (of every architecture it declares) with more than one crate, every dependency whose
/// features differ between building one crate alone and building the job's crates together,
/// as readable lines. Empty: every artifact's dependencies are the same either way.
pub fn differences(workspace: &Workspace) -> Result<Vec<String>> {
    let crates: Vec<&CrateSpec> = workspace.shipped_crates().collect();
    let baseline: Vec<_> = workspace
        .variants
        .iter()
        .filter(|v| v.target_cpu == BASELINE_CPU)
        .collect();
    let mut found = Vec::new();
    let architectures = super::architectures(&baseline, &[])?;
    for job in plan(&baseline, &crates, &architectures) {
        if job.specs.len() < 2 {
            continue;
        }
        let together = resolve(workspace, &job.target, &job.specs)?;
        for spec in &job.specs {
            let alone = resolve(workspace, &job.target, &[spec])?;
            for (package, features) in &alone {
                let with_others = together.get(package).cloned().unwrap_or_default();
                if *features != with_others {
                    found.push(format!(
                        "{} ({}): {package} has features {} alone but {} with {}",
                        spec.name,
                        job.target,
                        show(features),
                        show(&with_others),
                        job.specs
                            .iter()
                            .filter(|s| s.name != spec.name)
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
    }
    Ok(found)
}

fn show(sets: &BTreeSet<String>) -> String {
    let shown: Vec<String> = sets.iter().map(|s| format!("[{s}]")).collect();
    shown.join(" and ")
}

/// The resolved normal dependencies of building `specs` together for `target`, as dist
/// builds them (the Python module with its Python feature).
fn resolve(workspace: &Workspace, target: &str, specs: &[&CrateSpec]) -> Result<Resolution> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command.current_dir(&workspace.root).args([
        "tree", "--locked", "--target", target, "--edges", "normal", "--prefix", "depth",
        "--format", "{p}|{f}",
    ]);
    for spec in specs {
        command.args(["--package", &spec.name]);
        if spec.role == Role::PythonModule
            && let Some(feature) = &spec.python_feature
        {
            command.args(["--features", &format!("{}/{feature}", spec.name)]);
        }
    }
    Ok(parse_tree(&process::output(&mut command)?))
}

/// Lines of `cargo tree --prefix depth --format '{p}|{f}'`:
/// `2serde_derive v1.0.228 (proc-macro)|a,b`; repeated nodes end in ` (*)`. A node is a host
/// node when it, or a node above it, is a proc-macro.
pub fn parse_tree(output: &str) -> Resolution {
    let mut resolution = Resolution::new();
    // (depth, host) of the nodes on the path to the current line.
    let mut path: Vec<(usize, bool)> = Vec::new();
    for line in output.lines() {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        let Some((package, features)) = line[digits..].split_once('|') else {
            continue;
        };
        let mut words = package.split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            continue;
        };
        while path.last().is_some_and(|(d, _)| *d >= depth) {
            path.pop();
        }
        let host = path.last().is_some_and(|(_, host)| *host) || package.contains("(proc-macro)");
        path.push((depth, host));
        let side = if host { "host" } else { "target" };
        let features = features.trim().trim_end_matches("(*)").trim();
        resolution
            .entry(format!("{side} {name} {version}"))
            .or_default()
            .insert(features.to_owned());
    }
    resolution
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_lines_become_packages_with_their_feature_sets() {
        let output = "0devops v0.1.0 (/ws/crates/devops)|\n\
                      1serde v1.0.229|alloc,default,std\n\
                      2serde_derive v1.0.229 (proc-macro)|default\n\
                      3proc-macro2 v1.0.107|default,proc-macro\n\
                      1serde v1.0.229|alloc,default,std (*)\n\
                      1proc-macro2 v1.0.107|proc-macro\n\
                      1proc-macro2 v1.0.107|nightly\n";
        let resolution = parse_tree(output);
        assert_eq!(
            resolution["target devops v0.1.0"],
            BTreeSet::from([String::new()])
        );
        assert_eq!(
            resolution["target serde v1.0.229"],
            BTreeSet::from(["alloc,default,std".to_owned()])
        );
        assert!(resolution.contains_key("host serde_derive v1.0.229"));
        // Below the proc-macro: a host build; at depth 1 again: target builds.
        assert_eq!(
            resolution["host proc-macro2 v1.0.107"],
            BTreeSet::from(["default,proc-macro".to_owned()])
        );
        assert_eq!(resolution["target proc-macro2 v1.0.107"].len(), 2);
    }

    /// A workspace where two servers ask for different features of a shared path
    /// dependency, with and without a hack crate that asks for both.
    fn fixture(with_hack: bool) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\"]\n\
             [workspace.metadata.mcp-foundry.variants.generic]\ndescription = \"\"\n\
             target-cpu = \"generic\"\narchitectures = [\"x86_64\", \"aarch64\"]\n",
        );
        let package = |name: &str, role: &str, deps: &str| {
            format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                 [package.metadata.mcp-foundry]\nrole = \"{role}\"\n[dependencies]\n{deps}"
            )
        };
        write(
            "crates/shared/Cargo.toml",
            &(package("shared", "library", "") + "[features]\na = []\nb = []\n"),
        );
        write("crates/shared/src/lib.rs", "");
        let hack = if with_hack {
            write(
                "crates/hack/Cargo.toml",
                &package(
                    "hack",
                    "library",
                    "shared = { path = \"../shared\", features = [\"a\", \"b\"] }\n",
                ),
            );
            write("crates/hack/src/lib.rs", "");
            "hack = { path = \"../hack\" }\n"
        } else {
            ""
        };
        for (server, feature) in [("one", "a"), ("two", "b")] {
            write(
                &format!("crates/{server}/Cargo.toml"),
                &package(
                    server,
                    "server",
                    &format!(
                        "shared = {{ path = \"../shared\", features = [\"{feature}\"] }}\n{hack}"
                    ),
                ),
            );
            write(&format!("crates/{server}/src/main.rs"), "fn main() {}\n");
        }
        let status = Command::new("cargo")
            .args(["generate-lockfile", "--offline"])
            .current_dir(dir.path())
            .status()
            .unwrap();
        assert!(status.success());
        dir
    }

    #[test]
    fn features_that_depend_on_the_selection_are_found_and_a_hack_removes_them() {
        let dir = fixture(false);
        let workspace = Workspace::load_from(dir.path()).unwrap();
        let found = differences(&workspace).unwrap();
        // Two per architecture the baseline declares: the cross build is checked too.
        assert_eq!(found.len(), 4, "{found:#?}");
        assert!(
            found
                .iter()
                .any(|line| line.starts_with("two (aarch64-unknown-linux-musl)")),
            "{found:#?}"
        );
        assert!(
            found[0].starts_with("one (")
                && found[0]
                    .contains("target shared v0.1.0 has features [a] alone but [a,b] with two"),
            "{found:#?}"
        );

        let dir = fixture(true);
        let workspace = Workspace::load_from(dir.path()).unwrap();
        assert_eq!(differences(&workspace).unwrap(), Vec::<String>::new());
    }
}
