//! Programs a server runs at run time (bash-god's `execute_command` runs `bash -c`), shipped
//! in its images as statically linked binaries from Debian. A server names them in
//! `[package.metadata.mcp-foundry] image-programs`; this table says where each comes from.
//! Without them the image would start and answer MCP, but every execution would fail with
//! "is bash installed?". For this machine's architecture the installed package is used (a
//! prerequisite); for another one (arm64 images built on x86-64) the same package of that
//! architecture is downloaded once with apt into a private cache and unpacked there, without
//! touching the system's package state.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use object::read::elf::ProgramHeader as _;
use object::{Architecture, Object as _};
use oci_spec::image::Arch;

use crate::apt::{self, PrivateApt};

/// A static program an image can ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticProgram {
    /// The name a server declares (`image-programs = ["bash"]`).
    pub name: &'static str,
    /// Where the distribution package installs the static build on this machine. Its
    /// package is in the prerequisites list ([`crate::prereq::PROGRAMS`]).
    pub host_path: &'static str,
    /// The Debian package (fetched for other architectures).
    pub debian: &'static str,
    /// Where the image has it: on the PATH the server gives the commands it runs.
    pub image_path: &'static str,
    /// How the image smoke test runs it inside the image, the way the server does, and
    /// what its output must start with (the rest is reported).
    pub check_args: &'static [&'static str],
    pub check_output: &'static str,
}

/// Every program an image can ship.
pub const STATIC_PROGRAMS: &[StaticProgram] = &[StaticProgram {
    name: "bash",
    host_path: "/bin/bash-static",
    debian: "bash-static",
    image_path: "usr/bin/bash",
    check_args: &["-c", "echo \"$((6 * 7)) $BASH_VERSION\""],
    check_output: "42 ",
}];

/// One program resolved for an image: where it goes and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgramFile {
    pub image_path: String,
    pub data: Vec<u8>,
}

