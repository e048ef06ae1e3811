//! Classifying one log line: its format (JSON object, syslog, plain text), level, message
//! and timestamp.

use std::borrow::Cow;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde_json::{Map, Value};

use super::timestamp::{epoch_number_to_ms, find_timestamp};
use crate::text::prefix_bytes;

/// Where a level word is looked for: levels lead log lines.
const LEVEL_SEARCH_PREFIX_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON object per line.
    Json,
    /// RFC 5424 / RFC 3164 with a `<PRI>`, or a syslog file line (`time host tag: message`).
    Syslog,
    Plain,
}

/// What a line says.
#[derive(Debug, PartialEq)]
pub struct ParsedLine<'a> {
    pub format: Format,
    pub level: Option<Level>,
    /// The message without timestamp and level, used to group errors.
    pub message: Cow<'a, str>,
    /// The timestamp as written, and in milliseconds since the epoch when it could be read.
    pub timestamp: Option<(Cow<'a, str>, Option<i64>)>,
}

static LEVEL_WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?x)
        \b(?i:level|lvl|severity|loglevel)\s*[=:]\s*"?(?P<kv>[A-Za-z]+)
        | \b(?P<upper>FATAL|CRITICAL|CRIT|PANIC|EMERG|ALERT|SEVERE|ERROR|ERR|WARNING|WARN|NOTICE|INFO|DEBUG|TRACE)\b
        | [\[<(](?P<bracket>(?i:fatal|critical|crit|panic|severe|error|err|warning|warn|notice|info|debug|trace))[\]>)]
        | ^\s*(?P<lead>(?i:fatal|critical|error|err|warning|warn|notice|info|debug|trace)):"#,
    )
    // invariant: a constant pattern, compiled by this module's tests.
    .expect("level regex is valid")
});

/// `time host tag[pid]: message` as written by syslog daemons into /var/log files.
static SYSLOG_FILE_TAG: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s+(?P<host>\S+)\s+[A-Za-z0-9_.()/-]+(?:\[\d+\])?:\s")
        // invariant: a constant pattern, compiled by this module's tests.
        .expect("syslog tag regex is valid")
});

static SYSLOG_PRI: LazyLock<Regex> =
    // invariant: a constant pattern, compiled by this module's tests.
    LazyLock::new(|| Regex::new(r"^<(\d{1,3})>").expect("syslog priority regex is valid"));

/// Maps a level name (any case) to a level.
pub fn level_from_word(word: &str) -> Option<Level> {
    match word.to_ascii_lowercase().as_str() {
        "fatal" | "critical" | "crit" | "panic" | "emerg" | "emergency" | "alert" | "severe"
        | "error" | "err" => Some(Level::Error),
        "warning" | "warn" => Some(Level::Warn),
        "info" | "information" | "informational" | "notice" => Some(Level::Info),
        "debug" | "trace" | "verbose" | "fine" | "finer" | "finest" => Some(Level::Debug),
        _ => None,
    }
}

/// Syslog severities 0-7.
fn level_from_syslog_severity(severity: u64) -> Level {
    match severity {
        0..=3 => Level::Error,
        4 => Level::Warn,
        5 | 6 => Level::Info,
        _ => Level::Debug,
    }
}

/// Numeric levels of JSON loggers: pino/bunyan (10-60) or syslog severities (0-7).
fn level_from_number(n: f64) -> Option<Level> {
    if (0.0..=7.0).contains(&n) && n.fract() == 0.0 {
        return Some(level_from_syslog_severity(n as u64));
    }
    match n {
        n if n >= 50.0 => Some(Level::Error),
        n if n >= 40.0 => Some(Level::Warn),
        n if n >= 30.0 => Some(Level::Info),
        n if n >= 10.0 => Some(Level::Debug),
        _ => None,
    }
}

pub fn parse_line(line: &str, now: DateTime<Utc>) -> ParsedLine<'_> {
    let trimmed = line.trim_start();
    if trimmed.starts_with('{')
        && let Ok(object) = serde_json::from_str::<Map<String, Value>>(trimmed)
    {
        return parse_json(object, line, now);
    }
    if let Some(parsed) = parse_syslog_with_priority(line, now) {
        return parsed;
    }
    parse_text(line, now)
}

fn first_field<'m>(object: &'m Map<String, Value>, keys: &[&str]) -> Option<&'m Value> {
    keys.iter().find_map(|k| object.get(*k))
}

