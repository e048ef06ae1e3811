//! `directory_tree`: a directory as nested JSON, depth-limited, honouring `.gitignore`.

use ignore::WalkBuilder;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{Globs, confine_or_first_root, display_path, glob_overrides};

/// Depth when `max_depth` is not given.
pub const DEFAULT_MAX_DEPTH: usize = 3;
/// The largest `max_depth` accepted.
pub const MAX_DEPTH_LIMIT: usize = 32;
/// Entries returned when `max_entries` is not given.
pub const DEFAULT_MAX_ENTRIES: usize = 2_000;
/// The largest `max_entries` accepted.
pub const MAX_ENTRIES_LIMIT: usize = 20_000;

/// Arguments of `directory_tree`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DirectoryTreeParams {
    /// Directory to show; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Levels below `path` to expand (1 = its direct entries). Default 3, at most 32.
    #[serde(default)]
    pub max_depth: Option<usize>,
    /// Entries returned at most. Default 2000, at most 20000.
    #[serde(default)]
    pub max_entries: Option<usize>,
    /// Globs of entries to leave out (gitignore syntax, relative to `path`): `"target"`,
    /// `["*.log", "docs/generated/"]`.
    #[serde(default)]
    pub exclude: Option<Globs>,
    /// Show hidden files and directories too.
    #[serde(default)]
    pub include_hidden: bool,
    /// Show entries .gitignore/.ignore exclude too.
    #[serde(default)]
    pub include_ignored: bool,
}

/// One entry of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct TreeNode {
    /// File name (the path as given for the top entry).
    pub name: String,
    /// file, directory, symlink or other (FIFO, socket, device).
    pub kind: String,
    /// Size in bytes (files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Entries of a directory, sorted by name; absent when the depth limit stopped the
    /// expansion (see `expanded`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub children: Option<Vec<TreeNode>>,
    /// False for a directory at the depth limit, whose entries were not read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expanded: Option<bool>,
}

/// What `directory_tree` returned.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DirectoryTreeOutput {
    pub tree: TreeNode,
    /// Entries below the top one.
    pub entries: usize,
    /// True when `max_entries` stopped the walk (later entries are missing).
    pub truncated: bool,
    /// Entries that could not be read (permissions, vanished), first few.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Runs `directory_tree`.
pub fn directory_tree(
    params: &DirectoryTreeParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<DirectoryTreeOutput, ToolError> {
    let max_depth = params.max_depth.unwrap_or(DEFAULT_MAX_DEPTH);
    if max_depth == 0 || max_depth > MAX_DEPTH_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_depth must be between 1 and {MAX_DEPTH_LIMIT}, got {max_depth}"
        )));
    }
    let max_entries = params.max_entries.unwrap_or(DEFAULT_MAX_ENTRIES);
    if max_entries == 0 || max_entries > MAX_ENTRIES_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_entries must be between 1 and {MAX_ENTRIES_LIMIT}, got {max_entries}"
        )));
    }
    let base = confine_or_first_root(params.path.as_deref(), roots)?;
    if !base.is_dir() {
        return Err(ToolError::invalid_input(format!(
            "{} is not a directory; pass a directory (file_info describes a file)",
            display_path(roots, &base)
        )));
    }
    // Every glob excludes: a leading `!` is implied.
    let excludes: Vec<String> = params
        .exclude
        .clone()
        .map(Globs::into_vec)
        .unwrap_or_default()
        .into_iter()
        .filter(|glob| !glob.trim().is_empty())
        .map(|glob| format!("!{}", glob.trim().trim_start_matches('!')))
        .collect();
    let mut builder = WalkBuilder::new(&base);
    builder
        .hidden(!params.include_hidden)
        .follow_links(false)
        .max_depth(Some(max_depth))
        .sort_by_file_name(std::cmp::Ord::cmp);
    if params.include_ignored {
        builder
            .standard_filters(false)
            .hidden(!params.include_hidden);
    }
    if let Some(overrides) = glob_overrides(&base, &excludes)? {
        builder.overrides(overrides);
    }
    let mut stack = vec![TreeNode {
        name: display_path(roots, &base),
        kind: "directory".to_owned(),
        size: None,
        children: Some(Vec::new()),
        expanded: None,
    }];
    let mut entries = 0;
    let mut truncated = false;
    let mut errors = Vec::new();
    for entry in builder.build() {
        cancel.check()?;
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                if errors.len() < 20 {
                    errors.push(err.to_string());
                }
                continue;
            }
        };
        let depth = entry.depth();
        if depth == 0 {
            continue;
        }
        if entries == max_entries {
            truncated = true;
            break;
        }
        entries += 1;
        // Close the directories this entry is not inside of.
        while stack.len() > depth {
            close(&mut stack);
        }
        let kind = entry.file_type();
        let is_dir = kind.is_some_and(|k| k.is_dir());
        let node = TreeNode {
            name: entry.file_name().to_string_lossy().into_owned(),
            kind: match kind {
                Some(k) if k.is_dir() => "directory",
                Some(k) if k.is_file() => "file",
                Some(k) if k.is_symlink() => "symlink",
                _ => "other",
            }
            .to_owned(),
            size: kind
                .is_some_and(|k| k.is_file())
                .then(|| entry.metadata().ok().map(|m| m.len()))
                .flatten(),
            children: (is_dir && depth < max_depth).then(Vec::new),
            expanded: (is_dir && depth == max_depth).then_some(false),
        };
        if node.children.is_some() {
            stack.push(node);
        } else if let Some(parent) = stack.last_mut() {
            parent.children.get_or_insert_with(Vec::new).push(node);
        }
    }
    while stack.len() > 1 {
        close(&mut stack);
    }
    // invariant: the stack starts with the top node and `close` never pops the last one.
    let tree = stack.pop().expect("the top node stays on the stack");
    Ok(DirectoryTreeOutput {
        tree,
        entries,
        truncated,
        errors,
    })
}

