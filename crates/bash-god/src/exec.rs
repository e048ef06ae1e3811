//! Runs an already-vetted command: `bash -c` inside exec-sandbox (Landlock, seccomp,
//! user/PID/network/mount namespaces, rlimits: see that crate), stdin closed, a scrubbed
//! environment, bounded output. Every process of the run is killed when the command ends,
//! on timeout, on cancellation and when the call is dropped.
//!
//! Whether the kernel can contain commands is probed once at startup ([`Executor::new`]).
//! When it cannot, execution is refused with the reason and what to do, unless the operator
//! passed `--unsandboxed-exec`; then each run gets what the kernel offers and says so.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use exec_sandbox::{Exit, Limits, Protections, Sandbox, Spec};
use mcp_server_runtime::HeadTail;
use schemars::JsonSchema;
use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The environment every command gets, whatever the server's own environment holds:
/// no tokens, proxies or credentials leak into commands. (`TMPDIR` is added by the sandbox:
/// the run's private scratch directory.)
const PATH: &str =
    "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin:/run/current-system/sw/bin";
const LANG: &str = "C.UTF-8";
/// How long to wait for the output pipes to close once the run is over; only a process
/// that escaped the run (possible in best-effort mode alone) can hold them open longer.
const PIPE_DRAIN_GRACE: Duration = Duration::from_secs(2);

/// Execution options from the command line.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Commands may use the network (`--allow-network`).
    pub network: bool,
    /// Run commands even when the kernel cannot contain them (`--unsandboxed-exec`).
    pub unsandboxed: bool,
    /// Extra read-only directories for commands (`--exec-read-only`).
    pub read_only: Vec<PathBuf>,
}

/// What the startup probe found.
#[derive(Debug, Clone)]
pub enum Containment {
    /// Every run gets every protection (and is refused if one ever fails to apply).
    Full(Protections),
    /// The kernel cannot contain commands: execution is refused with this reason.
    Unavailable(String),
    /// The kernel cannot contain commands and the operator accepted it: runs get what the
    /// kernel offers. Holds why full containment is unavailable.
    BestEffort(String),
}

/// Runs commands with the containment decided at startup.
#[derive(Debug, Clone)]
pub struct Executor {
    sandbox: Option<Sandbox>,
    pub containment: Containment,
    network: bool,
    read_only: Vec<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub command: String,
    pub cwd: PathBuf,
    /// `HOME` of the command (the first root: fixed by the operator, not the caller).
    pub home: PathBuf,
    /// Directories the command may write in (the server's roots).
    pub roots: Vec<PathBuf>,
    pub timeout: Duration,
    /// Cap of each of stdout and stderr, in bytes.
    pub max_stream_bytes: usize,
}

/// Which protections a run had.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SandboxReport {
    /// Every guarantee held: writes only in the roots, no secrets outside them, no network
    /// (unless allowed), nothing outlives the call. `false` only with `--unsandboxed-exec`.
    pub contained: bool,
    /// The network was allowed by the operator (`--allow-network`).
    pub network_allowed: bool,
    pub protections: Protections,
    /// Guarantees this run lacked.
    pub missing: Vec<String>,
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

/// Why a command did not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecError {
    /// Containment is unavailable or failed to apply; nothing ran.
    Refused(String),
    /// The run could not be started or followed.
    Failed(String),
}

