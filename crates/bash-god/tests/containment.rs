//! Containment through the real binary. The corpus (`tests/corpus`) run by
//! `bash-god --allow-exec` must change nothing outside the root, leak nothing, connect
//! nowhere and leave nothing running; benign commands must still work. The same corpus run
//! the way commands ran before the sandbox (policy, then `bash -c` in a process group) shows
//! that the corpus bites.

mod corpus;

use std::path::Path;
use std::time::Duration;

use corpus::{Arena, CORPUS, survivors};
use mcp_server_runtime::testing::TestServer;
use rmcp::model::CallToolResult;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_bash-god");
/// Long enough for the corpus' delayed actions (`sleep 1`) to have happened.
const LATE: Duration = Duration::from_millis(1600);

async fn spawn(root: &Path, extra: &[&str]) -> TestServer {
    let root = root.to_str().unwrap();
    let mut args = vec!["--root", root, "--log-level", "warn"];
    args.extend_from_slice(extra);
    TestServer::spawn(Path::new(BIN), &args).await.unwrap()
}

fn structured(result: &CallToolResult) -> &Value {
    assert_ne!(result.is_error, Some(true), "tool failed: {result:?}");
    result
        .structured_content
        .as_ref()
        .expect("structured content")
}

async fn execute(server: &TestServer, command: &str) -> CallToolResult {
    server
        .call(
            "execute_command",
            json!({"command": command, "timeout_ms": 10_000}),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn harmful_commands_of_every_class_are_contained() {
    let mark = format!("bgcorpus{}", std::process::id());
    let arena = Arena::new(&mark);
    let server = spawn(&arena.root, &["--allow-exec"]).await;
    let mut failures = Vec::new();
    let mut refused_first = 0;
    for (class, template) in CORPUS {
        arena.reset();
        let command = arena.command(template);
        let before = arena.snapshot();
        let result = execute(&server, &command).await;
        if result.is_error == Some(true) {
            refused_first += 1;
        } else {
            let sandbox = &structured(&result)["sandbox"];
            assert_eq!(sandbox["contained"], true, "{command}: {sandbox}");
        }
        let output = serde_json::to_string(&result).unwrap();
        let mut breaches = arena.breaches(&before, &output);
        if *class == "outlive" {
            tokio::time::sleep(LATE).await;
            breaches.extend(arena.late_breaches(&before));
        }
        if !breaches.is_empty() {
            failures.push(format!("[{class}] {command}: {breaches:?}"));
        }
    }
    let total = CORPUS.len();
    eprintln!(
        "sandboxed: {} of {total} contained ({refused_first} refused by the policy first)",
        total - failures.len()
    );
    assert!(
        failures.is_empty(),
        "not contained:\n{}",
        failures.join("\n")
    );
    server.shutdown().await.unwrap();
}

/// The executor before the sandbox: the policy, then `bash -c` with a scrubbed environment
/// in its own process group, killed when the command exits. Most of the corpus gets
/// through, which shows the detectors above can fail.
#[tokio::test]
async fn without_the_sandbox_the_corpus_gets_through() {
    let mark = format!("bgbaseline{}", std::process::id());
    let arena = Arena::new(&mark);
    // Analysis only: the policy's verdict, nothing executed by the server.
    let server = spawn(&arena.root, &[]).await;
    let (mut plain_contained, mut policy_contained) = (0, 0);
    for (class, template) in CORPUS {
        arena.reset();
        let command = arena.command(template);
        let analysis = server
            .call("analyze_command", json!({"command": command}))
            .await
            .unwrap();
        let allowed = structured(&analysis)["allowed_by_policy"] == true;
        let before = arena.snapshot();
        let output = run_uncontained(&arena.root, &command).await;
        let mut breaches = arena.breaches(&before, &output);
        if *class == "outlive" {
            tokio::time::sleep(LATE).await;
            breaches.extend(arena.late_breaches(&before));
        }
        for pid in survivors(&mark) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .stderr(std::process::Stdio::null())
                .status();
        }
        if breaches.is_empty() {
            plain_contained += 1;
        }
        if breaches.is_empty() || !allowed {
            policy_contained += 1;
        }
    }
    let total = CORPUS.len();
    eprintln!(
        "without the sandbox: {plain_contained} of {total} contained by plain bash -c, \
         {policy_contained} of {total} with the policy in front"
    );
    assert!(
        policy_contained < total / 2,
        "the corpus should get through without the sandbox: {policy_contained} of {total} contained"
    );
    server.shutdown().await.unwrap();
}

/// `bash -c` as the executor ran it before the sandbox existed.
async fn run_uncontained(root: &Path, command: &str) -> String {
    let mut child = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(command)
        .current_dir(root)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", root)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let pgid = child.id().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let _ = std::process::Command::new("kill")
        .args(["-9", "--", &format!("-{pgid}")])
        .stderr(std::process::Stdio::null())
        .status();
    let _ = child.wait().await;
    let mut text = String::new();
    let read = async {
        use tokio::io::AsyncReadExt as _;
        let _ = stdout.read_to_string(&mut text).await;
        let _ = stderr.read_to_string(&mut text).await;
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
    text
}

#[tokio::test]
async fn benign_commands_still_work() {
    let arena = Arena::new("bgbenign");
    let server = spawn(&arena.root, &["--allow-exec"]).await;
    for (command, expected) in [
        (
            "echo hi > a.txt && mkdir -p d/e && mv a.txt d/e/ && cat d/e/a.txt",
            "hi",
        ),
        ("cat /etc/os-release", "NAME="),
        ("printf 'b\\na\\n' | sort | head -n 1", "a"),
        (
            "git init -q repo && cd repo && echo x > f && git add f && git status --short",
            "A  f",
        ),
        (
            "f=$(mktemp) && echo scratch > \"$f\" && cat \"$f\"",
            "scratch",
        ),
        ("sleep 0.1 & wait; echo waited", "waited"),
        ("python3 -c 'print(6 * 7)'", "42"),
        (
            "printf '#!/bin/sh\\necho script\\n' > s.sh && chmod +x s.sh && ./s.sh",
            "script",
        ),
    ] {
        let result = execute(&server, command).await;
        let report = structured(&result);
        assert_eq!(report["exit_code"], 0, "{command}: {report}");
        let stdout = report["stdout"].as_str().unwrap();
        assert!(
            stdout.contains(expected),
            "{command}: {stdout:?} lacks {expected:?}"
        );
        assert_eq!(report["sandbox"]["contained"], true, "{command}");
    }
    assert_eq!(
        std::fs::read_to_string(arena.root.join("d/e/a.txt")).unwrap(),
        "hi\n"
    );
    let failing = execute(&server, "exit 3").await;
    assert_eq!(structured(&failing)["exit_code"], 3);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn allow_network_opens_the_network() {
    let arena = Arena::new("bgnetwork");
    let server = spawn(&arena.root, &["--allow-exec", "--allow-network"]).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let result = execute(
        &server,
        &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo hi >&3"),
    )
    .await;
    let report = structured(&result);
    assert_eq!(report["exit_code"], 0, "{report}");
    assert_eq!(report["sandbox"]["network_allowed"], true);
    assert_eq!(report["sandbox"]["protections"]["network_blocked"], false);
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_ok(), "no connection arrived");
    // Files stay confined with the network open.
    let before = arena.snapshot();
    let result = execute(&server, "echo pwned > ../outside/canary.txt").await;
    assert_ne!(structured(&result)["exit_code"], 0);
    assert_eq!(arena.snapshot(), before);
    server.shutdown().await.unwrap();
}

#[test]
fn version_says_which_protections_are_active() {
    let output = std::process::Command::new(BIN)
        .arg("--version")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    let line = text
        .lines()
        .find(|l| l.starts_with("exec sandbox: "))
        .unwrap_or_else(|| panic!("no sandbox line in {text}"));
    assert!(line.contains("contained (landlock ABI"), "{line}");
    assert!(line.contains("PID namespace"), "{line}");
}

/// `bash-god --version | head -1`: the reader is gone before the second line; `println!`
/// panicked there (exit 101). The read end is closed before the start, so every write fails.
#[test]
fn version_into_a_closed_pipe_exits_cleanly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let output = std::process::Command::new(BIN)
        .arg("--version")
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{:?}: {stderr}", output.status);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// Where user namespaces are blocked (as the default seccomp profiles of container engines
/// do), bash-god says so and what to do. Simulated by running bash-god inside its own
/// sandbox, whose seccomp filter denies unshare(2).
#[tokio::test]
async fn without_user_namespaces_execution_is_refused_with_advice() {
    let arena = Arena::new("bgnouserns");
    let bin_dir = Path::new(BIN)
        .parent()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let server = spawn(&arena.root, &["--allow-exec", "--exec-read-only", &bin_dir]).await;
    let result = execute(&server, &format!("{BIN} --version")).await;
    let report = structured(&result);
    let stdout = report["stdout"].as_str().unwrap();
    assert!(
        stdout.contains("exec sandbox: unavailable, execute_command refuses to run"),
        "{stdout}"
    );
    assert!(stdout.contains("unshare"), "{stdout}");
    assert!(stdout.contains("--unsandboxed-exec"), "{stdout}");
    server.shutdown().await.unwrap();
}
