//! Builds for an architecture other than this machine's (the `architectures` of a variant
//! in the root Cargo.toml: aarch64 servers and the aarch64 Python module built on x86_64),
//! their check under qemu-user ([`emulate`]), and the old-glibc link of the Python module
//! on every architecture.
//!
//! Rust cross-compiles by itself; what it lacks is a C compiler for the target: tree-sitter's
//! grammars (code-intel) and ring (devops' TLS) contain C and assembly. That compiler is zig's
//! clang (the Python package `ziglang`, pinned to [`ZIGLANG_VERSION`], in its own venv under
//! the user's cache directory): one package carries clang and the musl headers of every
//! architecture, and installs without changing the system (Debian's cross gcc has no musl
//! headers for another architecture without adding a foreign dpkg architecture).
//!
//! - Static musl targets (servers, launcher): zig only compiles C. Linking stays with the
//!   Rust toolchain: `rust-lld` with the target's self-contained crt objects and musl `libc.a`
//!   from rustup's `rust-std`, the libc every musl server of the project carries. This
//!   machine's musl target links the same way ([`musl_linker_env`]; its C code stays with
//!   `musl-gcc`), and so does the Nix flake (`nix/packages.nix`), so the link of a server
//!   depends on neither the host's nor nixpkgs' binutils. So a cross-built server is static,
//!   has no interpreter, and contains no glibc and no zig libc.
//! - glibc targets (the Python module, this machine's architecture included): zig also
//!   links, against its stub libraries of glibc [`GLIBC_FLOOR`] (`-target
//!   <arch>-linux-gnu.2.17`), so the module runs on every glibc since then (manylinux2014)
//!   instead of needing the build machine's glibc. zig ships the headers and symbol lists
//!   of every glibc version for every architecture, so one mechanism serves the native and
//!   the cross build, with no sysroot to download. The linker is given as `-C linker` in the
//!   module's own rustflags (not `CARGO_TARGET_<T>_LINKER`, which for this machine's triple
//!   would also relink build scripts and proc-macros, and make cargo rebuild them whenever
//!   another job links them with `cc`).

pub mod emulate;

use anyhow::{Context, Result, bail};
use std::fs;
use std::path::{Path, PathBuf};

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

/// Where the pinned zig toolchain lives: a venv of its own ([`crate::prereq::venv`]; it is
/// ~400 MB).
pub fn zig_home() -> PathBuf {
    crate::prereq::venv::home("ziglang", ZIGLANG_VERSION)
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

/// Installs the pinned `ziglang` into [`zig_home`].
pub fn install_zig() -> Result<()> {
    crate::prereq::venv::install("ziglang", ZIGLANG_VERSION)
}

/// The glibc the Python module is linked against on every architecture: the manylinux2014
/// floor (PEP 599), also the oldest glibc Rust's `*-linux-gnu` targets support.
pub const GLIBC_FLOOR: &str = "2.17";

/// The C library of a Rust target triple, as far as its toolchain setup cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetLibc {
    /// Static musl (servers, launcher): zig compiles C, rust-lld links Rust's own musl.
    Musl,
    /// glibc (the Python module): zig compiles and links against glibc [`GLIBC_FLOOR`].
    Glibc,
}

/// The C library of a Linux target (`aarch64-unknown-linux-musl` → musl).
pub fn target_libc(rust_target: &str) -> Result<TargetLibc> {
    match rust_target.split('-').collect::<Vec<_>>()[..] {
        [arch, _vendor, "linux", "musl"] if !arch.is_empty() => Ok(TargetLibc::Musl),
        [arch, _vendor, "linux", "gnu"] if !arch.is_empty() => Ok(TargetLibc::Glibc),
        _ => bail!(
            "no zig toolchain is set up for {rust_target}: it covers static \
             <arch>-unknown-linux-musl targets (servers and the launcher) and \
             <arch>-unknown-linux-gnu (the Python module); build other targets on a machine of \
             that architecture"
        ),
    }
}

