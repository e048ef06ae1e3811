//! Builds for an architecture other than this machine's (the `architectures` of a variant
//! in the root Cargo.toml: today aarch64 servers built on x86_64), and their check under
//! qemu-user ([`emulate`]).
//!
//! Rust cross-compiles by itself; what it lacks is a C compiler for the target: tree-sitter's
//! grammars (code-intel) and ring (devops' TLS) contain C and assembly. That compiler is zig's
//! clang (the Python package `ziglang`, pinned to [`ZIGLANG_VERSION`], in its own venv under
//! the user's cache directory): one package carries clang and the musl headers of every
//! architecture, and installs without changing the system (Debian's cross gcc has no musl
//! headers for another architecture without adding a foreign dpkg architecture).
//!
//! zig only compiles C. Linking stays with the Rust toolchain: `rust-lld` with the target's
//! self-contained crt objects and musl `libc.a` from rustup's `rust-std`, the libc every musl
//! server of the project carries (x86_64 musl links the same files through `cc`; the Nix flake
//! builds each system natively the same way, `nix/packages.nix`). So a cross-built server is
//! static, has no interpreter, and contains no glibc and no zig libc.

pub mod emulate;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process;

/// The pinned `ziglang` package (zig's toolchain as a Python wheel). Its clang compiles the
/// C code of foreign-architecture builds; a new version installs beside the old one.
pub const ZIGLANG_VERSION: &str = "0.15.2";

/// The architecture of a target triple (`aarch64-unknown-linux-musl` → `aarch64`).
pub fn target_arch(target: &str) -> &str {
    target.split('-').next().unwrap_or_default()
}

/// Whether `target` is built for another architecture than this machine's.
pub fn is_foreign(target: &str) -> bool {
    target_arch(target) != std::env::consts::ARCH
}

/// Where the pinned zig toolchain lives: a venv in the user's cache directory, shared by every
/// checkout (it is ~400 MB) and recreated by `cargo xtask setup` when removed.
pub fn zig_home() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default()
                .join(".cache")
        });
    cache
        .join("mcp-foundry")
        .join(format!("ziglang-{ZIGLANG_VERSION}"))
}

/// The `zig` executable of the venv at `home` (`lib/python3.X/site-packages/ziglang/zig`).
pub fn zig_binary(home: &Path) -> Option<PathBuf> {
    fs::read_dir(home.join("lib"))
        .ok()?
        .flatten()
        .map(|entry| entry.path().join("site-packages/ziglang/zig"))
        .find(|zig| zig.is_file())
}

/// Whether the pinned zig is installed (the prerequisite probe).
pub fn zig_installed() -> bool {
    zig_binary(&zig_home()).is_some()
}

/// Installs the pinned `ziglang` into [`zig_home`]: `python3 -m venv` and pip, the ordinary
/// clients (the package registry is reachable wherever the Rust crates are).
pub fn install_zig() -> Result<()> {
    let home = zig_home();
    if !home.join("bin/python").is_file() {
        process::run(Command::new("python3").args(["-m", "venv"]).arg(&home))
            .context("creating the venv of the cross C compiler (needs python3-venv)")?;
    }
    process::run(Command::new(home.join("bin/python")).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        &format!("ziglang=={ZIGLANG_VERSION}"),
    ]))
}

/// zig's name of a Rust target (`aarch64-unknown-linux-musl` → `aarch64-linux-musl`). Only
/// static musl targets are set up: they are what the servers and the launcher ship as.
pub fn zig_target(rust_target: &str) -> Result<String> {
    match rust_target.split('-').collect::<Vec<_>>()[..] {
        [arch, _vendor, "linux", "musl"] if !arch.is_empty() => Ok(format!("{arch}-linux-musl")),
        _ => bail!(
            "no cross C toolchain is set up for {rust_target}: cross builds cover static \
             <arch>-unknown-linux-musl targets (servers and the launcher); build other targets \
             on a machine of that architecture"
        ),
    }
}

/// The C compiler wrapper for one target. The `cc` crate adds clang's `--target=<Rust
/// triple>`, which zig cannot parse: it is dropped, and zig's own `-target` decides. No
/// sanitizer runtime is linked (rust-lld links only Rust's musl), so none is compiled in.
pub fn cc_wrapper(zig: &Path, zig_target: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by cargo xtask (crates/xtask/src/cross.rs): zig's clang for {zig_target}.\n\
         for arg; do\n  \
           shift\n  \
           case \"$arg\" in --target=*) ;; *) set -- \"$@\" \"$arg\" ;; esac\n\
         done\n\
         exec {} cc -target {zig_target} -fno-sanitize=all \"$@\"\n",
        shell_quote(zig)
    )
}