fn parse_json<'a>(object: Map<String, Value>, line: &'a str, now: DateTime<Utc>) -> ParsedLine<'a> {
    let level = match first_field(
        &object,
        &[
            "level",
            "lvl",
            "severity",
            "log.level",
            "levelname",
            "loglevel",
        ],
    ) {
        Some(Value::String(s)) => level_from_word(s.trim()),
        Some(Value::Number(n)) => n.as_f64().and_then(level_from_number),
        _ => None,
    };
    let message = match first_field(&object, &["msg", "message", "error", "err", "event"]) {
        Some(Value::String(s)) => Cow::Owned(s.clone()),
        Some(other @ (Value::Object(_) | Value::Array(_))) => Cow::Owned(other.to_string()),
        _ => Cow::Borrowed(line),
    };
    let timestamp = match first_field(
        &object,
        &[
            "timestamp",
            "@timestamp",
            "time",
            "ts",
            "datetime",
            "date",
            "t",
        ],
    ) {
        Some(Value::String(s)) => {
            let epoch = find_timestamp(s, now).and_then(|t| t.epoch_ms);
            Some((Cow::Owned(s.clone()), epoch))
        }
        Some(Value::Number(n)) => Some((
            Cow::Owned(n.to_string()),
            n.as_f64().and_then(epoch_number_to_ms),
        )),
        _ => None,
    };
    ParsedLine {
        format: Format::Json,
        level,
        message,
        timestamp,
    }
}

fn parse_syslog_with_priority(line: &str, now: DateTime<Utc>) -> Option<ParsedLine<'_>> {
    let priority = SYSLOG_PRI.captures(line)?;
    let value: u64 = priority[1].parse().ok()?;
    if value > 191 {
        return None;
    }
    let level = Some(level_from_syslog_severity(value % 8));
    let rest = &line[priority.get(0)?.end()..];
    if let Some(structured) = rest.strip_prefix("1 ") {
        // RFC 5424: TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA MSG
        let mut fields = structured.splitn(6, ' ');
        let stamp = fields.next()?;
        let after_header = fields.nth(4).unwrap_or("");
        let message = skip_structured_data(after_header).trim_start_matches('\u{feff}');
        let timestamp = (stamp != "-").then(|| {
            (
                Cow::Borrowed(stamp),
                find_timestamp(stamp, now).and_then(|t| t.epoch_ms),
            )
        });
        return Some(ParsedLine {
            format: Format::Syslog,
            level,
            message: Cow::Borrowed(message),
            timestamp,
        });
    }
    // RFC 3164: TIMESTAMP HOSTNAME TAG: MSG
    let found = find_timestamp(rest, now).filter(|t| t.range.start == 0);
    let after_stamp = found.as_ref().map_or(rest, |t| &rest[t.range.end..]);
    let message = after_stamp
        .split_once(": ")
        .map_or(after_stamp.trim(), |(_, m)| m);
    let timestamp = found.map(|t| (Cow::Borrowed(&rest[t.range.clone()]), t.epoch_ms));
    Some(ParsedLine {
        format: Format::Syslog,
        level,
        message: Cow::Borrowed(message),
        timestamp,
    })
}

/// The MSG after RFC 5424 STRUCTURED-DATA (`-` or one or more `[...]` elements).
fn skip_structured_data(text: &str) -> &str {
    if let Some(rest) = text.strip_prefix("- ") {
        return rest;
    }
    if text == "-" {
        return "";
    }
    let mut rest = text;
    while rest.starts_with('[') {
        // Inside SD, `]` is escaped as `\]`.
        let bytes = rest.as_bytes();
        let mut i = 1;
        while i < bytes.len() && !(bytes[i] == b']' && bytes[i - 1] != b'\\') {
            i += 1;
        }
        rest = rest.get(i + 1..).unwrap_or("");
    }
    rest.strip_prefix(' ').unwrap_or(rest)
}