/// zig's name of a Rust target: `aarch64-unknown-linux-musl` → `aarch64-linux-musl`,
/// `x86_64-unknown-linux-gnu` → `x86_64-linux-gnu.2.17` (glibc [`GLIBC_FLOOR`]).
pub fn zig_target(rust_target: &str) -> Result<String> {
    let arch = target_arch(rust_target);
    Ok(match target_libc(rust_target)? {
        TargetLibc::Musl => format!("{arch}-linux-musl"),
        TargetLibc::Glibc => format!("{arch}-linux-gnu.{GLIBC_FLOOR}"),
    })
}

/// Whether a build for `rust_target` uses zig: every foreign target (its C compiler) and
/// every glibc target (its glibc floor). This machine's musl target keeps `musl-gcc`.
pub fn uses_zig(rust_target: &str) -> bool {
    is_foreign(rust_target) || matches!(target_libc(rust_target), Ok(TargetLibc::Glibc))
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

/// The linker wrapper of glibc targets: zig's clang driving its lld against zig's stub
/// libraries of glibc [`GLIBC_FLOOR`]. rustc talks to it as to `cc`, with a few arguments
/// zig does not take: `-fuse-ld=lld` and `-B<rust's gcc-ld>` (rustc's own lld, which zig
/// replaces with its own), and `-lgcc_s` (zig links its LLVM libunwind statically instead,
/// so the module needs no libgcc_s from the system).
pub fn linker_wrapper(zig: &Path, zig_target: &str) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by cargo xtask (crates/xtask/src/cross.rs): zig's linker for {zig_target}.\n\
         for arg; do\n  \
           shift\n  \
           case \"$arg\" in\n    \
             --target=*|-fuse-ld=*|-B*) ;;\n    \
             -lgcc_s) set -- \"$@\" -lunwind ;;\n    \
             *) set -- \"$@\" \"$arg\" ;;\n  \
           esac\n\
         done\n\
         exec {} cc -target {zig_target} \"$@\"\n",
        shell_quote(zig)
    )
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// What a cargo build for `target` needs beyond the target triple: environment variables
/// and rustflags of that target's artifacts only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TargetToolchain {
    pub env: Vec<(String, String)>,
    pub rustflags: Vec<String>,
}

/// The linker of a static musl build for `target`: the Rust toolchain's `rust-lld` (rustc
/// finds it in the toolchain's own bin directory), with the target's self-contained crt
/// objects and musl `libc.a`. Per target, so build scripts and proc-macros keep `cc`.
pub fn musl_linker_env(target: &str) -> (String, String) {
    (
        format!(
            "CARGO_TARGET_{}_LINKER",
            target.replace('-', "_").to_uppercase()
        ),
        "rust-lld".to_owned(),
    )
}

