//! Drives the real bash-god binary with the nastiest parser inputs: deep nesting of every
//! kind (refused with a clear error before brush-parser sees it), nesting that makes
//! brush-parser backtrack exponentially (its helper process is killed at the time limit),
//! and checks after each that the server keeps serving and no helper is left running.

use std::path::Path;

use mcp_server_runtime::testing::TestServer;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bash-god");
/// The parse time limit the servers of these tests get (the default is 10 s).
const TIMEOUT_MS: &str = "2000";

/// The server, started through `env` so it gets a short parse time limit.
async fn spawn(root: &Path, extra: &[&str]) -> TestServer {
    let timeout = format!("BASH_GOD_PARSE_TIMEOUT_MS={TIMEOUT_MS}");
    let mut args = vec![
        timeout.as_str(),
        BIN,
        "--root",
        root.to_str().unwrap(),
        "--log-level",
        "warn",
    ];
    args.extend_from_slice(extra);
    TestServer::spawn(Path::new("/usr/bin/env"), &args)
        .await
        .unwrap()
}

fn error_text(result: &CallToolResult) -> String {
    assert_eq!(
        result.is_error,
        Some(true),
        "expected an isError result: {result:?}"
    );
    result.content[0].as_text().unwrap().text.clone()
}

async fn still_serving(server: &TestServer) {
    let result = server
        .call("analyze_command", json!({"command": "ls | wc -l"}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let report: &Value = result.structured_content.as_ref().unwrap();
    assert_eq!(report["risk"], "safe");
}

/// Parse helpers still running for the server whose `--root` is `root`.
fn helpers_left(root: &Path) -> Vec<u32> {
    let root = root.to_str().unwrap();
    let cmdline = |pid: &str| {
        std::fs::read(format!("/proc/{pid}/cmdline"))
            .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
            .unwrap_or_default()
    };
    let parent_of = |pid: &str| -> Option<String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // `pid (comm) state ppid …`; comm may hold spaces, so split after the last `)`.
        stat.rsplit_once(')')?
            .1
            .split_whitespace()
            .nth(1)
            .map(str::to_owned)
    };
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| cmdline(pid).contains("--bash-god-parse-helper"))
        .filter(|pid| parent_of(pid).is_some_and(|ppid| cmdline(&ppid).contains(root)))
        .filter_map(|pid| pid.parse().ok())
        .collect()
}

/// Every kind of nesting, 64 KiB deep (or as deep as 64 KiB allows).
fn deep_inputs() -> Vec<(&'static str, String)> {
    const MAX: usize = 64 * 1024;
    let fill = |unit: &str| unit.repeat(MAX / unit.len());
    vec![
        ("parentheses", fill("(")),
        ("spaced parentheses", fill("( ")),
        ("brace groups", fill("{ ")),
        ("command substitutions", fill("$(")),
        ("quoted command substitutions", fill("\"$(")),
        ("arithmetic expansions", fill("$((")),
        ("arithmetic commands", fill("((")),
        ("parameter defaults", fill("${a:-")),
        ("legacy arithmetic", fill("$[")),
        ("process substitutions", fill("<(")),
        ("if", fill("if a; then ")),
        ("while", fill("while a; do ")),
        ("until", fill("until a; do ")),
        ("for", fill("for i in 1; do ")),
        ("case", fill("case x in y) ")),
        ("functions", fill("f() { ")),
        (
            "coprocesses",
            format!("{}x", fill("coproc ").split_at(MAX - 8).0),
        ),
        (
            "test negations",
            format!("[[ {}x ]]", fill("! ").split_at(MAX - 10).0),
        ),
        (
            "test conjunctions",
            format!("[[ x{} ]]", fill(" && x").split_at(MAX - 10).0),
        ),
        (
            "test parentheses",
            format!("[[ {}x", fill("( ").split_at(MAX - 10).0),
        ),
        (
            "extended globs",
            format!("echo @{}", fill("(").split_at(MAX - 10).0),
        ),
        ("here-documents in subshells", fill("( cat <<E\nx\nE\n")),
        (
            "substitutions in a here-document",
            format!("cat <<E\n{}\nE\n", fill("$(").split_at(MAX - 20).0),
        ),
        (
            "eval of eval",
            format!("{}x", fill("eval ").split_at(MAX - 8).0),
        ),
        (
            "bash -c of a deep string",
            format!("bash -c '{}'", fill("( ").split_at(MAX - 20).0),
        ),
        ("mixed", fill("$( ( { if a; then \"${x:-")),
    ]
}

#[tokio::test]
async fn deep_nesting_of_every_kind_is_refused_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path(), &["--allow-exec", "--unsandboxed-exec"]).await;
    for (kind, input) in deep_inputs() {
        assert!(input.len() <= 64 * 1024, "{kind}: {} bytes", input.len());
        for tool in ["analyze_command", "optimize_command", "execute_command"] {
            let result = server
                .call(tool, json!({"command": input}))
                .await
                .unwrap_or_else(|e| panic!("{kind} via {tool}: JSON-RPC error {e}"));
            let text = error_text(&result);
            assert!(
                text.contains("nests more than 128 levels")
                    || text.contains("add up to more than 262144 bytes to parse"),
                "{kind} via {tool}: {text}"
            );
        }
        still_serving(&server).await;
    }
    assert!(helpers_left(dir.path()).is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn exponential_backtracking_is_cut_off_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path(), &[]).await;
    let body = "x;".repeat(10_000);
    for (kind, input) in [
        // Each nested `case` whose body fails makes brush-parser parse the body twice.
        (
            "nested case around a failing body",
            format!(
                "{}{body} then {}",
                "case x in x) ".repeat(14),
                " esac".repeat(14)
            ),
        ),
        // `((` that is not arithmetic is re-scanned at every level.
        (
            "failing arithmetic parentheses",
            format!("{}x;{}", "((".repeat(20), "))".repeat(20)),
        ),
    ] {
        let result = server
            .call("analyze_command", json!({"command": input}))
            .await
            .unwrap();
        let text = error_text(&result);
        assert!(text.contains("did not finish within 2 s"), "{kind}: {text}");
        still_serving(&server).await;
        assert!(
            helpers_left(dir.path()).is_empty(),
            "{kind}: a helper is left running"
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn ordinary_scripts_parse_in_the_helper() {
    let dir = tempfile::tempdir().unwrap();
    let server = spawn(dir.path(), &[]).await;
    let script = r#"#!/bin/bash
set -euo pipefail
usage() { echo "usage: $0 start|stop" >&2; exit 2; }
main() {
  case "${1:-}" in
    start) for f in "$(dirname "$(readlink -f "$0")")"/*.conf; do
             if [[ -r $f && ! -L $f ]]; then while read -r line; do echo "$line"; done < "$f"; fi
           done ;;
    stop) kill "$(cat /run/x.pid)" || true ;;
    *) usage ;;
  esac
}
cat <<EOF
don't $(date) (((
EOF
main "$@"
"#;
    let result = server
        .call("analyze_command", json!({"command": script}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    let report = result.structured_content.unwrap();
    let names: Vec<&str> = report["commands"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    for name in [
        "set", "dirname", "readlink", "read", "kill", "cat", "date", "main",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    server.shutdown().await.unwrap();
}
