//! `git_diff`: what changed between the working tree, the index and commits, as per-file
//! stats and a unified diff.

use gix::bstr::BString;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::patch::{self, Change, ChangeStatus, Content, EntryKind, FileDiff, Side};
use super::{PathFilter, bounded, failed, open_repository, repository_label, resolve_commit};
use crate::paths::Globs;

/// Context lines when `context_lines` is not given (git's default).
pub const DEFAULT_CONTEXT_LINES: usize = 3;
/// The most context lines accepted.
pub const MAX_CONTEXT_LINES: usize = 1_000;
/// Bytes of unified diff text returned when `max_bytes` is not given.
pub const DEFAULT_MAX_DIFF_BYTES: usize = 64 * 1024;
/// The largest `max_bytes` accepted.
pub const MAX_DIFF_BYTES: usize = 1024 * 1024;
/// Changed files reported at most (stats and text).
pub const MAX_FILES: usize = 5_000;

/// Arguments of `git_diff`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GitDiffParams {
    /// A path inside the repository; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Without `from`: false compares the working tree with the index (`git diff`), true
    /// the index with HEAD (`git diff --cached`).
    #[serde(default)]
    pub staged: bool,
    /// Compare commits instead: the old side, any revision (`main`, `v1.0`, `HEAD~3`, an id).
    #[serde(default)]
    pub from: Option<String>,
    /// The new side when `from` is given. Default: HEAD.
    #[serde(default)]
    pub to: Option<String>,
    #[serde(flatten)]
    pub text: DiffTextParams,
}

/// Which files a diff covers and how much text it returns: the arguments `git_diff` and
/// `git_show` share (flattened into each tool's own arguments).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct DiffTextParams {
    /// Only these paths, relative to the repository's top: git pathspecs such as
    /// `src`, `*.rs` or `:(exclude)vendor`. Data, never options, even with a leading `-`.
    #[serde(default)]
    pub paths: Option<Globs>,
    /// Unchanged lines around each change (0-1000). Default 3.
    #[serde(default)]
    pub context_lines: Option<usize>,
    /// Most bytes of diff text returned; stats cover every file regardless.
    /// Default 65536, at most 1048576.
    #[serde(default)]
    pub max_bytes: Option<usize>,
}

impl DiffTextParams {
    /// Context lines and the text budget, checked against their limits.
    pub(crate) fn limits(&self) -> Result<(u32, usize), ToolError> {
        let context = bounded(
            "context_lines",
            self.context_lines,
            DEFAULT_CONTEXT_LINES,
            MAX_CONTEXT_LINES,
        )?;
        let max_bytes = bounded(
            "max_bytes",
            self.max_bytes,
            DEFAULT_MAX_DIFF_BYTES,
            MAX_DIFF_BYTES,
        )?;
        Ok((u32::try_from(context).unwrap_or(u32::MAX), max_bytes))
    }

    /// The path filter of `paths` in `repo`.
    pub(crate) fn filter(&self, repo: &gix::Repository) -> Result<PathFilter, ToolError> {
        let paths = self.paths.clone().map(Globs::into_vec).unwrap_or_default();
        PathFilter::new(repo, &paths)
    }
}

/// What `git_diff` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GitDiffOutput {
    /// The repository's working tree.
    pub repository: String,
    /// What was compared, e.g. "index -> worktree" or "abc1234 (main) -> HEAD".
    pub compared: String,
    /// Changed files sorted by path, with line counts.
    pub files: Vec<FileDiff>,
    pub total_additions: u64,
    pub total_deletions: u64,
    /// The unified diff (`git diff` format), cut at whole files to `max_bytes`.
    pub diff: String,
    /// True when files were left out of `diff` (their stats are still in `files`).
    pub diff_truncated: bool,
    /// Files whose text was left out, when truncated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub omitted_from_diff: Vec<String>,
}

