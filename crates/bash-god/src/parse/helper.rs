//! Parsing in a helper process, so that no input can hang or crash the server.
//!
//! brush-parser backtracks without memoizing: some nestings well within
//! [`super::depth::MAX_NESTING`] (a few nested `case`s, or parentheses around a failing
//! command, wrapped around a large body) take exponential time, and a parse cannot be
//! interrupted from outside. So the server re-executes its own binary with [`HELPER_ARG`]
//! for each parse: the helper reads the command on stdin, parses it (bounded nesting, big
//! stack), writes the result as JSON and exits. The server kills a helper that has not
//! answered within the time limit; a helper that crashes is an error for that call only.
//! The helper also limits its own CPU time and dies with its parent.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{MAX_COMMAND_BYTES, ParseError, Script};

/// First argument that turns the binary into the parse helper.
pub const HELPER_ARG: &str = "--bash-god-parse-helper";
/// How long one parse may take when `BASH_GOD_PARSE_TIMEOUT_MS` does not say otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Environment variable overriding [`DEFAULT_TIMEOUT`], in milliseconds.
pub const TIMEOUT_ENV: &str = "BASH_GOD_PARSE_TIMEOUT_MS";
/// Address space a helper may use: the parser stack plus the AST of the largest command.
const HELPER_ADDRESS_SPACE: u64 = 4 << 30;

static HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);
static CONTAINMENT: OnceLock<Containment> = OnceLock::new();

/// Runs every parse in a helper process.
#[derive(Debug)]
pub struct Containment {
    program: PathBuf,
    timeout: Duration,
}

/// Call first in `main`: when this process was started as the parse helper, does the
/// helper's work and exits; otherwise records that the binary can serve as one.
pub fn run_helper_if_requested() {
    let mut args = std::env::args_os().skip(1);
    if args.next().as_deref() == Some(std::ffi::OsStr::new(HELPER_ARG)) {
        let cpu_seconds = args
            .next()
            .and_then(|s| s.to_str()?.parse::<u64>().ok())
            .unwrap_or(DEFAULT_TIMEOUT.as_secs());
        std::process::exit(helper_main(cpu_seconds));
    }
    HOOK_INSTALLED.store(true, Ordering::Relaxed);
}

/// From now on [`super::parse`] runs each parse in a helper process. Fails (and parsing
/// stays in this process) when the binary did not call [`run_helper_if_requested`] or a
/// helper cannot be started; the caller should say so.
pub fn contain_parsing() -> Result<Duration, String> {
    if let Some(containment) = CONTAINMENT.get() {
        return Ok(containment.timeout);
    }
    if !HOOK_INSTALLED.load(Ordering::Relaxed) {
        return Err("this binary does not install the parse helper hook".to_owned());
    }
    let timeout = match std::env::var(TIMEOUT_ENV) {
        Ok(ms) => ms
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                format!("{TIMEOUT_ENV}={ms:?} is not a positive number of milliseconds")
            })?,
        Err(_) => DEFAULT_TIMEOUT,
    };
    let containment = Containment {
        // The running binary itself, even if its file was replaced since it started.
        program: PathBuf::from("/proc/self/exe"),
        timeout,
    };
    // A parse that must succeed: proves the helper starts and answers.
    containment
        .parse("true")
        .map_err(|e| format!("the parse helper does not work here: {e}"))?;
    let _ = CONTAINMENT.set(containment);
    Ok(timeout)
}

/// The containment [`contain_parsing`] set up, if any.
pub(super) fn containment() -> Option<&'static Containment> {
    CONTAINMENT.get()
}

impl Containment {
    /// Helpers started as `program` (a bash-god binary), killed after `timeout`. The server
    /// uses [`contain_parsing`]; this is for benchmarks and tests of another binary.
    pub fn new(program: PathBuf, timeout: Duration) -> Self {
        Self { program, timeout }
    }

