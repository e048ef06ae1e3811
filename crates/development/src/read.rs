//! `read_file` and `read_files`: file contents by line range, byte range or tail, within a
//! size cap, with binary detection and lossless handling of bytes that are not UTF-8.
//!
//! Encoding: `content` is always valid UTF-8 text. When the selected bytes are valid UTF-8
//! it is exactly them (`encoding: "utf-8"`). When they are not, each invalid sequence
//! shows as U+FFFD (`encoding: "utf-8-lossy"`) and `content_base64` carries the exact
//! bytes, so nothing is lost. `encoding: "base64"` returns base64 only (any file, binary
//! included). A file with a NUL byte in its first 8 KiB is binary: text mode returns no
//! content and says so.

use std::path::Path;

use base64::Engine as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open::{OpenFile, open_regular_file};
use select::{Selection, read_at_most, read_bytes, read_lines, read_tail};

mod select;
use crate::paths::display_path;

/// Content bytes returned per file when `max_bytes` is not given.
pub const DEFAULT_MAX_BYTES: usize = 100 * 1024;
/// The largest `max_bytes` accepted (the server's output cap may lower it further).
pub const MAX_BYTES_LIMIT: usize = 4 * 1024 * 1024;
/// Files `read_files` accepts at once.
pub const MAX_FILES: usize = 50;
/// Bytes looked at for a NUL byte to call a file binary (as git does).
const BINARY_SNIFF_BYTES: usize = 8 * 1024;

/// How content is returned.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// UTF-8 text; invalid bytes as U+FFFD plus the exact bytes in `content_base64`.
    #[default]
    Text,
    /// The exact bytes, base64-encoded (works for binary files).
    Base64,
}

/// What part of a file to read. Line numbers are 1-based and inclusive.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct Range {
    /// First line to return (1-based). Default 1.
    #[serde(default)]
    pub start_line: Option<u64>,
    /// Last line to return (inclusive). Default: the end of the file.
    #[serde(default)]
    pub end_line: Option<u64>,
    /// Return only the last N lines (not with start_line/end_line/offset).
    #[serde(default)]
    pub tail_lines: Option<u64>,
    /// Byte offset to start at (not with line options).
    #[serde(default)]
    pub offset: Option<u64>,
    /// Bytes to return from `offset`. Default: to the end (within max_bytes).
    #[serde(default)]
    pub length: Option<u64>,
    /// Most content bytes returned; more is cut with `truncated` and a note saying how to
    /// continue. Default 102400.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// text (default) or base64.
    #[serde(default)]
    pub encoding: Encoding,
}

/// Arguments of `read_file`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ReadFileParams {
    /// The file; relative to the first root.
    pub path: String,
    #[serde(flatten)]
    pub range: Range,
}

/// Arguments of `read_files`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ReadFilesParams {
    /// The files (1-50); relative to the first root. Each is read from its start.
    pub paths: Vec<String>,
    /// Most content bytes per file. Default 102400; the output cap is shared between files.
    #[serde(default)]
    pub max_bytes: Option<usize>,
    /// text (default) or base64.
    #[serde(default)]
    pub encoding: Encoding,
}

/// A file's contents (or the requested part).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileContent {
    /// Path relative to the first root when inside it.
    pub path: String,
    /// File size in bytes.
    pub size: u64,
    /// The content: text, or base64 with `encoding: "base64"`. Empty for a binary file
    /// read as text.
    pub content: String,
    /// utf-8 (exact), utf-8-lossy (invalid bytes shown as U+FFFD; exact bytes in
    /// content_base64), base64, or none (binary file read as text).
    pub encoding: String,
    /// The exact bytes when `content` is lossy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// True when the file has a NUL byte in its first 8 KiB.
    pub binary: bool,
    /// Byte offset of the returned content in the file.
    pub offset: u64,
    /// Bytes returned (before any encoding).
    pub length: u64,
    /// First and last line returned (line modes; absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_line: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<u64>,
    /// Lines in the whole file, when counted (files up to 64 MiB).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total_lines: Option<u64>,
    /// True when the requested part did not fit in `max_bytes`.
    pub truncated: bool,
    /// What was left out and how to get it, when truncated or binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Where to continue: the next line (line modes cut at a line end) ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_line: Option<u64>,
    /// ... or the next byte offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_offset: Option<u64>,
}

