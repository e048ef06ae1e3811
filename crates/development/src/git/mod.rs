//! The git tools, read-only, through `gix` (no `git` binary, so no option parsing: a
//! revision or path starting with `-` is a name like any other).
//!
//! - `git_info`: branch, HEAD, recent commits, changed files — [`info`].
//! - `git_diff`: worktree vs index, index vs HEAD, or commit vs commit — [`diff`].
//! - `git_log`: history with path, author and date filters — [`log`].
//! - `git_show`: one commit with stats and diff, or a blob/tree at `rev:path` — [`show`].
//! - `git_branches`: local and remote-tracking branches — [`branches`].
//!
//! `git_info` and `git_diff` keep a working tree's status between calls while inotify
//! proves it unchanged ([`watch`]).
//!
//! Every tool finds its repository with [`open_repository`], which stays within the roots:
//! discovery never looks above the root holding the start path (gix ceiling directories),
//! and a repository whose working tree or git directory lies outside the roots is refused.

pub mod branches;
pub mod diff;
pub mod info;
pub mod log;
mod objects;
mod patch;
pub mod show;
#[cfg(test)]
mod tests;
mod watch;

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use gix::bstr::{BStr, ByteSlice as _};
use mcp_server_runtime::{Roots, ToolError};
use schemars::JsonSchema;
use serde::Serialize;

pub use info::{GitInfo, GitInfoParams, git_info};

use crate::paths::{confine_or_first_root, display_path};

/// One commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct CommitInfo {
    /// Full hexadecimal object id.
    pub id: String,
    pub author: String,
    pub author_email: String,
    /// Author date, ISO 8601 with the author's UTC offset.
    pub date: String,
    /// First line of the message.
    pub summary: String,
}

pub(crate) fn failed(what: &str, err: impl std::fmt::Display) -> ToolError {
    ToolError::failed(format!("git: cannot {what}: {err}"))
}

/// The repository holding `path` (default: the first root), found without looking above
/// the root that contains it, and whose working tree and git directory are inside the
/// roots (a linked worktree's git directory may live in its main repository, which must
/// name this worktree back).
pub(crate) fn open_repository(
    path: Option<&str>,
    roots: &Roots,
) -> Result<gix::Repository, ToolError> {
    let start = confine_or_first_root(path, roots)?;
    let start = if start.is_file() {
        start
            .parent()
            .map_or_else(|| start.clone(), Path::to_path_buf)
    } else {
        start
    };
    // confine_or_first_root only returns paths inside a root; the innermost one bounds.
    let root = roots
        .iter()
        .filter(|root| start.starts_with(root))
        .max_by_key(|root| root.as_os_str().len())
        .unwrap_or(roots.first());
    let not_found = |err: &dyn std::fmt::Display| {
        let at = if start == root {
            String::new()
        } else {
            format!(" ({})", display_path(roots, &start))
        };
        ToolError::not_found(format!(
            "no git repository at or below the root {}{at}: {err}; repositories above a root are not searched, so start the server with --root at the repository's top",
            root.display(),
        ))
    };
    let repo = if start == root {
        // Nothing to discover: the root itself is the working tree (or bare git dir).
        gix::open_opts(&start, gix::open::Options::default()).map_err(|err| not_found(&err))?
    } else {
        // gix's ceiling directories: discovery may reach the root, never its parent.
        let options = gix::discover::upwards::Options {
            ceiling_dirs: vec![root.to_path_buf()],
            match_ceiling_dir_or_error: true,
            ..Default::default()
        };
        gix::discover_opts(&start, options, gix::open::Options::default())
            .map_err(|err| not_found(&err))?
    };
    check_within_roots(&repo, roots)?;
    let mut repo = repo;
    // Calls read the same commits and trees again and again (the history walk, HEAD's
    // trees for the status, each side of a diff): decoded objects are kept across calls
    // instead of re-opening, mapping and inflating loose objects each time.
    SHARED_OBJECTS.attach(&mut repo);
    Ok(repo)
}

/// The decoded objects every git call of this process shares (see [`objects`]).
static SHARED_OBJECTS: LazyLock<Arc<objects::SharedObjects>> = LazyLock::new(Arc::default);

/// The working-tree statuses every git call of this process shares (see [`watch`]).
pub(crate) static SHARED_STATUS: LazyLock<watch::StatusCache> = LazyLock::new(Default::default);

fn check_within_roots(repo: &gix::Repository, roots: &Roots) -> Result<(), ToolError> {
    let canonical = |path: &Path| path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    if let Some(workdir) = repo.workdir() {
        let workdir = canonical(workdir);
        if !roots.contains(&workdir) {
            return Err(ToolError::denied(format!(
                "the repository's working tree {} is outside the allowed roots (core.worktree?); refusing to read it",
                workdir.display()
            )));
        }
    }
    let git_dir = canonical(repo.git_dir());
    if roots.contains(&git_dir) || is_linked_worktree_of(repo, &git_dir) {
        Ok(())
    } else {
        Err(ToolError::denied(format!(
            "the repository's git directory {} is outside the allowed roots; refusing to read it",
            git_dir.display()
        )))
    }
}

