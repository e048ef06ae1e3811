//! `git_log`: the history reachable from a revision, newest first, with path, author and
//! date filters.

use gix::bstr::ByteSlice as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{PathFilter, bounded, failed, open_repository, resolve_commit};
use crate::paths::Globs;

/// Commits returned when `max_count` is not given.
pub const DEFAULT_MAX_COUNT: usize = 20;
/// The largest `max_count` accepted.
pub const MAX_COUNT_LIMIT: usize = 1_000;
/// The largest `skip` accepted.
pub const MAX_SKIP: usize = 1_000_000;
/// Commits examined at most per call (filters may reject most of them).
pub const MAX_SCANNED: usize = 1_000_000;

/// Arguments of `git_log`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GitLogParams {
    /// A path inside the repository; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Where the history starts: a branch, tag, commit id or expression. Default: HEAD.
    #[serde(default)]
    pub rev: Option<String>,
    /// Only commits that changed these paths (git pathspecs relative to the repository's
    /// top: `src`, `*.rs`, `:(exclude)docs`). Data, never options.
    #[serde(default)]
    pub paths: Option<Globs>,
    /// Only commits whose author name or email contains this text (case-insensitive).
    #[serde(default)]
    pub author: Option<String>,
    /// Only commits committed at or after this date: ISO 8601 (`2024-01-15`,
    /// `2024-01-15T14:30:00+01:00`), RFC 2822, `@<unix seconds>` or relative
    /// (`2 weeks ago`, `yesterday`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only commits committed at or before this date (same formats as `since`).
    #[serde(default)]
    pub until: Option<String>,
    /// Most commits returned. Default 20, at most 1000.
    #[serde(default)]
    pub max_count: Option<usize>,
    /// Matching commits to skip first (paging). Default 0.
    #[serde(default)]
    pub skip: Option<usize>,
    /// Include the full commit message, not only its first line.
    #[serde(default)]
    pub full_message: bool,
}

/// One commit of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LogEntry {
    /// Full hexadecimal object id.
    pub id: String,
    /// Parent ids (two or more for a merge).
    pub parents: Vec<String>,
    pub author: String,
    pub author_email: String,
    /// Author date, ISO 8601 with the author's UTC offset.
    pub date: String,
    /// Committer date, ISO 8601 (what `since`/`until` compare, as in git).
    pub commit_date: String,
    /// First line of the message.
    pub summary: String,
    /// The whole message (with `full_message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// What `git_log` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GitLogOutput {
    /// Matching commits, newest first (by commit time), after `skip`.
    pub commits: Vec<LogEntry>,
    /// True when more matching commits follow; call again with a larger `skip`.
    pub has_more: bool,
    /// Commits examined to produce this page.
    pub scanned: usize,
}

