//! Runs a built image the way a container engine would, without one: `skopeo inspect` must
//! accept it (and show the image's labels), `umoci unpack` turns it into a runtime bundle
//! whose files must be the dist artifacts, and the bundle's process (as umoci derived it
//! from the image config: args, env, user) runs chrooted into the rootfs. Over its stdio we
//! complete an MCP handshake, `tools/list` and one `tools/call` ([`crate::mcp_client`]).
//!
//! Variant code runs only where this CPU can run it ([`crate::cpu::support`]): a `znver4`
//! image on a Zen 3 is checked (layout, config, labels) but not started, and the run is
//! reported as SKIPPED. The dispatch image always runs (the launcher picks a build this CPU
//! can run, and must pick the one we expect); it also runs under `qemu-x86_64 -cpu Haswell`
//! (no AVX-512, no SSE4A), where the launcher must pick the best build a Haswell runs
//! (x86-64-v3 when the table has it) and that build must answer MCP ([`dispatch`]).
//!
//! An image of another architecture (linux/arm64) runs the same way under qemu-user: with no
//! binfmt_misc here, the static `qemu-<arch>-static` is copied into the rootfs and chroot
//! starts it in front of every program, as the image's user ([`emulation`]). Without it the
//! image is checked but not run, loudly.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{BIN_DIR, LAUNCHER_BIN, VARIANT_LABEL, VARIANTS_DIR};
use crate::cpu;
use crate::dist::sha256_hex;
use crate::mcp_client::{RESPONSE_TIMEOUT, SmokeCall, mcp_session};

mod dispatch;
mod emulation;
use dispatch::check_dispatch;
pub use dispatch::{expected_choice, expected_choice_on};
use emulation::Emulation;

/// One variant build inside an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageVariant {
    pub name: String,
    /// The tag of its own image: the variant name, or `<variant>-<arch>` for a build of
    /// another architecture than the layout's main one.
    pub tag: String,
    pub target: String,
    pub target_cpu: String,
    /// sha256 of the server binary as dist recorded it.
    pub sha256: String,
}

impl ImageVariant {
    pub fn of(artifact: &crate::dist::Artifact, tag: String) -> ImageVariant {
        ImageVariant {
            name: artifact.variant.clone(),
            tag,
            target: artifact.target.clone(),
            target_cpu: artifact.target_cpu.clone(),
            sha256: artifact.sha256.clone(),
        }
    }

    /// Whether the build is for the layout's main architecture (and so in `latest`).
    pub fn is_main_arch(&self) -> bool {
        self.tag == self.name
    }
}

#[derive(Debug, Clone)]
pub struct SmokeTarget {
    pub layout_dir: PathBuf,
    pub tag: String,
    pub server: String,
    pub call: Option<SmokeCall>,
    /// Programs the image ships for the server (`image-programs`): each must run in it.
    pub programs: Vec<String>,
    /// The builds in the image: one for a variant image, every variant for the dispatch one.
    pub variants: Vec<ImageVariant>,
    /// For the dispatch image: sha256 of the launcher it must contain.
    pub launcher_sha256: Option<String>,
}

/// What the smoke test of one image did.
#[derive(Debug, Clone)]
pub struct SmokeOutcome {
    pub report: String,
    /// Set when this CPU cannot run the image's build: the loud notice of what was not run.
    pub skipped_run: Option<String>,
}

/// The process `umoci unpack` derived from the image config.
#[derive(Debug, Clone, PartialEq)]
pub struct BundleProcess {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub uid: u32,
    pub gid: u32,
    pub cwd: String,
}

