//! `cargo xtask sign`: optional signing of a `dist/` with a key the user supplies.
//!
//! What is signed is one file, `dist/SHA256SUMS` (`sha256sum` format: every file of the
//! dist — artifacts, unstripped copies, SBOMs, provenance statements, manifest.json — sorted
//! by path), so one signature covers everything and `sha256sum -c` checks the rest. The
//! signature is OpenSSH's `SSHSIG` format made by `ssh-keygen -Y sign` (namespace
//! [`NAMESPACE`]) with an ed25519 (or any OpenSSH) key: a documented format
//! (OpenSSH PROTOCOL.sshsig) that git also uses, verified with tools users have, and no key
//! handling or cryptography code in this repository. To check a download:
//!
//! ```text
//! echo "release@example.org $(cat key.pub)" > allowed_signers
//! ssh-keygen -Y verify -f allowed_signers -I release@example.org -n mcp-foundry-dist \
//!     -s dist/SHA256SUMS.sig < dist/SHA256SUMS
//! (cd dist && sha256sum -c SHA256SUMS)
//! ```
//!
//! `cargo xtask sign --verify --allowed-signers F --identity I` runs both steps.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::dist::hash_file;
use crate::process;

/// The signature namespace (`ssh-keygen -n`): a signature made for something else (git
/// commits, other projects' files) does not verify as a dist signature.
pub const NAMESPACE: &str = "mcp-foundry-dist";
pub const SUMS: &str = "SHA256SUMS";
pub const SIGNATURE: &str = "SHA256SUMS.sig";

#[derive(Debug, Clone, Default, clap::Args)]
pub struct SignArgs {
    /// The dist directory (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// OpenSSH private key to sign with (ed25519 recommended; `ssh-keygen -t ed25519`).
    #[arg(long, value_name = "FILE", required_unless_present = "verify")]
    pub key: Option<PathBuf>,
    /// Verify instead: the signature against `--allowed-signers`, then every checksum.
    #[arg(long, requires_all = ["allowed_signers", "identity"])]
    pub verify: bool,
    /// `allowed_signers` file (`<identity> <public key>` lines; see ssh-keygen(1)).
    #[arg(long, value_name = "FILE")]
    pub allowed_signers: Option<PathBuf>,
    /// The signer identity to require (first field of its allowed_signers line).
    #[arg(long, value_name = "NAME")]
    pub identity: Option<String>,
}

/// `cargo xtask sign` with command-line arguments.
pub fn run(default_dist: &Path, args: &SignArgs) -> Result<()> {
    let dist = args.dist.clone().unwrap_or_else(|| default_dist.to_owned());
    if args.verify {
        let (Some(signers), Some(identity)) = (&args.allowed_signers, &args.identity) else {
            bail!("--verify needs --allowed-signers FILE and --identity NAME");
        };
        let checked = verify(&dist, signers, identity)?;
        eprintln!(
            "{}: signature by {identity} is good; {checked} files match",
            dist.display()
        );
        return Ok(());
    }
    let Some(key) = &args.key else {
        bail!("give the signing key with --key FILE (an OpenSSH private key)");
    };
    let signature = sign(&dist, key)?;
    eprintln!(
        "wrote {} and {}",
        dist.join(SUMS).display(),
        signature.display()
    );
    Ok(())
}

/// The `sha256sum` listing of every file under `dist` (sorted; the sums and signature
/// themselves and the staging directory excluded).
pub fn checksums(dist: &Path) -> Result<String> {
    let mut files = Vec::new();
    collect_files(dist, dist, &mut files)?;
    files.sort();
    if files.is_empty() {
        bail!(
            "{} has no files; run `cargo xtask dist` first",
            dist.display()
        );
    }
    let mut text = String::new();
    for relative in files {
        let (hex, _) = hash_file(&dist.join(&relative))?;
        text.push_str(&format!("{hex}  {relative}\n"));
    }
    Ok(text)
}

fn collect_files(root: &Path, dir: &Path, files: &mut Vec<String>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        let relative = path
            .strip_prefix(root)
            .with_context(|| format!("{} is outside {}", path.display(), root.display()))?
            .to_string_lossy()
            .into_owned();
        if relative == SUMS
            || relative == SIGNATURE
            || relative == crate::dist::out_dir::STAGING_DIR
        {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(root, &path, files)?;
        } else if kind.is_file() {
            if relative.contains('\n') || relative.contains('\\') {
                bail!("{relative:?}: a file name sha256sum cannot list plainly");
            }
            files.push(relative);
        }
    }
    Ok(())
}

/// Writes `dist/SHA256SUMS` and signs it with `key`; returns the signature's path.
pub fn sign(dist: &Path, key: &Path) -> Result<PathBuf> {
    if !key.is_file() {
        bail!("the signing key {} does not exist", key.display());
    }
    let sums = dist.join(SUMS);
    fs::write(&sums, checksums(dist)?).with_context(|| format!("writing {}", sums.display()))?;
    let signature = dist.join(SIGNATURE);
    // ssh-keygen refuses to overwrite; a stale signature of other sums must not survive.
    match fs::remove_file(&signature) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| format!("removing {}", signature.display()));
        }
        _ => {}
    }
    process::output(
        Command::new("ssh-keygen")
            .args(["-q", "-Y", "sign", "-n", NAMESPACE, "-f"])
            .arg(key)
            .arg(&sums)
            // A key with a passphrase would prompt: no terminal here, so it fails instead.
            .stdin(Stdio::null()),
    )
    .with_context(|| {
        format!(
            "signing {} with {} (ssh-keygen -Y sign; a key with a passphrase needs ssh-agent)",
            sums.display(),
            key.display()
        )
    })?;
    Ok(signature)
}

/// Checks the signature of `dist/SHA256SUMS` by `identity` in `allowed_signers`, then every
/// listed file; returns how many files were checked. Files not listed are an error too.
pub fn verify(dist: &Path, allowed_signers: &Path, identity: &str) -> Result<usize> {
    let sums = dist.join(SUMS);
    let signed = fs::read(&sums).with_context(|| format!("reading {}", sums.display()))?;
    let mut command = Command::new("ssh-keygen");
    command
        .args(["-Y", "verify", "-n", NAMESPACE, "-f"])
        .arg(allowed_signers)
        .arg("-I")
        .arg(identity)
        .arg("-s")
        .arg(dist.join(SIGNATURE));
    run_with_input(&mut command, &signed).with_context(|| {
        format!(
            "the signature {} is not a good signature of {} by {identity}",
            dist.join(SIGNATURE).display(),
            sums.display()
        )
    })?;
    let listed = String::from_utf8(signed).context("SHA256SUMS is not UTF-8")?;
    let current = checksums(dist)?;
    if listed != current {
        let old: Vec<&str> = listed.lines().collect();
        let differing: Vec<&str> = current.lines().filter(|l| !old.contains(l)).collect();
        let new: Vec<&str> = current.lines().collect();
        let missing: Vec<&str> = old.iter().copied().filter(|l| !new.contains(l)).collect();
        bail!(
            "{} does not match the signed checksums: changed or added: {differing:?}; \
             missing: {missing:?}",
            dist.display()
        );
    }
    Ok(listed.lines().count())
}

/// Runs `command` with `input` on its stdin; fails with its stderr unless it succeeds.
fn run_with_input(command: &mut Command, input: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let shown = process::display(command);
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start `{shown}`"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(input)?;
    }
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "`{shown}` failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
