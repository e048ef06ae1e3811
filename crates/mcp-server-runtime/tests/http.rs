//! The HTTP transport's protections over real HTTP on loopback, against the demo binary:
//! a bad Origin gets 403, a missing or wrong token 401, the right token works, the session
//! cap is enforced, non-loopback needs a token, and the Host check on 0.0.0.0.

use std::process::Stdio;
use std::time::Duration;

use mcp_server_runtime::testing::http_listen_addr;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::{Child, Command};

const DEMO: &str = env!("CARGO_BIN_EXE_mcp-server-runtime-demo");
/// Upper bound for waits that should end promptly; not a speed assertion.
const HANG_GUARD: Duration = Duration::from_secs(60);
const TOKEN: &str = "test-token-0123456789abcdef";
const PROTOCOL: &str = "2025-06-18";

/// A demo server on `--transport http --port 0` plus `args`; its address to connect to.
async fn start(args: &[&str], token_file: Option<&std::path::Path>) -> (Child, String) {
    let mut command = Command::new(DEMO);
    command
        .args(["--transport", "http", "--port", "0", "--log-level", "info"])
        .args(args)
        .env_remove(mcp_server_runtime::AUTH_TOKEN_ENV)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(file) = token_file {
        command.arg("--auth-token-file").arg(file);
    }
    let mut child = command.spawn().unwrap();
    let addr = tokio::time::timeout(HANG_GUARD, http_listen_addr(child.stderr.take().unwrap()))
        .await
        .unwrap()
        .expect("the server listens");
    // 0.0.0.0 is reachable through loopback; never through another address.
    let addr = addr.replace("0.0.0.0:", "127.0.0.1:");
    (child, addr)
}

fn token_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), format!("{TOKEN}\n")).unwrap();
    file
}

#[derive(Debug)]
struct Reply {
    status: u16,
    /// Lower-cased header lines.
    headers: String,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim())
        })
    }

    /// The JSON-RPC message in the body (plain JSON or the `data:` line of an SSE event).
    fn message(&self) -> Value {
        let text = self
            .body
            .lines()
            .find_map(|line| {
                line.strip_prefix("data:")
                    .map(str::trim)
                    .filter(|d| d.starts_with('{'))
            })
            .unwrap_or(self.body.trim());
        serde_json::from_str(text).unwrap_or_else(|e| panic!("no JSON-RPC message ({e}): {self:?}"))
    }
}

/// One HTTP/1.1 request to `/mcp`; reads until the JSON-RPC answer arrives or the server
/// closes the connection.
async fn request(addr: &str, method: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let host = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map_or(addr, |(_, value)| value);
    let mut text = format!(
        "{method} /mcp HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers
        .iter()
        .filter(|(name, _)| !name.eq_ignore_ascii_case("host"))
    {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(text.as_bytes()).await.unwrap();
    tokio::time::timeout(HANG_GUARD, async {
        let mut raw = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let read = stream.read(&mut buffer).await.unwrap_or(0);
            raw.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&raw);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
                let answered = body.contains("\"result\"") || body.contains("\"error\"");
                if read == 0 || (status == 200 && answered) {
                    return Reply {
                        status,
                        headers: head.to_ascii_lowercase(),
                        body: body.to_owned(),
                    };
                }
            } else if read == 0 {
                panic!("connection closed before a response: {text}");
            }
        }
    })
    .await
    .expect("the server answered")
}

fn initialize() -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                   "clientInfo": {"name": "http-test", "version": "0"}}
    })
    .to_string()
}

const BEARER: &str = "Bearer test-token-0123456789abcdef";

