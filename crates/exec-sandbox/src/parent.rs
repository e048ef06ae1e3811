//! The server side: start the helper (this binary again, see [`crate::helper`]), hand it the
//! request over a socket on its stdin, and follow its reports.

use std::io::{Read as _, Write as _};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::process::{Child, ChildStderr, ChildStdout};

use crate::helper::{HELPER_ARG, HOOK_INSTALLED};
use crate::spec::{Exit, Mode, Protections, Report, Request, Spec};

/// How long a probe may take before the helper is considered stuck.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped run gets to tear down (kill and reap its namespace) before the helper
/// itself is killed (the kernel then still kills the namespace, without waiting for it).
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Why a contained run could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The kernel cannot provide the sandbox, or setting it up failed; nothing ran.
    #[error("{0}")]
    Unavailable(String),
    #[error(
        "this program cannot start the sandbox helper: its main() does not call \
         exec_sandbox::run_helper_if_requested() first"
    )]
    HookMissing,
    #[error("cannot start the sandbox helper {}: {source}", helper.display())]
    Helper {
        helper: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the private scratch directory in {}: {source}; set TMPDIR to a writable directory", std::env::temp_dir().display())]
    Scratch { source: std::io::Error },
    #[error("talking to the sandbox helper: {0}")]
    Io(#[from] std::io::Error),
}

/// Starts contained runs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Sandbox {
    helper: PathBuf,
}

impl Sandbox {
    /// A sandbox whose helper is the running binary, which must call
    /// [`crate::run_helper_if_requested`] at the start of `main`.
    pub fn current() -> Result<Self, SandboxError> {
        if !HOOK_INSTALLED.load(Ordering::Relaxed) {
            return Err(SandboxError::HookMissing);
        }
        // The running binary even if its file was replaced since it started.
        let helper = PathBuf::from("/proc/self/exe");
        let helper = if helper.exists() {
            helper
        } else {
            std::env::current_exe().map_err(|source| SandboxError::Helper {
                helper: helper.clone(),
                source,
            })?
        };
        Ok(Self { helper })
    }

    /// A sandbox run by another binary that calls [`crate::run_helper_if_requested`]
    /// (tests, embedding in a program that cannot).
    pub fn with_helper(helper: impl Into<PathBuf>) -> Self {
        Self {
            helper: helper.into(),
        }
    }

    /// Sets up the full sandbox once, checks from inside that it holds, and runs nothing.
    /// Blocking (for startup and `--version`, before any async runtime exists). `Err` says
    /// what the kernel lacks.
    pub fn probe(&self, network: bool) -> Result<Protections, SandboxError> {
        let scratch = scratch_dir()?;
        let spec = Spec {
            program: String::new(),
            args: Vec::new(),
            cwd: scratch.path().to_owned(),
            env: Vec::new(),
            writable: Vec::new(),
            readable: Vec::new(),
            network,
            limits: crate::Limits::default(),
        };
        let request = self.request(Mode::Probe, true, spec, scratch.path());
        let (mut ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let mut child = std::process::Command::new(&self.helper)
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|source| SandboxError::Helper {
                helper: self.helper.clone(),
                source,
            })?;
        ours.set_read_timeout(Some(PROBE_TIMEOUT))?;
        ours.write_all(&encode(&request))?;
        ours.shutdown(std::net::Shutdown::Write)?;
        let mut output = String::new();
        let read = ours.read_to_string(&mut output);
        if read.is_err() {
            let _ = child.kill();
        }
        let status = child.wait()?;
        read?;
        match output.lines().next().map(decode) {
            Some(Ok(Report::Started(protections))) => Ok(protections),
            Some(Ok(Report::Failed(message))) => Err(SandboxError::Unavailable(message)),
            Some(Ok(Report::Finished(_))) | Some(Err(_)) | None => Err(SandboxError::Unavailable(
                format!("the sandbox helper ended without a report ({status})"),
            )),
        }
    }

