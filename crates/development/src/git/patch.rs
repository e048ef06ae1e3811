//! One changed file as per-file stats and a unified diff (`git diff` format), from blobs
//! in the object database or files in the working tree.

use std::fmt::Write as _;
use std::path::PathBuf;

use gix::bstr::{BString, ByteSlice as _};
use gix::diff::blob::unified_diff::{ConsumeHunk, ContextSize, DiffLineKind, HunkHeader};
use gix::diff::blob::{Algorithm, Diff, InternedInput, UnifiedDiff};
use gix::hash::ObjectId;
use mcp_server_runtime::{Roots, ToolError};
use schemars::JsonSchema;
use serde::Serialize;

use super::failed;

/// Blobs or files larger than this are not diffed line by line (stats say `binary`).
pub(crate) const MAX_DIFF_INPUT_BYTES: u64 = 16 * 1024 * 1024;
/// Bytes looked at for a NUL byte to call content binary, as git does.
const BINARY_SNIFF_BYTES: usize = 8000;

/// How a changed file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChangeStatus {
    Added,
    Deleted,
    Modified,
    Renamed,
    Copied,
    /// File became a symlink, a submodule, or the reverse.
    TypeChanged,
}

/// The kind of a tree or index entry, with git's octal mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Executable,
    Symlink,
    Submodule,
}

impl EntryKind {
    pub(crate) fn from_tree_mode(mode: gix::object::tree::EntryMode) -> Option<Self> {
        use gix::object::tree::EntryKind as K;
        match mode.kind() {
            K::Blob => Some(Self::File),
            K::BlobExecutable => Some(Self::Executable),
            K::Link => Some(Self::Symlink),
            K::Commit => Some(Self::Submodule),
            K::Tree => None,
        }
    }

    pub(crate) fn from_index_mode(mode: gix::index::entry::Mode) -> Option<Self> {
        use gix::index::entry::Mode;
        if mode.contains(Mode::FILE_EXECUTABLE) {
            Some(Self::Executable)
        } else if mode.contains(Mode::FILE) {
            Some(Self::File)
        } else if mode.contains(Mode::SYMLINK) {
            Some(Self::Symlink)
        } else if mode.contains(Mode::COMMIT) {
            Some(Self::Submodule)
        } else {
            None
        }
    }

    fn octal(self) -> &'static str {
        match self {
            Self::File => "100644",
            Self::Executable => "100755",
            Self::Symlink => "120000",
            Self::Submodule => "160000",
        }
    }
}

/// Where one side's content is.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    /// An object in the repository (blob, or the commit of a submodule).
    Object(ObjectId),
    /// A file in the working tree (absolute path, inside the roots).
    Worktree(PathBuf),
}

/// One side of a change.
#[derive(Debug, Clone)]
pub(crate) struct Side {
    pub content: Content,
    pub kind: EntryKind,
}

/// A changed file, before rendering.
#[derive(Debug, Clone)]
pub(crate) struct Change {
    /// Repository-relative path (the new path of a rename).
    pub path: BString,
    /// The source of a rename or copy.
    pub old_path: Option<BString>,
    pub status: ChangeStatus,
    pub old: Option<Side>,
    pub new: Option<Side>,
}

/// Per-file statistics of a diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileDiff {
    /// Path relative to the repository's working tree (the new path of a rename).
    pub path: String,
    /// The previous path of a renamed or copied file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_path: Option<String>,
    pub status: ChangeStatus,
    /// Lines added (0 for binary content).
    pub additions: u32,
    /// Lines removed (0 for binary content).
    pub deletions: u32,
    /// True when either side is binary (a NUL byte) or too large to diff by line.
    pub binary: bool,
    /// Why the content could not be compared, e.g. the worktree entry is a FIFO.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Renders `change` as stats plus its unified diff text with `context` lines.
pub(crate) fn render(
    repo: &gix::Repository,
    roots: &Roots,
    change: &Change,
    context: u32,
) -> Result<(FileDiff, String), ToolError> {
    let path = change.path.to_str_lossy().into_owned();
    let old_path = change
        .old_path
        .as_ref()
        .map(|p| p.to_str_lossy().into_owned());
    let mut stats = FileDiff {
        path: path.clone(),
        old_path: old_path.clone(),
        status: change.status,
        additions: 0,
        deletions: 0,
        binary: false,
        note: None,
    };
    let from = old_path.as_deref().unwrap_or(&path);
    let mut text = format!("diff --git a/{from} b/{path}\n");
    match (&change.old, &change.new) {
        (None, Some(new)) => writeln!(text, "new file mode {}", new.kind.octal()),
        (Some(old), None) => writeln!(text, "deleted file mode {}", old.kind.octal()),
        (Some(old), Some(new)) if old.kind != new.kind => writeln!(
            text,
            "old mode {}\nnew mode {}",
            old.kind.octal(),
            new.kind.octal()
        ),
        _ => Ok(()),
    }
    .ok();
    if let Some(old_path) = &old_path {
        let verb = if change.status == ChangeStatus::Copied {
            "copy"
        } else {
            "rename"
        };
        let _ = writeln!(text, "{verb} from {old_path}\n{verb} to {path}");
    }
    let old = load(repo, roots, change.old.as_ref())?;
    let new = load(repo, roots, change.new.as_ref())?;
    let (old, new) = match (old, new) {
        (Loaded::Bytes(old), Loaded::Bytes(new)) => (old, new),
        (old, new) => {
            stats.binary = true;
            stats.note = [old, new].into_iter().find_map(Loaded::into_note);
            let _ = writeln!(text, "Binary files a/{from} and b/{path} differ");
            return Ok((stats, text));
        }
    };
    if is_binary(&old) || is_binary(&new) {
        stats.binary = true;
        let _ = writeln!(text, "Binary files a/{from} and b/{path} differ");
        return Ok((stats, text));
    }
    if old == new {
        return Ok((stats, text));
    }
    let input = InternedInput::new(old.as_slice(), new.as_slice());
    let mut diff = Diff::compute(Algorithm::Histogram, &input);
    diff.postprocess_lines(&input);
    stats.additions = diff.count_additions();
    stats.deletions = diff.count_removals();
    let minus = if change.old.is_some() {
        format!("a/{from}")
    } else {
        "/dev/null".to_owned()
    };
    let plus = if change.new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let _ = writeln!(text, "--- {minus}\n+++ {plus}");
    let writer = HunkWriter { out: &mut text };
    UnifiedDiff::new(&diff, &input, writer, ContextSize::symmetrical(context))
        .consume()
        .map_err(|err| failed("render a diff", err))?;
    Ok((stats, text))
}

