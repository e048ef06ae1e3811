//! The linked-crate graph of one package, from `cargo tree --prefix depth`: each line's
//! parent is the nearest line above it one level up, so the edges are the tree's.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Resolution, output};

/// `(name, version)` of a crate (version without the `v`).
pub type Key = (String, String);

/// Every linked crate of `package` → the linked crates it depends on.
pub fn linked(resolution: &Resolution, package: &str) -> Result<BTreeMap<Key, BTreeSet<Key>>> {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
    command
        .current_dir(&resolution.root)
        .args(["tree", "--locked", "--edges", "normal", "--prefix", "depth"])
        .args(["--format", "{p}", "--target", &resolution.target])
        .args(["--package", package]);
    // Only this package's own features can be asked of a build of it alone.
    for feature in &resolution.features {
        if feature
            .split_once('/')
            .is_some_and(|(owner, _)| owner == package)
        {
            command.args(["--features", feature]);
        }
    }
    // The feature unifier is cut out of the parsed tree, not with `--prune`: cargo refuses a
    // `--prune` spec that matches nothing, which it does for a package that does not
    // depend on the unifier (mcp-launcher, mcp-rust-core).
    let printed = output(&mut command)
        .with_context(|| format!("listing what {package} links (cargo tree)"))?;
    let graph = parse(&printed, resolution.unifier.as_deref())?;
    if graph.is_empty() {
        bail!("cargo tree printed nothing for {package}");
    }
    Ok(graph)
}

/// Lines `2serde v1.0.228`, `0devops v0.1.0 (/path)`, `3quote v1.0.40 (proc-macro)`, with
/// ` (*)` on repeated nodes. Proc-macros, the crate named `cut` (the feature unifier), and
/// everything below them are left out.
pub fn parse(output: &str, cut: Option<&str>) -> Result<BTreeMap<Key, BTreeSet<Key>>> {
    let mut graph: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    // The path from the root to the current line: (depth, crate, under a proc-macro).
    let mut path: Vec<(usize, Key, bool)> = Vec::new();
    for line in output.lines().filter(|l| !l.trim().is_empty()) {
        let digits = line.chars().take_while(char::is_ascii_digit).count();
        let depth: usize = line[..digits]
            .parse()
            .with_context(|| format!("unexpected cargo tree line `{line}`"))?;
        let mut words = line[digits..].split_whitespace();
        let (Some(name), Some(version)) = (words.next(), words.next()) else {
            bail!("unexpected cargo tree line `{line}`");
        };
        let key = (name.to_owned(), version.trim_start_matches('v').to_owned());
        while path.last().is_some_and(|(d, ..)| *d >= depth) {
            path.pop();
        }
        let host = line.contains("(proc-macro)")
            || cut == Some(name)
            || path.last().is_some_and(|(.., host)| *host);
        if !host {
            graph.entry(key.clone()).or_default();
            if let Some((_, parent, _)) = path.last() {
                graph.entry(parent.clone()).or_default().insert(key.clone());
            }
        }
        path.push((depth, key, host));
    }
    Ok(graph)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edges_follow_depth_and_proc_macros_and_the_unifier_are_cut_with_their_subtrees() {
        let graph = parse(
            "0app v0.1.0 (/ws/app)\n1serde v1.0.0\n2serde_derive v1.0.0 (proc-macro)\n\
             3quote v1.0.0\n2serde_core v1.0.0\n1tokio v1.0.0\n2serde_core v1.0.0 (*)\n\
             1workspace-hack v0.1.0 (/ws/hack)\n2regex v1.0.0\n",
            Some("workspace-hack"),
        )
        .unwrap();
        let key = |n: &str| (n.to_owned(), "1.0.0".to_owned());
        assert_eq!(
            graph.keys().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
            ["app", "serde", "serde_core", "tokio"]
        );
        let app = ("app".to_owned(), "0.1.0".to_owned());
        assert_eq!(graph[&app], BTreeSet::from([key("serde"), key("tokio")]));
        assert_eq!(graph[&key("serde")], BTreeSet::from([key("serde_core")]));
        assert_eq!(graph[&key("tokio")], BTreeSet::from([key("serde_core")]));
        assert!(parse("no depth here", None).is_err());
        // Without a unifier to cut, it is a crate like any other.
        let uncut = parse("0app v0.1.0\n1workspace-hack v0.1.0\n2regex v1.0.0\n", None).unwrap();
        assert_eq!(uncut.len(), 3);
    }
}