/// The toolchain of a build for `target`. With zig ([`uses_zig`]): the `cc` crate's C
/// compiler and archiver for that target (wrappers written next to zig), and the linker:
/// `rust-lld` for static musl, zig against glibc [`GLIBC_FLOOR`] for glibc. This machine's
/// musl target gets only its linker, `rust-lld`. Every variable and flag is per target, so
/// build scripts and proc-macros keep this machine's `cc`.
pub fn toolchain_for(target: &str) -> Result<TargetToolchain> {
    let libc = target_libc(target)?;
    if !uses_zig(target) {
        return Ok(TargetToolchain {
            env: vec![musl_linker_env(target)],
            rustflags: Vec::new(),
        });
    }
    let zig_target = zig_target(target)?;
    let home = zig_home();
    let zig = zig_binary(&home).with_context(|| {
        format!(
            "zig {ZIGLANG_VERSION} (the C compiler and glibc linker of {target} builds) is not \
             installed in {}; run `cargo xtask setup --for dist-python --for dist-cross`",
            home.display()
        )
    })?;
    let wrappers = home.join("wrappers");
    let cc = wrappers.join(format!("zig-cc-{zig_target}"));
    let ar = wrappers.join("zig-ar");
    write_executable(&cc, &cc_wrapper(&zig, &zig_target))?;
    write_executable(&ar, &ar_wrapper(&zig))?;
    let cc_suffix = target.replace('-', "_");
    let mut toolchain = TargetToolchain {
        env: vec![
            (format!("CC_{cc_suffix}"), cc.to_string_lossy().into_owned()),
            (format!("AR_{cc_suffix}"), ar.to_string_lossy().into_owned()),
        ],
        rustflags: Vec::new(),
    };
    match libc {
        TargetLibc::Musl => toolchain.env.push(musl_linker_env(target)),
        TargetLibc::Glibc => {
            let linker = wrappers.join(format!("zig-ld-{zig_target}"));
            write_executable(&linker, &linker_wrapper(&zig, &zig_target))?;
            toolchain
                .rustflags
                .push(format!("-Clinker={}", linker.display()));
        }
    }
    Ok(toolchain)
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
    use std::process::Command;

    use super::*;

    #[test]
    fn targets_map_to_zig_names_with_the_glibc_floor() {
        assert_eq!(
            zig_target("aarch64-unknown-linux-musl").unwrap(),
            "aarch64-linux-musl"
        );
        assert_eq!(
            zig_target("x86_64-unknown-linux-musl").unwrap(),
            "x86_64-linux-musl"
        );
        assert_eq!(
            zig_target("aarch64-unknown-linux-gnu").unwrap(),
            "aarch64-linux-gnu.2.17"
        );
        assert_eq!(
            zig_target("x86_64-unknown-linux-gnu").unwrap(),
            "x86_64-linux-gnu.2.17"
        );
        let err = zig_target("aarch64-apple-darwin").unwrap_err().to_string();
        assert!(
            err.contains("aarch64-apple-darwin") && err.contains("musl"),
            "{err}"
        );
        assert!(zig_target("x86_64-pc-windows-gnu").is_err());
        assert_eq!(target_arch("aarch64-unknown-linux-musl"), "aarch64");
        let host = format!("{}-unknown-linux-musl", std::env::consts::ARCH);
        assert!(!is_foreign(&host));
        assert!(is_foreign("riscv64gc-unknown-linux-musl"));
        // This machine's musl target keeps musl-gcc; glibc targets always use zig.
        assert!(!uses_zig(&host));
        assert!(uses_zig(&format!(
            "{}-unknown-linux-gnu",
            std::env::consts::ARCH
        )));
        assert!(uses_zig("riscv64gc-unknown-linux-musl"));
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

    /// The glibc linker wrapper, run by a real shell with a stand-in `zig`: what zig does
    /// not take is gone or replaced, everything else arrives intact and in order.
    #[test]
    fn the_linker_wrapper_rewrites_only_what_zig_does_not_take() {
        let dir = tempfile::tempdir().unwrap();
        let zig = dir.path().join("zig");
        write_executable(&zig, "#!/bin/sh\nfor a; do printf '%s\\n' \"$a\"; done\n").unwrap();
        let linker = dir.path().join("ld");
        write_executable(&linker, &linker_wrapper(&zig, "x86_64-linux-gnu.2.17")).unwrap();
        let output = Command::new(&linker)
            .args([
                "-m64",
                "-fuse-ld=lld",
                "-B/rustup/lib/rustlib/x86_64-unknown-linux-gnu/bin/gcc-ld",
                "/t/a b.o",
                "-Wl,--version-script=/tmp/list",
                "-lgcc_s",
                "-lc",
                "-shared",
                "-o",
                "/t/libm.so",
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
                "x86_64-linux-gnu.2.17",
                "-m64",
                "/t/a b.o",
                "-Wl,--version-script=/tmp/list",
                "-lunwind",
                "-lc",
                "-shared",
                "-o",
                "/t/libm.so"
            ]
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
        let err = toolchain_for("aarch64-apple-darwin")
            .unwrap_err()
            .to_string();
        assert!(err.contains("musl"), "{err}");
    }
}
