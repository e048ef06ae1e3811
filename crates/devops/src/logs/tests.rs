//! Tests of log analysis on real files: levels, groups, timestamps, limits and bad input.

use std::io::Write;
use std::path::PathBuf;

use super::*;

use super::timestamp::test_now as now;

fn query(pattern: Option<&str>, since: Option<&str>, limit: Option<usize>) -> LogQuery {
    LogQuery::with_clock(pattern, since, limit, now()).unwrap()
}

fn fixture(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(content)
        .unwrap();
    path
}

fn never() -> bool {
    false
}

const MIXED_LOG: &str = "\
2024-01-15 10:00:00,001 INFO  server started on port 8080
2024-01-15 10:00:01,002 ERROR db: connection 17 to 10.0.0.5 refused
2024-01-15 10:00:02,003 WARN  slow request 123e4567-e89b-12d3-a456-426614174000 took 1500ms
    at handler (src/app.rs:42)
2024-01-15 10:00:03,004 ERROR db: connection 18 to 10.0.0.6 refused
2024-01-15 10:00:04,005 DEBUG cache miss key=ab12cd34ef
2024-01-15 10:00:05,006 ERROR payment 0xdeadbeef failed
2024-01-15 10:00:06,007 FATAL db: connection 19 to 10.0.0.7 refused
";

#[test]
fn counts_levels_groups_errors_and_tracks_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "app.log", MIXED_LOG.as_bytes());
    let a = analyze_log_file(&path, &query(None, None, None), &never).unwrap();
    assert_eq!(a.lines_total, 8);
    assert_eq!(a.bytes_read, MIXED_LOG.len() as u64);
    assert_eq!(
        (
            a.levels.error,
            a.levels.warn,
            a.levels.info,
            a.levels.debug,
            a.levels.unknown
        ),
        (4, 1, 1, 1, 1)
    );
    assert_eq!(a.formats.plain, 8);
    assert_eq!(a.top_errors[0].message, "db: connection <n> to <n> refused");
    assert_eq!(a.top_errors[0].count, 3);
    assert_eq!(a.top_errors[0].first_line, 2);
    assert_eq!(
        a.top_errors[0].example,
        "db: connection 17 to 10.0.0.5 refused"
    );
    assert_eq!(a.top_errors[1].message, "payment <hex> failed");
    assert_eq!(a.distinct_error_messages, 2);
    let first = a.first_timestamp.unwrap();
    assert_eq!(
        (first.raw.as_str(), first.line),
        ("2024-01-15 10:00:00,001", 1)
    );
    assert_eq!(first.utc.as_deref(), Some("2024-01-15T10:00:00.001Z"));
    assert_eq!(a.last_timestamp.unwrap().line, 8);
    assert!(a.pattern.is_none());
}

#[test]
fn pattern_matches_are_capped_by_limit_but_counted() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "app.log", MIXED_LOG.as_bytes());
    let a = analyze_log_file(
        &path,
        &query(Some(r"connection \d+"), None, Some(2)),
        &never,
    )
    .unwrap();
    let p = a.pattern.unwrap();
    assert_eq!(p.matching_lines, 3);
    assert!(p.truncated);
    let lines: Vec<u64> = p.matches.iter().map(|m| m.line).collect();
    assert_eq!(lines, vec![2, 5]);
    assert_eq!(a.top_errors.len(), 2);
}

#[test]
fn since_skips_earlier_lines_including_their_continuations() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "app.log", MIXED_LOG.as_bytes());
    let a = analyze_log_file(
        &path,
        &query(None, Some("2024-01-15T10:00:03Z"), None),
        &never,
    )
    .unwrap();
    // Lines 1-4 (including the continuation line 4) are before 10:00:03.
    assert_eq!((a.lines_before_since, a.lines_analyzed), (4, 4));
    assert_eq!(a.levels.error, 3);
    assert_eq!(a.levels.warn, 0);
    assert_eq!(a.first_timestamp.unwrap().line, 5);
}

#[test]
fn since_on_a_log_without_timestamps_explains_itself() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "plain.log", b"ERROR a\nINFO b\n");
    let a = analyze_log_file(&path, &query(None, Some("2024-01-01"), None), &never).unwrap();
    assert_eq!(a.lines_analyzed, 0);
    assert!(a.notes[0].contains("no timestamps"), "{:?}", a.notes);
}

#[test]
fn json_lines_and_syslog_are_recognized() {
    let log = concat!(
        r#"{"ts":1705314600,"level":"error","msg":"user 5 not found"}"#,
        "\n",
        r#"{"ts":1705314601,"level":"error","msg":"user 6 not found"}"#,
        "\n",
        r#"{"ts":1705314602,"level":30,"msg":"ok"}"#,
        "\n",
        "<12>Jan 15 10:30:03 web01 app[7]: disk almost full\n",
        "Jan 15 10:30:04 web01 kernel: eth0 link up\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "mixed.log", log.as_bytes());
    let a = analyze_log_file(&path, &query(None, None, None), &never).unwrap();
    assert_eq!(
        (a.formats.json, a.formats.syslog, a.formats.plain),
        (3, 2, 0)
    );
    assert_eq!(
        (
            a.levels.error,
            a.levels.info,
            a.levels.warn,
            a.levels.unknown
        ),
        (2, 1, 1, 1)
    );
    assert_eq!(a.top_errors[0].message, "user <n> not found");
    assert_eq!(a.top_errors[0].count, 2);
    assert_eq!(
        a.first_timestamp.unwrap().utc.as_deref(),
        Some("2024-01-15T10:30:00.000Z")
    );
    assert_eq!(a.last_timestamp.unwrap().raw, "Jan 15 10:30:04");
}

#[test]
fn empty_file_gives_an_empty_analysis() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "empty.log", b"");
    let a = analyze_log_file(&path, &query(Some("x"), None, None), &never).unwrap();
    assert_eq!((a.lines_total, a.bytes_read), (0, 0));
    assert!(a.top_errors.is_empty() && a.first_timestamp.is_none());
    assert_eq!(a.pattern.unwrap().matching_lines, 0);
}

