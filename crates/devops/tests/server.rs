//! Drives the real `devops` binary over stdio with rmcp's client, as an MCP client would.

mod https_fixture;

use std::path::Path;

use mcp_server_runtime::testing::{Hints, TestServer, assert_readme_documents, assert_tool_list};
use rmcp::model::CallToolResult;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOOLS: [&str; 9] = [
    "system_metrics",
    "disk_usage",
    "network_stats",
    "process_list",
    "process_info",
    "check_endpoint",
    "analyze_log",
    "detect_anomalies",
    "sample_metric_anomalies",
];

async fn spawn(root: &Path) -> TestServer {
    let root = root.to_str().unwrap();
    TestServer::spawn(env!("CARGO_BIN_EXE_devops").as_ref(), &["--root", root])
        .await
        .unwrap()
}

/// The structured content of a successful call.
fn ok(result: CallToolResult) -> Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {result:?}");
    result.structured_content.expect("structured content")
}

/// The text of an `isError` result.
fn tool_error(result: CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "expected an error: {result:?}");
    serde_json::to_value(&result.content).unwrap().to_string()
}

#[tokio::test]
async fn lists_every_tool_with_schemas_and_annotations() {
    let root = tempfile::tempdir().unwrap();
    let server = spawn(root.path()).await;
    let info = server.server_info().unwrap();
    assert_eq!(info.server_info.unwrap().name, "devops");

    let tools = server.list_tools().await.unwrap();
    assert_tool_list(&tools, &TOOLS, |name| Hints {
        open_world: Some(name == "check_endpoint"),
        ..Hints::READ_ONLY_LOCAL
    });
    assert_readme_documents(&tools, env!("CARGO_MANIFEST_DIR"));
    for tool in &tools {
        assert!(
            tool.description.as_ref().is_some_and(|d| d.len() > 20),
            "{}",
            tool.name
        );
    }
    let analyze = tools.iter().find(|t| t.name == "analyze_log").unwrap();
    let required = analyze.input_schema.get("required").unwrap();
    assert_eq!(required, &json!(["path"]));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn host_tools_return_structured_metrics() {
    let root = tempfile::tempdir().unwrap();
    let server = spawn(root.path()).await;

    let metrics = ok(server.call("system_metrics", Value::Null).await.unwrap());
    assert!(metrics["cpu"]["logical_cores"].as_u64().unwrap() >= 1);
    assert!(metrics["memory"]["total_bytes"].as_u64().unwrap() > 0);

    let disks = ok(server.call("disk_usage", json!({})).await.unwrap());
    assert!(disks["disks"].is_array());

    let network = ok(server.call("network_stats", json!({})).await.unwrap());
    let names: Vec<&str> = network["interfaces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"lo"), "{names:?}");

    let listing = ok(server
        .call("process_list", json!({"sort_by": "memory", "limit": 5}))
        .await
        .unwrap());
    assert!(listing["processes"].as_array().unwrap().len() <= 5);
    assert!(listing["total_processes"].as_u64().unwrap() >= 2);

    // This test process is alive for sure.
    let me = std::process::id();
    let details = ok(server
        .call("process_info", json!({"pid": me}))
        .await
        .unwrap());
    assert_eq!(details["pid"], json!(me));

    let missing = server
        .call("process_info", json!({"pid": 4_194_313u32}))
        .await
        .unwrap();
    let text = tool_error(missing);
    assert!(
        text.contains("not found") && text.contains("4194313"),
        "{text}"
    );

    let sampled = ok(server
        .call(
            "sample_metric_anomalies",
            json!({"metric": "memory", "samples": 3, "interval_ms": 200, "method": "ewma"}),
        )
        .await
        .unwrap());
    assert_eq!(sampled["values"].as_array().unwrap().len(), 3);
    let too_long = server
        .call(
            "sample_metric_anomalies",
            json!({"metric": "cpu", "samples": 300, "interval_ms": 10000, "method": "zscore"}),
        )
        .await
        .unwrap();
    assert!(tool_error(too_long).contains("60000"));
    server.shutdown().await.unwrap();
}

/// A one-shot HTTP server on loopback answering 200 "ok"; returns its port.
async fn serve_ok_once() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buffer = [0u8; 1024];
        let _ = socket.read(&mut buffer).await.unwrap();
        socket
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            .await
            .unwrap();
    });
    port
}

