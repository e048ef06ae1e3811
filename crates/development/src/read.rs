//! `read_file` and `read_files`: file contents by line range, byte range or tail, within a
//! size cap, with binary detection and lossless handling of bytes that are not UTF-8.
//!
//! Encoding: `content` is always valid UTF-8 text. When the selected bytes are valid UTF-8
//! it is exactly them (`encoding: "utf-8"`). When they are not, each invalid sequence
//! shows as U+FFFD (`encoding: "utf-8-lossy"`) and `content_base64` carries the exact
//! bytes, so nothing is lost. `encoding: "base64"` returns base64 only (any file, binary
//! included). A file with a NUL byte in its first 8 KiB is binary: text mode returns no
//! content and says so.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;
use std::path::Path;

use base64::Engine as _;
use mcp_server_runtime::{CancelFlag, Roots, ToolError, confine_path};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::open::{OpenFile, open_regular_file};
use crate::paths::display_path;

/// Content bytes returned per file when `max_bytes` is not given.
pub const DEFAULT_MAX_BYTES: usize = 100 * 1024;
/// The largest `max_bytes` accepted (the server's output cap may lower it further).
pub const MAX_BYTES_LIMIT: usize = 4 * 1024 * 1024;
/// Files `read_files` accepts at once.
pub const MAX_FILES: usize = 50;
/// Lines are counted to the end (for `total_lines`) only in files up to this size.
const MAX_COUNTED_BYTES: u64 = 64 * 1024 * 1024;
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
    let path = confine_path(&params.path, roots)?;
    read_confined(&path, &params.range, roots, budget)
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
        let result = confine_path(given, roots)
            .map_err(ToolError::from)
            .and_then(|path| read_confined(&path, &range, roots, left.max(1)));
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