pub fn smoke_image(target: &SmokeTarget) -> Result<SmokeOutcome> {
    let dispatch = target.launcher_sha256.is_some();
    let reference = format!("{}:{}", target.layout_dir.display(), target.tag);
    let inspect = skopeo_inspect(&reference)?;
    if inspect["Architecture"] != "amd64" && inspect["Architecture"] != "arm64" {
        bail!(
            "skopeo reports architecture {} for {reference}",
            inspect["Architecture"]
        );
    }
    let expected_label = match target.variants.first() {
        Some(variant) if !dispatch => variant.name.as_str(),
        _ => "dispatch",
    };
    if inspect["Labels"][VARIANT_LABEL] != expected_label {
        bail!(
            "label {VARIANT_LABEL} is {}, expected {expected_label:?}",
            inspect["Labels"][VARIANT_LABEL]
        );
    }

    let work = tempfile::tempdir().context("creating a temporary directory for the bundle")?;
    let bundle = work.path().join("bundle");
    let process = umoci_unpack(&reference, &bundle)?;
    let rootfs = bundle.join("rootfs");
    if process.uid == 0 {
        bail!("the image runs as root; its config must name the non-root user");
    }
    check_layout(&rootfs, target)?;
    let host_arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let architecture = inspect["Architecture"].as_str().unwrap_or_default();
    let emulation = if architecture == host_arch {
        None
    } else {
        let what = format!(
            "running {}:{} (linux/{architecture}) under qemu-user",
            target.server, target.tag
        );
        match emulation::install(&rootfs, architecture, &what)? {
            Ok(emulation) => Some(emulation),
            Err(notice) => {
                return Ok(SmokeOutcome {
                    report: format!(
                        "uid {} | layout, config, labels ok | not run (no emulator)",
                        process.uid
                    ),
                    skipped_run: Some(notice),
                });
            }
        }
    };
    let run = Run {
        rootfs: &rootfs,
        process: &process,
        emulation: emulation.as_ref(),
    };
    let programs = run_programs(&run, target)?;

    if !dispatch {
        let variant = target
            .variants
            .first()
            .context("a variant image needs its variant")?;
        let support = match &emulation {
            Some(emulation) => emulation.support(&variant.target, &variant.target_cpu)?,
            None => cpu::support(&variant.target, &variant.target_cpu)?,
        };
        if let Some(notice) = support.skip_notice(&format!(
            "running {}:{} (its layout, config and labels were checked)",
            target.server, target.tag
        )) {
            return Ok(SmokeOutcome {
                report: format!(
                    "uid {} | layout, config, labels ok{programs} | not run on this CPU",
                    process.uid
                ),
                skipped_run: Some(notice),
            });
        }
    }

    let version = run_to_end(run.entrypoint().arg("--version"))?;
    // `--version` names the variant the binary was built as (the runtime's build info).
    let running = version
        .lines()
        .find_map(|line| line.strip_prefix("variant:"))
        .map(str::trim)
        .with_context(|| format!("`--version` names no variant:\n{version}"))?
        .to_owned();
    if !dispatch && target.variants.first().is_none_or(|v| v.name != running) {
        bail!(
            "the {} image runs a binary built as variant {running}",
            target.tag
        );
    }
    let session = mcp_session(run.entrypoint(), target.call.as_ref())
        .context("MCP session with the chrooted entrypoint")?;
    let call_note = if session.call_is_error {
        " (isError)"
    } else {
        ""
    };
    let mut report = format!(
        "[{}] uid {} | layout, config, labels ok{programs} | {} tools | called {}{call_note} | {} ({running} build)",
        session.server_name,
        process.uid,
        session.tool_count,
        session.called,
        version.lines().next().unwrap_or_default(),
    );
    if let Some(emulation) = &emulation {
        report.push_str(&format!(" | under {}", emulation.describe()));
    }
    if dispatch {
        report.push_str(&check_dispatch(&rootfs, target)?);
    }
    Ok(SmokeOutcome {
        report,
        skipped_run: None,
    })
}

/// How the unpacked image's programs start: chrooted into `rootfs` as the image's user,
/// through the emulator for another architecture.
struct Run<'a> {
    rootfs: &'a Path,
    process: &'a BundleProcess,
    emulation: Option<&'a Emulation>,
}

impl Run<'_> {
    /// `env -i <image env> chroot --userspec=uid:gid <rootfs> [<emulator>]`, to which the
    /// program is added.
    fn as_image_user(&self) -> Command {
        let mut command = chroot_as_image_user(self.rootfs, self.process);
        if let Some(emulation) = self.emulation {
            command.args(emulation.prefix());
        }
        command
    }

    /// The image's process with only the image's environment, as the image's user.
    fn entrypoint(&self) -> Command {
        let mut command = self.as_image_user();
        command
            .args(&self.process.args)
            // chroot(1) starts in `/`, a container engine in the image's working directory,
            // and the servers refuse `/` as an implicit root: name the working directory.
            .args(["--root", &self.process.cwd]);
        command
    }
}

/// Runs every program the image ships for its server, as the image's user with the image's
/// environment, the way the server runs it (bash: `bash -c`), and returns the report's note.
/// They are static baseline builds, so they run on any CPU of the architecture.
fn run_programs(run: &Run<'_>, target: &SmokeTarget) -> Result<String> {
    let mut note = String::new();
    for name in &target.programs {
        let program = super::programs::STATIC_PROGRAMS
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("the image ships an unknown program `{name}`"))?;
        let image_program = format!("/{}", program.image_path);
        let mut command = run.as_image_user();
        command.arg(&image_program).args(program.check_args);
        let out = run_to_end(&mut command)
            .with_context(|| format!("running {image_program} inside the image"))?;
        let Some(rest) = out.trim().strip_prefix(program.check_output) else {
            bail!(
                "{image_program} {:?} inside the image printed {out:?}, expected {:?}…",
                program.check_args,
                program.check_output
            );
        };
        note.push_str(&format!(" | {image_program} {rest} runs"));
    }
    Ok(note)
}

