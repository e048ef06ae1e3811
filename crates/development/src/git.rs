//! `git_info`: the state of the repository around a path, read with `gix` (no `git` binary).

use gix::bstr::ByteSlice as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{confine_or_first_root, display_path};

/// Commits returned when `max_commits` is not given.
pub const DEFAULT_MAX_COMMITS: usize = 10;
/// The largest `max_commits` accepted.
pub const MAX_COMMITS_LIMIT: usize = 200;
/// Changed files returned when `max_changes` is not given.
pub const DEFAULT_MAX_CHANGES: usize = 200;
/// The largest `max_changes` accepted.
pub const MAX_CHANGES_LIMIT: usize = 5_000;

/// Arguments of `git_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GitInfoParams {
    /// A path inside the repository; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Recent commits returned, newest first. Default 10, at most 200.
    #[serde(default)]
    pub max_commits: Option<usize>,
    /// Changed files returned. Default 200, at most 5000.
    #[serde(default)]
    pub max_changes: Option<usize>,
}

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

/// Where a change is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeArea {
    /// Between HEAD and the index (`git diff --cached`).
    Staged,
    /// Between the index and the working tree (`git diff`), including untracked files.
    Unstaged,
}

/// One changed file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct ChangedFile {
    /// Path relative to the repository's working tree.
    pub path: String,
    pub area: ChangeArea,
    /// added, deleted, modified, renamed, copied, type_changed, untracked,
    /// intent_to_add or conflict.
    pub status: String,
}

/// What `git_info` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GitInfo {
    /// The working tree (or the git dir of a bare repository).
    pub repository: String,
    /// Current branch; absent when HEAD is detached.
    pub branch: Option<String>,
    /// True when HEAD points at a commit rather than a branch.
    pub detached: bool,
    /// The HEAD commit; absent in a repository without commits.
    pub head: Option<CommitInfo>,
    /// Recent commits reachable from HEAD, newest first (HEAD included).
    pub recent_commits: Vec<CommitInfo>,
    /// Staged, unstaged and untracked files, sorted by path.
    pub changes: Vec<ChangedFile>,
    /// Changed files in total.
    pub total_changes: usize,
    /// True when more changes exist than were returned.
    pub changes_truncated: bool,
    /// Bare repositories have no working tree, hence no status.
    pub bare: bool,
}

fn failed(what: &str, err: impl std::fmt::Display) -> ToolError {
    ToolError::failed(format!("git: cannot {what}: {err}"))
}

