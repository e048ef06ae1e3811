//! The helper side: what runs in the server's own binary, re-executed with [`HELPER_ARG`].
//!
//! Process tree of one run:
//!
//! ```text
//! server ── helper (host PID namespace; dies with the server: PR_SET_PDEATHSIG)
//!             └── init (PID 1 of a new user+PID+mount[+network] namespace; restricted)
//!                   └── program (inherits every restriction), and all it starts
//! ```
//!
//! The helper is a fresh single-threaded process, so it may fork freely. It creates the
//! namespaces and forks the init, which mounts a private `/proc`, restricts itself
//! (rlimits, capabilities, Landlock, seccomp: [`crate::restrict`]) and starts the program,
//! which inherits all of it. When the program exits, or the helper is told to stop
//! (SIGTERM) or dies, the init ends; the kernel then kills every process left in the PID
//! namespace, whatever they did to detach (setsid, double fork, nohup). The helper waits for
//! the init, so the server knows nothing is left when the helper has exited.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sched::{CloneFlags, unshare};
use nix::sys::prctl;
use nix::sys::signal::{SigSet, Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getgid, getpid, getppid, getuid, pipe};

use crate::restrict::Restrictions;
use crate::spec::{Exit, Mode, Protections, Report, Request};

/// The first argument that turns the server binary into the helper.
pub const HELPER_ARG: &str = "--exec-sandbox-helper-v1";

/// Set once [`run_helper_if_requested`] has run in this process: only then can this binary
/// serve as its own helper.
pub(crate) static HOOK_INSTALLED: AtomicBool = AtomicBool::new(false);

/// Call first thing in `main` of every binary that uses [`crate::Sandbox`]: when the process
/// was started as the sandbox helper, this runs the helper and exits; otherwise it returns
/// at once.
pub fn run_helper_if_requested() {
    if std::env::args_os().nth(1).as_deref() == Some(OsStr::new(HELPER_ARG)) {
        std::process::exit(helper_main());
    }
    HOOK_INSTALLED.store(true, Ordering::Relaxed);
}

/// Writes reports to the server over the control socket (the helper's stdin).
struct Reporter(UnixStream);

impl Reporter {
    fn send(&mut self, report: &Report) {
        // invariant: Report is plain data; serialization cannot fail.
        let mut line = serde_json::to_vec(report).unwrap_or_default();
        line.push(b'\n');
        // The server may be gone; there is no one else to tell.
        let _ = self.0.write_all(&line);
    }
}

fn helper_main() -> i32 {
    // A close-on-exec duplicate: the program must not inherit the control socket.
    let Ok(control) = std::io::stdin().as_fd().try_clone_to_owned() else {
        return 125;
    };
    let mut control = UnixStream::from(control);
    let mut input = Vec::new();
    if control.read_to_end(&mut input).is_err() {
        return 125;
    }
    let mut reporter = Reporter(control);
    let request: Request = match serde_json::from_slice(&input) {
        Ok(request) => request,
        Err(e) => {
            reporter.send(&Report::Failed(format!("bad request to the helper: {e}")));
            return 125;
        }
    };
    match run(&request, &mut reporter) {
        Ok(()) => 0,
        Err(message) => {
            reporter.send(&Report::Failed(message));
            125
        }
    }
}

/// Signals the helper and the init handle synchronously (blocked, then `sigwait`ed).
fn control_signals() -> SigSet {
    let mut set = SigSet::empty();
    for signal in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        set.add(signal);
    }
    set
}

