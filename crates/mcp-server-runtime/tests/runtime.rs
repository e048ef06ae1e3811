//! The runtime end to end: the real demo binary, spawned as an MCP client would.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use mcp_server_runtime::testing::{TestServer, http_listen_addr};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

const DEMO: &str = env!("CARGO_BIN_EXE_mcp-server-runtime-demo");

/// Upper bound for waits that should end promptly; hitting it fails the test instead of
/// hanging the suite. Not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn initialize_request() -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "runtime-test", "version": "0"}
        }
    })
    .to_string()
}

/// A demo server on piped stdio that has answered `initialize`; returns its answer.
struct StdioSession {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
    initialize_response: Value,
}

async fn start_stdio_session() -> StdioSession {
    let mut child = Command::new(DEMO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    stdin
        .write_all(format!("{}\n", initialize_request()).as_bytes())
        .await
        .unwrap();
    let mut line = String::new();
    tokio::time::timeout(HANG_GUARD, stdout.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    let initialize_response = serde_json::from_str(&line).unwrap();
    StdioSession {
        child,
        stdin,
        stdout,
        initialize_response,
    }
}

#[tokio::test]
async fn version_prints_every_build_fact() {
    let output = Command::new(DEMO).arg("--version").output().await.unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let first = stdout.lines().next().unwrap();
    assert_eq!(
        first,
        format!("mcp-server-runtime-demo {}", env!("CARGO_PKG_VERSION"))
    );
    for key in [
        "variant: ",
        "target-cpu: ",
        "rustc: rustc ",
        "commit: ",
        "profile: ",
    ] {
        assert!(stdout.contains(key), "missing {key:?} in {stdout}");
    }
}

#[tokio::test]
async fn bad_root_exits_2_with_a_clear_message() {
    let output = Command::new(DEMO)
        .args(["--root", "/definitely/not/here"])
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        output.stdout.is_empty(),
        "stdout is reserved for the protocol"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/definitely/not/here") && stderr.contains("--root"),
        "{stderr}"
    );
}

#[tokio::test]
async fn slash_or_home_as_the_implicit_root_is_refused() {
    let home = tempfile::tempdir().unwrap();
    for (cwd, what) in [
        (Path::new("/"), "the file system root"),
        (home.path(), "your home directory"),
    ] {
        let output = Command::new(DEMO)
            .current_dir(cwd)
            .env("HOME", home.path())
            .stdin(Stdio::null())
            .output()
            .await
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{output:?}");
        assert!(output.stdout.is_empty());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(what) && stderr.contains("--root"),
            "{stderr}"
        );
    }
}

#[tokio::test]
async fn an_explicit_broad_root_starts_with_a_loud_warning() {
    let output = Command::new(DEMO)
        .args(["--root", "/"])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("WARN") && stderr.contains("the file system root"),
        "{stderr}"
    );
}

#[tokio::test]
async fn unknown_option_exits_2() {
    let output = Command::new(DEMO)
        .arg("--no-such-option")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
}

#[tokio::test]
async fn stdin_eof_before_initialize_exits_0() {
    let output = Command::new(DEMO)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert!(output.stdout.is_empty());
}