/// Runs `git_info`.
pub fn git_info(
    params: &GitInfoParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitInfo, ToolError> {
    let max_commits = params.max_commits.unwrap_or(DEFAULT_MAX_COMMITS);
    if max_commits > MAX_COMMITS_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_commits must be at most {MAX_COMMITS_LIMIT}, got {max_commits}"
        )));
    }
    let max_changes = params.max_changes.unwrap_or(DEFAULT_MAX_CHANGES);
    if max_changes > MAX_CHANGES_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_changes must be at most {MAX_CHANGES_LIMIT}, got {max_changes}"
        )));
    }
    let start = confine_or_first_root(params.path.as_deref(), roots)?;
    let repo = gix::discover(&start).map_err(|err| {
        ToolError::not_found(format!(
            "{} is not inside a git repository ({err}); pass a path inside a git working tree",
            display_path(roots, &start)
        ))
    })?;
    // A repository found above the roots (the roots are a subdirectory of it) is fine to
    // read: only its metadata is reported, never files outside the roots.
    let workdir = repo.workdir().map(std::path::Path::to_path_buf);
    let repository = workdir.as_deref().map_or_else(
        || repo.git_dir().display().to_string(),
        |dir| dir.display().to_string(),
    );

    let head_name = repo.head_name().map_err(|err| failed("read HEAD", err))?;
    let branch = head_name
        .as_ref()
        .map(|name| name.shorten().to_str_lossy().into_owned());
    let head_id = repo.head_id().ok().map(|id| id.detach());
    let detached = head_name.is_none() && head_id.is_some();

    let mut recent_commits = Vec::new();
    if let Some(head_id) = head_id
        && max_commits > 0
    {
        let walk = repo
            .rev_walk([head_id])
            .sorting(gix::revision::walk::Sorting::ByCommitTime(
                Default::default(),
            ))
            .all()
            .map_err(|err| failed("walk the history", err))?;
        for info in walk.take(max_commits) {
            cancel.check()?;
            let info = info.map_err(|err| failed("walk the history", err))?;
            let commit = info.object().map_err(|err| failed("read a commit", err))?;
            recent_commits.push(commit_info(&commit)?);
        }
    }
    let head_hex = head_id.map(|id| id.to_string());
    let head = match recent_commits.first() {
        // The walk starts at HEAD, so its first commit is HEAD itself.
        Some(first) if Some(&first.id) == head_hex.as_ref() => Some(first.clone()),
        _ if head_id.is_some() => {
            let commit = repo
                .head_commit()
                .map_err(|err| failed("read the HEAD commit", err))?;
            Some(commit_info(&commit)?)
        }
        _ => None,
    };

    let bare = workdir.is_none();
    let mut changes = if bare {
        Vec::new()
    } else {
        changed_files(&repo, cancel)?
    };
    changes.sort_by(|a, b| (&a.path, a.area).cmp(&(&b.path, b.area)));
    let total_changes = changes.len();
    changes.truncate(max_changes);
    Ok(GitInfo {
        repository,
        branch,
        detached,
        head,
        recent_commits,
        changes_truncated: total_changes > changes.len(),
        changes,
        total_changes,
        bare,
    })
}

