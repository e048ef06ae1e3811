//! A command still running when its MCP call goes away is killed with every descendant,
//! including those that left its process group or session, ignore SIGTERM/SIGHUP, or were
//! orphaned by a double fork: through the real binary, for a cancelled call and for a
//! session closed mid-call.

use std::path::Path;
use std::time::Duration;

use mcp_server_runtime::testing::TestServer;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_bash-god");

/// Every way a shell command can try to outlive its caller; each process gets its own
/// `<mark>-<n>` name so the test can count them.
fn escaping_tree(mark: &str) -> (String, usize) {
    let escapes = [
        // A plain background child and a grandchild.
        format!("bash -c 'exec -a {mark}-1 sleep 300' &"),
        format!("bash -c 'bash -c \"exec -a {mark}-2 sleep 300\" & wait' &"),
        // Its own session and process group.
        format!("setsid bash -c 'exec -a {mark}-3 sleep 300' &"),
        // Orphaned by a double fork (reparented away from the command's shell).
        format!("( bash -c 'exec -a {mark}-4 sleep 300' & ) &"),
        // Deaf to the polite signals.
        format!(
            "nohup bash -c 'trap \"\" TERM HUP INT; exec -a {mark}-5 sleep 300' >/dev/null 2>&1 &"
        ),
    ];
    (format!("{} wait", escapes.join(" ")), escapes.len())
}

/// PIDs (other than this test's) whose command line carries `mark`.
fn alive(mark: &str) -> Vec<u32> {
    let own = std::process::id();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != own)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let line = String::from_utf8_lossy(&c);
                // The renamed sleeps only (`exec -a`), not the shells whose script names them.
                line.starts_with(mark)
            })
        })
        .collect()
}

/// Polls for up to 10 s: killed processes vanish once reaped, not instantly.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    for _ in 0..100 {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    condition()
}

async fn start(root: &Path, mark: &str) -> (TestServer, mcp_server_runtime::testing::PendingCall) {
    let root = root.to_str().unwrap();
    let server = TestServer::spawn(
        Path::new(BIN),
        &["--root", root, "--log-level", "warn", "--allow-exec"],
    )
    .await
    .unwrap();
    let (command, count) = escaping_tree(mark);
    let call = server
        .start_call(
            "execute_command",
            json!({"command": command, "timeout_ms": 120_000}),
        )
        .await
        .unwrap();
    assert!(
        eventually(|| alive(mark).len() == count).await,
        "the tree never fully started: {:?} of {count} running",
        alive(mark)
    );
    (server, call)
}

#[tokio::test]
async fn a_cancelled_call_kills_every_descendant() {
    let dir = tempfile::tempdir().unwrap();
    let mark = format!("bgcancel{}", std::process::id());
    let (server, call) = start(dir.path(), &mark).await;
    call.cancel("test").await.unwrap();
    assert!(
        eventually(|| alive(&mark).is_empty()).await,
        "survived the cancellation: {:?}",
        alive(&mark)
    );
    // The server itself is fine.
    let result = server
        .call("analyze_command", json!({"command": "ls"}))
        .await
        .unwrap();
    assert_ne!(result.is_error, Some(true), "{result:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_session_closed_mid_call_kills_every_descendant() {
    let dir = tempfile::tempdir().unwrap();
    let mark = format!("bgdrop{}", std::process::id());
    let (server, call) = start(dir.path(), &mark).await;
    // The client goes away without cancelling: stdin closes, the server ends.
    drop(call);
    server.shutdown().await.unwrap();
    assert!(
        eventually(|| alive(&mark).is_empty()).await,
        "survived the end of the session: {:?}",
        alive(&mark)
    );
}