#[tokio::test]
async fn check_endpoint_over_loopback() {
    let root = tempfile::tempdir().unwrap();
    let server = spawn(root.path()).await;
    let port = serve_ok_once().await;
    let report = ok(server
        .call(
            "check_endpoint",
            json!({"url": format!("http://127.0.0.1:{port}/health")}),
        )
        .await
        .unwrap());
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["status"], json!(200));
    assert_eq!(
        report["address_policy"],
        json!("any"),
        "stdio defaults to any"
    );
    assert_eq!(report["hops"][0]["http"]["body_preview"], json!("ok"));

    // The listener is gone now: the port refuses, which is a result, not an error.
    let refused = ok(server
        .call(
            "check_endpoint",
            json!({"host": "127.0.0.1", "port": port, "timeout_ms": 1000}),
        )
        .await
        .unwrap());
    assert_eq!(refused["ok"], json!(false));
    assert_eq!(refused["failure"], json!("refused"));

    for (arguments, mentioned) in [
        (json!({"host": "http://x/", "port": 80}), "invalid input"),
        (json!({"url": "ftp://x/"}), "scheme"),
        (
            json!({"url": "http://x/", "timeout_ms": 60000}),
            "tool time limit",
        ),
        // The old argument is refused rather than silently ignored.
        (
            json!({"host": "x", "port": 80, "http_path": "/"}),
            "http_path",
        ),
    ] {
        let result = server
            .call("check_endpoint", arguments.clone())
            .await
            .unwrap();
        let text = tool_error(result);
        assert!(text.contains(mentioned), "{arguments}: {text}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn check_endpoint_over_https_with_an_operator_ca() {
    let ca = https_fixture::TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let trusted = https_fixture::serve(ca.issue("localhost", 20)).await;
    let untrusted = https_fixture::serve(https_fixture::self_signed("localhost")).await;
    let server = TestServer::spawn(
        env!("CARGO_BIN_EXE_devops").as_ref(),
        &[
            "--root",
            dir.path().to_str().unwrap(),
            "--ca-file",
            ca_file.to_str().unwrap(),
        ],
    )
    .await
    .unwrap();

    let report = ok(server
        .call(
            "check_endpoint",
            json!({"url": format!("https://localhost:{trusted}/ready")}),
        )
        .await
        .unwrap());
    assert_eq!(report["ok"], json!(true), "{report}");
    assert_eq!(report["status"], json!(204));
    let tls = &report["hops"][0]["tls"];
    assert_eq!(tls["verified"], json!(true));
    assert_eq!(tls["version"], json!("TLS 1.3"));
    assert_eq!(tls["certificate"]["expires_in_days"], json!(20));
    assert!(report["hops"][0]["timing"]["tls_ms"].is_number());

    let report = ok(server
        .call(
            "check_endpoint",
            json!({"url": format!("https://localhost:{untrusted}/ready")}),
        )
        .await
        .unwrap());
    assert_eq!(report["ok"], json!(false));
    assert_eq!(report["failure"], json!("certificate"), "{report}");
    assert_eq!(report["hops"][0]["tls"]["problem"], json!("unknown_issuer"));
    server.shutdown().await.unwrap();

    // A CA file that holds no certificate stops the server at startup with the reason.
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_devops"))
        .args(["--ca-file", bad.to_str().unwrap()])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("no PEM CERTIFICATE"));
}

