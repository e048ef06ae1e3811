//! What the caller asks for ([`Spec`], [`Limits`]), what the kernel gave ([`Protections`]),
//! and the messages the server and its helper process exchange.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One contained run: the program, its environment, and what it may touch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// Program to run, looked up in the `PATH` of `env` when it has no `/`.
    pub program: String,
    pub args: Vec<String>,
    /// Working directory; must be inside one of `writable` or `readable` to be usable.
    pub cwd: PathBuf,
    /// The complete environment of the program (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Directories the program may read, write, create and delete in (the roots).
    pub writable: Vec<PathBuf>,
    /// Extra read-only locations beyond the system ones ([`SYSTEM_READ_ONLY`]).
    pub readable: Vec<PathBuf>,
    /// Allow sockets: no network namespace, no socket filter, no Landlock TCP rules.
    pub network: bool,
    pub limits: Limits,
}

/// Resource limits (rlimits) of every process of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// CPU seconds per process (`RLIMIT_CPU`).
    pub cpu_seconds: u64,
    /// Address space per process, in bytes (`RLIMIT_AS`).
    pub address_space_bytes: u64,
    /// Processes (and threads) of the run at once (`RLIMIT_NPROC`, counted in the run's own
    /// user namespace).
    pub processes: u64,
    /// Largest file a process may write, in bytes (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub open_files: u64,
}

impl Default for Limits {
    fn default() -> Self {
        const GIB: u64 = 1 << 30;
        Self {
            cpu_seconds: 600,
            // Generous: runtimes such as the JVM and V8 reserve large virtual areas up front.
            address_space_bytes: 16 * GIB,
            processes: 512,
            file_size_bytes: 4 * GIB,
            open_files: 4096,
        }
    }
}

/// System locations every run may read and execute (those that exist): what programs and
/// a shell need, not users' data. `/etc` is handled apart: only its entries every user
/// may read ([`crate::restrict`]).
pub const SYSTEM_READ_ONLY: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    // NixOS keeps every program in the store and links the system profile from /run.
    "/nix/store",
    "/run/current-system",
    "/sys/devices/system/cpu",
];

/// Which protections a run actually got from the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Protections {
    /// Landlock ABI version in force (0: Landlock not available).
    pub landlock_abi: u32,
    /// Landlock confines the filesystem: writes only inside the writable directories, reads
    /// only there and in system locations (needs ABI 3 or newer, which also covers truncation).
    pub filesystem: bool,
    /// Landlock scopes signals and abstract UNIX sockets to the run (ABI 6 or newer).
    pub scoped_signals_and_sockets: bool,
    /// A user namespace: the run has no capabilities outside it.
    pub user_namespace: bool,
    /// A PID namespace: the run sees only its own processes, and every one of them is killed
    /// when the run ends, times out or is cancelled (setsid, double fork and nohup included).
    pub pid_namespace: bool,
    /// A network namespace without interfaces (only without `network`).
    pub network_namespace: bool,
    /// A mount namespace with its own `/proc` showing only the run's processes.
    pub private_proc: bool,
    /// In that mount namespace everything but the writable directories is mounted
    /// read-only, which also stops what Landlock does not cover: `chmod`, `chown`,
    /// `utimes` and extended attributes of files outside them.
    pub read_only_outside: bool,
    /// A seccomp filter denies kernel interfaces commands do not need (ptrace, bpf,
    /// io_uring, keyrings, mounts, new namespaces...) and, without `network`, sockets.
    pub seccomp: bool,
    /// Sockets are denied (seccomp), TCP too (Landlock ABI 4+) and there is no interface to
    /// reach (network namespace). `false` when the network was allowed.
    pub network_blocked: bool,
    /// The capability bounding set is empty: nothing in the run can gain capabilities.
    pub capabilities_dropped: bool,
    /// The rlimits of [`Limits`] are set.
    pub rlimits: bool,
}

impl Protections {
    /// The guarantees a contained run needs that these protections lack, as phrases.
    pub fn missing(&self, network_allowed: bool) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if !self.filesystem {
            missing.push("filesystem confinement (Landlock ABI 3 or newer, Linux 6.2+)");
        }
        if !self.read_only_outside {
            missing.push(
                "read-only mounts outside the writable directories (stops chmod and other metadata changes)",
            );
        }
        if !self.pid_namespace {
            missing.push(
                "killing every descendant at the end of a run (PID namespace inside a user namespace)",
            );
        }
        if !self.seccomp {
            missing.push("a seccomp filter");
        }
        if !network_allowed && !self.network_blocked {
            missing.push("blocking the network");
        }
        if !self.rlimits {
            missing.push("resource limits");
        }
        missing
    }

    /// One line naming what is active, e.g. for `--version` and logs.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if self.landlock_abi > 0 {
            parts.push(format!("landlock ABI {}", self.landlock_abi));
        }
        for (on, name) in [
            (self.filesystem, "filesystem confined"),
            (
                self.scoped_signals_and_sockets,
                "signals/abstract sockets scoped",
            ),
            (self.user_namespace, "user namespace"),
            (self.pid_namespace, "PID namespace (kill-all)"),
            (self.network_namespace, "network namespace"),
            (self.private_proc, "private /proc"),
            (self.read_only_outside, "read-only outside the roots"),
            (self.seccomp, "seccomp"),
            (self.network_blocked, "network blocked"),
            (self.capabilities_dropped, "no capabilities"),
            (self.rlimits, "rlimits"),
        ] {
            if on {
                parts.push(name.to_owned());
            }
        }
        if parts.is_empty() {
            "none".to_owned()
        } else {
            parts.join(", ")
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

/// What the helper is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Mode {
    /// Run the spec's program.
    Run,
    /// Set everything up, check that it holds, run nothing.
    Probe,
}

/// Sent by the server on the helper's standard input.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Request {
    pub mode: Mode,
    /// Refuse to run unless every protection of [`Protections::missing`] is in place.
    pub require_all: bool,
    pub spec: Spec,
    /// The server's PID: the helper exits at once if it was orphaned before it could arrange
    /// to die with the server.
    pub server_pid: u32,
    /// Private scratch directory (writable, `TMPDIR`).
    pub scratch: PathBuf,
}

/// Sent back by the helper, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Report {
    /// Set up; the program is running (or, in probe mode, the checks passed).
    Started(Protections),
    /// The sandbox could not be set up; nothing ran.
    Failed(String),
    /// The program ended; everything else in the run was killed.
    Finished(Exit),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_names_each_lacking_guarantee() {
        let none = Protections::default();
        assert_eq!(none.missing(false).len(), 6);
        assert_eq!(none.missing(true).len(), 5);
        assert_eq!(none.summary(), "none");
        let full = Protections {
            landlock_abi: 7,
            filesystem: true,
            scoped_signals_and_sockets: true,
            user_namespace: true,
            pid_namespace: true,
            network_namespace: true,
            private_proc: true,
            read_only_outside: true,
            seccomp: true,
            network_blocked: true,
            capabilities_dropped: true,
            rlimits: true,
        };
        assert!(full.missing(false).is_empty());
        assert!(
            full.summary()
                .starts_with("landlock ABI 7, filesystem confined")
        );
    }
}
