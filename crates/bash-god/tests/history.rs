//! The execution history through the real binary: bounded by `--history-max-entries`, one
//! journal line per execution, and a restart after a crash in the middle of an append.

use std::path::Path;

use mcp_server_runtime::testing::TestServer;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bash-god");

async fn spawn(root: &Path, history: &Path, extra: &[&str]) -> TestServer {
    let mut args = vec![
        "--root",
        root.to_str().unwrap(),
        "--log-level",
        "warn",
        "--history",
        history.to_str().unwrap(),
        "--history-max-entries",
        "2",
    ];
    args.extend_from_slice(extra);
    TestServer::spawn(Path::new(BIN), &args).await.unwrap()
}

async fn suggestions(server: &TestServer) -> (u64, Vec<String>) {
    let result = server
        .call("suggest_from_history", json!({"command": "echo", "k": 10}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let report: &Value = result.structured_content.as_ref().unwrap();
    let commands = report["suggestions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap().to_owned())
        .collect();
    (report["history_size"].as_u64().unwrap(), commands)
}

#[tokio::test]
async fn the_history_is_bounded_appended_and_survives_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let history = dir.path().join("history.jsonl");
    // Runs without a kernel sandbox too: these commands only print.
    let server = spawn(
        dir.path(),
        &history,
        &["--allow-exec", "--unsandboxed-exec"],
    )
    .await;
    let mut sizes = Vec::new();
    for command in ["echo one", "echo two", "echo three"] {
        let result = server
            .call("execute_command", json!({"command": command}))
            .await
            .unwrap();
        assert_ne!(result.is_error, Some(true), "{command}: {result:?}");
        sizes.push(std::fs::metadata(&history).unwrap().len());
    }
    // Each execution appended a line; nothing was rewritten.
    assert!(sizes.windows(2).all(|w| w[1] > w[0]), "{sizes:?}");
    let (size, commands) = suggestions(&server).await;
    assert_eq!(size, 2);
    assert!(!commands.contains(&"echo one".to_owned()), "{commands:?}");
    server.shutdown().await.unwrap();

    // A crash in the middle of the last append: the partial line is dropped at start.
    let bytes = std::fs::read(&history).unwrap();
    std::fs::write(&history, &bytes[..bytes.len() - 10]).unwrap();
    let server = spawn(dir.path(), &history, &[]).await;
    let (size, commands) = suggestions(&server).await;
    assert_eq!(size, 2, "the newest two complete records: {commands:?}");
    assert!(!commands.contains(&"echo three".to_owned()), "{commands:?}");
    server.shutdown().await.unwrap();
    let repaired = std::fs::read_to_string(&history).unwrap();
    assert!(repaired.ends_with('\n') && !repaired.contains("echo three"));

    // A file that is not a history is a startup error naming it, and is left alone.
    let foreign = dir.path().join("notes.txt");
    std::fs::write(&foreign, "my notes\n").unwrap();
    let output = std::process::Command::new(BIN)
        .args(["--root", dir.path().to_str().unwrap(), "--history"])
        .arg(&foreign)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("is not a bash-god history file"));
    assert_eq!(std::fs::read_to_string(&foreign).unwrap(), "my notes\n");
}
