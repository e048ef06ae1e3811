//! The restrictions a contained process puts on itself just before `exec`: rlimits, an empty
//! capability bounding set, a Landlock domain and seccomp filters.
//!
//! [`Restrictions::prepare`] does everything that allocates or opens files (Landlock rule
//! file descriptors, compiled BPF) while the caller is still an ordinary process;
//! [`Restrictions::apply`] only makes system calls, so it can run between `fork` and `exec`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, RestrictionStatus,
    Ruleset, RulesetAttr, RulesetCreated, RulesetCreatedAttr, RulesetStatus, Scope,
    path_beneath_rules,
};
use nix::sys::resource::{Resource, setrlimit};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::spec::{Limits, Protections, SYSTEM_READ_ONLY, Spec};

/// The Landlock ABI whose access rights this crate was written and tested against. Newer
/// kernels still enforce these; rights added later (pathname UNIX sockets, UDP) are left to
/// seccomp, which denies sockets outright without `network`.
const LANDLOCK_ABI: ABI = ABI::V6;

/// Devices a shell uses: read-write sinks and read-only sources.
const DEVICES_READ_WRITE: &[&str] = &["/dev/null", "/dev/zero", "/dev/full"];
const DEVICES_READ_ONLY: &[&str] = &["/dev/random", "/dev/urandom"];

/// Why a restriction could not be prepared or applied.
#[derive(Debug, thiserror::Error)]
pub enum RestrictError {
    #[error("landlock: {0}")]
    Landlock(#[from] landlock::RulesetError),
    #[error("seccomp: {0}")]
    Seccomp(String),
    #[error("setrlimit {0:?}: {1}")]
    Rlimit(Resource, nix::Error),
    #[error("dropping capabilities: {0}")]
    Capabilities(std::io::Error),
}

/// Everything prepared; [`Restrictions::apply`] consumes it.
pub struct Restrictions {
    ruleset: Option<RulesetCreated>,
    filters: Vec<BpfProgram>,
    limits: Limits,
}

/// What [`Restrictions::apply`] achieved.
#[derive(Debug, Clone, Default)]
pub struct Applied {
    pub landlock_abi: u32,
    pub filesystem: bool,
    pub scoped: bool,
    pub network_denied: bool,
    pub seccomp: bool,
    pub capabilities_dropped: bool,
    pub rlimits: bool,
}

impl Applied {
    /// Copies what was applied into `protections`.
    pub fn record(&self, protections: &mut Protections) {
        protections.landlock_abi = self.landlock_abi;
        protections.filesystem = self.filesystem;
        protections.scoped_signals_and_sockets = self.scoped;
        protections.seccomp = self.seccomp;
        protections.capabilities_dropped = self.capabilities_dropped;
        protections.rlimits = self.rlimits;
    }
}

impl Restrictions {
    /// Opens the Landlock rules for `spec` (writable roots, `scratch`, system locations) and
    /// compiles the seccomp filters. Fails only on errors of this crate's own making; a kernel
    /// without Landlock yields restrictions that report `filesystem: false` when applied.
    pub fn prepare(spec: &Spec, scratch: &Path) -> Result<Self, RestrictError> {
        Ok(Self {
            ruleset: Some(landlock_ruleset(spec, scratch)?),
            filters: seccomp_filters(spec.network)?,
            limits: spec.limits,
        })
    }

    /// Applies everything to the calling thread. Only system calls: safe after `fork`.
    /// Order matters: rlimits and the capability drop need privileges that Landlock's
    /// `no_new_privs` and seccomp do not take away, and seccomp comes last because it denies
    /// system calls the earlier steps use.
    pub fn apply(&mut self) -> Result<Applied, RestrictError> {
        let mut applied = Applied::default();
        set_rlimits(&self.limits)?;
        applied.rlimits = true;
        applied.capabilities_dropped = drop_capability_bounding_set()?;
        if let Some(ruleset) = self.ruleset.take() {
            let status = ruleset.restrict_self()?;
            record_landlock(&status, &mut applied);
        }
        for filter in &self.filters {
            seccompiler::apply_filter(filter).map_err(|e| RestrictError::Seccomp(e.to_string()))?;
        }
        applied.seccomp = !self.filters.is_empty();
        Ok(applied)
    }
}

fn record_landlock(status: &RestrictionStatus, applied: &mut Applied) {
    let abi = match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => effective_abi as u32,
        _ => 0,
    };
    applied.landlock_abi = abi;
    let enforced = status.ruleset != RulesetStatus::NotEnforced;
    // ABI 1 and 2 do not restrict truncate(2): a file outside could still be emptied.
    applied.filesystem = enforced && abi >= 3;
    applied.network_denied = enforced && abi >= 4;
    applied.scoped = enforced && abi >= 6;
}

