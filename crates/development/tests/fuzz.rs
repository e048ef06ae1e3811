//! Adversarial JSON-RPC on the real binary's stdin (malformed and hostile frames, and every
//! tool called with schema-shaped, mistyped and hostile arguments): the server must keep
//! answering and write nothing but JSON. See `mcp_server_runtime::testing::fuzz_binary`.

use std::path::Path;

#[tokio::test]
async fn adversarial_json_rpc_never_stops_the_server() {
    let bin = Path::new(env!("CARGO_BIN_EXE_development"));
    mcp_server_runtime::testing::fuzz_server(bin, &[]).await;
}
