//! Drives the real `development` binary over stdio with rmcp's client.

use std::fs;
use std::path::Path;
use std::process::Command;

use mcp_server_runtime::testing::{Hints, TestServer, assert_tool_list};
use serde_json::{Value, json};

const TOOLS: [&str; 5] = [
    "project_info",
    "search_code",
    "find_symbol",
    "list_files",
    "git_info",
];

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::write(
        root.join("Cargo.toml"),
        "[package]\nname = \"fixture\"\nversion = \"0.1.0\"\n",
    )
    .unwrap();
    fs::write(
        root.join("src/main.rs"),
        "fn main() {\n    greet();\n}\n\nfn greet() {}\n",
    )
    .unwrap();
    fs::write(root.join("data.bin"), b"greet\x00\x01").unwrap();
    let git = |args: &[&str]| {
        let status = Command::new("git")
            .args(args)
            .current_dir(root)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Tester")
            .env("GIT_AUTHOR_EMAIL", "t@example.com")
            .env("GIT_COMMITTER_NAME", "Tester")
            .env("GIT_COMMITTER_EMAIL", "t@example.com")
            .status()
            .unwrap();
        assert!(status.success());
    };
    git(&["init", "-q", "-b", "main"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "initial"]);
    dir
}

async fn spawn(root: &Path) -> TestServer {
    TestServer::spawn(
        env!("CARGO_BIN_EXE_development").as_ref(),
        &["--root", root.to_str().unwrap(), "--log-level", "warn"],
    )
    .await
    .expect("server starts")
}

fn structured(result: &rmcp::model::CallToolResult) -> &Value {
    assert_ne!(result.is_error, Some(true), "{result:?}");
    result
        .structured_content
        .as_ref()
        .expect("structured output")
}

fn error_text(result: &rmcp::model::CallToolResult) -> String {
    assert_eq!(result.is_error, Some(true), "{result:?}");
    serde_json::to_string(&result.content).unwrap()
}

#[tokio::test]
async fn lists_tools_with_annotations_and_output_schemas() {
    let dir = fixture();
    let server = spawn(dir.path()).await;
    let tools = server.list_tools().await.unwrap();
    assert_tool_list(&tools, &TOOLS, |_| Hints::READ_ONLY_LOCAL);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_tool_answers_over_stdio() {
    let dir = fixture();
    let server = spawn(dir.path()).await;

    let info = server.call("project_info", json!({})).await.unwrap();
    assert_eq!(structured(&info)["projects"][0]["name"], "fixture");

    let found = server
        .call(
            "search_code",
            json!({"pattern": "greet", "context_lines": 1}),
        )
        .await
        .unwrap();
    let found = structured(&found);
    assert_eq!(found["matches"].as_array().unwrap().len(), 2, "{found}");
    assert_eq!(found["matches"][0]["path"], "src/main.rs");
    assert_eq!(found["matches"][0]["line"], 2);
    assert_eq!(found["matches"][0]["column"], 5);
    assert_eq!(found["binary_files_skipped"], 1);

    let symbol = server
        .call("find_symbol", json!({"name": "greet", "kind": "function"}))
        .await
        .unwrap();
    assert_eq!(structured(&symbol)["symbols"][0]["line"], 5);

    let files = server
        .call("list_files", json!({"glob": "*.rs"}))
        .await
        .unwrap();
    assert_eq!(structured(&files)["files"][0]["path"], "src/main.rs");

    let git = server.call("git_info", json!({})).await.unwrap();
    let git = structured(&git);
    assert_eq!(git["branch"], "main");
    assert_eq!(git["head"]["summary"], "initial");

    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_an_error_result_and_the_server_keeps_serving() {
    let dir = fixture();
    let server = spawn(dir.path()).await;
    let escape = server
        .call("list_files", json!({"path": "../.."}))
        .await
        .unwrap();
    assert!(error_text(&escape).contains("outside the allowed roots"));
    let regex = server
        .call("search_code", json!({"pattern": "(unclosed"}))
        .await
        .unwrap();
    assert!(error_text(&regex).contains("invalid regular expression"));
    let kind = server
        .call("find_symbol", json!({"name": "x", "kind": "galaxy"}))
        .await;
    assert!(
        kind.is_err() || kind.unwrap().is_error == Some(true),
        "unknown kind is rejected"
    );
    let outside_repo = tempfile::tempdir().unwrap();
    let plain = spawn(outside_repo.path()).await;
    let git = plain.call("git_info", json!({})).await.unwrap();
    if git.is_error == Some(true) {
        assert!(error_text(&git).contains("not inside a git repository"));
    }
    plain.shutdown().await.unwrap();
    let still = server.call("list_files", json!({})).await.unwrap();
    assert!(structured(&still)["total_files"].as_u64().unwrap() >= 2);
    server.shutdown().await.unwrap();
}
