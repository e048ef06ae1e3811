//! Runs an already-approved command: `bash -c` in its own process group, stdin closed,
//! a scrubbed environment, bounded output, and the whole group killed on timeout, on
//! cancellation and when the call is dropped.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::Command;

/// The environment every command gets, whatever the server's own environment holds:
/// no tokens, proxies or credentials leak into commands.
const PATH: &str =
    "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin:/run/current-system/sw/bin";
const LANG: &str = "C.UTF-8";
/// How long to wait for the output pipes to close after the group was killed; only a
/// process that escaped the group can hold them open longer.
const PIPE_DRAIN_GRACE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: String,
    pub cwd: PathBuf,
    /// `HOME` of the command (the first root: fixed by the operator, not the caller).
    pub home: PathBuf,
    pub timeout: Duration,
    /// Cap of each of stdout and stderr, in bytes.
    pub max_stream_bytes: usize,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExecOutcome {
    /// Exit code; `null` when the command was killed by a signal (including on timeout).
    pub exit_code: Option<i32>,
    /// The signal that ended the command, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// Bytes each stream produced in total.
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
}

/// Kills the process group when dropped: the tool call may be abandoned at any await
/// (timeout, `notifications/cancelled`, disconnect) and must never leave processes behind.
struct GroupKiller {
    pgid: libc::pid_t,
}

impl GroupKiller {
    fn kill(&self) {
        // SAFETY: killpg only sends a signal; a stale group id yields ESRCH, which is fine.
        unsafe {
            libc::killpg(self.pgid, libc::SIGKILL);
        }
    }
}

impl Drop for GroupKiller {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Keeps the first and the last `cap / 2` bytes of a stream, counting the rest.
struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half: usize,
    total: u64,
}

impl HeadTail {
    fn new(cap: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            half: cap / 2,
            total: 0,
        }
    }

    fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.half.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        bytes = rest;
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    /// The text, with the dropped middle replaced by `truncate_middle`'s marker.
    fn finish(self) -> (String, bool) {
        let kept = self.head.len() + self.tail.len();
        let dropped = self.total - kept as u64;
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let tail_bytes: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail_bytes);
        if dropped == 0 {
            return (head + &tail, false);
        }
        // The same marker as `mcp_server_runtime::truncate_middle`, counting every dropped byte.
        let marker = format!("\n[… {dropped} bytes truncated …]\n");
        (format!("{head}{marker}{tail}"), true)
    }
}

async fn drain(mut reader: impl AsyncRead + Unpin, cap: usize) -> HeadTail {
    let mut buffer = HeadTail::new(cap);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => return buffer,
            Ok(n) => buffer.push(&chunk[..n]),
        }
    }
}

/// Runs `request`; returns when the command exits or was killed. `cancelled` resolving
/// kills the group early (the outcome then reports `timed_out: false`, `signal: 9`).
pub async fn run(
    request: &ExecRequest,
    cancelled: impl std::future::Future<Output = ()>,
) -> std::io::Result<ExecOutcome> {
    let started = Instant::now();
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&request.command)
        .current_dir(&request.cwd)
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", &request.home)
        .env("LANG", LANG)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()?;
    let pgid = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .ok_or_else(|| {
            std::io::Error::other("the command exited before its process group was known")
        })?;
    let killer = GroupKiller { pgid };
    let cap = request.max_stream_bytes;
    let stdout = tokio::spawn(drain(child.stdout.take().expect("stdout is piped"), cap));
    let stderr = tokio::spawn(drain(child.stderr.take().expect("stderr is piped"), cap));

    let mut timed_out = false;
    let status = tokio::select! {
        status = child.wait() => Some(status?),
        () = tokio::time::sleep(request.timeout) => { timed_out = true; None }
        () = cancelled => None,
    };
    // Background jobs the command left behind belong to the group too: stop them all.
    killer.kill();
    let status = match status {
        Some(status) => status,
        None => child.wait().await?,
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let collect = |handle: tokio::task::JoinHandle<HeadTail>| async move {
        match tokio::time::timeout(PIPE_DRAIN_GRACE, handle).await {
            Ok(Ok(buffer)) => buffer,
            _ => HeadTail::new(0),
        }
    };
    let (out, err) = (collect(stdout).await, collect(stderr).await);
    let (stdout_bytes, stderr_bytes) = (out.total, err.total);
    let (stdout, stdout_truncated) = out.finish();
    let (stderr, stderr_truncated) = err.finish();
    use std::os::unix::process::ExitStatusExt;
    Ok(ExecOutcome {
        exit_code: status.code(),
        signal: status.signal(),
        timed_out,
        duration_ms,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
        stdout_bytes,
        stderr_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(command: &str, timeout_ms: u64) -> ExecRequest {
        let dir = std::env::temp_dir();
        ExecRequest {
            command: command.to_owned(),
            cwd: dir.clone(),
            home: dir,
            timeout: Duration::from_millis(timeout_ms),
            max_stream_bytes: 1000,
        }
    }

    #[test]
    fn head_tail_keeps_both_ends() {
        let mut buffer = HeadTail::new(10);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qrstuvwxyz"] {
            buffer.push(chunk);
        }
        let (text, truncated) = buffer.finish();
        assert!(truncated);
        assert!(text.starts_with("abcde"), "{text}");
        assert!(text.ends_with("vwxyz"), "{text}");
        assert!(text.contains("16 bytes truncated"), "{text}");
        let mut small = HeadTail::new(10);
        small.push(b"hi");
        assert_eq!(small.finish(), ("hi".to_owned(), false));
    }

    #[tokio::test]
    async fn runs_with_a_scrubbed_environment_and_closed_stdin() {
        let outcome = run(
            &request(
                "echo \"$PATH|$HOME|$LANG|${SECRET:-unset}\"; cat; exit 3",
                10_000,
            ),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(outcome.exit_code, Some(3));
        assert!(!outcome.timed_out);
        assert!(outcome.stdout.starts_with(PATH), "{}", outcome.stdout);
        assert!(
            outcome.stdout.contains("|C.UTF-8|unset"),
            "{}",
            outcome.stdout
        );
    }

    #[tokio::test]
    async fn timeout_kills_the_whole_group() {
        let marker = format!("bash-god-unit-{}", std::process::id());
        let command =
            format!("sleep 300 & sleep 301 & bash -c 'exec -a {marker} sleep 302' & wait");
        let outcome = run(&request(&command, 300), std::future::pending())
            .await
            .unwrap();
        assert!(outcome.timed_out);
        assert_eq!(outcome.exit_code, None);
        assert_eq!(outcome.signal, Some(libc::SIGKILL));
        // Killed processes disappear once reaped by init; allow a moment.
        for _ in 0..50 {
            let ps = std::process::Command::new("pgrep")
                .args(["-f", &marker])
                .output()
                .unwrap();
            if ps.stdout.is_empty() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("grandchild `{marker}` survived the timeout");
    }

    #[tokio::test]
    async fn output_is_capped() {
        let outcome = run(
            &request("head -c 100000 /dev/zero | tr '\\0' x", 10_000),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert!(outcome.stdout_truncated);
        assert_eq!(outcome.stdout_bytes, 100_000);
        assert!(outcome.stdout.len() < 1100, "{}", outcome.stdout.len());
    }
}
