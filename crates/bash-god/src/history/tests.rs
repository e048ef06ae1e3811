//! The history: suggestions, the journal on disk, its bounds, crashes and old files.

use std::io::Write as _;

use super::*;

fn outcome(exit_code: i32) -> ExecOutcome {
    ExecOutcome {
        exit_code: Some(exit_code),
        signal: None,
        timed_out: false,
        duration_ms: 12,
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        stdout_bytes: 0,
        stderr_bytes: 0,
    }
}

fn commands(history: &History) -> Vec<String> {
    let state = history.lock();
    state
        .live
        .iter()
        .filter_map(|(id, _)| history.store.get(*id))
        .map(|r| r.text)
        .collect()
}

fn record_all(history: &History, commands: &[&str]) {
    for (i, command) in commands.iter().enumerate() {
        history
            .record(command, Path::new("/w"), &outcome(i as i32))
            .unwrap();
    }
}

#[test]
fn suggests_similar_commands_with_outcomes() {
    let history = History::open(None, Limits::default()).unwrap();
    history
        .record("cargo test -p bash-god", Path::new("/w"), &outcome(0))
        .unwrap();
    history
        .record("ls -la /tmp", Path::new("/w"), &outcome(0))
        .unwrap();
    history
        .record("cargo build --release", Path::new("/w"), &outcome(101))
        .unwrap();
    let hits = history.suggest("cargo test -p mcp-rust-core", 2).unwrap();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[0].command, "cargo test -p bash-god");
    assert!(hits[0].score > hits[1].score);
    assert_eq!(hits[0].outcome.as_ref().unwrap().exit_code, Some(0));
    assert!(hits.iter().all(|h| h.command != "ls -la /tmp"));
}

#[test]
fn the_journal_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let history = History::open(Some(&path), Limits::default()).unwrap();
    history.record("make -j2", dir.path(), &outcome(2)).unwrap();
    let reopened = History::open(Some(&path), Limits::default()).unwrap();
    assert_eq!(reopened.len(), 1);
    let hit = &reopened.suggest("make", 1).unwrap()[0];
    assert_eq!(hit.command, "make -j2");
    assert!(!hit.outcome.as_ref().unwrap().succeeded);
}

#[test]
fn a_foreign_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.bin");
    std::fs::write(&path, b"not a snapshot").unwrap();
    let err = History::open(Some(&path), Limits::default()).unwrap_err();
    assert!(matches!(err, HistoryError::NotAJournal { .. }), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        b"not a snapshot",
        "left untouched"
    );
    let future = dir.path().join("future.jsonl");
    std::fs::write(&future, "{\"format\":\"bash-god-history\",\"version\":9}\n").unwrap();
    let err = History::open(Some(&future), Limits::default()).unwrap_err();
    assert!(
        matches!(err, HistoryError::UnsupportedVersion { found: 9, .. }),
        "{err}"
    );
}

#[test]
fn a_record_appends_one_line_instead_of_rewriting_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let history = History::open(Some(&path), Limits::default()).unwrap();
    record_all(&history, &["ls", "pwd"]);
    let before = std::fs::read(&path).unwrap();
    let inode = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    history
        .record("make test", dir.path(), &outcome(0))
        .unwrap();
    let after = std::fs::read(&path).unwrap();
    assert!(after.starts_with(&before));
    let added = &after[before.len()..];
    assert_eq!(added.iter().filter(|&&b| b == b'\n').count(), 1);
    assert!(String::from_utf8_lossy(added).contains("make test"));
    let same = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&path).unwrap());
    assert_eq!(inode, same, "the file was not replaced");
}

#[test]
fn a_crash_in_the_middle_of_an_append_loses_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let history = History::open(Some(&path), Limits::default()).unwrap();
    record_all(&history, &["first", "second", "third"]);
    drop(history);
    let whole = std::fs::read(&path).unwrap();
    let third_line = whole[..whole.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;

    // Every cut inside the last line (a write that reached the disk partly), and a block
    // of zeros where the file grew but the data did not land.
    let mut tails: Vec<Vec<u8>> = (third_line..whole.len() - 1)
        .step_by(7)
        .map(|cut| whole[..cut].to_vec())
        .collect();
    let mut zeros = whole[..third_line].to_vec();
    zeros.extend_from_slice(&[0; 512]);
    tails.push(zeros);
    let mut zero_line = whole[..third_line].to_vec();
    zero_line.extend_from_slice(&[0; 100]);
    zero_line.push(b'\n');
    tails.push(zero_line);
    for tail in tails {
        std::fs::write(&path, &tail).unwrap();
        let reopened = History::open(Some(&path), Limits::default()).unwrap();
        assert_eq!(commands(&reopened), ["first", "second"]);
        // The file was repaired: appends after the crash are kept.
        reopened.record("fourth", dir.path(), &outcome(0)).unwrap();
        drop(reopened);
        let again = History::open(Some(&path), Limits::default()).unwrap();
        assert_eq!(commands(&again), ["first", "second", "fourth"]);
    }

    // The newline of the last record did not land, the record did: it is kept.
    std::fs::write(&path, &whole[..whole.len() - 1]).unwrap();
    let reopened = History::open(Some(&path), Limits::default()).unwrap();
    assert_eq!(commands(&reopened), ["first", "second", "third"]);
}