fn commit_info(commit: &gix::Commit<'_>) -> Result<CommitInfo, ToolError> {
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

fn changed_files(
    repo: &gix::Repository,
    cancel: &CancelFlag,
) -> Result<Vec<ChangedFile>, ToolError> {
    use gix::status::Item;
    use gix::status::index_worktree::iter::Summary;

    let status = repo
        .status(gix::progress::Discard)
        .map_err(|err| failed("compute the status", err))?
        .untracked_files(gix::status::UntrackedFiles::Files)
        .into_iter(Vec::new())
        .map_err(|err| failed("compute the status", err))?;
    let mut changes = Vec::new();
    for item in status {
        cancel.check()?;
        let item = item.map_err(|err| failed("compute the status", err))?;
        let path = item.location().to_str_lossy().into_owned();
        let (area, status) = match &item {
            Item::IndexWorktree(change) => {
                let Some(summary) = change.summary() else {
                    continue;
                };
                let status = match summary {
                    Summary::Removed => "deleted",
                    Summary::Added => "untracked",
                    Summary::Modified => "modified",
                    Summary::TypeChange => "type_changed",
                    Summary::Renamed => "renamed",
                    Summary::Copied => "copied",
                    Summary::IntentToAdd => "intent_to_add",
                    Summary::Conflict => "conflict",
                };
                (ChangeArea::Unstaged, status)
            }
            Item::TreeIndex(change) => {
                use gix::diff::index::ChangeRef;
                let status = match change {
                    ChangeRef::Addition { .. } => "added",
                    ChangeRef::Deletion { .. } => "deleted",
                    ChangeRef::Modification { .. } => "modified",
                    ChangeRef::Rewrite { copy: true, .. } => "copied",
                    ChangeRef::Rewrite { .. } => "renamed",
                };
                (ChangeArea::Staged, status)
            }
        };
        changes.push(ChangedFile {
            path,
            area,
            status: status.to_owned(),
        });
    }
    Ok(changes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::path::Path;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) {
        let status = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Ada Lovelace")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_AUTHOR_DATE", "2024-05-01T12:00:00+02:00")
            .env("GIT_COMMITTER_NAME", "Ada Lovelace")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_DATE", "2024-05-01T12:00:00+02:00")
            .status()
            .expect("the git CLI is needed to build the fixture");
        assert!(status.success(), "git {args:?} failed");
    }

    fn params() -> GitInfoParams {
        GitInfoParams {
            path: None,
            max_commits: None,
            max_changes: None,
        }
    }

    fn repo_fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        git(root, &["init", "-q", "-b", "trunk"]);
        fs::write(root.join("a.txt"), "one\n").unwrap();
        fs::write(root.join("b.txt"), "bee\n").unwrap();
        git(root, &["add", "."]);
        git(root, &["commit", "-q", "-m", "first commit\n\nbody text"]);
        fs::write(root.join("a.txt"), "two\n").unwrap();
        git(root, &["commit", "-q", "-am", "second commit"]);
        // Working tree state: one staged addition, one unstaged edit, one untracked file.
        fs::write(root.join("staged.txt"), "s\n").unwrap();
        git(root, &["add", "staged.txt"]);
        fs::write(root.join("b.txt"), "changed\n").unwrap();
        fs::write(root.join("new.txt"), "n\n").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    #[test]
    fn reports_branch_commits_and_changes() {
        let (_dir, roots) = repo_fixture();
        let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
        assert_eq!(info.branch.as_deref(), Some("trunk"));
        assert!(!info.detached && !info.bare);
        let summaries: Vec<_> = info
            .recent_commits
            .iter()
            .map(|c| c.summary.as_str())
            .collect();
        assert_eq!(summaries, vec!["second commit", "first commit"]);
        let head = info.head.unwrap();
        assert_eq!(head.summary, "second commit");
        assert_eq!(
            (head.author.as_str(), head.author_email.as_str()),
            ("Ada Lovelace", "ada@example.com")
        );
        assert_eq!(head.date, "2024-05-01T12:00:00+02:00");
        assert_eq!(head.id.len(), 40);
        let changes: Vec<_> = info
            .changes
            .iter()
            .map(|c| (c.path.as_str(), c.area, c.status.as_str()))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("b.txt", ChangeArea::Unstaged, "modified"),
                ("new.txt", ChangeArea::Unstaged, "untracked"),
                ("staged.txt", ChangeArea::Staged, "added"),
            ]
        );
    }

    #[test]
    fn limits_commits_and_changes_and_works_from_a_subdirectory() {
        let (dir, roots) = repo_fixture();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let p = GitInfoParams {
            path: Some("sub".into()),
            max_commits: Some(1),
            max_changes: Some(1),
        };
        let info = git_info(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(info.recent_commits.len(), 1);
        assert_eq!(
            (
                info.changes.len(),
                info.total_changes,
                info.changes_truncated
            ),
            (1, 3, true)
        );
    }

    #[test]
    fn detached_head_and_empty_repository() {
        let (dir, roots) = repo_fixture();
        git(dir.path(), &["checkout", "-q", "--detach", "HEAD~1"]);
        let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
        assert!(info.detached);
        assert_eq!(info.branch, None);
        assert_eq!(info.head.unwrap().summary, "first commit");

        let empty = tempfile::tempdir().unwrap();
        git(empty.path(), &["init", "-q", "-b", "main"]);
        let roots = Roots::new([empty.path().to_path_buf()]).unwrap();
        let info = git_info(&params(), &roots, &CancelFlag::new()).unwrap();
        assert_eq!(info.branch.as_deref(), Some("main"));
        assert!(info.head.is_none() && info.recent_commits.is_empty());
    }

    #[test]
    fn not_a_repository_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
        // An unrelated repository above the temp dir (e.g. TMPDIR inside a checkout) would
        // be found by discovery; only assert when there is none.
        if gix::discover(dir.path()).is_err() {
            let err = git_info(&params(), &roots, &CancelFlag::new()).unwrap_err();
            assert!(
                err.to_string().contains("not inside a git repository"),
                "{err}"
            );
        }
        let mut p = params();
        p.path = Some("/".into());
        let err = git_info(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
    }
}