fn run(request: &Request, reporter: &mut Reporter) -> Result<(), String> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|e| format!("PR_SET_PDEATHSIG: {e}"))?;
    // The server may have died before the line above: then nobody would stop the run.
    if u32::try_from(getppid().as_raw()).ok() != Some(request.server_pid) {
        return Err("the server exited while the sandbox was being set up".to_owned());
    }
    let signals = control_signals();
    signals
        .thread_block()
        .map_err(|e| format!("blocking signals: {e}"))?;

    let mut protections = Protections::default();
    match enter_namespaces(request.spec.network) {
        Ok(()) => {
            protections.user_namespace = true;
            protections.pid_namespace = true;
            protections.network_namespace = !request.spec.network;
        }
        Err(e) if request.require_all => return Err(e),
        // Best effort: without a PID namespace the helper supervises the program itself.
        Err(_) => return supervise(request, reporter, protections, &signals),
    }

    let (lifeline_read, lifeline_write) = pipe().map_err(|e| format!("pipe: {e}"))?;
    // SAFETY: the helper is single-threaded (a fresh process that started no threads), so
    // the child may run arbitrary code after fork.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(lifeline_write);
            let status = match init_start(&lifeline_read) {
                Ok(()) => match supervise(request, reporter, protections, &signals) {
                    Ok(()) => 0,
                    Err(message) => {
                        reporter.send(&Report::Failed(message));
                        125
                    }
                },
                // The helper is gone: the server stopped the run already.
                Err(()) => 125,
            };
            std::process::exit(status);
        }
        ForkResult::Parent { child } => {
            drop(lifeline_read);
            wait_for_init(child, &signals);
            drop(lifeline_write);
            Ok(())
        }
    }
}

/// New user, PID, mount and IPC namespaces (and network, unless allowed), with the caller's
/// uid and gid mapped to themselves.
fn enter_namespaces(network: bool) -> Result<(), String> {
    let (uid, gid) = (getuid(), getgid());
    let mut flags = CloneFlags::CLONE_NEWUSER
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWIPC;
    if !network {
        flags |= CloneFlags::CLONE_NEWNET;
    }
    unshare(flags).map_err(|e| {
        format!(
            "cannot create user, PID and mount namespaces (unshare: {e}); unprivileged user \
             namespaces are disabled or blocked here"
        )
    })?;
    let write = |file: &str, text: String| {
        fs::write(file, text)
            .map_err(|e| format!("cannot write {file} in the new user namespace: {e}"))
    };
    write("/proc/self/setgroups", "deny".to_owned())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// First steps of the init (PID 1 of the new namespace): die with the helper, and give up at
/// once if the helper already died.
fn init_start(lifeline: &std::os::fd::OwnedFd) -> Result<(), ()> {
    prctl::set_pdeathsig(Signal::SIGKILL).map_err(|_| ())?;
    // The helper's end of the pipe closes when it dies: POLLHUP, now or never.
    let mut fds = [PollFd::new(lifeline.as_fd(), PollFlags::POLLIN)];
    match poll(&mut fds, PollTimeout::ZERO) {
        Ok(0) => Ok(()),
        _ => Err(()),
    }
}

/// The helper's part once the init runs: wait for it; on SIGTERM (the server stopping the
/// run) kill it, which makes the kernel kill the whole PID namespace, and wait for that.
fn wait_for_init(init: Pid, signals: &SigSet) {
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => {
                if !matches!(
                    waitpid(init, Some(WaitPidFlag::WNOHANG)),
                    Ok(WaitStatus::StillAlive) | Err(Errno::EINTR)
                ) {
                    return;
                }
            }
            Ok(_) => {
                let _ = kill(init, Signal::SIGKILL);
                // Returns once the init is gone, and the init is gone only after every
                // process of its namespace was killed and reaped.
                while let Err(Errno::EINTR) = waitpid(init, None) {}
                return;
            }
            Err(_) => return,
        }
    }
}