/// Pops the innermost open directory into its parent.
fn close(stack: &mut Vec<TreeNode>) {
    if stack.len() > 1
        && let Some(node) = stack.pop()
        && let Some(parent) = stack.last_mut()
    {
        parent.children.get_or_insert_with(Vec::new).push(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::create_dir_all(root.join("src/deep/deeper")).unwrap();
        fs::create_dir_all(root.join("target/debug")).unwrap();
        fs::write(root.join("src/lib.rs"), "abc").unwrap();
        fs::write(root.join("src/deep/deeper/x.rs"), "x").unwrap();
        fs::write(root.join("target/debug/out"), "o").unwrap();
        fs::write(root.join("README"), "r").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    fn params() -> DirectoryTreeParams {
        DirectoryTreeParams {
            path: None,
            max_depth: None,
            max_entries: None,
            exclude: None,
            include_hidden: false,
            include_ignored: false,
        }
    }

    fn names(node: &TreeNode) -> Vec<&str> {
        node.children
            .iter()
            .flatten()
            .map(|child| child.name.as_str())
            .collect()
    }

    #[test]
    fn nested_sorted_gitignore_aware_and_depth_limited() {
        let (_dir, roots) = fixture();
        let mut p = params();
        p.max_depth = Some(2);
        let out = directory_tree(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(names(&out.tree), vec!["README", "src"]);
        let src = &out.tree.children.as_ref().unwrap()[1];
        assert_eq!(src.kind, "directory");
        assert_eq!(names(src), vec!["deep", "lib.rs"]);
        let deep = &src.children.as_ref().unwrap()[0];
        assert_eq!(
            (deep.children.is_none(), deep.expanded),
            (true, Some(false))
        );
        assert_eq!(src.children.as_ref().unwrap()[1].size, Some(3));
        assert_eq!(out.entries, 4);
        assert!(!out.truncated);

        p.max_depth = Some(5);
        p.include_ignored = true;
        p.exclude = Some(Globs::One("deep".into()));
        let out = directory_tree(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(names(&out.tree), vec!["README", "src", "target"]);
        let src = &out.tree.children.as_ref().unwrap()[1];
        assert_eq!(names(src), vec!["lib.rs"]);
    }

    #[test]
    fn caps_escapes_and_files_are_errors_or_flagged() {
        let (dir, roots) = fixture();
        let mut p = params();
        p.max_entries = Some(2);
        let out = directory_tree(&p, &roots, &CancelFlag::new()).unwrap();
        assert!(out.truncated && out.entries == 2);
        let mut p = params();
        p.path = Some("..".into());
        let err = directory_tree(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        p.path = Some("README".into());
        let err = directory_tree(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src/out")).unwrap();
        let out = directory_tree(&params(), &roots, &CancelFlag::new()).unwrap();
        let src = &out.tree.children.as_ref().unwrap()[1];
        let link = src
            .children
            .as_ref()
            .unwrap()
            .iter()
            .find(|c| c.name == "out");
        assert_eq!(
            link.map(|l| (l.kind.as_str(), l.children.is_none())),
            Some(("symlink", true))
        );
        p.path = Some("src/out".into());
        let err = directory_tree(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
    }
}
