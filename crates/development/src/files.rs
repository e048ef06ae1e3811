//! `list_files`: the files of a tree as git and ripgrep see them.

use code_intel::walk::{WalkOptions, WalkSummary, walk_paths};
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{Globs, confine_or_first_root, display_path, glob_overrides, is_hidden_name};

/// Files returned when `max` is not given.
pub const DEFAULT_MAX_FILES: usize = 1_000;
/// The largest `max` accepted.
pub const MAX_FILES_LIMIT: usize = 20_000;
/// Files a listing walks at most (after globs and ignore files pruned the tree).
pub const MAX_WALKED_FILES: usize = 200_000;

/// Arguments of `list_files`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ListFilesParams {
    /// Directory to list; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Only files matching this glob (or any of these), relative to `path`; a leading `!`
    /// excludes: `"*.rs"`, `["src/**", "!**/tests/**"]`.
    #[serde(default)]
    pub glob: Option<Globs>,
    /// Most files returned (sorted by path). Default 1000, at most 20000.
    #[serde(default)]
    pub max: Option<usize>,
    /// List hidden files and directories too.
    #[serde(default)]
    pub include_hidden: bool,
}

/// One listed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileEntry {
    /// Path relative to the first root when inside it.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}

/// What `list_files` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListFilesOutput {
    /// Files sorted by path, at most `max`.
    pub files: Vec<FileEntry>,
    /// Files that matched in total.
    pub total_files: usize,
    /// True when more files matched than were returned.
    pub truncated: bool,
    /// Files walked, caps hit, unreadable entries.
    pub walk: WalkSummary,
}

