//! Tests of read_file and read_files on temp files.

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
fn a_whole_file_read_at_once_matches_the_line_by_line_path() {
    // Whole files that fit are read in one go (select::read_whole); an explicit end line
    // takes the general path. Both must describe the same bytes the same way.
    let (dir, roots) = fixture();
    for (name, text) in [
        ("empty.txt", ""),
        ("one-newline.txt", "\n"),
        ("blank-lines.txt", "\n\n\n"),
        ("no-newline.txt", "a\nb"),
        (
            "ten.txt",
            "line 1\nline 2\nline 3\nline 4\nline 5\nline 6\nline 7\nline 8\nline 9\nline 10\n",
        ),
    ] {
        fs::write(dir.path().join(name), text).unwrap();
        let whole = read(&roots, name, Range::default()).unwrap();
        let general = read(
            &roots,
            name,
            Range {
                end_line: Some(u64::MAX),
                ..Range::default()
            },
        )
        .unwrap();
        let facts = |file: &FileContent| {
            (
                file.content.clone(),
                file.offset,
                file.length,
                file.start_line,
                file.end_line,
                file.total_lines,
                file.truncated,
                file.next_line,
                file.next_offset,
            )
        };
        assert_eq!(facts(&whole), facts(&general), "{name}");
        assert_eq!(whole.content, text, "{name}");
    }
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