#[tokio::test]
async fn stdin_eof_after_a_session_exits_0_and_stdout_is_only_protocol() {
    let StdioSession {
        mut child,
        mut stdin,
        mut stdout,
        initialize_response: response,
    } = start_stdio_session().await;
    assert_eq!(response["id"], 1);
    assert_eq!(
        response["result"]["serverInfo"]["name"],
        "mcp-server-runtime-demo"
    );
    let notification = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    stdin
        .write_all(format!("{notification}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let status = tokio::time::timeout(HANG_GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    for extra in rest.lines() {
        serde_json::from_str::<Value>(extra).expect("stdout carries only JSON-RPC");
    }
}

#[tokio::test]
async fn tools_work_through_the_shared_test_client() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("inner")).unwrap();
    let root_arg = root.path().to_str().unwrap();
    let server = TestServer::spawn(Path::new(DEMO), &["--root", root_arg])
        .await
        .unwrap();

    let tools = server.list_tools().await.unwrap();
    let echo = tools
        .iter()
        .find(|tool| tool.name == "echo")
        .expect("echo listed");
    assert!(
        echo.output_schema.is_some(),
        "structured tools declare an output schema"
    );
    assert_eq!(
        echo.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );

    let result = server.call("echo", json!({"text": "héllo"})).await.unwrap();
    assert_eq!(
        result.structured_content,
        Some(json!({"text": "héllo", "bytes": 6}))
    );

    let inside = server.call("stat", json!({"path": "inner"})).await.unwrap();
    assert_ne!(inside.is_error, Some(true), "{inside:?}");
    assert_eq!(inside.structured_content.unwrap()["is_dir"], true);

    let escape = server.call("stat", json!({"path": "../.."})).await.unwrap();
    assert_eq!(escape.is_error, Some(true));
    let message = &escape.content[0].as_text().unwrap().text;
    assert!(
        message.starts_with("denied: ") && message.contains("outside the allowed roots"),
        "{message}"
    );

    let panicked = server.call("boom", json!({})).await.unwrap();
    assert_eq!(panicked.is_error, Some(true));

    assert!(
        server.call("no_such_tool", json!({})).await.is_err(),
        "unknown tool is a JSON-RPC error"
    );
    // rmcp reports arguments that do not match the input schema as a tool error, so the
    // model can correct itself.
    let bad_arguments = server.call("echo", json!({"text": 5})).await.unwrap();
    assert_eq!(bad_arguments.is_error, Some(true));
    let message = &bad_arguments.content[0].as_text().unwrap().text;
    assert!(
        message.contains("failed to deserialize parameters"),
        "{message}"
    );

    // notifications/cancelled reaches the blocking work through its CancelFlag.
    let pending = server.start_call("spin", json!({})).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await; // let it start; correctness does not depend on it
    pending.cancel("test cancels").await.unwrap();
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let stats = server.call("spin_stats", json!({})).await.unwrap();
            if stats.structured_content.unwrap()["stopped_by_cancel"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("spin stopped after cancellation");

    // Still serving after every bad request.
    let result = server
        .call("echo", json!({"text": "still here"}))
        .await
        .unwrap();
    assert_eq!(result.structured_content.unwrap()["text"], "still here");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn tool_timeout_from_the_command_line_applies() {
    let server = TestServer::spawn(Path::new(DEMO), &["--tool-timeout-secs", "1"])
        .await
        .unwrap();
    let result = server.call("spin", json!({})).await.unwrap();
    assert_eq!(result.is_error, Some(true));
    assert!(
        result.content[0]
            .as_text()
            .unwrap()
            .text
            .starts_with("timed out: tool `spin`")
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn http_transport_answers_initialize_on_loopback_and_exits_0_on_sigterm() {
    let mut child = Command::new(DEMO)
        .args([
            "--transport",
            "http",
            "--listen",
            "127.0.0.1",
            "--port",
            "0",
            "--log-level",
            "info",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = tokio::time::timeout(HANG_GUARD, http_listen_addr(child.stderr.take().unwrap()))
        .await
        .unwrap()
        .expect("the server listens");
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");

    let body = initialize_request();
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let response = tokio::time::timeout(HANG_GUARD, async {
        // The answer may be an SSE stream that stays open: read until the result arrives.
        let mut response = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await.unwrap();
            response.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&response);
            if read == 0 || text.contains("\"serverInfo\"") {
                return text.into_owned();
            }
        }
    })
    .await
    .unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response.contains("\"name\":\"mcp-server-runtime-demo\""),
        "{response}"
    );

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(HANG_GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn sigterm_during_a_stdio_session_exits_0() {
    let StdioSession {
        mut child, stdin, ..
    } = start_stdio_session().await;
    let pid = child.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .await
            .unwrap()
            .success()
    );
    // stdin stays open: the signal alone must end the process.
    let status = tokio::time::timeout(HANG_GUARD, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    drop(stdin);
}

#[tokio::test]
async fn adversarial_json_rpc_on_stdin_never_stops_the_server() {
    // Through the real binary's stdin/stdout; `spin` runs until cancelled, so it is left out.
    let options = mcp_server_runtime::testing::FuzzOptions {
        cases: 12,
        skip_tools: vec!["spin".to_owned()],
        ..Default::default()
    };
    let report = mcp_server_runtime::testing::fuzz_binary(Path::new(DEMO), &[], options).await;
    assert!(report.cases > 0, "{report:?}");
    assert!(
        report.tools_called.contains(&"stat".to_owned()),
        "{report:?}"
    );
    eprintln!("{report:?}");
}
