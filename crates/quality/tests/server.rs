//! Drives the real `quality` binary over stdio with rmcp's client.

use std::fs;
use std::path::Path;

use mcp_server_runtime::testing::{Hints, TestServer, assert_readme_documents, assert_tool_list};
use serde_json::{Value, json};

async fn spawn(root: &Path) -> anyhow::Result<TestServer> {
    TestServer::spawn(
        env!("CARGO_BIN_EXE_quality").as_ref(),
        &[
            "--root",
            root.to_str().expect("utf-8 temp path"),
            "--log-level",
            "warn",
        ],
    )
    .await
}

fn fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    fs::create_dir(root.join(".git")).unwrap();
    fs::write(root.join(".gitignore"), "vendor/\n").unwrap();
    fs::create_dir_all(root.join("src")).unwrap();
    fs::create_dir_all(root.join("vendor")).unwrap();
    fs::create_dir_all(root.join("empty")).unwrap();
    let branches: String = (0..20)
        .map(|i| format!("    if x == {i} {{\n        return {i};\n    }}\n"))
        .collect();
    fs::write(
        root.join("src/lib.rs"),
        format!("// TODO: tidy up\npub fn tangled(x: u32) -> u32 {{\n{branches}    0\n}}\n\npub fn simple() -> u32 {{\n    1\n}}\n"),
    )
    .unwrap();
    fs::write(
        root.join("src/app.py"),
        "def main(args):\n    return 0 if args else 1\n",
    )
    .unwrap();
    fs::write(root.join("vendor/dep.rs"), "fn vendored() { if true {} }\n").unwrap();
    fs::write(root.join("src/blob.bin"), b"\x7fELF\x00\x00\x00").unwrap();
    dir
}

fn structured(result: &rmcp::model::CallToolResult) -> &Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {result:?}");
    result
        .structured_content
        .as_ref()
        .expect("tools return structured content")
}

#[tokio::test]
async fn lists_tools_with_annotations_and_output_schemas() -> anyhow::Result<()> {
    let dir = fixture();
    let server = spawn(dir.path()).await?;
    let tools = server.list_tools().await?;
    assert_tool_list(
        &tools,
        &["code_stats", "complexity", "find_issues", "quality_report"],
        |_| Hints::READ_ONLY_LOCAL,
    );
    assert_readme_documents(&tools, env!("CARGO_MANIFEST_DIR"));
    server.shutdown().await
}

#[tokio::test]
async fn analyzes_a_tree() -> anyhow::Result<()> {
    let dir = fixture();
    let server = spawn(dir.path()).await?;

    let result = server.call("code_stats", json!({})).await?;
    let stats = structured(&result);
    let languages: Vec<&str> = stats["languages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|language| language["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["Rust", "Python"]);
    assert_eq!(stats["languages"][0]["files"], 1, "vendor/ is gitignored");
    assert_eq!(stats["total"]["files"], 2);

    let result = server
        .call("complexity", json!({"path": "src", "threshold": 2}))
        .await?;
    let report = structured(&result);
    assert_eq!(report["functions"][0]["name"], "tangled");
    assert_eq!(report["functions"][0]["file"], "lib.rs");
    assert_eq!(report["functions"][0]["start_line"], 2);
    assert_eq!(report["functions"][0]["cyclomatic_complexity"], 21);
    assert_eq!(report["functions"][1]["name"], "main");
    assert_eq!(report["functions_analyzed"], 3);
    assert_eq!(report["walk"]["skipped_binary"], 1);

    let result = server
        .call("find_issues", json!({"max_function_lines": 50}))
        .await?;
    let issues = structured(&result);
    assert_eq!(issues["counts"]["markers"], 1);
    assert_eq!(issues["counts"]["complex_functions"], 1);
    assert_eq!(issues["counts"]["long_functions"], 1);

    let result = server.call("quality_report", json!({"path": "."})).await?;
    let report = structured(&result);
    assert!(report["score"].as_u64().unwrap() < 100);
    assert_eq!(report["hotspots"][0]["file"], "src/lib.rs");

    let result = server
        .call("quality_report", json!({"path": "empty"}))
        .await?;
    assert_eq!(structured(&result)["score"], 100);
    server.shutdown().await
}

#[tokio::test]
async fn bad_input_is_a_clear_error_not_a_crash() -> anyhow::Result<()> {
    let dir = fixture();
    let server = spawn(dir.path()).await?;
    for (tool, arguments) in [
        ("code_stats", json!({"path": "../../etc"})),
        ("complexity", json!({"path": "/etc"})),
        ("find_issues", json!({"path": "no/such/dir"})),
        ("complexity", json!({"limit": 0})),
        ("find_issues", json!({"min_duplicate_lines": 0})),
    ] {
        let result = server.call(tool, arguments.clone()).await?;
        assert_eq!(
            result.is_error,
            Some(true),
            "{tool} {arguments}: {result:?}"
        );
    }
    // Arguments of the wrong type are rejected (as a JSON-RPC error or an isError result).
    let wrong_type = server.call("complexity", json!({"limit": "many"})).await;
    assert!(
        wrong_type
            .as_ref()
            .map_or(true, |result| result.is_error == Some(true)),
        "{wrong_type:?}"
    );
    // The server still answers afterwards.
    let result = server.call("code_stats", json!({"path": "src"})).await?;
    structured(&result);
    server.shutdown().await
}

#[tokio::test]
async fn fifos_neither_hang_nor_get_read() -> anyhow::Result<()> {
    let dir = fixture();
    // Named like a source file, inside the walked tree, and given directly as the path.
    mcp_server_runtime::testing::make_fifo(&dir.path().join("src/pipe.rs"))?;
    let server = spawn(dir.path()).await?;
    let guard = std::time::Duration::from_secs(60); // fails instead of hanging; not a speed assertion
    let direct = tokio::time::timeout(
        guard,
        server.call("code_stats", json!({"path": "src/pipe.rs"})),
    )
    .await
    .expect("code_stats on a FIFO blocked")?;
    assert_eq!(direct.is_error, Some(true), "{direct:?}");
    let text = &direct.content[0].as_text().expect("text").text;
    assert!(
        text.starts_with("invalid input") && text.contains("FIFO"),
        "{text}"
    );
    for tool in ["code_stats", "complexity", "find_issues", "quality_report"] {
        let result = tokio::time::timeout(guard, server.call(tool, json!({"path": "src"})))
            .await
            .unwrap_or_else(|_| panic!("{tool} blocked on a FIFO in the tree"))?;
        structured(&result);
    }
    server.shutdown().await?;
    Ok(())
}
