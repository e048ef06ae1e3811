//! `analyze_log`: one streaming pass over a log file that counts levels and formats, groups
//! error messages, tracks the first and last timestamps, and collects regex matches.

mod normalize;
mod parse;
mod reader;
mod timestamp;

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use chrono::{DateTime, Utc};
use regex::{Regex, RegexBuilder};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::DevopsError;
use crate::text::truncate_chars;
pub use normalize::normalize_message;
use parse::{Format, Level, parse_line};
use reader::CappedLines;
use timestamp::{format_utc, parse_since};

/// Bytes of a line that are analyzed; the rest of a longer line is skipped, not loaded.
pub const MAX_LINE_BYTES: usize = 64 * 1024;
/// Default number of top errors and of pattern matches returned.
pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 1_000;
/// Longest `pattern` accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1_024;
/// Compiled size limit of `pattern`, to refuse patterns that would explode.
const PATTERN_SIZE_LIMIT: usize = 1 << 20;
/// Distinct error messages tracked; further new messages are only counted.
pub const MAX_DISTINCT_MESSAGES: usize = 10_000;
/// A text log has no NUL bytes in its first block; a binary file almost always does.
const BINARY_SNIFF_BYTES: usize = 8 * 1024;
/// Characters of a line returned in a pattern match or example.
const MAX_RETURNED_LINE_CHARS: usize = 500;
/// How often (in lines) the cancellation flag is checked.
const CANCEL_CHECK_LINES: u64 = 4_096;

/// Validated options of `analyze_log`.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pattern: Option<Regex>,
    since_ms: Option<i64>,
    limit: usize,
    now: DateTime<Utc>,
}

impl LogQuery {
    pub fn new(
        pattern: Option<&str>,
        since: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Self, DevopsError> {
        Self::with_clock(pattern, since, limit, Utc::now())
    }

    /// `now` decides the year of syslog timestamps, which do not carry one.
    pub fn with_clock(
        pattern: Option<&str>,
        since: Option<&str>,
        limit: Option<usize>,
        now: DateTime<Utc>,
    ) -> Result<Self, DevopsError> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(DevopsError::invalid(format!(
                "limit must be between 1 and {MAX_LIMIT}, got {limit}"
            )));
        }
        let pattern = pattern.map(compile_pattern).transpose()?;
        let since_ms = since.map(|s| parse_since(s, now)).transpose()?;
        Ok(Self {
            pattern,
            since_ms,
            limit,
            now,
        })
    }
}

fn compile_pattern(pattern: &str) -> Result<Regex, DevopsError> {
    if pattern.is_empty() {
        return Err(DevopsError::invalid(
            "pattern is empty; omit it to skip matching",
        ));
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(DevopsError::invalid(format!(
            "pattern is {} bytes; at most {MAX_PATTERN_BYTES} are accepted",
            pattern.len()
        )));
    }
    RegexBuilder::new(pattern)
        .size_limit(PATTERN_SIZE_LIMIT)
        .build()
        .map_err(|e| DevopsError::invalid(format!("pattern is not a valid regex: {e}")))
}

/// The result of `analyze_log`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LogAnalysis {
    pub path: String,
    pub bytes_read: u64,
    pub lines_total: u64,
    /// Lines counted in the statistics (those at or after `since`).
    pub lines_analyzed: u64,
    /// Lines skipped because they were before `since` (continuation lines follow the last
    /// timestamped line).
    pub lines_before_since: u64,
    /// Lines longer than the per-line cap; only their start was analyzed.
    pub lines_truncated: u64,
    /// Lines that were not valid UTF-8 (analyzed with replacement characters).
    pub lines_not_utf8: u64,
    pub max_line_bytes: usize,
    pub formats: FormatCounts,
    pub levels: LevelCounts,
    /// The most frequent error messages after normalizing numbers and ids, most frequent first.
    pub top_errors: Vec<ErrorGroup>,
    /// Distinct normalized error messages seen.
    pub distinct_error_messages: usize,
    /// More than `MAX_DISTINCT_MESSAGES` distinct messages: later new ones were not grouped.
    pub error_groups_capped: bool,
    pub first_timestamp: Option<TimestampSeen>,
    pub last_timestamp: Option<TimestampSeen>,
    pub pattern: Option<PatternMatches>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct FormatCounts {
    pub json: u64,
    pub syslog: u64,
    pub plain: u64,
}