/// Runs `git_diff`.
pub fn git_diff(
    params: &GitDiffParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitDiffOutput, ToolError> {
    let (context, max_bytes) = params.text.limits()?;
    if params.to.is_some() && params.from.is_none() {
        return Err(ToolError::invalid_input(
            "`to` needs `from`: pass the old revision in `from` (the new side defaults to HEAD)",
        ));
    }
    if params.staged && params.from.is_some() {
        return Err(ToolError::invalid_input(
            "`staged` compares the index with HEAD and cannot be combined with `from`; drop one",
        ));
    }
    let repo = open_repository(params.path.as_deref(), roots)?;
    let mut filter = params.text.filter(&repo)?;
    let (compared, changes) = match &params.from {
        Some(from) => {
            let to = params.to.as_deref().unwrap_or("HEAD");
            let changes = commit_changes(&repo, Some(from), to, cancel)?;
            (format!("{from} -> {to}"), changes)
        }
        None if params.staged => ("HEAD -> index".to_owned(), staged_changes(&repo)?),
        None => (
            "index -> worktree".to_owned(),
            super::SHARED_STATUS.get_or_compute(
                &repo,
                |watched| &mut watched.unstaged,
                || unstaged_changes(&repo, cancel),
            )?,
        ),
    };
    let changes: Vec<Change> = changes
        .into_iter()
        .filter(|change| {
            filter.matches(change.path.as_ref())
                || change
                    .old_path
                    .as_ref()
                    .is_some_and(|old| filter.matches(old.as_ref()))
        })
        .collect();
    let rendered = render_all(&repo, roots, changes, context, max_bytes, cancel)?;
    Ok(GitDiffOutput {
        repository: repository_label(&repo),
        compared,
        files: rendered.files,
        total_additions: rendered.total_additions,
        total_deletions: rendered.total_deletions,
        diff: rendered.diff,
        diff_truncated: !rendered.omitted.is_empty(),
        omitted_from_diff: rendered.omitted,
    })
}

/// Changes rendered into stats and bounded diff text.
pub(crate) struct Rendered {
    pub files: Vec<FileDiff>,
    pub total_additions: u64,
    pub total_deletions: u64,
    pub diff: String,
    pub omitted: Vec<String>,
}

/// Sorts, renders and budgets `changes`: every file gets stats; diff text is added whole
/// file by file while it fits in `max_bytes`.
pub(crate) fn render_all(
    repo: &gix::Repository,
    roots: &Roots,
    mut changes: Vec<Change>,
    context: u32,
    max_bytes: usize,
    cancel: &CancelFlag,
) -> Result<Rendered, ToolError> {
    changes.sort_by(|a, b| a.path.cmp(&b.path));
    if changes.len() > MAX_FILES {
        return Err(ToolError::invalid_input(format!(
            "{} files changed, more than the {MAX_FILES} a diff reports; narrow it with `paths`",
            changes.len()
        )));
    }
    let mut out = Rendered {
        files: Vec::with_capacity(changes.len()),
        total_additions: 0,
        total_deletions: 0,
        diff: String::new(),
        omitted: Vec::new(),
    };
    for change in &changes {
        cancel.check()?;
        let (stats, text) = patch::render(repo, roots, change, context)?;
        out.total_additions += u64::from(stats.additions);
        out.total_deletions += u64::from(stats.deletions);
        if out.omitted.is_empty() && out.diff.len() + text.len() <= max_bytes {
            out.diff.push_str(&text);
        } else {
            out.omitted.push(stats.path.clone());
        }
        out.files.push(stats);
    }
    Ok(out)
}

/// Changes from the tree of `from` (the empty tree when `None`) to the tree of `to`.
pub(crate) fn commit_changes(
    repo: &gix::Repository,
    from: Option<&str>,
    to: &str,
    cancel: &CancelFlag,
) -> Result<Vec<Change>, ToolError> {
    let new_tree = resolve_commit(repo, to)?
        .tree()
        .map_err(|err| failed(&format!("read the tree of {to:?}"), err))?;
    let old_tree = match from {
        Some(from) => resolve_commit(repo, from)?
            .tree()
            .map_err(|err| failed(&format!("read the tree of {from:?}"), err))?,
        None => repo.empty_tree(),
    };
    tree_changes(repo, &old_tree, &new_tree, cancel)
}

/// Changes between two trees, with renames tracked as configured (git's default: on).
pub(crate) fn tree_changes(
    repo: &gix::Repository,
    old_tree: &gix::Tree<'_>,
    new_tree: &gix::Tree<'_>,
    cancel: &CancelFlag,
) -> Result<Vec<Change>, ToolError> {
    use gix::object::tree::diff::ChangeDetached as C;
    cancel.check()?;
    let detached = repo
        .diff_tree_to_tree(old_tree, new_tree, None)
        .map_err(|err| failed("diff two trees", err))?;
    let object = |id, mode| {
        EntryKind::from_tree_mode(mode).map(|kind| Side {
            content: Content::Object(id),
            kind,
        })
    };
    let mut changes = Vec::new();
    for change in detached {
        let change = match change {
            C::Addition {
                location,
                entry_mode,
                id,
                ..
            } => object(id, entry_mode).map(|new| Change {
                path: location,
                old_path: None,
                status: ChangeStatus::Added,
                old: None,
                new: Some(new),
            }),
            C::Deletion {
                location,
                entry_mode,
                id,
                ..
            } => object(id, entry_mode).map(|old| Change {
                path: location,
                old_path: None,
                status: ChangeStatus::Deleted,
                old: Some(old),
                new: None,
            }),
            C::Modification {
                location,
                previous_entry_mode,
                previous_id,
                entry_mode,
                id,
            } => modification(
                location,
                object(previous_id, previous_entry_mode),
                object(id, entry_mode),
            ),
            C::Rewrite {
                source_location,
                source_entry_mode,
                source_id,
                entry_mode,
                id,
                location,
                copy,
                ..
            } => {
                let old = object(source_id, source_entry_mode);
                let new = object(id, entry_mode);
                (old.is_some() && new.is_some()).then_some(Change {
                    path: location,
                    old_path: Some(source_location),
                    status: if copy {
                        ChangeStatus::Copied
                    } else {
                        ChangeStatus::Renamed
                    },
                    old,
                    new,
                })
            }
        };
        // Trees themselves are not files: their entries are reported one by one.
        changes.extend(change);
    }
    Ok(changes)
}

/// A modification, or an addition/deletion when a tree and a file swapped places.
fn modification(path: BString, old: Option<Side>, new: Option<Side>) -> Option<Change> {
    let status = match (&old, &new) {
        (Some(old), Some(new)) if is_type_change(old.kind, new.kind) => ChangeStatus::TypeChanged,
        (Some(_), Some(_)) => ChangeStatus::Modified,
        (None, Some(_)) => ChangeStatus::Added,
        (Some(_), None) => ChangeStatus::Deleted,
        (None, None) => return None,
    };
    Some(Change {
        path,
        old_path: None,
        status,
        old,
        new,
    })
}

fn is_type_change(old: EntryKind, new: EntryKind) -> bool {
    let regular = |kind| matches!(kind, EntryKind::File | EntryKind::Executable);
    !(old == new || regular(old) && regular(new))
}

/// HEAD's tree (empty before the first commit) against the index.
pub(crate) fn staged_changes(repo: &gix::Repository) -> Result<Vec<Change>, ToolError> {
    use gix::diff::index::ChangeRef as C;
    let index = repo
        .index_or_empty()
        .map_err(|err| failed("read the index", err))?;
    let tree_id = repo
        .head_tree_id_or_empty()
        .map_err(|err| failed("read HEAD's tree", err))?;
    let object = |id: &gix::hash::oid, mode| {
        EntryKind::from_index_mode(mode).map(|kind| Side {
            content: Content::Object(id.to_owned()),
            kind,
        })
    };
    let mut changes = Vec::new();
    repo.tree_index_status(
        &tree_id,
        &index,
        None,
        gix::status::tree_index::TrackRenames::AsConfigured,
        |change, _, _| {
            let change = match change {
                C::Addition {
                    location,
                    entry_mode,
                    id,
                    ..
                } => object(&id, entry_mode).map(|new| Change {
                    path: location.into_owned(),
                    old_path: None,
                    status: ChangeStatus::Added,
                    old: None,
                    new: Some(new),
                }),
                C::Deletion {
                    location,
                    entry_mode,
                    id,
                    ..
                } => object(&id, entry_mode).map(|old| Change {
                    path: location.into_owned(),
                    old_path: None,
                    status: ChangeStatus::Deleted,
                    old: Some(old),
                    new: None,
                }),
                C::Modification {
                    location,
                    previous_entry_mode,
                    previous_id,
                    entry_mode,
                    id,
                    ..
                } => modification(
                    location.into_owned(),
                    object(&previous_id, previous_entry_mode),
                    object(&id, entry_mode),
                ),
                C::Rewrite {
                    source_location,
                    source_entry_mode,
                    source_id,
                    location,
                    entry_mode,
                    id,
                    copy,
                    ..
                } => Some(Change {
                    path: location.into_owned(),
                    old_path: Some(source_location.into_owned()),
                    status: if copy {
                        ChangeStatus::Copied
                    } else {
                        ChangeStatus::Renamed
                    },
                    old: object(&source_id, source_entry_mode),
                    new: object(&id, entry_mode),
                }),
            };
            changes.extend(change);
            Ok(std::ops::ControlFlow::Continue(()))
        },
    )
    .map_err(|err| failed("compare HEAD with the index", err))?;
    Ok(changes)
}

/// The index against the working tree (untracked files are not part of a diff, as in git).
pub(crate) fn unstaged_changes(
    repo: &gix::Repository,
    cancel: &CancelFlag,
) -> Result<Vec<Change>, ToolError> {
    use gix::status::index_worktree::Item;
    use gix::status::plumbing::index_as_worktree::{Change as W, EntryStatus};
    let Some(workdir) = repo.workdir().map(std::path::Path::to_path_buf) else {
        return Err(ToolError::invalid_input(
            "a bare repository has no working tree to diff; pass `from` to compare commits",
        ));
    };
    let items = repo
        .status(gix::progress::Discard)
        .map_err(|err| failed("compute the status", err))?
        .untracked_files(gix::status::UntrackedFiles::None)
        .index_worktree_rewrites(None)
        .into_index_worktree_iter(Vec::<BString>::new())
        .map_err(|err| failed("compute the status", err))?;
    let mut changes = Vec::new();
    for item in items {
        cancel.check()?;
        let item = item.map_err(|err| failed("compute the status", err))?;
        let Item::Modification {
            entry,
            rela_path,
            status,
            ..
        } = item
        else {
            continue;
        };
        let old = EntryKind::from_index_mode(entry.mode).map(|kind| Side {
            content: Content::Object(entry.id),
            kind,
        });
        let relative = gix::path::from_bstr(&rela_path)
            .map_err(|err| failed("turn a repository path into a file name", err))?;
        let worktree_path = workdir.join(relative);
        let worktree = |kind| Side {
            content: Content::Worktree(worktree_path.clone()),
            kind,
        };
        let change = match status {
            EntryStatus::Change(W::Removed) => Change {
                path: rela_path,
                old_path: None,
                status: ChangeStatus::Deleted,
                old,
                new: None,
            },
            EntryStatus::Change(W::Type { worktree_mode }) => Change {
                path: rela_path,
                old_path: None,
                status: ChangeStatus::TypeChanged,
                old,
                new: EntryKind::from_index_mode(worktree_mode).map(worktree),
            },
            EntryStatus::Change(W::Modification {
                executable_bit_changed,
                ..
            }) => {
                let kind = match (old.as_ref().map(|side| side.kind), executable_bit_changed) {
                    (Some(EntryKind::File), true) => EntryKind::Executable,
                    (Some(EntryKind::Executable), true) => EntryKind::File,
                    (Some(kind), _) => kind,
                    (None, _) => EntryKind::File,
                };
                Change {
                    path: rela_path,
                    old_path: None,
                    status: ChangeStatus::Modified,
                    old,
                    new: Some(worktree(kind)),
                }
            }
            EntryStatus::Change(W::SubmoduleModification(_)) => Change {
                path: rela_path,
                old_path: None,
                status: ChangeStatus::Modified,
                old,
                new: Some(worktree(EntryKind::Submodule)),
            },
            EntryStatus::IntentToAdd => Change {
                path: rela_path,
                old_path: None,
                status: ChangeStatus::Added,
                old: None,
                new: Some(worktree(EntryKind::File)),
            },
            EntryStatus::Conflict { .. } | EntryStatus::NeedsUpdate(_) => continue,
        };
        changes.push(change);
    }
    Ok(changes)
}