/// One file of `read_files`: its content or why it could not be read.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FileResult {
    /// The path as given.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<FileContent>,
    /// The error for this file (the other files are still read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `read_files` returned.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ReadFilesOutput {
    /// One result per requested path, in order.
    pub files: Vec<FileResult>,
    /// Files that could not be read.
    pub errors: usize,
}

/// Runs `read_file`; `budget` is the most content bytes the output may carry.
pub fn read_file(
    params: &ReadFileParams,
    roots: &Roots,
    budget: usize,
) -> Result<FileContent, ToolError> {
    read_confined(Path::new(&params.path), &params.range, roots, budget)
}

/// Runs `read_files`; `budget` is shared by all files.
pub fn read_files(
    params: &ReadFilesParams,
    roots: &Roots,
    budget: usize,
    cancel: &CancelFlag,
) -> Result<ReadFilesOutput, ToolError> {
    if params.paths.is_empty() || params.paths.len() > MAX_FILES {
        return Err(ToolError::invalid_input(format!(
            "paths must hold 1 to {MAX_FILES} files, got {}",
            params.paths.len()
        )));
    }
    let per_file = cap(params.max_bytes, budget)?;
    let mut left = budget;
    let mut files = Vec::with_capacity(params.paths.len());
    for given in &params.paths {
        cancel.check()?;
        let range = Range {
            max_bytes: Some(per_file.min(left)),
            encoding: params.encoding,
            ..Range::default()
        };
        let result = read_confined(Path::new(given), &range, roots, left.max(1));
        files.push(match result {
            Ok(file) => {
                left = left.saturating_sub(encoded_len(&file));
                FileResult {
                    path: given.clone(),
                    file: Some(file),
                    error: None,
                }
            }
            Err(err) => FileResult {
                path: given.clone(),
                file: None,
                error: Some(err.to_string()),
            },
        });
    }
    let errors = files.iter().filter(|f| f.error.is_some()).count();
    Ok(ReadFilesOutput { files, errors })
}

fn encoded_len(file: &FileContent) -> usize {
    file.content.len() + file.content_base64.as_ref().map_or(0, String::len)
}

/// The effective cap: the request (or default), never above what the output can carry.
fn cap(requested: Option<usize>, budget: usize) -> Result<usize, ToolError> {
    let requested = requested.unwrap_or(DEFAULT_MAX_BYTES);
    if requested == 0 || requested > MAX_BYTES_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_bytes must be between 1 and {MAX_BYTES_LIMIT}, got {requested}"
        )));
    }
    Ok(requested.min(budget.max(1)))
}

/// Reads `given` (relative to the first root, or absolute): confined to the roots and
/// opened beneath its root in one step by [`open_regular_file`].
fn read_confined(
    given: &Path,
    range: &Range,
    roots: &Roots,
    budget: usize,
) -> Result<FileContent, ToolError> {
    let OpenFile {
        file,
        metadata,
        path,
    } = open_regular_file(roots, given)?;
    let mode = Mode::of(range)?;
    let mut max = cap(range.max_bytes, budget)?;
    // Base64 and the lossy+exact pair grow the output; keep the total within the budget.
    if range.encoding == Encoding::Base64 {
        max = max.min(budget / 4 * 3).max(3);
    }
    let size = metadata.len();
    let shown = display_path(roots, &path);
    let failed = |err: std::io::Error| ToolError::failed(format!("cannot read {shown}: {err}"));
    let mut head = vec![0; BINARY_SNIFF_BYTES.min(usize::try_from(size).unwrap_or(usize::MAX))];
    let sniffed = read_at_most(&file, &mut head, 0).map_err(failed)?;
    let binary = head[..sniffed].contains(&0);
    let mut out = FileContent {
        path: shown.clone(),
        size,
        content: String::new(),
        encoding: "none".to_owned(),
        content_base64: None,
        binary,
        offset: 0,
        length: 0,
        start_line: None,
        end_line: None,
        total_lines: None,
        truncated: false,
        note: None,
        next_line: None,
        next_offset: None,
    };
    if binary && range.encoding == Encoding::Text {
        out.note = Some(format!(
            "{shown} is binary (a NUL byte in its first 8 KiB); pass encoding \"base64\" to get its bytes"
        ));
        return Ok(out);
    }
    let selection = match mode {
        Mode::Bytes { offset, length } => read_bytes(&file, size, offset, length, max),
        Mode::Lines { start, end } => read_lines(&file, size, start, end, max),
        Mode::Tail { lines } => read_tail(&file, size, lines, max),
    }
    .map_err(failed)?;
    encode(&mut out, selection, range.encoding);
    Ok(out)
}