/// The Landlock domain: full access to the writable directories and the scratch directory,
/// read/execute on system locations, read on the world-readable entries of `/etc`, the
/// usual devices and `/proc`; no TCP unless the network is allowed; signals and abstract
/// UNIX sockets scoped to the run.
fn landlock_ruleset(spec: &Spec, scratch: &Path) -> Result<RulesetCreated, RestrictError> {
    let abi = LANDLOCK_ABI;
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))?
        .scope(Scope::from_all(abi))?;
    if !spec.network {
        ruleset = ruleset.handle_access(AccessNet::from_all(abi))?;
    }
    let read = AccessFs::from_read(abi);
    let read_data = AccessFs::ReadFile | AccessFs::ReadDir;
    let device_rw = AccessFs::ReadFile | AccessFs::WriteFile | AccessFs::Truncate;
    let mut writable: Vec<PathBuf> = spec.writable.clone();
    writable.push(scratch.to_owned());
    let ruleset = ruleset
        .create()?
        .add_rules(path_beneath_rules(&writable, AccessFs::from_all(abi)))?
        .add_rules(path_beneath_rules(SYSTEM_READ_ONLY, read))?
        .add_rules(path_beneath_rules(&spec.readable, read))?
        .add_rules(path_beneath_rules(world_readable_etc(), read_data))?
        // Listing /etc shows names only; reading an entry needs one of the rules above.
        .add_rules(path_beneath_rules(["/etc"], AccessFs::ReadDir))?
        .add_rules(path_beneath_rules(["/proc"], read_data))?
        .add_rules(path_beneath_rules(DEVICES_READ_WRITE, device_rw))?
        .add_rules(path_beneath_rules(DEVICES_READ_ONLY, AccessFs::ReadFile))?;
    Ok(ruleset)
}

/// The entries of `/etc` that every user may read: the system configuration programs need,
/// without what only root may read (`shadow`, private keys), even when the server is root.
fn world_readable_etc() -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir("/etc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| fs::metadata(path).is_ok_and(|meta| meta.permissions().mode() & 0o004 != 0))
        .collect()
}

fn set_rlimits(limits: &Limits) -> Result<(), RestrictError> {
    for (resource, value) in [
        // The hard limit one second later: SIGXCPU first, then SIGKILL.
        (Resource::RLIMIT_CPU, limits.cpu_seconds),
        (Resource::RLIMIT_AS, limits.address_space_bytes),
        (Resource::RLIMIT_NPROC, limits.processes),
        (Resource::RLIMIT_FSIZE, limits.file_size_bytes),
        (Resource::RLIMIT_NOFILE, limits.open_files),
        (Resource::RLIMIT_CORE, 0),
    ] {
        let hard = if resource == Resource::RLIMIT_CPU {
            value.saturating_add(1)
        } else {
            value
        };
        setrlimit(resource, value, hard).map_err(|e| RestrictError::Rlimit(resource, e))?;
    }
    Ok(())
}

/// Empties the capability bounding set, so no later `exec` (even of a root-owned setuid
/// binary, or as root inside the user namespace) grants capabilities. Returns `false`
/// without error when the process lacks `CAP_SETPCAP` (outside a user namespace and not
/// root): it has no capabilities to gain then, and `no_new_privs` blocks setuid binaries.
fn drop_capability_bounding_set() -> Result<bool, RestrictError> {
    use rustix::thread::{CapabilitySet, remove_capability_from_bounding_set};
    for capability in CapabilitySet::all().iter() {
        match remove_capability_from_bounding_set(capability) {
            Ok(()) => {}
            // A capability this kernel does not know: nothing to drop.
            Err(rustix::io::Errno::INVAL) => {}
            Err(rustix::io::Errno::PERM) => return Ok(false),
            Err(e) => return Err(RestrictError::Capabilities(e.into())),
        }
    }
    Ok(true)
}

/// System calls no command needs, and which widen the kernel surface a contained process
/// can reach: debugging other processes, BPF, perf, io_uring (which bypasses seccomp for
/// the operations it submits), keyrings, modules, kexec, mounts, new namespaces, handles.
fn denied_syscalls() -> Vec<i64> {
    use libc_numbers::*;
    vec![
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_userfaultfd,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_kexec_load,
        SYS_kexec_file_load,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_mount,
        SYS_umount2,
        SYS_pivot_root,
        SYS_move_mount,
        SYS_open_tree,
        SYS_fsopen,
        SYS_fsconfig,
        SYS_fsmount,
        SYS_fspick,
        SYS_mount_setattr,
        SYS_unshare,
        SYS_setns,
        SYS_swapon,
        SYS_swapoff,
        SYS_reboot,
        SYS_acct,
        SYS_quotactl,
        SYS_name_to_handle_at,
        SYS_open_by_handle_at,
        SYS_syslog,
        SYS_vhangup,
    ]
}

