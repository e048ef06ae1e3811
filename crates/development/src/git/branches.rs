//! `git_branches`: local and remote-tracking branches with their tip commits.

use gix::bstr::ByteSlice as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{CommitInfo, commit_info, failed, open_repository, resolve_commit};

/// Branches returned at most.
pub const MAX_BRANCHES: usize = 2_000;

/// Which branches to list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BranchKind {
    /// `refs/heads/*` (default).
    #[default]
    Local,
    /// `refs/remotes/*`.
    Remote,
    /// Both.
    All,
}

/// Arguments of `git_branches`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GitBranchesParams {
    /// A path inside the repository; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// local (default), remote or all.
    #[serde(default)]
    pub kind: BranchKind,
    /// Only branches whose history contains this commit (`git branch --contains`).
    #[serde(default)]
    pub contains: Option<String>,
    /// Only branches whose history does not contain this commit (`--no-contains`).
    #[serde(default)]
    pub not_contains: Option<String>,
}

/// One branch.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Branch {
    /// Short name: `main`, `origin/main`.
    pub name: String,
    /// local or remote.
    pub kind: String,
    /// True for the branch HEAD points at.
    pub is_head: bool,
    /// The remote-tracking branch this local branch follows, if configured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream: Option<String>,
    /// The tip commit.
    pub commit: CommitInfo,
}

/// What `git_branches` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GitBranchesOutput {
    /// The current branch; absent when HEAD is detached.
    pub current: Option<String>,
    /// Branches sorted by name (local first).
    pub branches: Vec<Branch>,
    /// True when there were more than 2000 branches.
    pub truncated: bool,
}

/// Runs `git_branches`.
pub fn git_branches(
    params: &GitBranchesParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitBranchesOutput, ToolError> {
    let repo = open_repository(params.path.as_deref(), roots)?;
    let contains = params
        .contains
        .as_deref()
        .map(|rev| resolve_commit(&repo, rev).map(|c| c.id))
        .transpose()?;
    let not_contains = params
        .not_contains
        .as_deref()
        .map(|rev| resolve_commit(&repo, rev).map(|c| c.id))
        .transpose()?;
    let head_name = repo.head_name().map_err(|err| failed("read HEAD", err))?;
    let references = repo
        .references()
        .map_err(|err| failed("read references", err))?;
    let mut iters = Vec::new();
    if params.kind != BranchKind::Remote {
        iters.push((
            "local",
            references
                .local_branches()
                .map_err(|err| failed("read branches", err))?,
        ));
    }
    if params.kind != BranchKind::Local {
        iters.push((
            "remote",
            references
                .remote_branches()
                .map_err(|err| failed("read remote branches", err))?,
        ));
    }
    let mut branches = Vec::new();
    let mut truncated = false;
    for (kind, iter) in iters {
        for reference in iter {
            cancel.check()?;
            let mut reference = reference.map_err(|err| failed("read a branch", err))?;
            let Ok(id) = reference.peel_to_id() else {
                continue; // a dangling or non-commit ref is not a branch to report
            };
            let id = id.detach();
            let reaches = |target: gix::hash::ObjectId| -> Result<bool, ToolError> {
                Ok(target == id
                    || repo
                        .merge_base(target, id)
                        .map_err(|err| failed("compute a merge base", err))?
                        .is_some_and(|base| base.detach() == target))
            };
            if let Some(target) = contains
                && !reaches(target)?
            {
                continue;
            }
            if let Some(target) = not_contains
                && reaches(target)?
            {
                continue;
            }
            if branches.len() == MAX_BRANCHES {
                truncated = true;
                break;
            }
            let commit = repo
                .find_commit(id)
                .map_err(|err| failed("read a branch tip", err))?;
            let upstream = (kind == "local")
                .then(|| {
                    repo.branch_remote_tracking_ref_name(
                        reference.name(),
                        gix::remote::Direction::Fetch,
                    )
                })
                .flatten()
                .and_then(Result::ok)
                .map(|name| name.shorten().to_str_lossy().into_owned());
            branches.push(Branch {
                name: reference.name().shorten().to_str_lossy().into_owned(),
                kind: kind.to_owned(),
                is_head: head_name
                    .as_ref()
                    .is_some_and(|head| head == reference.name()),
                upstream,
                commit: commit_info(&commit)?,
            });
        }
    }
    Ok(GitBranchesOutput {
        current: head_name.map(|name| name.shorten().to_str_lossy().into_owned()),
        branches,
        truncated,
    })
}
