//! What each output `nix build` made must be, checked with the host's tools: the image
//! reads with skopeo, the Python module links no libpython, a binary answers `--version`
//! when this CPU has its variant's features.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::{Runner, SERVER, runner_path};
use crate::dist;
use crate::metadata::{Role, Workspace};
use crate::process;

/// `path`, or a decompressed copy of it in `scratch` when it is gzip-compressed: the image
/// `dockerTools.buildLayeredImage` writes is a `.tar.gz`, which skopeo 1.9 (Debian 12's)
/// refuses as a docker-archive ("invalid tar header"); newer ones read both.
fn readable_docker_archive(path: &Path, scratch: &Path) -> Result<PathBuf> {
    use std::io::{Read as _, Seek as _};
    let open = || std::fs::File::open(path).with_context(|| format!("opening {}", path.display()));
    let mut magic = [0u8; 2];
    let mut file = open()?;
    if file.read_exact(&mut magic).is_err() || magic != [0x1f, 0x8b] {
        return Ok(path.to_owned());
    }
    file.rewind()?;
    let tar = scratch.join("image.tar");
    let mut out =
        std::fs::File::create(&tar).with_context(|| format!("creating {}", tar.display()))?;
    std::io::copy(&mut flate2::read::GzDecoder::new(file), &mut out)
        .with_context(|| format!("decompressing {}", path.display()))?;
    Ok(tar)
}

/// What a built output must be, checked with the host's tools.
pub fn inspect(workspace: &Workspace, runner: &Runner, built: &[(String, PathBuf)]) -> Result<()> {
    for (attr, out) in built {
        let host_out = runner_path(runner, out);
        if attr.ends_with("-image") {
            let scratch = tempfile::tempdir()?;
            let archive = readable_docker_archive(&host_out, scratch.path())?;
            let json = process::output(
                Command::new("skopeo")
                    .args(["--insecure-policy", "inspect", "--config"])
                    .arg(format!("docker-archive:{}", archive.display())),
            )
            .with_context(|| format!("skopeo cannot read the image .#{attr}"))?;
            if !json.contains(&format!("/usr/local/bin/{SERVER}")) {
                bail!(".#{attr}: the image config has no /usr/local/bin/{SERVER} entrypoint");
            }
            eprintln!("nix-offline: .#{attr}: skopeo reads the image");
            continue;
        }
        let (name, variant) = attr
            .rsplit_once('-')
            .with_context(|| format!("{attr} is not <crate>-<variant>"))?;
        let spec = workspace
            .crates
            .iter()
            .find(|c| c.name == name)
            .with_context(|| format!("{attr}: no crate {name}"))?;
        let variant = workspace
            .variants
            .iter()
            .find(|v| v.name == variant)
            .with_context(|| format!("{attr}: no variant {variant}"))?;
        let target = dist::target_triple(spec.role, std::env::consts::ARCH);
        let missing = crate::cpu::missing_on_this_machine(&target, &variant.target_cpu)?;
        if spec.role == Role::PythonModule {
            let module = spec.python_module.as_deref().unwrap_or(name);
            let so = find_file(&host_out, &format!("{module}.abi3.so"))?;
            let dynamic = process::output(Command::new("readelf").arg("-d").arg(&so))?;
            if dynamic.contains("libpython")
                || dynamic.contains("RPATH")
                || dynamic.contains("RUNPATH")
            {
                bail!(
                    ".#{attr}: {} links libpython or carries an RPATH (not abi3-portable):\n{dynamic}",
                    so.display()
                );
            }
            eprintln!("nix-offline: .#{attr}: {} needs no libpython", so.display());
        } else if missing.is_empty() {
            let binary = host_out.join("bin").join(name);
            let version = process::output(Command::new(&binary).arg("--version"))?;
            eprintln!("nix-offline: .#{attr}: `{name} --version`: {version}");
        } else {
            eprintln!(
                "\n!!! nix-offline: .#{attr} NOT RUN: this CPU lacks {} !!!\n",
                missing.join(", ")
            );
        }
    }
    Ok(())
}

fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() && !path.is_symlink() {
                pending.push(path);
            } else if path.file_name().is_some_and(|n| n == name) {
                return Ok(path);
            }
        }
    }
    bail!("{name} is not in {}", dir.display())
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[test]
    fn a_gzip_archive_is_decompressed_and_a_plain_one_used_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let tar = b"not really a tar, only bytes";
        let plain = dir.path().join("plain.tar");
        std::fs::write(&plain, tar).unwrap();
        let scratch = dir.path().join("scratch");
        std::fs::create_dir(&scratch).unwrap();
        assert_eq!(readable_docker_archive(&plain, &scratch).unwrap(), plain);

        let gz = dir.path().join("image.tar.gz");
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(tar).unwrap();
        std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
        let readable = readable_docker_archive(&gz, &scratch).unwrap();
        assert_ne!(readable, gz);
        assert_eq!(std::fs::read(readable).unwrap(), tar);
        assert!(readable_docker_archive(&dir.path().join("absent"), &scratch).is_err());
    }
}