/// System call numbers of the target, from the `libc` crate that `nix` re-exports.
mod libc_numbers {
    pub use nix::libc::*;

    /// Missing from the libc crate for aarch64 musl (0.2.191). aarch64 numbers its system
    /// calls by the kernel's generic table, include/uapi/asm-generic/unistd.h: 294.
    #[cfg(all(target_arch = "aarch64", target_env = "musl"))]
    pub const SYS_kexec_file_load: c_long = 294;
}

fn seccomp_filters(network: bool) -> Result<Vec<BpfProgram>, RestrictError> {
    use libc_numbers::*;
    let err = |e: seccompiler::BackendError| RestrictError::Seccomp(e.to_string());
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(err)?;
    let errno = |n: i32| SeccompAction::Errno(n.unsigned_abs());

    // Filter 1: EPERM for the denied calls, clone() creating namespaces, and (without
    // network) socket(). socketpair() stays: it only connects the caller to itself.
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = denied_syscalls()
        .into_iter()
        .map(|nr| (nr, Vec::new()))
        .collect();
    let namespace_flags = [
        CLONE_NEWUSER,
        CLONE_NEWNS,
        CLONE_NEWPID,
        CLONE_NEWNET,
        CLONE_NEWIPC,
        CLONE_NEWUTS,
        CLONE_NEWCGROUP,
    ];
    let clone_rules = namespace_flags
        .iter()
        .map(|&flag| {
            let flag = u64::from(flag.unsigned_abs());
            let condition = SeccompCondition::new(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?;
            SeccompRule::new(vec![condition])
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    rules.insert(SYS_clone, clone_rules);
    if !network {
        rules.insert(SYS_socket, Vec::new());
    }
    let deny = SeccompFilter::new(rules, SeccompAction::Allow, errno(EPERM), arch).map_err(err)?;

    // Filter 2: clone3() passes its flags in memory a filter cannot read; ENOSYS makes libc
    // fall back to clone(), which filter 1 checks.
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        errno(ENOSYS),
        arch,
    )
    .map_err(err)?;

    let mut programs = Vec::new();
    for filter in [deny, clone3] {
        programs.push(BpfProgram::try_from(filter).map_err(err)?);
    }
    #[cfg(target_arch = "x86_64")]
    programs.push(x32_filter());
    Ok(programs)
}

/// On x86_64 the x32 ABI reaches every system call under another number (bit 30 set), which
/// a list of x86_64 numbers would not match: deny the whole x32 range. seccompiler matches
/// exact numbers only, so this one range check is spelled in BPF.
#[cfg(target_arch = "x86_64")]
fn x32_filter() -> BpfProgram {
    use seccompiler::sock_filter;
    const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const BPF_JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
    const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    let enosys = u32::try_from(nix::libc::ENOSYS).unwrap_or(38);
    vec![
        // seccomp_data.nr is at offset 0 (the architecture was checked by filter 1).
        sock_filter {
            code: BPF_LD_W_ABS,
            jt: 0,
            jf: 0,
            k: 0,
        },
        sock_filter {
            code: BPF_JGE_K,
            jt: 0,
            jf: 1,
            k: X32_SYSCALL_BIT,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ERRNO | enosys,
        },
        sock_filter {
            code: BPF_RET_K,
            jt: 0,
            jf: 0,
            k: SECCOMP_RET_ALLOW,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_compile_for_both_network_settings() {
        let closed = seccomp_filters(false).unwrap();
        let open = seccomp_filters(true).unwrap();
        assert!(closed.len() >= 2);
        // The socket rule adds instructions.
        assert!(closed[0].len() > open[0].len());
    }

    #[test]
    fn etc_entries_exclude_what_only_root_may_read() {
        let entries = world_readable_etc();
        assert!(entries.iter().any(|p| p.ends_with("passwd")), "{entries:?}");
        assert!(
            !entries.iter().any(|p| p.ends_with("shadow")),
            "{entries:?}"
        );
    }

    #[test]
    fn landlock_rules_prepare_without_touching_the_caller() {
        let dir = std::env::temp_dir();
        let spec = Spec {
            program: "true".into(),
            args: vec![],
            cwd: dir.clone(),
            env: vec![],
            writable: vec![dir.clone()],
            readable: vec![PathBuf::from("/does/not/exist")],
            network: false,
            limits: Limits::default(),
        };
        let restrictions = Restrictions::prepare(&spec, &dir).unwrap();
        assert!(restrictions.ruleset.is_some());
        // Still unrestricted: the test process can read /.
        assert!(fs::read_dir("/").is_ok());
    }
}