#[test]
fn huge_lines_are_capped_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = b"2024-01-15T10:00:00Z ERROR ".to_vec();
    content.extend(std::iter::repeat_n(b'x', 3 * MAX_LINE_BYTES));
    content.extend_from_slice(b"\n2024-01-15T10:00:01Z INFO after the huge line\n");
    let path = fixture(&dir, "huge.log", &content);
    let a = analyze_log_file(&path, &query(Some("after"), None, None), &never).unwrap();
    assert_eq!(a.lines_total, 2);
    assert_eq!(a.lines_truncated, 1);
    assert_eq!((a.levels.error, a.levels.info), (1, 1));
    assert_eq!(a.bytes_read, content.len() as u64);
    assert_eq!(a.pattern.unwrap().matches[0].line, 2);
    // The grouped message is capped, not 192 KiB long.
    assert!(a.top_errors[0].message.len() <= normalize::MAX_MESSAGE_BYTES);
    assert!(a.notes.iter().any(|n| n.contains("exceeded")));
}

#[test]
fn a_single_huge_line_without_newline_is_capped() {
    let dir = tempfile::tempdir().unwrap();
    // "a" then 2-byte characters: the cap falls inside a character.
    let content = format!("a{}", "é".repeat(MAX_LINE_BYTES));
    let path = fixture(&dir, "one-line.log", content.as_bytes());
    let a = analyze_log_file(&path, &query(None, None, None), &never).unwrap();
    assert_eq!(
        (a.lines_total, a.lines_truncated, a.lines_not_utf8),
        (1, 1, 0)
    );
}

#[test]
fn binary_files_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "core.bin", b"\x7fELF\x02\x01\x01\x00\x00\x00garbage");
    let err = analyze_log_file(&path, &query(None, None, None), &never).unwrap_err();
    assert!(
        matches!(&err, DevopsError::InvalidInput(m) if m.contains("binary")),
        "{err}"
    );
}

#[test]
fn junk_bytes_inside_a_text_log_are_tolerated() {
    let dir = tempfile::tempdir().unwrap();
    let mut content = b"INFO fine\n".to_vec();
    content.extend_from_slice(b"ERROR bad \xff\xfe bytes 12\n");
    content.extend_from_slice(b"WARN still going\n");
    let path = fixture(&dir, "junk.log", &content);
    let a = analyze_log_file(&path, &query(None, None, None), &never).unwrap();
    assert_eq!(a.lines_not_utf8, 1);
    assert_eq!((a.levels.info, a.levels.error, a.levels.warn), (1, 1, 1));
    assert_eq!(a.top_errors[0].message, "bad \u{fffd}\u{fffd} bytes <n>");
}

#[test]
fn missing_paths_and_directories_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = analyze_log_file(
        &dir.path().join("nope.log"),
        &query(None, None, None),
        &never,
    )
    .unwrap_err();
    assert!(matches!(err, DevopsError::NotFound(_)), "{err}");
    let err = analyze_log_file(dir.path(), &query(None, None, None), &never).unwrap_err();
    assert!(
        matches!(&err, DevopsError::InvalidInput(m) if m.contains("directory")),
        "{err}"
    );
}

#[test]
fn cancellation_stops_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let content = "INFO line\n".repeat(3 * CANCEL_CHECK_LINES as usize);
    let path = fixture(&dir, "long.log", content.as_bytes());
    let err = analyze_log_file(&path, &query(None, None, None), &|| true).unwrap_err();
    assert_eq!(err, DevopsError::Cancelled);
}

#[test]
fn distinct_error_groups_are_bounded() {
    let mut content = String::new();
    for i in 0..(MAX_DISTINCT_MESSAGES + 5) {
        // Letters, not digits, so normalization keeps them distinct.
        let word: String = format!("{i:05}")
            .bytes()
            .map(|b| (b - b'0' + b'g') as char)
            .collect();
        content.push_str(&format!("ERROR failure {word}\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = fixture(&dir, "many.log", content.as_bytes());
    let a = analyze_log_file(&path, &query(None, None, Some(3)), &never).unwrap();
    assert_eq!(a.distinct_error_messages, MAX_DISTINCT_MESSAGES);
    assert!(a.error_groups_capped);
    assert_eq!(a.top_errors.len(), 3);
    assert_eq!(a.levels.error, (MAX_DISTINCT_MESSAGES + 5) as u64);
}

#[test]
fn query_validation() {
    let err = |p: Option<&str>, s: Option<&str>, l: Option<usize>| {
        LogQuery::with_clock(p, s, l, now())
            .unwrap_err()
            .to_string()
    };
    assert!(err(Some("("), None, None).contains("not a valid regex"));
    assert!(err(Some(""), None, None).contains("empty"));
    assert!(err(Some(&"a".repeat(MAX_PATTERN_BYTES + 1)), None, None).contains("at most"));
    assert!(err(Some(r"\w{1000}\w{1000}\w{1000}"), None, None).contains("regex"));
    assert!(err(None, Some("last tuesday"), None).contains("since"));
    assert!(err(None, None, Some(0)).contains("limit"));
    assert!(err(None, None, Some(MAX_LIMIT + 1)).contains("limit"));
}