fn read_confined(
    path: &Path,
    range: &Range,
    roots: &Roots,
    budget: usize,
) -> Result<FileContent, ToolError> {
    let mode = Mode::of(range)?;
    let mut max = cap(range.max_bytes, budget)?;
    // Base64 and the lossy+exact pair grow the output; keep the total within the budget.
    if range.encoding == Encoding::Base64 {
        max = max.min(budget / 4 * 3).max(3);
    }
    let OpenFile { file, metadata } = open_regular_file(roots, path)?;
    let size = metadata.len();
    let shown = display_path(roots, path);
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

/// The bytes chosen, where they are, and how to continue.
struct Selection {
    bytes: Vec<u8>,
    offset: u64,
    lines: Option<(u64, u64)>,
    total_lines: Option<u64>,
    truncated: bool,
    next_line: Option<u64>,
    next_offset: Option<u64>,
    note: Option<String>,
}

fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn read_bytes(
    file: &File,
    size: u64,
    offset: u64,
    length: Option<u64>,
    max: usize,
) -> std::io::Result<Selection> {
    let wanted = length.unwrap_or(u64::MAX).min(size.saturating_sub(offset));
    let take = wanted.min(max as u64);
    let mut bytes = vec![0; usize::try_from(take).unwrap_or(max)];
    let read = read_at_most(file, &mut bytes, offset)?;
    bytes.truncate(read);
    let truncated = (read as u64) < wanted;
    let end = offset + read as u64;
    Ok(Selection {
        bytes,
        offset,
        lines: None,
        total_lines: None,
        truncated,
        next_line: None,
        next_offset: truncated.then_some(end),
        note: truncated.then(|| {
            format!(
                "truncated at max_bytes: returned bytes {offset}..{end} of {size}; continue with offset={end}"
            )
        }),
    })
}

fn read_lines(
    file: &File,
    size: u64,
    start: u64,
    end: Option<u64>,
    max: usize,
) -> std::io::Result<Selection> {
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    reader.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut position = 0u64;
    let mut selection = Selection {
        bytes: Vec::new(),
        offset: 0,
        lines: None,
        total_lines: None,
        truncated: false,
        next_line: None,
        next_offset: None,
        note: None,
    };
    let mut first_returned = None;
    loop {
        line.clear();
        // Read at most one byte past what can still be returned, so a huge line without
        // a newline cannot make this read unbounded.
        let room = max - selection.bytes.len();
        let read = (&mut reader)
            .take(room as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        // Either a whole line (with its newline, or the last one of the file) or the
        // first `room + 1` bytes of a longer line.
        let whole = line.ends_with(b"\n") || position + read as u64 >= size;
        let this_line = number + 1;
        if this_line < start {
            let rest = if whole { 0 } else { skip_line(&mut reader)? };
            position += read as u64 + rest;
            number += 1;
            continue;
        }
        if end.is_some_and(|end| this_line > end) {
            break;
        }
        let first = *first_returned.get_or_insert(this_line);
        if selection.bytes.is_empty() {
            selection.offset = position;
        }
        if !whole || selection.bytes.len() + line.len() > max {
            selection.truncated = true;
            if selection.bytes.is_empty() {
                // Not even this line fits: return its start, continue by offset.
                selection
                    .bytes
                    .extend_from_slice(&line[..room.min(line.len())]);
                let next = position + selection.bytes.len() as u64;
                selection.next_offset = Some(next);
                selection.note = Some(format!(
                    "line {this_line} is longer than max_bytes ({max}); continue with offset={next}"
                ));
                selection.lines = Some((this_line, this_line));
            } else {
                selection.next_line = Some(this_line);
                selection.note = Some(format!(
                    "truncated at max_bytes ({max}): returned lines {first}..={}; continue with start_line={this_line}",
                    this_line - 1
                ));
            }
            break;
        }
        selection.bytes.extend_from_slice(&line);
        position += read as u64;
        number += 1;
        selection.lines = Some((first, number));
    }
    if size <= MAX_COUNTED_BYTES {
        selection.total_lines = Some(count_lines(file, size)?);
    }
    Ok(selection)
}

/// Consumes the rest of the current line; returns the bytes skipped.
fn skip_line(reader: &mut BufReader<&File>) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        match memchr::memchr(b'\n', buffer) {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(skipped + at as u64 + 1);
            }
            None => {
                let n = buffer.len();
                reader.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// Lines in the file: newlines, plus one for a last line without a newline.
fn count_lines(file: &File, size: u64) -> std::io::Result<u64> {
    let mut buffer = vec![0; 256 * 1024];
    let mut offset = 0;
    let mut lines = 0u64;
    let mut last = b'\n';
    while offset < size {
        let read = read_at_most(file, &mut buffer, offset)?;
        if read == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
        last = buffer[read - 1];
        offset += read as u64;
    }
    Ok(lines + u64::from(last != b'\n'))
}

fn read_tail(file: &File, size: u64, wanted: u64, max: usize) -> std::io::Result<Selection> {
    // Walk back from the end in chunks until `wanted` line starts are found. A newline at
    // the very end closes the last line rather than starting a new one.
    let chunk = 64 * 1024u64;
    let mut start = size;
    let mut found = 0u64;
    let mut position = size;
    let mut buffer = vec![0; chunk as usize];
    'scan: while position > 0 {
        let from = position.saturating_sub(chunk);
        let read = read_at_most(file, &mut buffer[..(position - from) as usize], from)?;
        for (i, byte) in buffer[..read].iter().enumerate().rev() {
            let at = from + i as u64;
            if *byte == b'\n' && at + 1 < size {
                found += 1;
                if found == wanted {
                    start = at + 1;
                    break 'scan;
                }
            }
        }
        position = from;
        start = 0;
        // Reading back past max bytes cannot help: only the last max bytes are returned.
        if size - position > max as u64 + chunk {
            break;
        }
    }
    let available = size - start;
    let mut offset = start;
    let mut truncated = false;
    if available > max as u64 {
        // Keep the end: drop whole leading lines until the rest fits.
        truncated = true;
        offset = size - max as u64;
        let mut probe = vec![0; max];
        let read = read_at_most(file, &mut probe, offset)?;
        if let Some(newline) = memchr::memchr(b'\n', &probe[..read])
            && newline + 1 < read
        {
            offset += newline as u64 + 1;
        }
    }
    let mut bytes = vec![0; usize::try_from(size - offset).unwrap_or(max)];
    let read = read_at_most(file, &mut bytes, offset)?;
    bytes.truncate(read);
    let total_lines = (size <= MAX_COUNTED_BYTES)
        .then(|| count_lines(file, size))
        .transpose()?;
    let returned_lines = memchr::memchr_iter(b'\n', &bytes).count() as u64
        + u64::from(bytes.last().is_some_and(|b| *b != b'\n'));
    let lines = total_lines.map(|total| (total + 1 - returned_lines.min(total), total));
    Ok(Selection {
        bytes,
        offset,
        lines: lines.filter(|_| returned_lines > 0),
        total_lines,
        truncated,
        next_line: None,
        next_offset: None,
        note: truncated.then(|| {
            format!(
                "the last {wanted} lines are more than max_bytes ({max}); returned bytes {offset}..{size}, earlier lines left out"
            )
        }),
    })
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
mod tests {
    use super::*;
    use std::fs;

    const BUDGET: usize = 1 << 20;

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let lines: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        fs::write(root.join("ten.txt"), lines).unwrap();
        fs::write(root.join("no-newline.txt"), "a\nb").unwrap();
        fs::write(root.join("latin1.txt"), b"caf\xe9 ok\n").unwrap();
        fs::write(root.join("image.png"), b"\x89PNG\r\n\x1a\n\x00\x00rest").unwrap();
        fs::write(root.join("utf8.txt"), "h\u{e9}llo \u{1F600}\n").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    fn read(roots: &Roots, path: &str, range: Range) -> Result<FileContent, ToolError> {
        read_file(
            &ReadFileParams {
                path: path.into(),
                range,
            },
            roots,
            BUDGET,
        )
    }

    #[test]
    fn whole_file_and_line_ranges() {
        let (_dir, roots) = fixture();
        let all = read(&roots, "ten.txt", Range::default()).unwrap();
        assert_eq!(all.content.lines().count(), 10);
        assert_eq!(
            (all.start_line, all.end_line, all.total_lines),
            (Some(1), Some(10), Some(10))
        );
        assert!(!all.truncated && all.encoding == "utf-8" && all.content_base64.is_none());
        let range = Range {
            start_line: Some(3),
            end_line: Some(4),
            ..Range::default()
        };
        let part = read(&roots, "ten.txt", range).unwrap();
        assert_eq!(part.content, "line 3\nline 4\n");
        assert_eq!(
            (part.offset, part.length, part.start_line, part.end_line),
            (14, 14, Some(3), Some(4))
        );
        let range = Range {
            start_line: Some(9),
            end_line: Some(99),
            ..Range::default()
        };
        assert_eq!(
            read(&roots, "ten.txt", range).unwrap().content,
            "line 9\nline 10\n"
        );
        let range = Range {
            start_line: Some(50),
            ..Range::default()
        };
        let past = read(&roots, "ten.txt", range).unwrap();
        assert!(past.content.is_empty() && past.start_line.is_none());
        let range = Range {
            start_line: Some(2),
            ..Range::default()
        };
        assert_eq!(read(&roots, "no-newline.txt", range).unwrap().content, "b");
    }

    #[test]
    fn tail_and_byte_ranges() {
        let (_dir, roots) = fixture();
        let range = Range {
            tail_lines: Some(2),
            ..Range::default()
        };
        let tail = read(&roots, "ten.txt", range).unwrap();
        assert_eq!(tail.content, "line 9\nline 10\n");
        assert_eq!((tail.start_line, tail.end_line), (Some(9), Some(10)));
        let range = Range {
            tail_lines: Some(1),
            ..Range::default()
        };
        assert_eq!(read(&roots, "no-newline.txt", range).unwrap().content, "b");
        let range = Range {
            tail_lines: Some(100),
            ..Range::default()
        };
        assert_eq!(
            read(&roots, "ten.txt", range)
                .unwrap()
                .content
                .lines()
                .count(),
            10
        );
        let range = Range {
            offset: Some(5),
            length: Some(3),
            ..Range::default()
        };
        let bytes = read(&roots, "ten.txt", range).unwrap();
        assert_eq!(
            (bytes.content.as_str(), bytes.offset, bytes.truncated),
            ("1\nl", 5, false)
        );
        let range = Range {
            offset: Some(1000),
            ..Range::default()
        };
        assert!(read(&roots, "ten.txt", range).unwrap().content.is_empty());
    }

    #[test]
    fn truncation_says_how_to_continue() {
        let (_dir, roots) = fixture();
        let range = Range {
            max_bytes: Some(20),
            ..Range::default()
        };
        let cut = read(&roots, "ten.txt", range).unwrap();
        assert_eq!(cut.content, "line 1\nline 2\n");
        assert!(cut.truncated);
        assert_eq!((cut.next_line, cut.end_line), (Some(3), Some(2)));
        assert!(
            cut.note.as_deref().unwrap().contains("start_line=3"),
            "{:?}",
            cut.note
        );
        // A line longer than the cap is cut inside, on a character boundary.
        let range = Range {
            max_bytes: Some(3),
            ..Range::default()
        };
        let cut = read(&roots, "utf8.txt", range).unwrap();
        assert_eq!(
            (cut.content.as_str(), cut.next_offset),
            ("h\u{e9}", Some(3))
        );
        let range = Range {
            offset: Some(0),
            max_bytes: Some(2),
            ..Range::default()
        };
        let cut = read(&roots, "utf8.txt", range).unwrap();
        assert_eq!(
            (cut.content.as_str(), cut.next_offset, cut.encoding.as_str()),
            ("h", Some(1), "utf-8")
        );
        let range = Range {
            tail_lines: Some(3),
            max_bytes: Some(10),
            ..Range::default()
        };
        let cut = read(&roots, "ten.txt", range).unwrap();
        assert_eq!(cut.content, "line 10\n");
        assert!(cut.truncated);
        // The server's output budget caps whatever was asked.
        let small = read_file(
            &ReadFileParams {
                path: "ten.txt".into(),
                range: Range::default(),
            },
            &roots,
            8,
        )
        .unwrap();
        assert_eq!(small.content, "line 1\n");
    }

    #[test]
    fn invalid_utf8_is_lossless_and_binary_is_detected() {
        let (_dir, roots) = fixture();
        let latin = read(&roots, "latin1.txt", Range::default()).unwrap();
        assert_eq!(latin.content, "caf\u{FFFD} ok\n");
        assert_eq!(latin.encoding, "utf-8-lossy");
        let exact = base64::engine::general_purpose::STANDARD
            .decode(latin.content_base64.unwrap())
            .unwrap();
        assert_eq!(exact, b"caf\xe9 ok\n");
        let png = read(&roots, "image.png", Range::default()).unwrap();
        assert!(png.binary && png.content.is_empty() && png.encoding == "none");
        assert!(png.note.unwrap().contains("base64"));
        let range = Range {
            encoding: Encoding::Base64,
            ..Range::default()
        };
        let png = read(&roots, "image.png", range).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.content)
            .unwrap();
        assert_eq!(bytes, b"\x89PNG\r\n\x1a\n\x00\x00rest");
    }

    #[test]
    fn bad_requests_escapes_fifos_and_symlinks_are_errors() {
        let (dir, roots) = fixture();
        let bad = [
            Range {
                start_line: Some(0),
                ..Range::default()
            },
            Range {
                start_line: Some(5),
                end_line: Some(2),
                ..Range::default()
            },
            Range {
                start_line: Some(1),
                offset: Some(0),
                ..Range::default()
            },
            Range {
                tail_lines: Some(0),
                ..Range::default()
            },
            Range {
                max_bytes: Some(0),
                ..Range::default()
            },
        ];
        for range in bad {
            let err = read(&roots, "ten.txt", range).unwrap_err();
            assert!(err.to_string().starts_with("invalid input"), "{err}");
        }
        let sibling = format!("../{}", dir.path().file_name().unwrap().to_str().unwrap());
        assert!(
            read(
                &roots,
                &format!("{sibling}/ten.txt/../../"),
                Range::default()
            )
            .is_err()
        );
        assert!(
            read(&roots, "..", Range::default())
                .unwrap_err()
                .to_string()
                .starts_with("denied")
        );
        assert!(
            read(&roots, "/etc/passwd", Range::default())
                .unwrap_err()
                .to_string()
                .starts_with("denied")
        );
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), dir.path().join("link")).unwrap();
        assert!(
            read(&roots, "link", Range::default())
                .unwrap_err()
                .to_string()
                .starts_with("denied")
        );
        crate::open::make_fifo(&dir.path().join("pipe"));
        let err = read(&roots, "pipe", Range::default()).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
        let err = read(&roots, ".", Range::default()).unwrap_err();
        assert!(err.to_string().contains("directory"), "{err}");
    }

    #[test]
    fn read_files_reports_per_file_errors() {
        let (_dir, roots) = fixture();
        let params = ReadFilesParams {
            paths: vec![
                "ten.txt".into(),
                "missing.txt".into(),
                "/etc/passwd".into(),
                "no-newline.txt".into(),
            ],
            max_bytes: None,
            encoding: Encoding::Text,
        };
        let out = read_files(&params, &roots, BUDGET, &CancelFlag::new()).unwrap();
        assert_eq!(out.errors, 2);
        assert_eq!(out.files[0].file.as_ref().unwrap().end_line, Some(10));
        assert!(
            out.files[1]
                .error
                .as_deref()
                .unwrap()
                .starts_with("not found")
        );
        assert!(out.files[2].error.as_deref().unwrap().starts_with("denied"));
        assert_eq!(out.files[3].file.as_ref().unwrap().content, "a\nb");
        // The budget is shared: later files get what earlier ones left.
        let params = ReadFilesParams {
            paths: vec!["ten.txt".into(), "ten.txt".into()],
            max_bytes: None,
            encoding: Encoding::Text,
        };
        let out = read_files(&params, &roots, 70, &CancelFlag::new()).unwrap();
        let first = out.files[0].file.as_ref().unwrap();
        let second = out.files[1].file.as_ref().unwrap();
        assert_eq!(first.content.len(), 63, "nine whole lines fit in 70 bytes");
        assert_eq!(second.content, "line 1\n", "the 7 bytes left");
        let empty = ReadFilesParams {
            paths: vec![],
            max_bytes: None,
            encoding: Encoding::Text,
        };
        assert!(read_files(&empty, &roots, BUDGET, &CancelFlag::new()).is_err());
    }
}