/// The files of the unpacked image are the dist artifacts, where the image layout says.
fn check_layout(rootfs: &Path, target: &SmokeTarget) -> Result<()> {
    let expect_file = |relative: &str, sha256: &str| -> Result<()> {
        let path = rootfs.join(relative);
        let data = std::fs::read(&path).with_context(|| format!("the image lacks /{relative}"))?;
        let actual = sha256_hex(&data);
        if actual != sha256 {
            bail!("/{relative} in the image has sha256 {actual}, but dist recorded {sha256}");
        }
        Ok(())
    };
    let entrypoint = format!("{BIN_DIR}/{}", target.server);
    match &target.launcher_sha256 {
        None => {
            let variant = target
                .variants
                .first()
                .context("a variant image needs its variant")?;
            expect_file(&entrypoint, &variant.sha256)
        }
        Some(launcher) => {
            expect_file(&format!("{BIN_DIR}/{LAUNCHER_BIN}"), launcher)?;
            let link = std::fs::read_link(rootfs.join(&entrypoint))
                .with_context(|| format!("/{entrypoint} is not a symlink to the launcher"))?;
            if link != Path::new(LAUNCHER_BIN) {
                bail!(
                    "/{entrypoint} points to {}, not {LAUNCHER_BIN}",
                    link.display()
                );
            }
            for variant in &target.variants {
                expect_file(
                    &format!("{VARIANTS_DIR}/{}/{}", variant.name, target.server),
                    &variant.sha256,
                )?;
            }
            Ok(())
        }
    }
}

pub fn skopeo_inspect(reference: &str) -> Result<Value> {
    let output = Command::new("skopeo")
        .args(["inspect", &format!("oci:{reference}")])
        .output()
        .context("cannot run skopeo (Debian package `skopeo`)")?;
    if !output.status.success() {
        bail!(
            "skopeo inspect oci:{reference} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout).context("skopeo inspect printed invalid JSON")
}

/// `umoci unpack` (rootless when not root) and the process of the generated `config.json`.
pub fn umoci_unpack(reference: &str, bundle: &Path) -> Result<BundleProcess> {
    let mut command = Command::new("umoci");
    command.arg("unpack");
    if !running_as_root() {
        command.arg("--rootless");
    }
    let output = command
        .args(["--image", reference])
        .arg(bundle)
        .output()
        .context("cannot run umoci (Debian package `umoci`)")?;
    if !output.status.success() {
        bail!(
            "umoci unpack --image {reference} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let config_path = bundle.join("config.json");
    let config: Value = serde_json::from_slice(
        &std::fs::read(&config_path)
            .with_context(|| format!("reading {}", config_path.display()))?,
    )
    .context("umoci wrote an invalid config.json")?;
    let process = &config["process"];
    let strings = |value: &Value| -> Vec<String> {
        value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    Ok(BundleProcess {
        args: strings(&process["args"]),
        env: strings(&process["env"]),
        uid: process["user"]["uid"].as_u64().unwrap_or(0) as u32,
        gid: process["user"]["gid"].as_u64().unwrap_or(0) as u32,
        cwd: process["cwd"].as_str().unwrap_or("/").to_owned(),
    })
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// `env -i <image env> chroot --userspec=uid:gid <rootfs>`, to which the program is added.
fn chroot_as_image_user(rootfs: &Path, process: &BundleProcess) -> Command {
    let mut command = Command::new("env");
    // `env -i` empties PATH, so chroot is named by its host path.
    command
        .arg("-i")
        .args(&process.env)
        .arg(host_program("chroot"))
        .arg(format!("--userspec={}:{}", process.uid, process.gid))
        .arg(rootfs);
    command
}

/// `name` found on the host's PATH or in the sbin directories (not on every user's PATH).
fn host_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// Runs a command to completion (with the response timeout) and returns its stdout.
fn run_to_end(command: &mut Command) -> Result<String> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {command:?}"))?;
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().context("piped stdout")?;
    let mut stderr = child.stderr.take().context("piped stderr")?;
    std::thread::spawn(move || {
        let (mut out, mut err) = (String::new(), String::new());
        let _ = stdout.read_to_string(&mut out);
        let _ = stderr.read_to_string(&mut err);
        let _ = tx.send((out, err));
    });
    let Ok((out, err)) = rx.recv_timeout(RESPONSE_TIMEOUT) else {
        let _ = child.kill();
        bail!("{command:?} did not finish within {RESPONSE_TIMEOUT:?}");
    };
    let status = child.wait()?;
    if !status.success() {
        bail!("{command:?} failed with {status}: {err}");
    }
    Ok(out)
}
