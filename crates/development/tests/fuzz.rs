//! Adversarial JSON-RPC on the real binary's stdin (malformed and hostile frames, and every
//! tool called with schema-shaped, mistyped and hostile arguments): the server must keep
//! answering and write nothing but JSON. See `mcp_server_runtime::testing::fuzz_binary`.

use std::path::Path;

use mcp_server_runtime::testing::{FuzzOptions, fuzz_binary, temp_tree};

#[tokio::test]
async fn adversarial_json_rpc_never_stops_the_server() {
    let root = temp_tree(&[
        ("src/main.rs", "fn main() { if true { todo!() } }\n"),
        ("Cargo.toml", "[package]\nname = \"x\"\n"),
        ("app.log", "2024-01-01T00:00:00Z ERROR boom 7\n"),
    ])
    .unwrap();
    let root_arg = root.path().to_str().unwrap();
    // every tool is called.
    let options = FuzzOptions {
        cases: 16,
        skip_tools: Vec::new(),
        ..FuzzOptions::default()
    };
    let args = [
        "--root",
        root_arg,
        "--tool-timeout-secs",
        "5",
        "--log-level",
        "error",
    ];
    let report = fuzz_binary(Path::new(env!("CARGO_BIN_EXE_development")), &args, options).await;
    assert!(report.cases > 0, "{report:?}");
    assert!(!report.tools_called.is_empty(), "{report:?}");
    eprintln!("{report:?}");
}