enum Mode {
    Bytes { offset: u64, length: Option<u64> },
    Lines { start: u64, end: Option<u64> },
    Tail { lines: u64 },
}

impl Mode {
    fn of(range: &Range) -> Result<Self, ToolError> {
        let lines = range.start_line.is_some() || range.end_line.is_some();
        let bytes = range.offset.is_some() || range.length.is_some();
        match (lines, bytes, range.tail_lines) {
            (true, true, _) | (true, _, Some(_)) | (_, true, Some(_)) => {
                Err(ToolError::invalid_input(
                    "choose one way to select: start_line/end_line, offset/length, or tail_lines",
                ))
            }
            (_, _, Some(0)) => Err(ToolError::invalid_input("tail_lines must be at least 1")),
            (_, _, Some(lines)) => Ok(Self::Tail { lines }),
            (_, true, None) => Ok(Self::Bytes {
                offset: range.offset.unwrap_or(0),
                length: range.length,
            }),
            (_, false, None) => {
                let start = range.start_line.unwrap_or(1);
                if start == 0 {
                    return Err(ToolError::invalid_input(
                        "start_line is 1-based: the first line is 1",
                    ));
                }
                if let Some(end) = range.end_line
                    && end < start
                {
                    return Err(ToolError::invalid_input(format!(
                        "end_line {end} is before start_line {start}"
                    )));
                }
                Ok(Self::Lines {
                    start,
                    end: range.end_line,
                })
            }
        }
    }
}

fn encode(out: &mut FileContent, mut selection: Selection, encoding: Encoding) {
    let engine = &base64::engine::general_purpose::STANDARD;
    if encoding == Encoding::Text && selection.truncated {
        // A cut inside a multi-byte character is not an encoding error of the file: move
        // the cut back to the character's start (at most 3 bytes).
        if let Err(err) = std::str::from_utf8(&selection.bytes)
            && err.error_len().is_none()
            && selection.bytes.len() - err.valid_up_to() < 4
        {
            selection.bytes.truncate(err.valid_up_to());
            if let Some(next) = &mut selection.next_offset {
                *next = selection.offset + selection.bytes.len() as u64;
            }
        }
    }
    out.offset = selection.offset;
    out.length = selection.bytes.len() as u64;
    out.start_line = selection.lines.map(|(first, _)| first);
    out.end_line = selection.lines.map(|(_, last)| last);
    out.total_lines = selection.total_lines;
    out.truncated = selection.truncated;
    out.next_line = selection.next_line;
    out.next_offset = selection.next_offset;
    out.note = selection.note;
    match encoding {
        Encoding::Base64 => {
            out.content = engine.encode(&selection.bytes);
            out.encoding = "base64".to_owned();
        }
        Encoding::Text => match String::from_utf8(selection.bytes) {
            Ok(text) => {
                out.content = text;
                out.encoding = "utf-8".to_owned();
            }
            Err(err) => {
                let bytes = err.into_bytes();
                out.content = String::from_utf8_lossy(&bytes).into_owned();
                out.content_base64 = Some(engine.encode(&bytes));
                out.encoding = "utf-8-lossy".to_owned();
            }
        },
    }
}

#[cfg(test)]
mod tests;