#[test]
fn corruption_before_the_last_line_is_an_error_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let history = History::open(Some(&path), Limits::default()).unwrap();
    record_all(&history, &["first", "second", "third"]);
    drop(history);
    let text = std::fs::read_to_string(&path).unwrap();
    let broken = text.replacen("\"second\"", "\"sec", 1);
    std::fs::write(&path, &broken).unwrap();
    let err = History::open(Some(&path), Limits::default()).unwrap_err();
    assert!(
        matches!(err, HistoryError::Corrupt { line: 3, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 3"));
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        broken,
        "left untouched"
    );
}

#[test]
fn the_oldest_records_go_beyond_the_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let three = Limits {
        max_entries: 3,
        max_bytes: 1 << 20,
    };
    let history = History::open(Some(&path), three).unwrap();
    record_all(&history, &["a1", "a2", "a3", "a4", "a5"]);
    assert_eq!(commands(&history), ["a3", "a4", "a5"]);
    assert_eq!(history.len(), 3);
    drop(history);
    // The journal still holds the evicted lines; reading applies the bounds the same way.
    let reopened = History::open(Some(&path), three).unwrap();
    assert_eq!(commands(&reopened), ["a3", "a4", "a5"]);
    drop(reopened);

    // Smaller bounds on the next start: trimmed, and the file compacted to match.
    let one = Limits {
        max_entries: 1,
        max_bytes: 1 << 20,
    };
    let trimmed = History::open(Some(&path), one).unwrap();
    assert_eq!(commands(&trimmed), ["a5"]);
    let lines = std::fs::read_to_string(&path).unwrap().lines().count();
    assert_eq!(lines, 2, "header and one record");

    // The byte bound: records of about 200 bytes, at most 1000 bytes kept.
    let bytes = Limits {
        max_entries: 100,
        max_bytes: 1000,
    };
    let history = History::open(None, bytes).unwrap();
    let long: Vec<String> = (0..10)
        .map(|i| format!("echo {i} {}", "x".repeat(100)))
        .collect();
    let long: Vec<&str> = long.iter().map(String::as_str).collect();
    record_all(&history, &long);
    let kept = commands(&history);
    assert!(!kept.is_empty() && kept.len() < 10, "{}", kept.len());
    assert!(history.lock().live_bytes <= 1000);
    assert_eq!(kept.last().map(String::as_str), Some(long[9]));
}

#[test]
fn the_file_stays_bounded_however_many_records_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let limits = Limits {
        max_entries: 10,
        max_bytes: 1 << 20,
    };
    let history = History::open(Some(&path), limits).unwrap();
    let mut largest = 0;
    for i in 0..600 {
        history
            .record(
                &format!("command number {i} {}", "y".repeat(100)),
                dir.path(),
                &outcome(0),
            )
            .unwrap();
        largest = largest.max(std::fs::metadata(&path).unwrap().len());
    }
    let live = history.lock().live_bytes;
    assert!(
        largest <= 2 * live + COMPACTION_SLACK + 1024,
        "{largest} bytes for {live} live"
    );
    drop(history);
    let reopened = History::open(Some(&path), limits).unwrap();
    assert_eq!(reopened.len(), 10);
    assert!(commands(&reopened)[9].starts_with("command number 599 "));
}

#[test]
fn an_old_snapshot_file_is_converted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.bin");
    let store = MemoryStore::new(EMBEDDING_DIM).unwrap();
    for (command, code) in [("old one", 0), ("old two", 3)] {
        let recorded = RecordedOutcome {
            exit_code: Some(code),
            signal: None,
            timed_out: false,
            duration_ms: 5,
            succeeded: code == 0,
            cwd: "/w".to_owned(),
            recorded_at: 1,
        };
        store
            .add(
                command,
                embed_text(command, EMBEDDING_DIM),
                serde_json::to_value(recorded).unwrap(),
            )
            .unwrap();
    }
    store.save(&path).unwrap();
    let history = History::open(Some(&path), Limits::default()).unwrap();
    assert_eq!(commands(&history), ["old one", "old two"]);
    history.record("new", dir.path(), &outcome(0)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\"format\":\"bash-god-history\""),
        "{text}"
    );
    assert_eq!(text.lines().count(), 4);
    let hit = &history.suggest("old two", 1).unwrap()[0];
    assert_eq!(hit.outcome.as_ref().unwrap().exit_code, Some(3));
}

#[test]
fn records_from_many_threads_are_all_kept_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    let history = History::open(Some(&path), Limits::default()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let history = &history;
            scope.spawn(move || {
                for i in 0..25 {
                    history
                        .record(&format!("thread {t} run {i}"), Path::new("/w"), &outcome(0))
                        .unwrap();
                }
            });
        }
    });
    drop(history);
    let reopened = History::open(Some(&path), Limits::default()).unwrap();
    assert_eq!(reopened.len(), 100);
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(b"{\"command\":").unwrap();
    assert_eq!(
        History::open(Some(&path), Limits::default()).unwrap().len(),
        100
    );
}

#[test]
fn an_empty_file_is_an_empty_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, b"").unwrap();
    let history = History::open(Some(&path), Limits::default()).unwrap();
    assert!(history.is_empty());
    history.record("ls", dir.path(), &outcome(0)).unwrap();
    assert_eq!(
        History::open(Some(&path), Limits::default()).unwrap().len(),
        1
    );
}