/// True when `git_dir` is `<main>/.git/worktrees/<id>` whose `gitdir` file points back at
/// this working tree's `.git` file: the main repository chose this worktree, so reading
/// its history through it is what `git worktree add` meant.
fn is_linked_worktree_of(repo: &gix::Repository, git_dir: &Path) -> bool {
    let Some(workdir) = repo.workdir() else {
        return false;
    };
    let in_worktrees_dir = git_dir
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "worktrees");
    let Ok(back) = std::fs::read_to_string(git_dir.join("gitdir")) else {
        return false;
    };
    let (Ok(back), Ok(dot_git)) = (
        PathBuf::from(back.trim()).canonicalize(),
        workdir.join(".git").canonicalize(),
    ) else {
        return false;
    };
    in_worktrees_dir && back == dot_git
}

/// The working tree (or git dir of a bare repository) for messages and results.
pub(crate) fn repository_label(repo: &gix::Repository) -> String {
    repo.workdir()
        .unwrap_or_else(|| repo.git_dir())
        .display()
        .to_string()
}

/// Resolves a revision (`HEAD~2`, `main`, `v1.0`, a full or abbreviated id, `-weird`)
/// to a commit. It is only ever data for gix's parser, never an option.
pub(crate) fn resolve_commit<'r>(
    repo: &'r gix::Repository,
    rev: &str,
) -> Result<gix::Commit<'r>, ToolError> {
    if rev.trim().is_empty() {
        return Err(ToolError::invalid_input(
            "revision is empty; pass a branch, tag, commit id or an expression like HEAD~1",
        ));
    }
    let id = repo.rev_parse_single(rev.as_bytes().as_bstr()).map_err(|err| {
        ToolError::not_found(format!(
            "no revision {rev:?} in {} ({err}); pass a branch, tag, commit id or an expression like HEAD~1",
            repository_label(repo)
        ))
    })?;
    let object = id
        .object()
        .map_err(|err| failed(&format!("read {rev:?}"), err))?;
    object
        .peel_to_commit()
        .map_err(|err| ToolError::invalid_input(format!("{rev:?} does not name a commit: {err}")))
}

pub(crate) fn commit_info(commit: &gix::Commit<'_>) -> Result<CommitInfo, ToolError> {
    let author = commit
        .author()
        .map_err(|err| failed("read a commit author", err))?;
    let date = author
        .time()
        .map(|time| time.format_or_unix(gix::date::time::format::ISO8601_STRICT))
        .unwrap_or_default();
    let summary = commit
        .message()
        .map(|message| message.summary().to_str_lossy().into_owned())
        .unwrap_or_default();
    Ok(CommitInfo {
        id: commit.id.to_string(),
        author: author.name.trim().to_str_lossy().into_owned(),
        author_email: author.email.trim().to_str_lossy().into_owned(),
        date,
        summary,
    })
}

/// Git pathspecs (`src`, `*.rs`, `docs/**/*.md`, `:(exclude)vendor`) relative to the
/// working tree's top, matched without the process's current directory as a prefix.
pub(crate) struct PathFilter {
    search: Option<gix::pathspec::Search>,
}

impl PathFilter {
    pub(crate) fn new(repo: &gix::Repository, patterns: &[String]) -> Result<Self, ToolError> {
        let patterns: Vec<&String> = patterns.iter().filter(|p| !p.trim().is_empty()).collect();
        if patterns.is_empty() {
            return Ok(Self { search: None });
        }
        let defaults = repo
            .pathspec_defaults()
            .map_err(|err| failed("read the pathspec settings", err))?;
        let specs = patterns
            .iter()
            .map(|pattern| {
                gix::pathspec::parse(pattern.as_bytes(), defaults).map_err(|err| {
                    ToolError::invalid_input(format!(
                        "invalid path filter {pattern:?}: {err}; use a path (`src/lib.rs`, `docs`) or a glob (`*.rs`)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let top = repo.workdir().unwrap_or_else(|| repo.git_dir());
        let search = gix::pathspec::Search::from_specs(specs, None, top)
            .map_err(|err| ToolError::invalid_input(format!("invalid path filter: {err}")))?;
        Ok(Self {
            search: Some(search),
        })
    }

    pub(crate) fn is_active(&self) -> bool {
        self.search.is_some()
    }

    /// True when the repository-relative `path` (a file) passes the filter.
    pub(crate) fn matches(&mut self, path: &BStr) -> bool {
        match &mut self.search {
            None => true,
            Some(search) => search
                .pattern_matching_relative_path(path, Some(false), &mut |_, _, _, _| false)
                .is_some_and(|found| !found.is_excluded()),
        }
    }
}

/// Checks an optional count against its default and limit.
pub(crate) fn bounded(
    name: &str,
    value: Option<usize>,
    default: usize,
    limit: usize,
) -> Result<usize, ToolError> {
    let value = value.unwrap_or(default);
    if value > limit {
        return Err(ToolError::invalid_input(format!(
            "{name} must be at most {limit}, got {value}"
        )));
    }
    Ok(value)
}
