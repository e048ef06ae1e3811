//! Adversarial JSON-RPC on the real binary's stdin (malformed and hostile frames, and every
//! tool called with schema-shaped, mistyped and hostile arguments): the server must keep
//! answering and write nothing but JSON. See `mcp_server_runtime::testing::fuzz_binary`.

use std::path::Path;

#[tokio::test]
async fn adversarial_json_rpc_never_stops_the_server() {
    // check_endpoint would reach the network; sample_metric_anomalies sleeps between samples.
    let bin = Path::new(env!("CARGO_BIN_EXE_devops"));
    mcp_server_runtime::testing::fuzz_server(bin, &["check_endpoint", "sample_metric_anomalies"])
        .await;
}