enum Loaded {
    Bytes(Vec<u8>),
    /// Not compared: too large, or unreadable (with the reason).
    Skipped(Option<String>),
}

impl Loaded {
    fn into_note(self) -> Option<String> {
        match self {
            Self::Skipped(note) => note,
            Self::Bytes(_) => None,
        }
    }
}

fn load(repo: &gix::Repository, roots: &Roots, side: Option<&Side>) -> Result<Loaded, ToolError> {
    let Some(side) = side else {
        return Ok(Loaded::Bytes(Vec::new()));
    };
    match (&side.content, side.kind) {
        // Git shows a submodule as the commit it points at.
        (Content::Object(id), EntryKind::Submodule) => Ok(Loaded::Bytes(
            format!("Subproject commit {id}\n").into_bytes(),
        )),
        (Content::Object(id), _) => {
            let header = repo
                .find_header(*id)
                .map_err(|err| failed(&format!("find object {id}"), err))?;
            if header.size() > MAX_DIFF_INPUT_BYTES {
                return Ok(Loaded::Skipped(Some(format!(
                    "{} bytes, more than the {MAX_DIFF_INPUT_BYTES}-byte diff limit",
                    header.size()
                ))));
            }
            let object = repo
                .find_object(*id)
                .map_err(|err| failed(&format!("read object {id}"), err))?;
            Ok(Loaded::Bytes(object.detach().data))
        }
        (Content::Worktree(path), EntryKind::Symlink) => match std::fs::read_link(path) {
            // Git diffs a symlink as the text of its target.
            Ok(target) => Ok(Loaded::Bytes(target.into_os_string().into_encoded_bytes())),
            Err(err) => Ok(Loaded::Skipped(Some(format!(
                "cannot read the link: {err}"
            )))),
        },
        (Content::Worktree(_), EntryKind::Submodule) => Ok(Loaded::Skipped(Some(
            "submodule working trees are not diffed".to_owned(),
        ))),
        (Content::Worktree(path), _) => {
            match crate::open::read_regular_file(roots, path, MAX_DIFF_INPUT_BYTES + 1) {
                Ok(bytes) if bytes.len() as u64 > MAX_DIFF_INPUT_BYTES => {
                    Ok(Loaded::Skipped(Some(format!(
                        "more than the {MAX_DIFF_INPUT_BYTES}-byte diff limit"
                    ))))
                }
                Ok(bytes) => Ok(Loaded::Bytes(bytes)),
                Err(err) => Ok(Loaded::Skipped(Some(err.to_string()))),
            }
        }
    }
}

fn is_binary(bytes: &[u8]) -> bool {
    bytes[..bytes.len().min(BINARY_SNIFF_BYTES)].contains(&0)
}

/// Appends hunks in unified format; invalid UTF-8 shows as U+FFFD.
struct HunkWriter<'a> {
    out: &'a mut String,
}

impl ConsumeHunk for HunkWriter<'_> {
    type Out = ();

    fn consume_hunk(
        &mut self,
        header: HunkHeader,
        lines: &[(DiffLineKind, &[u8])],
    ) -> std::io::Result<()> {
        // Git's spelling: an empty range starts at the line before it, a one-line range
        // has no length (gix renders both as `start,len` with `start + 1`).
        let range = |start: u32, len: u32| match len {
            0 => format!("{},0", start.saturating_sub(1)),
            1 => start.to_string(),
            _ => format!("{start},{len}"),
        };
        let _ = writeln!(
            self.out,
            "@@ -{} +{} @@",
            range(header.before_hunk_start, header.before_hunk_len),
            range(header.after_hunk_start, header.after_hunk_len)
        );
        for (kind, line) in lines {
            self.out.push(kind.to_prefix());
            let body = line.strip_suffix(b"\n").unwrap_or(line);
            self.out.push_str(&String::from_utf8_lossy(body));
            self.out.push('\n');
            if !line.ends_with(b"\n") {
                self.out.push_str("\\ No newline at end of file\n");
            }
        }
        Ok(())
    }

    fn finish(self) -> Self::Out {}
}