#[tokio::test]
async fn public_only_policy_blocks_loopback_targets() {
    let root = tempfile::tempdir().unwrap();
    let server = TestServer::spawn(
        env!("CARGO_BIN_EXE_devops").as_ref(),
        &[
            "--root",
            root.path().to_str().unwrap(),
            "--endpoint-policy",
            "public-only",
        ],
    )
    .await
    .unwrap();
    let port = serve_ok_once().await;
    for arguments in [
        json!({"url": format!("http://localhost:{port}/")}),
        json!({"host": "127.0.0.1", "port": port}),
        json!({"url": "http://169.254.169.254/latest/meta-data/"}),
    ] {
        let report = ok(server
            .call("check_endpoint", arguments.clone())
            .await
            .unwrap());
        assert_eq!(report["failure"], json!("blocked"), "{arguments}: {report}");
        assert_eq!(report["address_policy"], json!("public_only"));
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn process_tools_redact_secrets_in_command_lines() {
    let root = tempfile::tempdir().unwrap();
    let server = spawn(root.path()).await;
    // `; :` keeps sh from exec-ing sleep, so the arguments stay on sh's command line.
    let mut child = std::process::Command::new("sh")
        .args([
            "-c",
            "sleep 30; :",
            "sh",
            "--password=hunter2",
            "--token",
            "tok-12345",
            "https://bob:pw-secret@example.com/",
        ])
        .spawn()
        .unwrap();
    let pid = child.id();
    let details = ok(server
        .call("process_info", json!({"pid": pid}))
        .await
        .unwrap());
    assert_eq!(
        details["command_line"],
        json!([
            "sh",
            "-c",
            "sleep 30; :",
            "sh",
            "--password=[redacted]",
            "--token",
            "[redacted]",
            "https://bob:[redacted]@example.com/"
        ])
    );
    let listing = ok(server
        .call(
            "process_list",
            json!({"name_filter": "sleep 30; :", "sort_by": "pid"}),
        )
        .await
        .unwrap());
    let mine = listing["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == json!(pid))
        .unwrap_or_else(|| panic!("{listing}"));
    let command = mine["command"].as_str().unwrap();
    assert!(command.contains("--password=[redacted]"), "{command}");
    for secret in ["hunter2", "tok-12345", "pw-secret"] {
        assert!(!listing.to_string().contains(secret), "{secret} leaked");
        // A filter cannot probe for the secret either.
        let probe = ok(server
            .call("process_list", json!({"name_filter": secret}))
            .await
            .unwrap());
        assert!(
            !probe["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["pid"] == json!(pid)),
            "{secret}: {probe}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn analyze_log_is_confined_to_the_roots() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(
        root.path().join("app.log"),
        "2024-01-15T10:00:00Z INFO up\n2024-01-15T10:00:01Z ERROR job 7 failed\n\
         2024-01-15T10:00:02Z ERROR job 8 failed\n",
    )
    .unwrap();
    std::fs::write(outside.path().join("secret.log"), "ERROR secret\n").unwrap();
    std::fs::create_dir(root.path().join("logs")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.log"),
        root.path().join("logs/link.log"),
    )
    .unwrap();
    let server = spawn(root.path()).await;

    let analysis = ok(server
        .call(
            "analyze_log",
            json!({"path": "app.log", "pattern": "job \\d+", "limit": 1}),
        )
        .await
        .unwrap());
    assert_eq!(analysis["levels"]["error"], json!(2));
    assert_eq!(
        analysis["top_errors"][0]["message"],
        json!("job <n> failed")
    );
    assert_eq!(analysis["top_errors"][0]["count"], json!(2));
    assert_eq!(analysis["pattern"]["matching_lines"], json!(2));
    assert_eq!(analysis["pattern"]["truncated"], json!(true));
    assert_eq!(
        analysis["last_timestamp"]["utc"],
        json!("2024-01-15T10:00:02.000Z")
    );

    let secret = outside.path().join("secret.log");
    let escapes = [
        "../".to_owned() + outside.path().file_name().unwrap().to_str().unwrap() + "/secret.log",
        secret.to_str().unwrap().to_owned(),
        "logs/link.log".to_owned(),
        "/etc/passwd".to_owned(),
    ];
    for path in escapes {
        let result = server
            .call("analyze_log", json!({"path": path}))
            .await
            .unwrap();
        let text = tool_error(result);
        assert!(text.contains("denied"), "{path}: {text}");
        assert!(!text.contains("ERROR secret"), "{path}: {text}");
    }
    let missing = server
        .call("analyze_log", json!({"path": "nope.log"}))
        .await
        .unwrap();
    assert!(tool_error(missing).contains("not found"));
    let bad_regex = server
        .call("analyze_log", json!({"path": "app.log", "pattern": "("}))
        .await
        .unwrap();
    assert!(tool_error(bad_regex).contains("regex"));
    let directory = server
        .call("analyze_log", json!({"path": "logs"}))
        .await
        .unwrap();
    assert!(tool_error(directory).contains("directory"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_arguments_are_errors_and_the_server_keeps_serving() {
    let root = tempfile::tempdir().unwrap();
    let server = spawn(root.path()).await;

    // Arguments that do not match the input schema are refused: rmcp 3.9 answers a failed
    // deserialization with an isError result, an unknown tool with a JSON-RPC error.
    let refused = [
        (
            "detect_anomalies",
            json!({"values": [1, 2], "method": "median"}),
            "median",
        ),
        ("detect_anomalies", json!({"method": "zscore"}), "values"),
        ("process_info", json!({"pid": -1}), "-1"),
        (
            "check_endpoint",
            json!({"host": "x", "port": 70000}),
            "70000",
        ),
        ("no_such_tool", json!({}), "tool not found"),
    ];
    for (tool, arguments, mentioned) in refused {
        let message = match server.call(tool, arguments.clone()).await {
            Err(error) => error.to_string(),
            Ok(result) => tool_error(result),
        };
        assert!(message.contains(mentioned), "{tool} {arguments}: {message}");
    }
    // Arguments of the right shape but wrong value are isError results.
    let short = server
        .call(
            "detect_anomalies",
            json!({"values": [1], "method": "zscore"}),
        )
        .await
        .unwrap();
    assert!(tool_error(short).contains("at least 2"));

    let mut values = vec![10.0; 40];
    values[25] = 90.0;
    let report = ok(server
        .call(
            "detect_anomalies",
            json!({"values": values, "method": "zscore"}),
        )
        .await
        .unwrap());
    assert_eq!(report["anomalies"][0]["index"], json!(25));
    assert_eq!(report["anomaly_count"], json!(1));
    server.shutdown().await.unwrap();
}
