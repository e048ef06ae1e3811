//! The history file: an append-only journal of JSON lines, compacted now and then.
//!
//! ```text
//! {"format":"bash-god-history","version":1}
//! {"command":"make -j2","outcome":{"exit_code":2,…}}
//! …one line per execution, oldest first
//! ```
//!
//! Recording an execution appends one line with a single `write` and `fdatasync`s it, so a
//! reported execution survives a crash. A crash in the middle of an append can only leave a
//! partial last line: it is dropped when the file is read (it was never reported). The file
//! is rewritten whole only to compact it: when it is opened with something to drop, and when
//! records evicted by the bounds take as much room as the live ones; the rewrite goes to a
//! temporary file that is synced and renamed over the journal, so a crash leaves either
//! the old file or the new one. Files written by older versions (the learning store's
//! `MCPSTORE` snapshot) are read and converted.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use mcp_rust_core::durable::replace_file;
use serde::{Deserialize, Serialize};

use super::{HistoryError, RecordedOutcome};

const FORMAT: &str = "bash-god-history";
const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
struct Header {
    format: String,
    version: u32,
}

/// One line of the journal: an execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub command: String,
    pub outcome: RecordedOutcome,
}

impl Entry {
    /// The entry as one journal line, newline included.
    pub fn line(&self) -> Vec<u8> {
        // invariant: Entry is plain data; serialization cannot fail.
        let mut line = serde_json::to_vec(self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// What was read from an existing file.
#[derive(Debug, Default)]
pub struct Contents {
    pub entries: Vec<Entry>,
    /// Something must be rewritten: a partial last line, or an old format.
    pub needs_rewrite: bool,
    /// Bytes on disk.
    pub file_bytes: u64,
}

/// The open journal, positioned for appends.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    /// Bytes in the file, garbage (evicted records) included.
    pub file_bytes: u64,
}

fn io_error(path: &Path, action: &'static str) -> impl FnOnce(std::io::Error) -> HistoryError {
    let path = path.to_owned();
    move |source| HistoryError::Io {
        action,
        path,
        source,
    }
}

/// Reads the journal at `path` (which exists). A partial or unreadable *last* line is a
/// crash in the middle of an append and is dropped; an unreadable line before the last is
/// corruption and an error.
pub fn read(path: &Path) -> Result<Contents, HistoryError> {
    let bytes = std::fs::read(path).map_err(io_error(path, "read"))?;
    let file_bytes = bytes.len() as u64;
    if bytes.is_empty() {
        // Created but never written (e.g. `touch`): an empty history.
        return Ok(Contents {
            needs_rewrite: true,
            ..Contents::default()
        });
    }
    if bytes.starts_with(b"MCPSTORE") {
        let mut contents = super::legacy::read_snapshot(path)?;
        contents.file_bytes = file_bytes;
        return Ok(contents);
    }
    let not_a_journal = || HistoryError::NotAJournal {
        path: path.to_owned(),
    };
    let mut lines = bytes.split(|&b| b == b'\n').enumerate().peekable();
    let header: Header = lines
        .next()
        .and_then(|(_, line)| serde_json::from_slice(line).ok())
        .ok_or_else(not_a_journal)?;
    if header.format != FORMAT {
        return Err(not_a_journal());
    }
    if header.version != VERSION {
        return Err(HistoryError::UnsupportedVersion {
            path: path.to_owned(),
            found: header.version,
        });
    }
    // `split` yields an empty last piece when the file ends with a newline.
    let complete = bytes.ends_with(b"\n");
    let mut contents = Contents {
        file_bytes,
        ..Contents::default()
    };
    while let Some((index, line)) = lines.next() {
        let last = lines
            .peek()
            .is_none_or(|(_, rest)| rest.is_empty() && complete);
        if line.is_empty() && last {
            break;
        }
        match serde_json::from_slice::<Entry>(line) {
            Ok(entry) => contents.entries.push(entry),
            Err(_) if last => {
                contents.needs_rewrite = true;
                break;
            }
            Err(e) => {
                return Err(HistoryError::Corrupt {
                    path: path.to_owned(),
                    line: index + 1,
                    reason: e.to_string(),
                });
            }
        }
        if last && !complete {
            // A whole record whose newline did not reach the disk: kept, line rewritten.
            contents.needs_rewrite = true;
        }
    }
    Ok(contents)
}

impl Journal {
    /// Opens `path` for appends (it must be a journal already).
    pub fn open_for_append(path: &Path, file_bytes: u64) -> Result<Self, HistoryError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_error(path, "open for appending"))?;
        Ok(Self {
            path: path.to_owned(),
            file,
            file_bytes,
        })
    }

    /// Writes a journal holding exactly `lines` at `path`, atomically, and opens it for
    /// appends.
    pub fn create(path: &Path, lines: &[Vec<u8>]) -> Result<Self, HistoryError> {
        let file_bytes = rewrite(path, lines)?;
        Self::open_for_append(path, file_bytes)
    }

    /// Appends one line and waits until it is on disk.
    pub fn append(&mut self, line: &[u8]) -> Result<(), HistoryError> {
        // One write call: a crash leaves a prefix of this line at worst, never a mix.
        self.file
            .write_all(line)
            .map_err(io_error(&self.path, "append to"))?;
        self.file
            .sync_data()
            .map_err(io_error(&self.path, "sync"))?;
        self.file_bytes += line.len() as u64;
        Ok(())
    }

    /// Replaces the journal by one holding exactly `lines` (compaction).
    pub fn compact(&mut self, lines: &[Vec<u8>]) -> Result<(), HistoryError> {
        *self = Self::create(&self.path, lines)?;
        Ok(())
    }
}

/// Writes header + `lines` to a temporary file next to `path`, syncs it, renames it over
/// `path` and syncs the directory; returns the new size.
fn rewrite(path: &Path, lines: &[Vec<u8>]) -> Result<u64, HistoryError> {
    let header = serde_json::to_vec(&Header {
        format: FORMAT.to_owned(),
        version: VERSION,
    })
    .unwrap_or_default();
    let mut size = header.len() as u64 + 1;
    // The rename is on disk before anything is appended to the new file.
    replace_file(path, ".bash-god-history-", |out| {
        out.write_all(&header)?;
        out.write_all(b"\n")?;
        for line in lines {
            size += line.len() as u64;
            out.write_all(line)?;
        }
        Ok(())
    })
    .map_err(|error| io_error(path, error.action)(error.source))?;
    Ok(size)
}
