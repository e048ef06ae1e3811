//! exec-sandbox: run a command contained by the kernel, on Linux.
//!
//! Each run gets, set up in the child before `exec` (see [`helper`] for the process tree):
//!
//! | guarantee | mechanism |
//! |---|---|
//! | writes only inside the writable roots and a private scratch dir (`TMPDIR`); reads only there and in system locations | Landlock (ABI 3+; truncation included) |
//! | no network (unless [`Spec::network`]) | seccomp denies `socket()`, Landlock (ABI 4+) denies TCP, a network namespace has no interface |
//! | no signals to, or abstract sockets of, anything outside the run | Landlock scopes (ABI 6+) and the PID/network namespaces |
//! | every descendant dies when the run ends, times out or is stopped, even after `setsid`, double fork or `nohup` | a PID namespace whose init exits with the program (the kernel kills the rest) |
//! | no privileges | a user namespace, an empty capability bounding set, `no_new_privs` |
//! | less kernel surface | seccomp denies ptrace, bpf, perf, io_uring, keyrings, mounts, new namespaces, module and kexec calls |
//! | bounded resources | rlimits on CPU time, address space, processes, file size and open files |
//!
//! The program is started through a helper: the embedding binary itself, re-executed with a
//! hidden first argument, so the sandbox code runs in a fresh single-threaded process. Every
//! binary that uses [`Sandbox`] must therefore call [`run_helper_if_requested`] first thing in
//! `main`.
//!
//! [`Sandbox::probe`] sets everything up once and checks it from inside; [`Sandbox::spawn`]
//! with `require_all` refuses to run when any guarantee is missing, saying which.

pub mod helper;
pub mod parent;
pub mod restrict;
pub mod spec;

pub use helper::{HELPER_ARG, run_helper_if_requested};
pub use parent::{Contained, Sandbox, SandboxError};
pub use spec::{Exit, Limits, Protections, SYSTEM_READ_ONLY, Spec};