async fn open_session(addr: &str) -> String {
    let reply = request(addr, "POST", &[("Authorization", BEARER)], &initialize()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let session = reply
        .header("mcp-session-id")
        .expect("a session id")
        .to_owned();
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"}).to_string();
    let headers = [
        ("Authorization", BEARER),
        ("Mcp-Session-Id", session.as_str()),
        ("MCP-Protocol-Version", PROTOCOL),
    ];
    let reply = request(addr, "POST", &headers, &initialized).await;
    assert_eq!(reply.status, 202, "{reply:?}");
    session
}

#[tokio::test]
async fn origin_then_token_then_session_cap_over_real_http() {
    let token = token_file();
    let args = [
        "--max-sessions",
        "2",
        "--allowed-origin",
        "http://localhost:6274",
    ];
    let (_child, addr) = start(&args, Some(token.path())).await;

    let evil = [("Origin", "http://evil.example"), ("Authorization", BEARER)];
    let reply = request(&addr, "POST", &evil, &initialize()).await;
    assert_eq!(
        reply.status, 403,
        "a bad Origin is refused even with the token: {reply:?}"
    );
    let reply = request(
        &addr,
        "POST",
        &[("Origin", "http://evil.example")],
        &initialize(),
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "Origin is checked before the token: {reply:?}"
    );

    let reply = request(&addr, "POST", &[], &initialize()).await;
    assert_eq!(reply.status, 401, "{reply:?}");
    assert!(
        reply
            .header("www-authenticate")
            .is_some_and(|v| v.starts_with("bearer"))
    );
    let wrong = [("Authorization", "Bearer wrong-token-0123456789abcdef")];
    assert_eq!(
        request(&addr, "POST", &wrong, &initialize()).await.status,
        401
    );

    let allowed = [
        ("Origin", "http://localhost:6274"),
        ("Authorization", BEARER),
    ];
    let reply = request(&addr, "POST", &allowed, &initialize()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.message()["result"]["serverInfo"]["name"],
        "mcp-server-runtime-demo"
    );

    // That initialize opened one session; open a second and use it.
    let first = reply.header("mcp-session-id").unwrap().to_owned();
    let second = open_session(&addr).await;
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "echo", "arguments": {"text": "over http"}}})
    .to_string();
    let in_session = [
        ("Authorization", BEARER),
        ("Mcp-Session-Id", second.as_str()),
        ("MCP-Protocol-Version", PROTOCOL),
    ];
    let reply = request(&addr, "POST", &in_session, &call).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(
        reply.message()["result"]["structuredContent"]["text"],
        "over http"
    );

    // Two sessions are open: a third is refused, open sessions keep working.
    let reply = request(&addr, "POST", &[("Authorization", BEARER)], &initialize()).await;
    assert_eq!(reply.status, 503, "{reply:?}");
    assert!(reply.body.contains("sessions"), "{reply:?}");
    assert_eq!(request(&addr, "POST", &in_session, &call).await.status, 200);

    // Closing one makes room again (its service is dropped when its worker ends).
    let close = [
        ("Authorization", BEARER),
        ("Mcp-Session-Id", first.as_str()),
    ];
    let reply = request(&addr, "DELETE", &close, "").await;
    assert!(reply.status < 300, "{reply:?}");
    tokio::time::timeout(HANG_GUARD, async {
        loop {
            let reply = request(&addr, "POST", &[("Authorization", BEARER)], &initialize()).await;
            if reply.status == 200 {
                break;
            }
            assert_eq!(reply.status, 503, "{reply:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("a closed session frees its place");
}

#[tokio::test]
async fn loopback_without_a_token_still_works_but_refuses_browsers() {
    let (_child, addr) = start(&[], None).await;
    let reply = request(&addr, "POST", &[], &initialize()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
    let reply = request(
        &addr,
        "POST",
        &[("Origin", "http://localhost:3000")],
        &initialize(),
    )
    .await;
    assert_eq!(
        reply.status, 403,
        "no origin is allowed unless configured: {reply:?}"
    );
    let reply = request(&addr, "POST", &[("Host", "evil.example")], &initialize()).await;
    assert_eq!(
        reply.status, 403,
        "DNS rebinding: a foreign Host is refused: {reply:?}"
    );
}

#[tokio::test]
async fn a_non_loopback_address_without_a_token_refuses_to_start() {
    // Refused before anything is bound.
    let output = Command::new(DEMO)
        .args(["--transport", "http", "--listen", "0.0.0.0", "--port", "0"])
        .env_remove(mcp_server_runtime::AUTH_TOKEN_ENV)
        .stdin(Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--auth-token-file"), "{stderr}");
}

#[tokio::test]
async fn on_every_address_the_real_host_name_is_let_in_and_others_are_not() {
    let token = token_file();
    let args = ["--listen", "0.0.0.0", "--allowed-host", "mcp.test"];
    let (_child, addr) = start(&args, Some(token.path())).await;
    let port = addr.rsplit(':').next().unwrap();
    for (host, status) in [
        (format!("mcp.test:{port}"), 200),
        ("mcp.test".to_owned(), 200),
        (format!("localhost:{port}"), 200),
        (format!("evil.test:{port}"), 403),
    ] {
        let headers = [("Host", host.as_str()), ("Authorization", BEARER)];
        let reply = request(&addr, "POST", &headers, &initialize()).await;
        assert_eq!(reply.status, status, "Host {host}: {reply:?}");
    }
    let headers = [("Host", "mcp.test")];
    assert_eq!(
        request(&addr, "POST", &headers, &initialize()).await.status,
        401
    );
}

#[tokio::test]
async fn the_token_can_come_from_the_environment() {
    let mut child = Command::new(DEMO)
        .args(["--transport", "http", "--port", "0"])
        .env(mcp_server_runtime::AUTH_TOKEN_ENV, TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let addr = tokio::time::timeout(HANG_GUARD, http_listen_addr(child.stderr.take().unwrap()))
        .await
        .unwrap()
        .expect("the server listens");
    assert_eq!(request(&addr, "POST", &[], &initialize()).await.status, 401);
    let reply = request(&addr, "POST", &[("Authorization", BEARER)], &initialize()).await;
    assert_eq!(reply.status, 200, "{reply:?}");
}