/// Mounts, restrictions, then the program (or the probe's checks); runs as the init of the
/// new namespaces, or as the helper itself in best-effort mode without them.
fn supervise(
    request: &Request,
    reporter: &mut Reporter,
    mut protections: Protections,
    signals: &SigSet,
) -> Result<(), String> {
    let in_pid_namespace = protections.pid_namespace;
    let spec = &request.spec;
    // Why a protection is missing, for the refusal message.
    let mut setup_notes: Vec<String> = Vec::new();
    if in_pid_namespace {
        protections.private_proc = mount_private_proc();
        let mut writable = spec.writable.clone();
        writable.push(request.scratch.clone());
        match mount_read_only_except(&writable) {
            Ok(()) => protections.read_only_outside = true,
            Err(e) => setup_notes.push(e),
        }
    } else {
        // Orphans of the run are re-parented here, so they can be reaped.
        let _ = prctl::set_child_subreaper(true);
    }
    let mut restrictions = Restrictions::prepare(spec, &request.scratch)
        .map_err(|e| format!("cannot prepare the sandbox: {e}"))?;
    let applied = restrictions
        .apply()
        .map_err(|e| format!("cannot apply the sandbox: {e}"))?;
    applied.record(&mut protections);
    protections.network_blocked = !spec.network
        && applied.seccomp
        && (applied.network_denied || protections.network_namespace);
    if request.require_all {
        let missing = protections.missing(spec.network);
        if !missing.is_empty() {
            let mut message = format!("this kernel does not provide: {}", missing.join("; "));
            if !setup_notes.is_empty() {
                message.push_str(&format!(" ({})", setup_notes.join("; ")));
            }
            return Err(message);
        }
    }
    if request.mode == Mode::Probe {
        self_check(&protections)?;
        reporter.send(&Report::Started(protections));
        return Ok(());
    }

    let mut command = Command::new(&spec.program);
    command
        .args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null());
    if !in_pid_namespace {
        // All the best-effort mode can kill at the end: the program's process group.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
    }
    let child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", spec.program))?;
    let program = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);
    reporter.send(&Report::Started(protections));
    let exit = wait_for_program(program, signals);
    kill_the_rest(in_pid_namespace, program);
    reporter.send(&Report::Finished(exit));
    Ok(())
}

/// A `/proc` of the new PID namespace: `ps` shows the run's processes only. Not fatal when
/// the kernel refuses (e.g. a container that masks parts of `/proc`): the host's `/proc`
/// stays, and Landlock keeps other processes' memory, environment and files out of reach.
fn mount_private_proc() -> bool {
    let private = mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    );
    private.is_ok()
        && mount(
            Some("proc"),
            "/proc",
            Some("proc"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
            None::<&str>,
        )
        .is_ok()
}

/// Remounts every mount of the (private) mount namespace read-only, then bind-mounts each
/// writable directory onto itself read-write. Landlock already denies writes outside them;
/// the read-only mounts add what Landlock does not cover (metadata: chmod, chown, utimes,
/// xattrs). Fails with the first step that failed.
fn mount_read_only_except(writable: &[std::path::PathBuf]) -> Result<(), String> {
    for (point, options) in mounts()? {
        remount(&point, &options, true)?;
    }
    for dir in writable {
        mount(
            Some(dir.as_path()),
            dir.as_path(),
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(|e| format!("bind-mounting {}: {e}", dir.display()))?;
        let point = dir.display().to_string();
        // The new bind mount is the last one listed at that point.
        let options = mounts()?
            .into_iter()
            .rev()
            .find(|(p, _)| *p == point)
            .map(|(_, options)| options)
            .unwrap_or_default();
        remount(&point, &options, false)?;
    }
    Ok(())
}

/// `(mount point, per-mount options)` of every mount, from `/proc/self/mountinfo` (fields 5
/// and 6; statvfs(3) is no substitute: musl reports no flags).
fn mounts() -> Result<Vec<(String, String)>, String> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| format!("reading /proc/self/mountinfo: {e}"))?;
    Ok(mountinfo
        .lines()
        .filter_map(|line| {
            let mut fields = line.split(' ').skip(4);
            Some((
                unescape_mountinfo(fields.next()?),
                fields.next()?.to_owned(),
            ))
        })
        .collect())
}

