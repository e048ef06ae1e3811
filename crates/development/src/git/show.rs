//! `git_show`: one commit (metadata, per-file stats, diff against its first parent), or
//! the file or directory a `rev:path` spec names.

use gix::bstr::ByteSlice as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::diff::{DiffTextParams, render_all, tree_changes};
use super::patch::FileDiff;
use super::{failed, open_repository, repository_label};

/// Bytes of a file's content returned for `rev:path`.
pub const MAX_BLOB_BYTES: usize = 128 * 1024;
/// Entries of a directory returned for `rev:dir`.
pub const MAX_TREE_ENTRIES: usize = 5_000;

/// Arguments of `git_show`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GitShowParams {
    /// A path inside the repository; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// The commit (`HEAD`, `main~2`, an id, a tag), or `REV:FILE` / `REV:DIR` for a file's
    /// content or a directory's entries at that revision. Default: HEAD.
    #[serde(default)]
    pub rev: Option<String>,
    #[serde(flatten)]
    pub text: DiffTextParams,
}

/// A commit's full metadata.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CommitDetails {
    pub id: String,
    pub parents: Vec<String>,
    pub author: String,
    pub author_email: String,
    /// Author date, ISO 8601.
    pub author_date: String,
    pub committer: String,
    pub committer_email: String,
    /// Commit date, ISO 8601.
    pub commit_date: String,
    /// The whole message.
    pub message: String,
}

/// A file's content at a revision.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct BlobContent {
    /// Size in bytes.
    pub size: u64,
    /// True when the content has a NUL byte: `content` is then empty.
    pub binary: bool,
    /// The text (invalid UTF-8 shown as U+FFFD), cut to 128 KiB on a character boundary.
    pub content: String,
    pub truncated: bool,
}

/// One entry of a directory at a revision.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TreeEntry {
    pub name: String,
    /// file, executable, symlink, directory or submodule.
    pub kind: String,
}

/// What `git_show` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GitShowOutput {
    pub repository: String,
    /// commit, blob (a file at `rev:path`) or tree (a directory at `rev:path`).
    pub kind: String,
    /// The commit (kind commit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitDetails>,
    /// What the diff compares: the first parent (or the empty tree) with the commit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compared: Option<String>,
    /// Changed files with line counts (kind commit).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileDiff>,
    pub total_additions: u64,
    pub total_deletions: u64,
    /// The unified diff, cut at whole files to `max_bytes` (kind commit).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub diff: String,
    pub diff_truncated: bool,
    /// The file (kind blob).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blob: Option<BlobContent>,
    /// The directory's entries (kind tree).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tree: Option<Vec<TreeEntry>>,
}