/// The archiver wrapper: zig's llvm-ar, which knows every architecture's objects.
pub fn ar_wrapper(zig: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by cargo xtask (crates/xtask/src/cross.rs): zig's llvm-ar.\n\
         exec {} ar \"$@\"\n",
        shell_quote(zig)
    )
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// The environment of a cargo build for a foreign `target`: the `cc` crate's C compiler and
/// archiver for that target (wrappers written next to zig) and `rust-lld` as the linker.
/// Variables are per target, so build scripts and host code keep the host's `cc`.
pub fn cargo_env(target: &str) -> Result<Vec<(String, String)>> {
    let zig_target = zig_target(target)?;
    let home = zig_home();
    let zig = zig_binary(&home).with_context(|| {
        format!(
            "zig {ZIGLANG_VERSION} (the C compiler of {target} builds) is not installed in {}; \
             run `cargo xtask setup --for dist-cross`",
            home.display()
        )
    })?;
    let wrappers = home.join("wrappers");
    let cc = wrappers.join(format!("zig-cc-{zig_target}"));
    let ar = wrappers.join("zig-ar");
    write_executable(&cc, &cc_wrapper(&zig, &zig_target))?;
    write_executable(&ar, &ar_wrapper(&zig))?;
    let cc_suffix = target.replace('-', "_");
    Ok(vec![
        (format!("CC_{cc_suffix}"), cc.to_string_lossy().into_owned()),
        (format!("AR_{cc_suffix}"), ar.to_string_lossy().into_owned()),
        (
            format!("CARGO_TARGET_{}_LINKER", cc_suffix.to_uppercase()),
            // rustc finds it in the toolchain's own bin directory.
            "rust-lld".to_owned(),
        ),
    ])
}

/// Writes an executable script, leaving an identical one untouched.
fn write_executable(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temporary = path.with_extension("tmp");
    fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    fs::set_permissions(&temporary, fs::Permissions::from_mode(0o755))?;
    fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_map_to_zig_names_and_only_static_linux_musl_is_set_up() {
        assert_eq!(
            zig_target("aarch64-unknown-linux-musl").unwrap(),
            "aarch64-linux-musl"
        );
        assert_eq!(
            zig_target("x86_64-unknown-linux-musl").unwrap(),
            "x86_64-linux-musl"
        );
        let err = zig_target("aarch64-unknown-linux-gnu")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("aarch64-unknown-linux-gnu") && err.contains("musl"),
            "{err}"
        );
        assert!(zig_target("aarch64-apple-darwin").is_err());
        assert_eq!(target_arch("aarch64-unknown-linux-musl"), "aarch64");
        let host = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        assert!(!is_foreign(&host));
        assert!(is_foreign("riscv64gc-unknown-linux-musl"));
    }

    /// The wrapper, run by a real shell with a stand-in `zig` that prints its arguments: the
    /// `cc` crate's `--target=` is gone, zig's target comes first, and arguments with spaces
    /// or quotes arrive intact.
    #[test]
    fn the_cc_wrapper_drops_the_rust_triple_and_keeps_every_other_argument() {
        let dir = tempfile::tempdir().unwrap();
        let zig = dir.path().join("zig it's");
        write_executable(&zig, "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done\n").unwrap();
        let cc = dir.path().join("cc");
        write_executable(&cc, &cc_wrapper(&zig, "aarch64-linux-musl")).unwrap();
        let output = Command::new(&cc)
            .args([
                "-O3",
                "--target=aarch64-unknown-linux-musl",
                "-DNAME=a b",
                "-I/x/it's",
                "-c",
                "t.c",
            ])
            .output()
            .unwrap();
        assert!(output.status.success());
        let args: Vec<String> = String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(
            args,
            [
                "cc",
                "-target",
                "aarch64-linux-musl",
                "-fno-sanitize=all",
                "-O3",
                "-DNAME=a b",
                "-I/x/it's",
                "-c",
                "t.c"
            ]
        );
        let ar = dir.path().join("ar");
        write_executable(&ar, &ar_wrapper(&zig)).unwrap();
        let output = Command::new(&ar).args(["crs", "lib x.a"]).output().unwrap();
        assert_eq!(
            String::from_utf8(output.stdout).unwrap(),
            "ar\ncrs\nlib x.a\n"
        );
    }

    #[test]
    fn a_missing_zig_names_the_setup_command() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(zig_binary(dir.path()), None);
        fs::create_dir_all(dir.path().join("lib/python3.11/site-packages/ziglang")).unwrap();
        fs::write(
            dir.path().join("lib/python3.11/site-packages/ziglang/zig"),
            "",
        )
        .unwrap();
        assert_eq!(
            zig_binary(dir.path()),
            Some(dir.path().join("lib/python3.11/site-packages/ziglang/zig"))
        );
        let err = cargo_env("aarch64-unknown-linux-gnu")
            .unwrap_err()
            .to_string();
        assert!(err.contains("musl"), "{err}");
    }
}