/// Lines per level. FATAL/CRITICAL count as error, TRACE as debug, NOTICE as info.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct LevelCounts {
    pub error: u64,
    pub warn: u64,
    pub info: u64,
    pub debug: u64,
    /// Lines without a recognizable level (including blank and continuation lines).
    pub unknown: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorGroup {
    /// Normalized message: `<n>` numbers, `<hex>` hex ids, `<uuid>` UUIDs.
    pub message: String,
    pub count: u64,
    /// 1-based line number of the first occurrence.
    pub first_line: u64,
    /// The first occurrence as written.
    pub example: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TimestampSeen {
    /// As written in the log.
    pub raw: String,
    /// RFC 3339 UTC, when the timestamp could be read (zone-less times are taken as UTC).
    pub utc: Option<String>,
    pub line: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PatternMatches {
    pub pattern: String,
    /// All analyzed lines that matched.
    pub matching_lines: u64,
    /// The first `limit` matching lines.
    pub matches: Vec<LineMatch>,
    /// More lines matched than are listed.
    pub truncated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LineMatch {
    /// 1-based line number.
    pub line: u64,
    pub text: String,
}

/// Analyzes the file at `path`, opened by name (tests and trusted paths; the server opens
/// the user's path beneath a root and calls [`analyze_open_log`]). `cancelled` is polled so
/// a cancelled or timed-out request stops reading.
pub fn analyze_log_file(
    path: &Path,
    query: &LogQuery,
    cancelled: &dyn Fn() -> bool,
) -> Result<LogAnalysis, DevopsError> {
    let shown = path.display().to_string();
    if path.is_dir() {
        return Err(io_error(&shown)(io::Error::from(
            io::ErrorKind::IsADirectory,
        )));
    }
    let file = File::open(path).map_err(io_error(&shown))?;
    analyze_open_log(file, &shown, query, cancelled)
}

/// Analyzes an open log `file`, named `shown` in messages.
pub fn analyze_open_log(
    file: File,
    shown: &str,
    query: &LogQuery,
    cancelled: &dyn Fn() -> bool,
) -> Result<LogAnalysis, DevopsError> {
    let io_error = io_error(shown);
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let head = reader.fill_buf().map_err(&io_error)?;
    if memchr::memchr(0, &head[..head.len().min(BINARY_SNIFF_BYTES)]).is_some() {
        return Err(DevopsError::invalid(format!(
            "{shown} looks like a binary file (NUL bytes near its start), not a text log; \
             pass a plain-text, syslog or JSON-lines log"
        )));
    }
    analyze_reader(reader, shown.to_owned(), query, cancelled).map_err(|e| match e {
        AnalyzeError::Io(e) => io_error(e),
        AnalyzeError::Cancelled => DevopsError::Cancelled,
    })
}

/// The error for an I/O failure on the log named `shown`.
fn io_error(shown: &str) -> impl Fn(io::Error) -> DevopsError + '_ {
    move |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => {
            DevopsError::NotFound(format!("{shown} does not exist; check the path"))
        }
        io::ErrorKind::PermissionDenied => {
            DevopsError::Denied(format!("permission denied reading {shown}"))
        }
        io::ErrorKind::IsADirectory => {
            DevopsError::invalid(format!("{shown} is a directory; pass a log file inside it"))
        }
        _ => DevopsError::Failed(format!("cannot read {shown}: {e}")),
    }
}

enum AnalyzeError {
    Io(io::Error),
    Cancelled,
}

struct ErrorStats {
    count: u64,
    first_line: u64,
    example: String,
}

fn analyze_reader<R: BufRead>(
    reader: R,
    path: String,
    query: &LogQuery,
    cancelled: &dyn Fn() -> bool,
) -> Result<LogAnalysis, AnalyzeError> {
    let mut lines = CappedLines::new(reader, MAX_LINE_BYTES);
    let mut analysis = LogAnalysis {
        path,
        bytes_read: 0,
        lines_total: 0,
        lines_analyzed: 0,
        lines_before_since: 0,
        lines_truncated: 0,
        lines_not_utf8: 0,
        max_line_bytes: MAX_LINE_BYTES,
        formats: FormatCounts::default(),
        levels: LevelCounts::default(),
        top_errors: Vec::new(),
        distinct_error_messages: 0,
        error_groups_capped: false,
        first_timestamp: None,
        last_timestamp: None,
        pattern: query.pattern.as_ref().map(|p| PatternMatches {
            pattern: p.as_str().to_owned(),
            matching_lines: 0,
            matches: Vec::new(),
            truncated: false,
        }),
        notes: Vec::new(),
    };
    let mut errors: HashMap<String, ErrorStats> = HashMap::new();
    // With `since`, lines count once a timestamp at or after it was seen; lines without a
    // timestamp (stack traces, continuations) share the state of the last timestamped line.
    let mut in_window = query.since_ms.is_none();
    let mut unreadable_timestamps = 0u64;
    let mut timestamped_lines = 0u64;

    while let Some(line) = lines.next_line().map_err(AnalyzeError::Io)? {
        analysis.lines_total += 1;
        let line_no = analysis.lines_total;
        if line_no.is_multiple_of(CANCEL_CHECK_LINES) && cancelled() {
            return Err(AnalyzeError::Cancelled);
        }
        analysis.lines_truncated += u64::from(line.truncated);
        let text = match std::str::from_utf8(line.bytes) {
            Ok(text) => std::borrow::Cow::Borrowed(text),
            // A line cut at the cap may end inside a character: that is not junk.
            Err(e) if line.truncated && e.error_len().is_none() => std::borrow::Cow::Borrowed(
                std::str::from_utf8(&line.bytes[..e.valid_up_to()]).unwrap_or_default(),
            ),
            Err(_) => {
                analysis.lines_not_utf8 += 1;
                String::from_utf8_lossy(line.bytes)
            }
        };
        let parsed = parse_line(&text, query.now);

        if let Some((raw, epoch_ms)) = &parsed.timestamp {
            timestamped_lines += 1;
            match (query.since_ms, epoch_ms) {
                (Some(since), Some(ms)) => in_window = *ms >= since,
                (Some(_), None) => unreadable_timestamps += 1,
                _ => {}
            }
            if in_window {
                let seen = TimestampSeen {
                    raw: truncate_chars(raw, 100),
                    utc: epoch_ms.and_then(format_utc),
                    line: line_no,
                };
                if analysis.first_timestamp.is_none() {
                    analysis.first_timestamp = Some(seen.clone());
                }
                analysis.last_timestamp = Some(seen);
            }
        }
        if !in_window {
            analysis.lines_before_since += 1;
            continue;
        }
        analysis.lines_analyzed += 1;
        match parsed.format {
            Format::Json => analysis.formats.json += 1,
            Format::Syslog => analysis.formats.syslog += 1,
            Format::Plain => analysis.formats.plain += 1,
        }
        let level_count = match parsed.level {
            Some(Level::Error) => &mut analysis.levels.error,
            Some(Level::Warn) => &mut analysis.levels.warn,
            Some(Level::Info) => &mut analysis.levels.info,
            Some(Level::Debug) => &mut analysis.levels.debug,
            None => &mut analysis.levels.unknown,
        };
        *level_count += 1;
        if parsed.level == Some(Level::Error) {
            let message = normalize_message(&parsed.message);
            if let Some(stats) = errors.get_mut(&message) {
                stats.count += 1;
            } else if errors.len() < MAX_DISTINCT_MESSAGES {
                let example = truncate_chars(&parsed.message, MAX_RETURNED_LINE_CHARS);
                errors.insert(
                    message,
                    ErrorStats {
                        count: 1,
                        first_line: line_no,
                        example,
                    },
                );
            } else {
                analysis.error_groups_capped = true;
            }
        }
        if let (Some(regex), Some(matches)) = (&query.pattern, analysis.pattern.as_mut())
            && regex.is_match(&text)
        {
            matches.matching_lines += 1;
            if matches.matches.len() < query.limit {
                matches.matches.push(LineMatch {
                    line: line_no,
                    text: truncate_chars(&text, MAX_RETURNED_LINE_CHARS),
                });
            } else {
                matches.truncated = true;
            }
        }
    }

    analysis.bytes_read = lines.bytes_read();
    analysis.distinct_error_messages = errors.len();
    let mut groups: Vec<ErrorGroup> = errors
        .into_iter()
        .map(|(message, s)| ErrorGroup {
            message,
            count: s.count,
            first_line: s.first_line,
            example: s.example,
        })
        .collect();
    groups.sort_by(|a, b| b.count.cmp(&a.count).then(a.first_line.cmp(&b.first_line)));
    groups.truncate(query.limit);
    analysis.top_errors = groups;

    if query.since_ms.is_some() && timestamped_lines == 0 && analysis.lines_total > 0 {
        analysis.notes.push(
            "no timestamps were recognized, so `since` excluded every line; omit `since` for \
             this log"
                .to_owned(),
        );
    }
    if unreadable_timestamps > 0 {
        analysis.notes.push(format!(
            "{unreadable_timestamps} timestamp(s) had impossible dates and could not be compared \
             with `since`; those lines followed the previous line's window"
        ));
    }
    if analysis.lines_truncated > 0 {
        analysis.notes.push(format!(
            "{} line(s) exceeded {MAX_LINE_BYTES} bytes; only their start was analyzed",
            analysis.lines_truncated
        ));
    }
    Ok(analysis)
}

#[cfg(test)]
mod tests;