/// Runs `git_show`.
pub fn git_show(
    params: &GitShowParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<GitShowOutput, ToolError> {
    let (context, max_bytes) = params.text.limits()?;
    let rev = params.rev.as_deref().unwrap_or("HEAD");
    if rev.trim().is_empty() {
        return Err(ToolError::invalid_input(
            "rev is empty; pass a commit such as HEAD or main~1, or REV:PATH for a file",
        ));
    }
    let repo = open_repository(params.path.as_deref(), roots)?;
    let id = repo.rev_parse_single(rev.as_bytes().as_bstr()).map_err(|err| {
        ToolError::not_found(format!(
            "no revision {rev:?} in {} ({err}); pass a branch, tag, commit id, an expression like HEAD~1, or REV:PATH",
            repository_label(&repo)
        ))
    })?;
    let object = id
        .object()
        .map_err(|err| failed(&format!("read {rev:?}"), err))?;
    let mut output = GitShowOutput {
        repository: repository_label(&repo),
        kind: String::new(),
        commit: None,
        compared: None,
        files: Vec::new(),
        total_additions: 0,
        total_deletions: 0,
        diff: String::new(),
        diff_truncated: false,
        blob: None,
        tree: None,
    };
    match object.kind {
        gix::object::Kind::Blob => {
            output.kind = "blob".to_owned();
            output.blob = Some(blob_content(&object.data));
        }
        gix::object::Kind::Tree => {
            output.kind = "tree".to_owned();
            output.tree = Some(tree_entries(&object.into_tree())?);
        }
        gix::object::Kind::Commit | gix::object::Kind::Tag => {
            let commit = object.peel_to_commit().map_err(|err| {
                ToolError::invalid_input(format!("{rev:?} does not name a commit: {err}"))
            })?;
            output.kind = "commit".to_owned();
            output.commit = Some(details(&commit)?);
            let parent = commit.parent_ids().next().map(|id| id.detach());
            let old_tree = match parent {
                Some(parent) => repo
                    .find_commit(parent)
                    .and_then(|parent| parent.tree())
                    .map_err(|err| failed("read the parent tree", err))?,
                None => repo.empty_tree(),
            };
            let tree = commit
                .tree()
                .map_err(|err| failed("read the commit tree", err))?;
            let mut filter = params.text.filter(&repo)?;
            let changes = tree_changes(&repo, &old_tree, &tree, cancel)?
                .into_iter()
                .filter(|change| filter.matches(change.path.as_ref()))
                .collect();
            let rendered = render_all(&repo, roots, changes, context, max_bytes, cancel)?;
            output.compared = Some(match parent {
                Some(parent) => format!("{parent} -> {}", commit.id),
                None => format!("(root commit) -> {}", commit.id),
            });
            output.files = rendered.files;
            output.total_additions = rendered.total_additions;
            output.total_deletions = rendered.total_deletions;
            output.diff = rendered.diff;
            output.diff_truncated = !rendered.omitted.is_empty();
        }
    }
    Ok(output)
}

fn details(commit: &gix::Commit<'_>) -> Result<CommitDetails, ToolError> {
    let info = super::commit_info(commit)?;
    let committer = commit
        .committer()
        .map_err(|err| failed("read the committer", err))?;
    let commit_date = committer
        .time()
        .map(|time| time.format_or_unix(gix::date::time::format::ISO8601_STRICT))
        .unwrap_or_default();
    let message = commit
        .message_raw()
        .map_err(|err| failed("read the message", err))?
        .to_str_lossy()
        .trim_end()
        .to_owned();
    Ok(CommitDetails {
        id: info.id,
        parents: commit.parent_ids().map(|id| id.to_string()).collect(),
        author: info.author,
        author_email: info.author_email,
        author_date: info.date,
        committer: committer.name.trim().to_str_lossy().into_owned(),
        committer_email: committer.email.trim().to_str_lossy().into_owned(),
        commit_date,
        message,
    })
}

fn blob_content(data: &[u8]) -> BlobContent {
    let binary = data[..data.len().min(8000)].contains(&0);
    if binary {
        return BlobContent {
            size: data.len() as u64,
            binary,
            content: String::new(),
            truncated: false,
        };
    }
    let text = String::from_utf8_lossy(data);
    let end = text.floor_char_boundary(MAX_BLOB_BYTES);
    BlobContent {
        size: data.len() as u64,
        binary,
        content: text[..end].to_owned(),
        truncated: end < text.len(),
    }
}

fn tree_entries(tree: &gix::Tree<'_>) -> Result<Vec<TreeEntry>, ToolError> {
    use gix::object::tree::EntryKind as K;
    let mut entries = Vec::new();
    for entry in tree.iter().take(MAX_TREE_ENTRIES) {
        let entry = entry.map_err(|err| failed("read a tree", err))?;
        let kind = match entry.mode().kind() {
            K::Blob => "file",
            K::BlobExecutable => "executable",
            K::Link => "symlink",
            K::Tree => "directory",
            K::Commit => "submodule",
        };
        entries.push(TreeEntry {
            name: entry.filename().to_str_lossy().into_owned(),
            kind: kind.to_owned(),
        });
    }
    Ok(entries)
}
