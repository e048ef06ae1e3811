//! `git_info`: the state of the repository around a path.

use gix::bstr::ByteSlice as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CommitInfo, bounded, commit_info, failed, open_repository};

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

/// Runs `git_info`.
pub fn git_info(
    params: &GitInfoParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitInfo, ToolError> {
    let max_commits = bounded(
        "max_commits",
        params.max_commits,
        DEFAULT_MAX_COMMITS,
        MAX_COMMITS_LIMIT,
    )?;
    let max_changes = bounded(
        "max_changes",
        params.max_changes,
        DEFAULT_MAX_CHANGES,
        MAX_CHANGES_LIMIT,
    )?;
    // The working tree is inside the roots (checked on opening), so the status, which
    // covers the working tree, stays within the root's subtree.
    let repo = open_repository(params.path.as_deref(), roots)?;
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
        super::SHARED_STATUS.get_or_compute(
            &repo,
            |watched| &mut watched.all_changes,
            || changed_files(&repo, cancel),
        )?
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

pub(crate) fn changed_files(
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
