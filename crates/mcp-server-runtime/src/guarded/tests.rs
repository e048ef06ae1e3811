//! `Guarded` end to end, through rmcp's in-process transport.

use super::*;
use crate::tool::{ToolResult, run_blocking};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::service::{PeerRequestOptions, RunningService};
use rmcp::{Json, RoleClient, ServerHandler, ServiceExt as _, tool, tool_handler, tool_router};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// The fuzzer asks for `u64::MAX` bytes: an allocation that fails aborts the process, which
/// no `Guarded` can turn into an error, so the test tools bound what they allocate.
const MAX_TEST_BYTES: usize = 64 << 20;
#[derive(serde::Deserialize, schemars::JsonSchema)]
struct Size {
    bytes: usize,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Items {
    items: Vec<String>,
}

#[derive(Clone, Default)]
struct Probe {
    spin_started: Arc<Notify>,
    spins_stopped_by_flag: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct TestTools {
    tool_router: ToolRouter<Self>,
    probe: Probe,
}

#[tool_router]
impl TestTools {
    /// Answers immediately.
    #[tool]
    async fn ping_tool(&self) -> String {
        "pong".to_owned()
    }
    /// Never finishes on its own.
    #[tool]
    async fn sleep_forever(&self) -> String {
        tokio::time::sleep(Duration::from_secs(3600)).await;
        "woke up".to_owned()
    }
    /// Blocking loop that only stops when its CancelFlag is set.
    #[tool]
    async fn spin(&self) -> ToolResult<u64> {
        let probe = self.probe.clone();
        run_blocking(move |flag| {
            probe.spin_started.notify_one();
            let mut rounds = 0u64;
            while !flag.is_cancelled() {
                rounds += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            probe.spins_stopped_by_flag.fetch_add(1, Ordering::SeqCst);
            Ok(Json(rounds))
        })
        .await
    }
    /// Panics.
    #[tool]
    async fn boom(&self) -> String {
        panic!("deliberate test panic")
    }
    /// Text of the requested size (at most `MAX_TEST_BYTES`).
    #[tool]
    async fn big_text(&self, Parameters(size): Parameters<Size>) -> String {
        "x".repeat(size.bytes.min(MAX_TEST_BYTES))
    }
    /// Structured output of roughly the requested size.
    #[tool]
    async fn big_json(&self, Parameters(size): Parameters<Size>) -> ToolResult<Items> {
        Ok(Json(Items {
            items: vec!["y".repeat(100); size.bytes.min(MAX_TEST_BYTES) / 100],
        }))
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for TestTools {}

async fn connect(limits: Limits) -> (RunningService<RoleClient, ()>, Probe) {
    let probe = Probe::default();
    let server = TestTools {
        tool_router: TestTools::tool_router(),
        probe: probe.clone(),
    };
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    tokio::spawn(async move {
        let running = Guarded::new(server, limits).serve(server_io).await.unwrap();
        let _ = running.waiting().await;
    });
    (().serve(client_io).await.unwrap(), probe)
}

fn limits(max_output_bytes: usize, timeout: Duration) -> Limits {
    Limits {
        max_output_bytes,
        tool_timeout: timeout,
        ..Limits::default()
    }
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &'static str,
    args: serde_json::Value,
) -> CallToolResult {
    let mut params = CallToolRequestParams::new(name);
    if let serde_json::Value::Object(map) = args {
        params = params.with_arguments(map);
    }
    client.call_tool(params).await.unwrap()
}

fn text_of(result: &CallToolResult) -> &str {
    &result.content[0].as_text().expect("text content").text
}

/// Upper bound for waits that should end promptly; reaching it fails the test
/// instead of hanging the suite. Not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);

#[tokio::test]
async fn timeout_becomes_is_error_and_server_keeps_serving() {
    let (client, _) = connect(limits(1 << 20, Duration::from_millis(200))).await;
    let result = call(&client, "sleep_forever", serde_json::json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).starts_with("timed out: tool `sleep_forever`"),
        "{}",
        text_of(&result)
    );
    assert_eq!(
        text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
        "pong"
    );
}

#[tokio::test]
async fn timeout_sets_the_cancel_flag_of_blocking_work() {
    let (client, probe) = connect(limits(1 << 20, Duration::from_millis(200))).await;
    let result = call(&client, "spin", serde_json::json!({})).await;
    assert_eq!(result.is_error, Some(true), "{result:?}");
    tokio::time::timeout(HANG_GUARD, async {
        while probe.spins_stopped_by_flag.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the blocking loop saw its CancelFlag");
}

#[tokio::test]
async fn panic_becomes_is_error_and_server_keeps_serving() {
    let (client, _) = connect(Limits::default()).await;
    let result = call(&client, "boom", serde_json::json!({})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(
        text_of(&result).contains("deliberate test panic"),
        "{}",
        text_of(&result)
    );
    assert_eq!(
        text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
        "pong"
    );
}

#[tokio::test]
async fn cancellation_notification_stops_the_work() {
    let (client, probe) = connect(Limits::default()).await;
    let started = probe.spin_started.notified();
    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("spin")));
    let handle = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::timeout(HANG_GUARD, started)
        .await
        .expect("spin started");
    handle
        .cancel(Some("test cancels".to_owned()))
        .await
        .unwrap();
    tokio::time::timeout(HANG_GUARD, async {
        while probe.spins_stopped_by_flag.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the blocking loop saw its CancelFlag after notifications/cancelled");
    assert_eq!(
        text_of(&call(&client, "ping_tool", serde_json::json!({})).await),
        "pong"
    );
}

#[tokio::test]
async fn text_output_is_truncated_to_the_cap() {
    let (client, _) = connect(limits(1000, Limits::DEFAULT_TOOL_TIMEOUT)).await;
    let result = call(&client, "big_text", serde_json::json!({"bytes": 50_000})).await;
    assert_ne!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(text.len() <= 1000, "{} bytes", text.len());
    assert!(text.contains(" bytes truncated …]"));
    let small = call(&client, "big_text", serde_json::json!({"bytes": 10})).await;
    assert_eq!(text_of(&small), "x".repeat(10));
}

#[tokio::test]
async fn oversized_structured_output_asks_to_narrow_the_request() {
    let (client, _) = connect(limits(1000, Limits::DEFAULT_TOOL_TIMEOUT)).await;
    let result = call(&client, "big_json", serde_json::json!({"bytes": 50_000})).await;
    assert_eq!(result.is_error, Some(true));
    assert!(result.structured_content.is_none());
    assert!(
        text_of(&result).contains("narrow the request"),
        "{}",
        text_of(&result)
    );
    let fits = call(&client, "big_json", serde_json::json!({"bytes": 300})).await;
    assert_ne!(fits.is_error, Some(true));
    assert_eq!(
        fits.structured_content.unwrap()["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

/// The rmcp release whose `ServerHandler` trait was last compared with guarded.rs by
/// hand; only consulted where rmcp's source cannot be found.
const REVIEWED_RMCP: &str = "3.9.0";

/// The version of rmcp in the workspace's Cargo.lock.
fn locked_rmcp_version() -> String {
    let lock_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock");
    let lock = std::fs::read_to_string(lock_path).expect("the workspace Cargo.lock");
    lock.split("[[package]]")
        .find_map(|package| {
            let mut fields = package.lines().map(str::trim).filter(|l| !l.is_empty());
            (fields.next()? == "name = \"rmcp\"").then_some(())?;
            fields
                .find_map(|line| line.strip_prefix("version = \""))
                .map(|v| v.trim_end_matches('"').to_owned())
        })
        .expect("rmcp in Cargo.lock")
}

/// rmcp's `src/handler/server.rs` in the cargo registry, if it is there.
fn rmcp_handler_source(version: &str) -> Option<String> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".cargo"))
        })?;
    let registries = std::fs::read_dir(cargo_home.join("registry/src")).ok()?;
    registries.flatten().find_map(|registry| {
        let file = registry
            .path()
            .join(format!("rmcp-{version}/src/handler/server.rs"));
        std::fs::read_to_string(file).ok()
    })
}

/// Names of the `fn`s directly inside the block that follows `header` in `source`.
fn methods_of_block(source: &str, header: &str) -> Vec<String> {
    let start = source
        .find(header)
        .unwrap_or_else(|| panic!("{header:?} not found"));
    let (mut depth, mut names) = (1usize, Vec::new());
    let mut rest = &source[start + header.len()..];
    while let Some(at) = rest.find(['{', '}', 'f']) {
        let after = &rest[at..];
        match after.as_bytes()[0] {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {
                let previous = at.checked_sub(1).map(|i| rest.as_bytes()[i]);
                let word_start =
                    previous.is_none_or(|byte| !byte.is_ascii_alphanumeric() && byte != b'_');
                if depth == 1 && word_start && after.starts_with("fn ") {
                    let name: String = after[3..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    names.push(name);
                }
            }
        }
        rest = &after[1..];
    }
    names
}

#[test]
fn every_handler_method_is_forwarded() {
    let ours = methods_of_block(
        include_str!("../guarded.rs"),
        "impl<S: ServerHandler> ServerHandler for Guarded<S> {",
    );
    assert!(ours.len() > 20, "parsed our impl: {ours:?}");
    let version = locked_rmcp_version();
    let Some(source) = rmcp_handler_source(&version) else {
        eprintln!(
            "rmcp {version}'s source is not in the cargo registry here: checking the version \
             against the one last reviewed instead"
        );
        assert_eq!(
            version, REVIEWED_RMCP,
            "rmcp changed: compare rmcp's `ServerHandler` trait with guarded.rs, forward every \
             method (a default body would bypass the wrapped server), then set REVIEWED_RMCP"
        );
        return;
    };
    // rmcp 3.9 declares the trait's methods once, in a macro both `cfg` variants expand.
    // If this layout changes, the test fails here: read the trait and adapt the parsing.
    let macro_at = source
        .find("macro_rules! server_handler_methods")
        .expect("rmcp's ServerHandler methods macro (layout changed: review guarded.rs by hand)");
    let theirs = methods_of_block(&source[macro_at..], "() => {");
    assert!(theirs.len() > 20, "parsed rmcp's trait: {theirs:?}");
    let missing: Vec<&String> = theirs.iter().filter(|name| !ours.contains(name)).collect();
    assert!(
        missing.is_empty(),
        "Guarded does not forward {missing:?} of rmcp {version}'s ServerHandler: a default \
         body would answer instead of the wrapped server; forward them in guarded.rs"
    );
}

#[test]
fn the_method_parser_sees_only_direct_methods() {
    let source = "trait T {\n    fn a(&self) { fn nested() {} }\n    fn b_c<X>(&self);\n    // fnord\n}\nfn outside() {}";
    assert_eq!(methods_of_block(source, "trait T {"), ["a", "b_c"]);
}

#[tokio::test]
async fn calls_beyond_the_concurrency_limit_are_refused_at_once() {
    let one_slot = Limits {
        max_concurrent_calls: 1,
        ..Limits::default()
    };
    let (client, probe) = connect(one_slot).await;
    let started = probe.spin_started.notified();
    let request =
        ClientRequest::CallToolRequest(CallToolRequest::new(CallToolRequestParams::new("spin")));
    let spinning = client
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
        .unwrap();
    tokio::time::timeout(HANG_GUARD, started)
        .await
        .expect("spin started");
    let refused = call(&client, "ping_tool", serde_json::json!({})).await;
    assert_eq!(refused.is_error, Some(true));
    assert!(text_of(&refused).contains("busy"), "{}", text_of(&refused));
    spinning.cancel(Some("done".to_owned())).await.unwrap();
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let result = call(&client, "ping_tool", serde_json::json!({})).await;
            if result.is_error != Some(true) {
                assert_eq!(text_of(&result), "pong");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the slot was released after the cancelled call ended");
}

#[cfg(feature = "testing")]
#[tokio::test]
async fn adversarial_json_rpc_in_process_never_stops_the_guarded_server() {
    // `sleep_forever` and `spin` only end by timeout; the rest answer at once or panic.
    let options = crate::testing::FuzzOptions {
        skip_tools: vec!["sleep_forever".to_owned(), "spin".to_owned()],
        ..Default::default()
    };
    let report = crate::testing::fuzz_json_rpc(
        || TestTools {
            tool_router: TestTools::tool_router(),
            probe: Probe::default(),
        },
        options,
    )
    .await;
    assert!(report.cases > 0, "{report:?}");
    assert!(
        report.tools_called.contains(&"boom".to_owned()),
        "{report:?}"
    );
    assert!(report.responses > report.cases, "{report:?}");
}