    /// Starts `spec` contained. With `require_all`, refuses (`Unavailable`) unless every
    /// protection of [`Protections::missing`] is in place; without it, runs with what the
    /// kernel offers and says what that was in [`Contained::protections`].
    pub async fn spawn(
        &self,
        mut spec: Spec,
        require_all: bool,
    ) -> Result<Contained, SandboxError> {
        let scratch = scratch_dir()?;
        spec.env.retain(|(k, _)| k != "TMPDIR");
        spec.env
            .push(("TMPDIR".to_owned(), scratch.path().display().to_string()));
        let request = self.request(Mode::Run, require_all, spec, scratch.path());
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        let mut child = tokio::process::Command::new(&self.helper)
            .arg(HELPER_ARG)
            .env_clear()
            .stdin(Stdio::from(OwnedFd::from(theirs)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Dropping a run (a cancelled call) kills the helper; the kernel then kills the
            // run's PID namespace, because its init dies with the helper.
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| SandboxError::Helper {
                helper: self.helper.clone(),
                source,
            })?;
        ours.set_nonblocking(true)?;
        let mut ours = UnixStream::from_std(ours)?;
        ours.write_all(&encode(&request)).await?;
        ours.shutdown().await?;
        let mut reports = BufReader::new(ours).lines();
        match next_report(&mut reports).await? {
            Some(Report::Started(protections)) => Ok(Contained {
                stdout: child.stdout.take(),
                stderr: child.stderr.take(),
                child,
                reports,
                protections,
                _scratch: scratch,
            }),
            Some(Report::Failed(message)) => {
                let _ = child.wait().await;
                Err(SandboxError::Unavailable(message))
            }
            Some(Report::Finished(_)) | None => {
                let status = child.wait().await?;
                Err(SandboxError::Unavailable(format!(
                    "the sandbox helper ended without a report ({status})"
                )))
            }
        }
    }

    fn request(&self, mode: Mode, require_all: bool, spec: Spec, scratch: &Path) -> Request {
        Request {
            mode,
            require_all,
            spec,
            server_pid: std::process::id(),
            scratch: scratch.to_owned(),
        }
    }
}

/// A running contained program. Dropping it kills the run.
#[derive(Debug)]
pub struct Contained {
    /// The program's standard output and error (its stdin is `/dev/null`).
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
    /// What this run actually got from the kernel.
    pub protections: Protections,
    child: Child,
    reports: Lines<BufReader<UnixStream>>,
    // Removed when the run is dropped, after every process that could write to it is gone.
    _scratch: tempfile::TempDir,
}

impl Contained {
    /// Waits until the program exits and everything it left behind has been killed.
    /// `None`: the run ended without the program's status (it was stopped).
    pub async fn wait(&mut self) -> std::io::Result<Option<Exit>> {
        let mut exit = None;
        while let Some(report) = next_report(&mut self.reports).await? {
            if let Report::Finished(status) = report {
                exit = Some(status);
            }
        }
        self.child.wait().await?;
        Ok(exit)
    }

    /// Stops the run: every process of it is killed, and this returns once they are gone
    /// (or, if the helper does not answer within a grace period, once the helper is killed).
    pub async fn stop(&mut self) -> std::io::Result<()> {
        if let Some(pid) = self.child.id().and_then(|id| i32::try_from(id).ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        }
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            self.child.wait().await?;
        }
        Ok(())
    }
}

fn scratch_dir() -> Result<tempfile::TempDir, SandboxError> {
    tempfile::Builder::new()
        .prefix("exec-sandbox-")
        .tempdir()
        .map_err(|source| SandboxError::Scratch { source })
}

fn encode(request: &Request) -> Vec<u8> {
    // invariant: Request is plain data; serialization cannot fail.
    serde_json::to_vec(request).unwrap_or_default()
}

fn decode(line: &str) -> Result<Report, serde_json::Error> {
    serde_json::from_str(line)
}

async fn next_report(
    reports: &mut Lines<BufReader<UnixStream>>,
) -> std::io::Result<Option<Report>> {
    loop {
        match reports.next_line().await? {
            None => return Ok(None),
            Some(line) => {
                if let Ok(report) = decode(&line) {
                    return Ok(Some(report));
                }
            }
        }
    }
}
