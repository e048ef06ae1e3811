//! Drives the real `development` binary over stdio with rmcp's client.

use std::fs;
use std::path::Path;
use std::process::Command;

use mcp_server_runtime::testing::{Hints, TestServer, assert_readme_documents, assert_tool_list};
use serde_json::{Value, json};

const TOOLS: [&str; 13] = [
    "project_info",
    "search_code",
    "find_symbol",
    "list_files",
    "directory_tree",
    "read_file",
    "read_files",
    "file_info",
    "git_info",
    "git_diff",
    "git_log",
    "git_show",
    "git_branches",
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
    assert_tool_list(&tools, &TOOLS, |_| Hints {
        idempotent: Some(true),
        ..Hints::READ_ONLY_LOCAL
    });
    assert_readme_documents(&tools, env!("CARGO_MANIFEST_DIR"));
    for tool in &tools {
        let properties = &tool.input_schema["properties"];
        assert!(
            properties.is_object(),
            "{} input schema: {properties}",
            tool.name
        );
    }
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
    // Discovery stops at the root, whatever repository may lie above the temp dir.
    let git = plain.call("git_info", json!({})).await.unwrap();
    assert!(error_text(&git).contains("no git repository at or below the root"));
    plain.shutdown().await.unwrap();
    let still = server.call("list_files", json!({})).await.unwrap();
    assert!(structured(&still)["total_files"].as_u64().unwrap() >= 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn reading_tools_answer_over_stdio() {
    let dir = fixture();
    fs::write(dir.path().join("latin1.txt"), b"caf\xe9\n").unwrap();
    let server = spawn(dir.path()).await;

    let read = server
        .call(
            "read_file",
            json!({"path": "src/main.rs", "start_line": 2, "end_line": 2}),
        )
        .await
        .unwrap();
    let read = structured(&read);
    assert_eq!(read["content"], "    greet();\n");
    assert_eq!(read["total_lines"], 5);
    let lossy = server
        .call("read_file", json!({"path": "latin1.txt"}))
        .await
        .unwrap();
    let lossy = structured(&lossy);
    assert_eq!(
        (lossy["encoding"].as_str(), lossy["content_base64"].as_str()),
        (Some("utf-8-lossy"), Some("Y2Fm6Qo="))
    );
    let binary = server
        .call("read_file", json!({"path": "data.bin"}))
        .await
        .unwrap();
    assert_eq!(structured(&binary)["binary"], true);

    let many = server
        .call("read_files", json!({"paths": ["Cargo.toml", "nope.txt"]}))
        .await
        .unwrap();
    let many = structured(&many);
    assert_eq!(many["errors"], 1);
    assert!(
        many["files"][0]["file"]["content"]
            .as_str()
            .unwrap()
            .contains("fixture")
    );
    assert!(
        many["files"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("not found")
    );

    let tree = server
        .call("directory_tree", json!({"max_depth": 2}))
        .await
        .unwrap();
    let tree = structured(&tree);
    let names: Vec<_> = tree["tree"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Cargo.toml", "data.bin", "latin1.txt", "src"]);

    let info = server
        .call("file_info", json!({"path": "src"}))
        .await
        .unwrap();
    assert_eq!(structured(&info)["kind"], "directory");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn git_tools_answer_over_stdio() {
    let dir = fixture();
    fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let server = spawn(dir.path()).await;

    let diff = server
        .call("git_diff", json!({"context_lines": 0}))
        .await
        .unwrap();
    let diff = structured(&diff);
    assert_eq!(diff["files"][0]["path"], "src/main.rs");
    assert_eq!(
        (
            diff["total_additions"].as_u64(),
            diff["total_deletions"].as_u64()
        ),
        (Some(1), Some(5))
    );
    assert!(
        diff["diff"].as_str().unwrap().contains("+fn main() {}"),
        "{diff}"
    );

    let log = server
        .call("git_log", json!({"max_count": 5}))
        .await
        .unwrap();
    assert_eq!(structured(&log)["commits"][0]["summary"], "initial");
    let show = server
        .call("git_show", json!({"rev": "HEAD"}))
        .await
        .unwrap();
    let show = structured(&show);
    assert_eq!(show["kind"], "commit");
    assert_eq!(show["files"].as_array().unwrap().len(), 3);
    let blob = server
        .call("git_show", json!({"rev": "HEAD:Cargo.toml"}))
        .await
        .unwrap();
    assert!(
        structured(&blob)["blob"]["content"]
            .as_str()
            .unwrap()
            .contains("fixture")
    );
    let branches = server.call("git_branches", json!({})).await.unwrap();
    assert_eq!(structured(&branches)["branches"][0]["name"], "main");

    let dash = server
        .call("git_log", json!({"rev": "--output=/tmp/pwned-by-test"}))
        .await
        .unwrap();
    assert!(error_text(&dash).contains("no revision"));
    assert!(!Path::new("/tmp/pwned-by-test").exists());
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn escapes_symlinks_and_fifos_are_refused_and_the_server_keeps_serving() {
    let dir = fixture();
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("secret.txt"), "secret").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("leak.txt"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("leakdir")).unwrap();
    let fifo = dir.path().join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let server = spawn(dir.path()).await;
    let secret = outside.path().join("secret.txt");
    // Enough `..` to reach /etc/passwd (which exists) from wherever the fixture is: a
    // fixed "../../" ended elsewhere in a deeper temporary directory (Nix's build dir) and
    // was refused as "not found" instead of as an escape.
    let dotdots = "../".repeat(dir.path().components().count());
    let passwd = format!("{dotdots}etc/passwd");
    let attempts = [
        ("read_file", json!({"path": passwd})),
        ("read_file", json!({"path": secret.to_str().unwrap()})),
        ("read_file", json!({"path": "leak.txt"})),
        ("read_files", json!({"paths": ["leakdir/secret.txt"]})),
        ("directory_tree", json!({"path": "leakdir"})),
        ("file_info", json!({"path": "leak.txt"})),
        ("git_diff", json!({"path": "leakdir"})),
        ("git_log", json!({"path": ".."})),
    ];
    for (tool, arguments) in attempts {
        let result = server.call(tool, arguments.clone()).await.unwrap();
        let text = if tool == "read_files" {
            structured(&result)["files"][0]["error"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            error_text(&result)
        };
        assert!(
            text.contains("outside the allowed roots"),
            "{tool} {arguments}: {text}"
        );
        assert!(!text.contains("secret\""), "{text}");
    }
    // A FIFO no one writes to: refused at once instead of blocking a worker.
    let pipe = server
        .call("read_file", json!({"path": "pipe"}))
        .await
        .unwrap();
    assert!(error_text(&pipe).contains("FIFO"));
    let pipe_info = server
        .call("file_info", json!({"path": "pipe"}))
        .await
        .unwrap();
    assert_eq!(structured(&pipe_info)["kind"], "fifo");
    let still = server
        .call("read_file", json!({"path": "Cargo.toml"}))
        .await
        .unwrap();
    assert!(
        structured(&still)["content"]
            .as_str()
            .unwrap()
            .contains("fixture")
    );
    server.shutdown().await.unwrap();
}