impl Executor {
    /// Probes the kernel (a full setup with checks from inside, a few milliseconds) and
    /// decides how commands will run.
    pub fn new(options: &ExecOptions) -> Self {
        let sandbox = Sandbox::current();
        let probe = match &sandbox {
            Ok(sandbox) => sandbox.probe(options.network).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let containment = match probe {
            Ok(protections) => Containment::Full(protections),
            Err(reason) if options.unsandboxed => Containment::BestEffort(reason),
            Err(reason) => Containment::Unavailable(reason),
        };
        Self {
            sandbox: sandbox.ok(),
            containment,
            network: options.network,
            read_only: options.read_only.clone(),
        }
    }

    /// One line for `--version` and the startup log.
    pub fn describe(&self) -> String {
        let network = if self.network {
            "; network allowed"
        } else {
            ""
        };
        match &self.containment {
            Containment::Full(p) => format!("contained ({}){network}", p.summary()),
            Containment::Unavailable(reason) => {
                format!(
                    "unavailable, execute_command refuses to run: {reason} (see the README's \
                     security section, or restart with --unsandboxed-exec to run anyway)"
                )
            }
            Containment::BestEffort(reason) => format!(
                "NOT contained (--unsandboxed-exec): {reason}; runs get what the kernel offers{network}"
            ),
        }
    }

    /// Runs `request`; returns when the command and everything it started are gone.
    /// `cancelled` resolving stops the run early (the outcome then reports `signal: 9`).
    pub async fn run(
        &self,
        request: &ExecRequest,
        cancelled: impl std::future::Future<Output = ()>,
    ) -> Result<(ExecOutcome, SandboxReport), ExecError> {
        let require_all = match &self.containment {
            Containment::Full(_) => true,
            Containment::BestEffort(_) => false,
            Containment::Unavailable(reason) => {
                return Err(ExecError::Refused(unavailable_message(reason)));
            }
        };
        let sandbox = self.sandbox.as_ref().ok_or_else(|| {
            ExecError::Failed("the sandbox helper cannot be started by this binary".to_owned())
        })?;
        let started = Instant::now();
        let timeout_secs = request.timeout.as_secs().saturating_add(1);
        let limits = Limits::default();
        let spec = Spec {
            program: "bash".to_owned(),
            args: vec!["-c".to_owned(), request.command.clone()],
            cwd: request.cwd.clone(),
            env: vec![
                ("PATH".to_owned(), PATH.to_owned()),
                ("HOME".to_owned(), request.home.display().to_string()),
                ("LANG".to_owned(), LANG.to_owned()),
            ],
            writable: request.roots.clone(),
            readable: self.read_only.clone(),
            network: self.network,
            limits: Limits {
                cpu_seconds: limits.cpu_seconds.min(timeout_secs),
                ..limits
            },
        };
        let mut run = sandbox
            .spawn(spec, require_all)
            .await
            .map_err(|e| match e {
                exec_sandbox::SandboxError::Unavailable(reason) if require_all => {
                    ExecError::Refused(unavailable_message(&reason))
                }
                other => ExecError::Failed(format!("cannot start the command: {other}")),
            })?;
        let cap = request.max_stream_bytes;
        let stdout = run.stdout.take().map(|s| tokio::spawn(drain(s, cap)));
        let stderr = run.stderr.take().map(|s| tokio::spawn(drain(s, cap)));

        let mut timed_out = false;
        let exit = tokio::select! {
            exit = run.wait() => exit.map_err(|e| ExecError::Failed(format!("lost track of the run: {e}")))?,
            () = tokio::time::sleep(request.timeout) => { timed_out = true; None }
            () = cancelled => None,
        };
        let stopped = exit.is_none();
        if stopped {
            run.stop()
                .await
                .map_err(|e| ExecError::Failed(format!("cannot stop the run: {e}")))?;
        }
        let (exit_code, signal) = match exit {
            Some(Exit::Code(code)) => (Some(code), None),
            Some(Exit::Signal(signal)) => (None, Some(signal)),
            None => (None, Some(9)),
        };
        let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let collect = |handle: Option<tokio::task::JoinHandle<HeadTail>>| async move {
            match handle {
                Some(handle) => match tokio::time::timeout(PIPE_DRAIN_GRACE, handle).await {
                    Ok(Ok(buffer)) => buffer,
                    _ => HeadTail::new(0),
                },
                None => HeadTail::new(0),
            }
        };
        let (out, err) = (collect(stdout).await, collect(stderr).await);
        let (stdout_bytes, stderr_bytes) = (out.total(), err.total());
        let (stdout, stdout_truncated) = out.finish();
        let (stderr, stderr_truncated) = err.finish();
        let missing: Vec<String> = run
            .protections
            .missing(self.network)
            .into_iter()
            .map(str::to_owned)
            .collect();
        let outcome = ExecOutcome {
            exit_code,
            signal,
            timed_out,
            duration_ms,
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            stdout_bytes,
            stderr_bytes,
        };
        let sandbox = SandboxReport {
            contained: missing.is_empty(),
            network_allowed: self.network,
            protections: run.protections.clone(),
            missing,
        };
        Ok((outcome, sandbox))
    }
}

/// The refusal when commands cannot be contained: what is missing and what the operator can
/// do, including in a container (the server's OCI image runs as uid 65532, where user
/// namespaces are often blocked).
pub fn unavailable_message(reason: &str) -> String {
    format!(
        "execute_command is unavailable: this server cannot contain commands here ({reason}), \
         and it does not run commands uncontained unless told to. To fix: run bash-god on \
         Linux 6.2+ with Landlock enabled and unprivileged user namespaces allowed \
         (sysctls user.max_user_namespaces > 0, kernel.unprivileged_userns_clone = 1 where it \
         exists, and on Ubuntu 24.04+ kernel.apparmor_restrict_unprivileged_userns = 0 or an \
         AppArmor profile allowing userns). Inside a container, allow creating user \
         namespaces: the default seccomp profiles of Docker and Podman block unshare(2) \
         with CLONE_NEWUSER (run with a profile that allows it, e.g. `--security-opt \
         seccomp=unconfined`, plus `--security-opt apparmor=unconfined` where AppArmor \
         applies; on Kubernetes, an equivalent seccompProfile), and install bash in the \
         image. Or restart bash-god with --unsandboxed-exec to run commands with only the \
         protections the kernel offers (each result says which); the container or host is \
         then the only boundary."
    )
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

// Runs themselves are tested through the real binary (tests/containment.rs, tests/server.rs):
// the sandbox helper is the server binary re-executed, which a unit-test harness is not.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_tells_the_operator_what_to_do() {
        let message = unavailable_message("unshare: EPERM");
        for needed in [
            "unshare: EPERM",
            "--unsandboxed-exec",
            "seccomp",
            "user namespaces",
        ] {
            assert!(message.contains(needed), "{needed} missing from {message}");
        }
    }
}