/// Remounts the mount at `point` read-only or read-write, repeating the flags the kernel
/// locks in a user namespace (nosuid, nodev, noexec, atime), as a remount must.
fn remount(point: &str, options: &str, read_only: bool) -> Result<(), String> {
    let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT;
    let mut atime_given = false;
    for option in options.split(',') {
        flags |= match option {
            "nosuid" => MsFlags::MS_NOSUID,
            "nodev" => MsFlags::MS_NODEV,
            "noexec" => MsFlags::MS_NOEXEC,
            "nodiratime" => MsFlags::MS_NODIRATIME,
            "noatime" | "relatime" => {
                atime_given = true;
                if option == "noatime" {
                    MsFlags::MS_NOATIME
                } else {
                    MsFlags::MS_RELATIME
                }
            }
            _ => MsFlags::empty(),
        };
    }
    // A remount means relatime unless told otherwise.
    if !atime_given {
        flags |= MsFlags::MS_STRICTATIME;
    }
    if read_only {
        flags |= MsFlags::MS_RDONLY;
    }
    match mount(None::<&str>, point, None::<&str>, flags, None::<&str>) {
        // Gone or hidden under another mount: nothing reachable to protect there.
        Ok(()) | Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!("remounting {point} ({options}): {e}")),
    }
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(digits) => {
                let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Probe mode: confirm that what was reported as enforced is, from inside.
fn self_check(protections: &Protections) -> Result<(), String> {
    if protections.filesystem {
        match fs::read_dir("/") {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {}
            other => {
                return Err(format!(
                    "Landlock reported enforced but reading / gave {:?}",
                    other.map(|_| ())
                ));
            }
        }
    }
    if protections.network_blocked {
        use nix::sys::socket::{AddressFamily, SockFlag, SockType, socket};
        if socket(
            AddressFamily::Inet,
            SockType::Stream,
            SockFlag::empty(),
            None,
        )
        .is_ok()
        {
            return Err("seccomp reported enforced but a TCP socket could be created".to_owned());
        }
    }
    if protections.read_only_outside {
        let read_only = nix::sys::statvfs::statvfs("/")
            .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY));
        if !read_only {
            return Err("the read-only remount of / did not hold".to_owned());
        }
    }
    if protections.pid_namespace && getpid().as_raw() != 1 {
        return Err("the init of the new PID namespace is not PID 1".to_owned());
    }
    Ok(())
}

/// Reaps until the program itself has exited (others are reaped as they come). A stop
/// signal ends the wait early: the program is then reported as killed.
fn wait_for_program(program: Pid, signals: &SigSet) -> Exit {
    loop {
        match signals.wait() {
            Ok(Signal::SIGCHLD) => loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == program => return Exit::Code(code),
                    Ok(WaitStatus::Signaled(pid, signal, _)) if pid == program => {
                        return Exit::Signal(signal as i32);
                    }
                    Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                    Ok(_) | Err(_) => continue,
                }
            },
            Ok(_) | Err(_) => return Exit::Signal(Signal::SIGKILL as i32),
        }
    }
}

/// Kills what the program left behind and reaps it. In a PID namespace, `kill(-1)` reaches
/// every process of the namespace but the init, and the reaping waits for each of them;
/// without one, only the program's process group is killed and nothing is waited for (a
/// process that left the group would keep the call open).
fn kill_the_rest(in_pid_namespace: bool, program: Pid) {
    if !in_pid_namespace {
        let _ = killpg(program, Signal::SIGKILL);
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == WaitStatus::StillAlive {
                return;
            }
        }
        return;
    }
    let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
    loop {
        match waitpid(None, None) {
            Err(Errno::EINTR) => continue,
            Err(_) => return,
            // A process forked while the first kill ran may still be alive.
            Ok(_) => {
                let _ = kill(Pid::from_raw(-1), Signal::SIGKILL);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_undone() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/tab\\011x\\"), "/tab\tx\\");
    }
}