fn parse_text(line: &str, now: DateTime<Utc>) -> ParsedLine<'_> {
    let found = find_timestamp(line, now);
    let mut format = Format::Plain;
    let mut body_start = 0;
    if let Some(stamp) = &found {
        body_start = stamp.range.end;
        if stamp.range.start == 0
            && let Some(tag) = SYSLOG_FILE_TAG.captures(&line[stamp.range.end..])
            // `time LEVEL target: message` (tracing, env_logger) has the same shape.
            && level_from_word(&tag["host"]).is_none()
        {
            format = Format::Syslog;
            body_start = stamp.range.end + tag.get(0).map_or(0, |m| m.end());
        }
    }
    let body = &line[body_start..];
    let (level, message) = match LEVEL_WORD.captures(prefix_bytes(body, LEVEL_SEARCH_PREFIX_BYTES))
    {
        Some(c) => {
            let word = ["kv", "upper", "bracket", "lead"]
                .iter()
                .find_map(|g| c.name(g));
            let level = word.and_then(|w| level_from_word(w.as_str()));
            let after = &body[c.get(0).map_or(0, |m| m.end())..];
            let message = after.trim_start_matches(|ch: char| {
                ch.is_whitespace() || matches!(ch, ':' | ']' | '>' | ')' | '-' | '|' | '"')
            });
            (
                level,
                if message.is_empty() {
                    body.trim()
                } else {
                    message
                },
            )
        }
        None => (None, body.trim()),
    };
    let timestamp = found.map(|t| (Cow::Borrowed(&line[t.range.clone()]), t.epoch_ms));
    ParsedLine {
        format,
        level,
        message: Cow::Borrowed(message),
        timestamp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::logs::timestamp::test_now as now;

    fn parse(line: &str) -> ParsedLine<'_> {
        parse_line(line, now())
    }

    #[test]
    fn plain_lines_of_common_loggers() {
        let p = parse("2024-01-15 10:30:00,123 ERROR [main] db: connection refused");
        assert_eq!((p.format, p.level), (Format::Plain, Some(Level::Error)));
        assert_eq!(p.message, "[main] db: connection refused");
        assert_eq!(p.timestamp.unwrap().0, "2024-01-15 10:30:00,123");

        let p = parse("[2024-01-15T10:30:00Z WARN  app::net] retrying in 5s");
        assert_eq!(p.level, Some(Level::Warn));
        let p = parse("2024-01-15T10:30:00.1Z  INFO server: listening");
        assert_eq!(
            (p.level, p.message.as_ref()),
            (Some(Level::Info), "server: listening")
        );
        let p = parse("ts=2024-01-15T10:30:00Z level=debug msg=\"cache hit\"");
        assert_eq!(p.level, Some(Level::Debug));
        let p = parse("[error] 1234#0: *5 open() failed");
        assert_eq!(
            (p.level, p.message.as_ref()),
            (Some(Level::Error), "1234#0: *5 open() failed")
        );
    }

    #[test]
    fn words_in_prose_are_not_levels() {
        assert_eq!(parse("no errors found, information follows").level, None);
        assert_eq!(parse("ERR_CONNECTION_RESET while fetching").level, None);
        assert_eq!(parse("").level, None);
    }

    #[test]
    fn json_lines() {
        let p =
            parse(r#"{"time":"2024-01-15T10:30:00Z","level":"ERROR","msg":"disk full","id":7}"#);
        assert_eq!((p.format, p.level), (Format::Json, Some(Level::Error)));
        assert_eq!(p.message, "disk full");
        assert_eq!(p.timestamp.unwrap().1, Some(1_705_314_600_000));

        let p = parse(r#"{"level":50,"time":1705314600000,"msg":"pino error"}"#);
        assert_eq!(p.level, Some(Level::Error));
        assert_eq!(p.timestamp.unwrap().1, Some(1_705_314_600_000));
        let p = parse(r#"{"severity":"warning","message":"slow"}"#);
        assert_eq!(p.level, Some(Level::Warn));
        // Not JSON after all: falls back to text.
        let p = parse("{broken ERROR json");
        assert_eq!((p.format, p.level), (Format::Plain, Some(Level::Error)));
    }

    #[test]
    fn syslog_with_priority() {
        // <11> = facility 1, severity 3 (err)
        let p = parse("<11>Jan 15 10:30:00 web01 nginx[42]: upstream timed out");
        assert_eq!((p.format, p.level), (Format::Syslog, Some(Level::Error)));
        assert_eq!(p.message, "upstream timed out");
        assert_eq!(p.timestamp.unwrap().0, "Jan 15 10:30:00");

        let p = parse(
            "<165>1 2024-01-15T10:30:00.003Z host app 1234 ID47 [ex@1 a=\"b\\]\"] started ok",
        );
        assert_eq!((p.format, p.level), (Format::Syslog, Some(Level::Info)));
        assert_eq!(p.message, "started ok");
        assert!(p.timestamp.unwrap().1.is_some());

        let p = parse("<12>1 - - - - - - ");
        assert_eq!(p.level, Some(Level::Warn));
        assert_eq!(parse("<999>nonsense").format, Format::Plain);
    }

    #[test]
    fn syslog_files_without_priority() {
        let p = parse("Jan 15 10:30:00 web01 sshd[42]: error: maximum authentication attempts");
        assert_eq!((p.format, p.level), (Format::Syslog, Some(Level::Error)));
        assert_eq!(p.message, "maximum authentication attempts");
        let p = parse("2024-01-15T10:30:00.123456+00:00 web01 systemd[1]: Started foo.");
        assert_eq!((p.format, p.level), (Format::Syslog, None));
        assert_eq!(p.message, "Started foo.");
    }

    #[test]
    fn numeric_levels() {
        assert_eq!(level_from_number(3.0), Some(Level::Error));
        assert_eq!(level_from_number(60.0), Some(Level::Error));
        assert_eq!(level_from_number(40.0), Some(Level::Warn));
        assert_eq!(level_from_number(20.0), Some(Level::Debug));
        assert_eq!(level_from_number(8.5), None);
    }
}
