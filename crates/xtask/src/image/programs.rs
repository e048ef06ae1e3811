//! Programs a server runs at run time (bash-god's `execute_command` runs `bash -c`), shipped
//! in its images as statically linked binaries from this machine's distribution. A server
//! names them in `[package.metadata.mcp-foundry] image-programs`; this table says where each
//! comes from. Without them the image would start and answer MCP, but every execution would
//! fail with "is bash installed?".

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use object::read::elf::ProgramHeader as _;
use object::{Architecture, Object as _};
use oci_spec::image::Arch;

/// A static program an image can ship.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticProgram {
    /// The name a server declares (`image-programs = ["bash"]`).
    pub name: &'static str,
    /// Where the distribution package installs the static build on this machine. Its
    /// package is in the prerequisites list ([`crate::prereq::PROGRAMS`]).
    pub host_path: &'static str,
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
/// that has no libc).
pub fn resolve(names: &[String], architecture: &Arch) -> Result<Vec<ProgramFile>> {
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
            let data = read_static(Path::new(program.host_path), architecture)?;
            Ok(ProgramFile {
                image_path: program.image_path.to_owned(),
                data,
            })
        })
        .collect()
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
    use super::*;

    #[test]
    fn unknown_programs_are_refused_with_the_known_ones() {
        let err = resolve(&["zsh".to_owned()], &Arch::Amd64).unwrap_err();
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
    fn the_static_bash_of_this_machine_is_accepted() {
        // A prerequisite of the tests too (`cargo xtask setup` installs it).
        let files = resolve(&["bash".to_owned()], &Arch::Amd64).unwrap();
        assert_eq!(files[0].image_path, "usr/bin/bash");
    }
}