    /// Parses `text` in a new helper process, killed after the time limit. Blocking.
    pub fn parse(&self, text: &str) -> Result<Script, ParseError> {
        let cpu_seconds = self.timeout.as_secs() + 1;
        let mut child = Command::new(&self.program)
            .arg(HELPER_ARG)
            .arg(cpu_seconds.to_string())
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ParseError::ParserFailed(format!("cannot start the parse helper: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that died early shows in its exit status below.
            let _ = stdin.write_all(text.as_bytes());
        }
        let Some(mut stdout) = child.stdout.take() else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ParseError::ParserFailed(
                "the parse helper has no output".to_owned(),
            ));
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut output = Vec::new();
            let read = stdout.read_to_end(&mut output).map(|_| output);
            // The receiver is gone when the helper timed out.
            let _ = sender.send(read);
        });
        let output = match receiver.recv_timeout(self.timeout) {
            Ok(output) => output,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ParseError::TooComplex {
                    seconds: self.timeout.as_secs().max(1),
                });
            }
        };
        let status = child.wait().map_err(|e| {
            ParseError::ParserFailed(format!("cannot wait for the parse helper: {e}"))
        })?;
        let output = output
            .map_err(|e| ParseError::ParserFailed(format!("cannot read the parse helper: {e}")))?;
        match serde_json::from_slice::<Result<Script, ParseError>>(&output) {
            Ok(result) => result,
            Err(_) => {
                use std::os::unix::process::ExitStatusExt;
                let how = match status.signal() {
                    // SIGXCPU: the helper's own CPU limit.
                    Some(24) => {
                        return Err(ParseError::TooComplex {
                            seconds: self.timeout.as_secs().max(1),
                        });
                    }
                    Some(signal) => format!(
                        "the parser crashed with signal {signal}, most likely out of stack on deep nesting"
                    ),
                    None => format!("the parse helper exited with {status} without an answer"),
                };
                Err(ParseError::ParserFailed(how))
            }
        }
    }
}

/// The helper: stdin → [`super::parse_here`] → JSON on stdout.
fn helper_main(cpu_seconds: u64) -> i32 {
    limit_self(cpu_seconds);
    let mut input = Vec::new();
    let limit = u64::try_from(MAX_COMMAND_BYTES + 1).unwrap_or(u64::MAX);
    let result = match std::io::stdin().take(limit).read_to_end(&mut input) {
        Ok(_) => match String::from_utf8(input) {
            Ok(text) => super::parse_here(&text),
            Err(_) => Err(ParseError::ParserFailed(
                "the command is not UTF-8".to_owned(),
            )),
        },
        Err(e) => Err(ParseError::ParserFailed(format!(
            "cannot read the command: {e}"
        ))),
    };
    // invariant: Script and ParseError are plain data; serialization cannot fail.
    let json = serde_json::to_vec(&result).unwrap_or_default();
    match std::io::stdout().write_all(&json) {
        Ok(()) => 0,
        Err(_) => 1,
    }
}

/// The helper's own limits: die with the server, and after `cpu_seconds` of CPU even if
/// the server is gone; bounded memory.
fn limit_self(cpu_seconds: u64) {
    use nix::sys::resource::{Resource, setrlimit};
    // Failures leave the helper unlimited; the server's timeout still kills it.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL);
    let _ = setrlimit(Resource::RLIMIT_CPU, cpu_seconds, cpu_seconds + 1);
    let _ = setrlimit(
        Resource::RLIMIT_AS,
        HELPER_ADDRESS_SPACE,
        HELPER_ADDRESS_SPACE,
    );
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// A stand-in helper: a shell script that models one way a helper can end.
    fn fake_helper(dir: &std::path::Path, name: &str, body: &str) -> Containment {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        Containment {
            program: path,
            timeout: Duration::from_millis(500),
        }
    }

    #[test]
    fn every_way_a_helper_can_end_is_a_clear_result() {
        let dir = tempfile::tempdir().unwrap();
        let answer = fake_helper(
            dir.path(),
            "answer",
            r#"cat >/dev/null; printf '{"Err":"Empty"}'"#,
        );
        assert_eq!(answer.parse("ls").unwrap_err(), ParseError::Empty);

        let crash = fake_helper(dir.path(), "crash", "cat >/dev/null; kill -SEGV $$");
        let err = crash.parse("ls").unwrap_err();
        assert!(
            matches!(&err, ParseError::ParserFailed(m) if m.contains("signal 11")),
            "{err}"
        );

        let hang = fake_helper(dir.path(), "hang", "exec sleep 60");
        assert_eq!(
            hang.parse("ls").unwrap_err(),
            ParseError::TooComplex { seconds: 1 }
        );

        let garbage = fake_helper(dir.path(), "garbage", "cat >/dev/null; echo not json");
        let err = garbage.parse("ls").unwrap_err();
        assert!(
            matches!(&err, ParseError::ParserFailed(m) if m.contains("without an answer")),
            "{err}"
        );

        // A helper that exits without reading its input.
        let early = fake_helper(dir.path(), "early", "exit 3");
        let err = early.parse(&"x".repeat(MAX_COMMAND_BYTES)).unwrap_err();
        assert!(matches!(err, ParseError::ParserFailed(_)), "{err}");

        let missing = Containment {
            program: dir.path().join("missing"),
            timeout: Duration::from_secs(1),
        };
        let err = missing.parse("ls").unwrap_err();
        assert!(
            matches!(&err, ParseError::ParserFailed(m) if m.contains("cannot start")),
            "{err}"
        );
    }

    #[test]
    fn a_test_binary_does_not_become_a_helper() {
        // The unit-test binary never calls run_helper_if_requested.
        let err = contain_parsing().unwrap_err();
        assert!(err.contains("hook"), "{err}");
        assert!(containment().is_none());
    }
}
