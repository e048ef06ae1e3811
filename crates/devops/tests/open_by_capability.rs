//! `analyze_log` opens its file beneath the root: a FIFO or socket given as a log is refused
//! at once (a blocking open would hang the worker forever), and the server keeps serving.

use std::path::Path;
use std::time::Duration;

use mcp_server_runtime::testing::{TestServer, make_fifo};
use serde_json::json;

/// Upper bound for a call that must answer promptly; hitting it fails the test instead of
/// hanging the suite. Not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_fifo_or_socket_given_as_a_log_is_refused_without_blocking() {
    let root = tempfile::tempdir().unwrap();
    make_fifo(&root.path().join("app.log")).unwrap();
    let _socket = std::os::unix::net::UnixListener::bind(root.path().join("syslog.sock")).unwrap();
    std::fs::write(root.path().join("real.log"), "ERROR boom\n").unwrap();
    let root_arg = root.path().to_str().unwrap();
    let server = TestServer::spawn(
        Path::new(env!("CARGO_BIN_EXE_devops")),
        &["--root", root_arg],
    )
    .await
    .unwrap();
    for (path, kind) in [("app.log", "FIFO"), ("syslog.sock", "socket")] {
        let result = tokio::time::timeout(
            HANG_GUARD,
            server.call("analyze_log", json!({"path": path})),
        )
        .await
        .expect("analyze_log blocked")
        .unwrap();
        assert_eq!(result.is_error, Some(true), "{result:?}");
        let text = &result.content[0].as_text().unwrap().text;
        assert!(
            text.starts_with("invalid input") && text.contains(kind),
            "{text}"
        );
    }
    let fine = server
        .call("analyze_log", json!({"path": "real.log"}))
        .await
        .unwrap();
    assert_ne!(fine.is_error, Some(true), "{fine:?}");
    assert_eq!(fine.structured_content.unwrap()["levels"]["error"], 1);
    server.shutdown().await.unwrap();
}