/// Runs `git_log`.
pub fn git_log(
    params: &GitLogParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitLogOutput, ToolError> {
    let max_count = bounded(
        "max_count",
        params.max_count,
        DEFAULT_MAX_COUNT,
        MAX_COUNT_LIMIT,
    )?;
    let skip = bounded("skip", params.skip, 0, MAX_SKIP)?;
    let since = params
        .since
        .as_deref()
        .map(|d| parse_date("since", d))
        .transpose()?;
    let until = params
        .until
        .as_deref()
        .map(|d| parse_date("until", d))
        .transpose()?;
    let author = params
        .author
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_lowercase);
    let repo = open_repository(params.path.as_deref(), roots)?;
    let mut filter = PathFilter::new(
        &repo,
        &params
            .paths
            .clone()
            .map(Globs::into_vec)
            .unwrap_or_default(),
    )?;
    let rev = params.rev.as_deref().unwrap_or("HEAD");
    let start = match resolve_commit(&repo, rev) {
        Ok(commit) => commit.id,
        // A repository without commits has an empty history, not a missing HEAD.
        Err(_) if params.rev.is_none() && repo.head_id().is_err() => {
            return Ok(GitLogOutput {
                commits: Vec::new(),
                has_more: false,
                scanned: 0,
            });
        }
        Err(err) => return Err(err),
    };
    let walk = repo
        .rev_walk([start])
        .sorting(gix::revision::walk::Sorting::ByCommitTime(
            Default::default(),
        ))
        .all()
        .map_err(|err| failed("walk the history", err))?;
    let mut commits = Vec::new();
    let mut matched = 0usize;
    let mut scanned = 0usize;
    let mut has_more = false;
    for info in walk {
        cancel.check()?;
        scanned += 1;
        if scanned > MAX_SCANNED {
            has_more = true;
            break;
        }
        let info = info.map_err(|err| failed("walk the history", err))?;
        let commit = info.object().map_err(|err| failed("read a commit", err))?;
        let time = commit
            .time()
            .map_err(|err| failed("read a commit time", err))?;
        if since.is_some_and(|since| time.seconds < since)
            || until.is_some_and(|until| time.seconds > until)
        {
            continue;
        }
        if let Some(wanted) = &author {
            let signature = commit
                .author()
                .map_err(|err| failed("read a commit author", err))?;
            let name = signature.name.to_str_lossy().to_lowercase();
            let email = signature.email.to_str_lossy().to_lowercase();
            if !name.contains(wanted.as_str()) && !email.contains(wanted.as_str()) {
                continue;
            }
        }
        if filter.is_active() && !touches(&repo, &commit, &mut filter)? {
            continue;
        }
        matched += 1;
        if matched <= skip {
            continue;
        }
        if commits.len() == max_count {
            has_more = true;
            break;
        }
        commits.push(log_entry(&commit, params.full_message)?);
    }
    Ok(GitLogOutput {
        commits,
        has_more,
        scanned,
    })
}

fn parse_date(name: &str, text: &str) -> Result<i64, ToolError> {
    gix::date::parse(text.trim(), Some(gix::date::Zoned::now()))
        .map(|time| time.seconds)
        .map_err(|err| {
            ToolError::invalid_input(format!(
                "{name}: cannot read {text:?} as a date ({err}); use 2024-01-15, 2024-01-15T14:30:00+01:00 or \"2 weeks ago\""
            ))
        })
}

/// True when `commit` changed a path the filter accepts compared with every parent (git's
/// default history simplification: a merge that took a path unchanged from one parent did
/// not change it).
fn touches(
    repo: &gix::Repository,
    commit: &gix::Commit<'_>,
    filter: &mut PathFilter,
) -> Result<bool, ToolError> {
    let tree = commit
        .tree()
        .map_err(|err| failed("read a commit tree", err))?;
    let parents: Vec<_> = commit.parent_ids().collect();
    let parent_trees = if parents.is_empty() {
        vec![repo.empty_tree()]
    } else {
        parents
            .iter()
            .map(|id| {
                let parent = repo
                    .find_commit(id.detach())
                    .map_err(|err| failed("read a parent commit", err))?;
                parent
                    .tree()
                    .map_err(|err| failed("read a parent tree", err))
            })
            .collect::<Result<_, _>>()?
    };
    for parent_tree in &parent_trees {
        let changes = repo
            .diff_tree_to_tree(parent_tree, &tree, gix::diff::Options::default())
            .map_err(|err| failed("diff a commit with its parent", err))?;
        let changed_here = changes
            .iter()
            .any(|change| !change.entry_mode().is_tree() && filter.matches(change.location()));
        if !changed_here {
            return Ok(false);
        }
    }
    Ok(true)
}

pub(crate) fn log_entry(
    commit: &gix::Commit<'_>,
    full_message: bool,
) -> Result<LogEntry, ToolError> {
    let info = super::commit_info(commit)?;
    let commit_date = commit
        .time()
        .map(|time| time.format_or_unix(gix::date::time::format::ISO8601_STRICT))
        .unwrap_or_default();
    let message = full_message
        .then(|| {
            commit
                .message_raw()
                .map(|m| m.to_str_lossy().trim_end().to_owned())
        })
        .transpose()
        .map_err(|err| failed("read a commit message", err))?;
    Ok(LogEntry {
        id: info.id,
        parents: commit.parent_ids().map(|id| id.to_string()).collect(),
        author: info.author,
        author_email: info.author_email,
        date: info.date,
        commit_date,
        summary: info.summary,
        message,
    })
}