/// The files of `names` for an image of `architecture`, each checked to be a static ELF
/// executable of that architecture (a dynamically linked one would not start in an image
/// that has no libc). `cache` holds the packages fetched for other architectures.
pub fn resolve(names: &[String], architecture: &Arch, cache: &Path) -> Result<Vec<ProgramFile>> {
    names
        .iter()
        .map(|name| {
            let program = STATIC_PROGRAMS
                .iter()
                .find(|p| p.name == name)
                .with_context(|| {
                    format!(
                        "image-programs names `{name}`, which no image can ship; known: {}",
                        STATIC_PROGRAMS
                            .iter()
                            .map(|p| p.name)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?;
            let path = if *architecture == host_architecture() {
                PathBuf::from(program.host_path)
            } else {
                fetch_foreign(program, architecture, cache)?
            };
            let data = read_static(&path, architecture)?;
            Ok(ProgramFile {
                image_path: program.image_path.to_owned(),
                data,
            })
        })
        .collect()
}

fn host_architecture() -> Arch {
    match std::env::consts::ARCH {
        "x86_64" => Arch::Amd64,
        "aarch64" => Arch::ARM64,
        other => Arch::Other(other.to_owned()),
    }
}

/// `program`'s file from its Debian package for `architecture`, downloaded and unpacked
/// under `cache/<arch>/` on first use: apt with a private package list of that architecture
/// only (the sources are the system's), then `dpkg-deb -x`.
fn fetch_foreign(program: &StaticProgram, architecture: &Arch, cache: &Path) -> Result<PathBuf> {
    let arch = architecture.to_string();
    let dir = cache.join(&arch).join(program.debian);
    let unpacked = dir.join("root");
    let file = unpacked.join(program.host_path.trim_start_matches('/'));
    if file.is_file() {
        return Ok(file);
    }
    // OCI's names of the two architectures (`amd64`, `arm64`) are Debian's.
    let fix = || {
        format!(
            "the {arch} image needs {} from the Debian package {}:{arch}; this needs apt-get with \
             the system's Debian sources and network access to the Debian archive",
            program.name, program.debian
        )
    };
    let apt = PrivateApt::update(&cache.join(&arch).join("apt"), &arch).with_context(fix)?;
    let deb = apt
        .download(program.debian, &dir.join("download"))
        .with_context(fix)?;
    let partial = dir.join("root.partial");
    let _ = fs::remove_dir_all(&partial);
    apt::unpack(&deb, &partial)?;
    fs::rename(&partial, &unpacked)
        .with_context(|| format!("renaming {} to {}", partial.display(), unpacked.display()))?;
    if !file.is_file() {
        bail!("{} has no {}", deb.display(), program.host_path);
    }
    Ok(file)
}

/// Reads a static executable for `architecture`, or says why it is not one.
pub fn read_static(path: &Path, architecture: &Arch) -> Result<Vec<u8>> {
    let data = fs::read(path).with_context(|| {
        format!(
            "reading {}; run `cargo xtask setup --for image` to install it",
            path.display()
        )
    })?;
    let file = object::File::parse(&*data)
        .with_context(|| format!("{} is not an executable object file", path.display()))?;
    let wanted = match architecture {
        Arch::Amd64 => Architecture::X86_64,
        Arch::ARM64 => Architecture::Aarch64,
        other => bail!("no static programs are known for images of architecture {other}"),
    };
    if file.architecture() != wanted {
        bail!(
            "{} is built for {:?}, but the image is for {architecture}; no static build of it \
             exists on this machine for that architecture",
            path.display(),
            file.architecture()
        );
    }
    let interpreter = match &file {
        object::File::Elf64(elf) => elf
            .elf_program_headers()
            .iter()
            .any(|header| header.p_type(elf.endian()) == object::elf::PT_INTERP),
        _ => bail!("{} is not a 64-bit ELF executable", path.display()),
    };
    // Without an interpreter the kernel loads it alone: static (or static-pie).
    if interpreter {
        bail!(
            "{} is dynamically linked; an image has no libc to run it with",
            path.display()
        );
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    #[test]
    fn unknown_programs_are_refused_with_the_known_ones() {
        let cache = tempfile::tempdir().unwrap();
        let err = resolve(&["zsh".to_owned()], &Arch::Amd64, cache.path()).unwrap_err();
        assert!(format!("{err:#}").contains("known: bash"), "{err:#}");
    }

    #[test]
    fn a_dynamically_linked_program_is_refused() {
        // The test binary itself is dynamically linked (gnu target) with an interpreter.
        let me = std::env::current_exe().unwrap();
        let err = read_static(&me, &Arch::Amd64).unwrap_err();
        assert!(format!("{err:#}").contains("dynamically linked"), "{err:#}");
    }

    #[test]
    fn a_program_of_another_architecture_is_refused() {
        let me = std::env::current_exe().unwrap();
        let err = read_static(&me, &Arch::ARM64).unwrap_err();
        assert!(format!("{err:#}").contains("built for X86_64"), "{err:#}");
    }

    #[test]
    fn an_image_of_the_other_architecture_gets_that_architectures_bash_and_it_runs() {
        // Downloads Debian's bash-static of the other architecture (the test needs the
        // Debian archive, as `cargo xtask image` does for arm64 images).
        let (other, qemu) = match host_architecture() {
            Arch::Amd64 => (Arch::ARM64, "qemu-aarch64"),
            _ => (Arch::Amd64, "qemu-x86_64"),
        };
        let cache = tempfile::tempdir().unwrap();
        let files = resolve(&["bash".to_owned()], &other, cache.path()).unwrap();
        let fetched = cache
            .path()
            .join(other.to_string())
            .join("bash-static/root/bin/bash-static");
        assert_eq!(files[0].data, fs::read(&fetched).unwrap());
        // The second resolve uses the cache (no download: the apt lists may go).
        fs::remove_dir_all(cache.path().join(other.to_string()).join("apt")).unwrap();
        assert_eq!(
            resolve(&["bash".to_owned()], &other, cache.path()).unwrap(),
            files
        );
        let out = Command::new(qemu)
            .arg(&fetched)
            .args(STATIC_PROGRAMS[0].check_args)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with(STATIC_PROGRAMS[0].check_output),
            "{stdout:?} {out:?}"
        );
    }

    #[test]
    fn the_static_bash_of_this_machine_is_accepted() {
        // A prerequisite of the tests too (`cargo xtask setup` installs it).
        let cache = tempfile::tempdir().unwrap();
        let files = resolve(&["bash".to_owned()], &host_architecture(), cache.path()).unwrap();
        assert_eq!(files[0].image_path, "usr/bin/bash");
        assert_eq!(
            files[0].data,
            fs::read(STATIC_PROGRAMS[0].host_path).unwrap()
        );
    }
}