/// Runs `list_files`.
pub fn list_files(
    params: &ListFilesParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<ListFilesOutput, ToolError> {
    list_files_walking_at_most(params, roots, cancel, MAX_WALKED_FILES)
}

fn list_files_walking_at_most(
    params: &ListFilesParams,
    roots: &Roots,
    cancel: &CancelFlag,
    max_walked: usize,
) -> Result<ListFilesOutput, ToolError> {
    let max = params.max.unwrap_or(DEFAULT_MAX_FILES);
    if max == 0 || max > MAX_FILES_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max must be between 1 and {MAX_FILES_LIMIT}, got {max}"
        )));
    }
    let base = confine_or_first_root(params.path.as_deref(), roots)?;
    let globs = params.glob.clone().map(Globs::into_vec).unwrap_or_default();
    let overrides = glob_overrides(&base, &globs)?;
    let hide_named_dot_files = overrides.is_some() && !params.include_hidden;
    let options = WalkOptions {
        include_hidden: params.include_hidden,
        // Listing reads no contents: no reason to leave big files out or cap bytes.
        max_file_bytes: u64::MAX,
        max_total_bytes: u64::MAX,
        max_files: max_walked,
        overrides,
        ..WalkOptions::default()
    };
    let output = walk_paths(
        &base,
        &options,
        || cancel.is_cancelled(),
        |path, size| {
            let is_base = path == base;
            (is_base || !(hide_named_dot_files && is_hidden_name(path))).then(|| FileEntry {
                path: display_path(roots, path),
                size,
            })
        },
    );
    let mut files = output.items;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let total_files = files.len();
    files.truncate(max);
    Ok(ListFilesOutput {
        truncated: total_files > files.len(),
        files,
        total_files,
        walk: output.summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "build/\n*.tmp\n").unwrap();
        fs::create_dir_all(root.join("src/deep")).unwrap();
        fs::create_dir_all(root.join("build")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(root.join("src/a.rs"), "a").unwrap();
        fs::write(root.join("src/deep/b.py"), "bb").unwrap();
        fs::write(root.join("notes.tmp"), "x").unwrap();
        fs::write(root.join("build/out.o"), "x").unwrap();
        fs::write(root.join(".env"), "SECRET=1").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    fn params() -> ListFilesParams {
        ListFilesParams {
            path: None,
            glob: None,
            max: None,
            include_hidden: false,
        }
    }

    fn paths(out: &ListFilesOutput) -> Vec<&str> {
        out.files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn honours_gitignore_and_hidden_sorted() {
        let (_dir, roots) = fixture();
        let out = list_files(&params(), &roots, &CancelFlag::new()).unwrap();
        assert_eq!(
            paths(&out),
            vec![".gitignore", "src/a.rs", "src/deep/b.py"][1..]
        );
        assert_eq!(out.files[1].size, 2);
        let mut p = params();
        p.include_hidden = true;
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert!(paths(&out).contains(&".env"), "{out:?}");
    }

    #[test]
    fn glob_max_and_subdirectory() {
        let (_dir, roots) = fixture();
        let mut p = params();
        p.glob = Some(Globs::One("*.py".into()));
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/deep/b.py"]);
        let mut p = params();
        p.max = Some(1);
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(
            (out.files.len(), out.total_files, out.truncated),
            (1, 2, true)
        );
        let mut p = params();
        p.path = Some("src/deep".into());
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/deep/b.py"]);
        p.path = Some("empty".into());
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert!(out.files.is_empty() && !out.truncated);
    }

    #[test]
    fn excluded_directories_are_pruned_before_the_walk_cap() {
        let (dir, roots) = fixture();
        fs::create_dir(dir.path().join("vendor")).unwrap();
        for i in 0..20 {
            fs::write(dir.path().join(format!("vendor/v{i}.rs")), "v").unwrap();
        }
        let mut p = params();
        p.glob = Some(Globs::Many(vec!["*.rs".into(), "!vendor/".into()]));
        // 20 excluded files would blow a cap of 5 if they were walked and then dropped.
        let out = list_files_walking_at_most(&p, &roots, &CancelFlag::new(), 5).unwrap();
        assert_eq!(paths(&out), vec!["src/a.rs"]);
        assert_eq!(out.walk.files_visited, 1, "{:?}", out.walk);
        assert!(!out.walk.max_files_reached);
        // Without the exclusion the cap is reached, and the summary says so.
        p.glob = Some(Globs::One("*.rs".into()));
        let out = list_files_walking_at_most(&p, &roots, &CancelFlag::new(), 5).unwrap();
        assert!(out.walk.max_files_reached, "{:?}", out.walk);
    }

    #[test]
    fn globs_are_gitignore_style_and_keep_hidden_files_hidden() {
        let (dir, roots) = fixture();
        fs::write(dir.path().join("src/.secret.rs"), "s").unwrap();
        let mut p = params();
        // Anchored: only direct children of src.
        p.glob = Some(Globs::One("src/*.rs".into()));
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/a.rs"]);
        p.glob = Some(Globs::One("*.rs".into()));
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/a.rs"]);
        p.include_hidden = true;
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/.secret.rs", "src/a.rs"]);
        let mut p = params();
        p.glob = Some(Globs::One("**/deep/*".into()));
        let out = list_files(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(paths(&out), vec!["src/deep/b.py"]);
    }

    #[test]
    fn escapes_and_missing_paths_are_errors() {
        let (_dir, roots) = fixture();
        let mut p = params();
        p.path = Some("/".into());
        let err = list_files(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        p.path = Some("nope".into());
        let err = list_files(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("not found"), "{err}");
        let mut p = params();
        p.max = Some(MAX_FILES_LIMIT + 1);
        assert!(list_files(&p, &roots, &CancelFlag::new()).is_err());
    }

    #[test]
    fn symlink_out_of_the_root_is_not_listed() {
        let (dir, roots) = fixture();
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret.txt"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("src/link")).unwrap();
        let out = list_files(&params(), &roots, &CancelFlag::new()).unwrap();
        assert!(!paths(&out).iter().any(|p| p.contains("secret")), "{out:?}");
    }
}
