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
//! (x86-64-v3 when the table has it) and that build must answer MCP.

use std::io::Read as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{BIN_DIR, LAUNCHER_BIN, VARIANT_LABEL, VARIANTS_DIR};
use crate::cpu;
use crate::dist::{BASELINE_CPU, sha256_hex};
use crate::mcp_client::{RESPONSE_TIMEOUT, SmokeCall, mcp_session};

/// The emulated CPU of the dispatch check: qemu's model name and rustc's name of the same
/// CPU (AVX2, FMA, BMI2: x86-64-v3; no AVX-512, no SSE4A).
const QEMU_MODEL: (&str, &str) = ("Haswell", "haswell");

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
    let programs = if inspect["Architecture"] == host_arch {
        run_programs(&rootfs, &process, target)?
    } else if target.programs.is_empty() {
        String::new()
    } else {
        // Checked to be static executables of the image's architecture when it was built.
        format!(
            " | {} not run (another architecture)",
            target.programs.join(", ")
        )
    };

    if !dispatch {
        let variant = target
            .variants
            .first()
            .context("a variant image needs its variant")?;
        let support = cpu::support(&variant.target, &variant.target_cpu)?;
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

    let version = run_to_end(chroot_command(&rootfs, &process).arg("--version"))?;
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
    let session = mcp_session(chroot_command(&rootfs, &process), target.call.as_ref())
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
    if dispatch {
        report.push_str(&check_dispatch(&rootfs, target)?);
    }
    Ok(SmokeOutcome {
        report,
        skipped_run: None,
    })
}

/// Runs every program the image ships for its server, as the image's user with the image's
/// environment, the way the server runs it (bash: `bash -c`), and returns the report's note.
/// They are static baseline builds, so they run on any CPU of the architecture.
fn run_programs(rootfs: &Path, process: &BundleProcess, target: &SmokeTarget) -> Result<String> {
    let mut note = String::new();
    for name in &target.programs {
        let program = super::programs::STATIC_PROGRAMS
            .iter()
            .find(|p| p.name == name)
            .with_context(|| format!("the image ships an unknown program `{name}`"))?;
        let image_program = format!("/{}", program.image_path);
        let mut command = chroot_as_image_user(rootfs, process);
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

/// `env -i <image env> chroot --userspec=uid:gid <rootfs> <args>`: the image's process with
/// only the image's environment, as the image's user.
fn chroot_command(rootfs: &Path, process: &BundleProcess) -> Command {
    let mut command = chroot_as_image_user(rootfs, process);
    command
        .args(&process.args)
        // chroot(1) starts in `/`, a container engine in the image's working directory, and
        // the servers refuse `/` as an implicit root: name the working directory instead.
        .args(["--root", &process.cwd]);
    command
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

/// The variant the launcher must pick on this CPU: among the builds this CPU can run, the
/// one needing the most features beyond the baseline (the launcher's own rule).
pub fn expected_choice(variants: &[ImageVariant]) -> Result<Option<String>> {
    expected_choice_on(variants, None)
}

/// [`expected_choice`] on this CPU (`None`) or on rustc's model of `cpu_model` (as qemu
/// emulates it, e.g. `haswell`).
pub fn expected_choice_on(
    variants: &[ImageVariant],
    cpu_model: Option<&str>,
) -> Result<Option<String>> {
    let mut best: Option<(usize, &ImageVariant)> = None;
    for variant in variants {
        let wanted = cpu::target_features(&variant.target, &variant.target_cpu)?;
        let baseline = cpu::target_features(&variant.target, BASELINE_CPU)?;
        let runs = match cpu_model {
            None => cpu::support(&variant.target, &variant.target_cpu)?.runs(),
            Some(model) => {
                let arch = variant.target.split('-').next().unwrap_or_default();
                arch == std::env::consts::ARCH
                    && cpu::missing(
                        &wanted,
                        &baseline,
                        &cpu::target_features(&variant.target, model)?,
                    )
                    .is_empty()
            }
        };
        if !runs {
            continue;
        }
        let extra = wanted.difference(&baseline).count();
        if best.is_none_or(|(count, _)| extra > count) {
            best = Some((extra, variant));
        }
    }
    Ok(best.map(|(_, variant)| variant.name.clone()))
}

/// The dispatch image's launcher natively (it must pick [`expected_choice`]) and, on x86-64,
/// under `qemu-x86_64 -cpu Haswell`, where it must pick the best build a Haswell runs
/// (x86-64-v3 when the table has it, else the baseline), which must then answer MCP there.
fn check_dispatch(rootfs: &Path, target: &SmokeTarget) -> Result<String> {
    let server = &target.server;
    let call = target.call.as_ref();
    let launcher = rootfs.join(BIN_DIR).join(LAUNCHER_BIN);
    let variants_dir = rootfs.join(VARIANTS_DIR);
    // `program` (under qemu on a Haswell CPU, or natively) with the launcher's settings
    // pointing into the rootfs.
    let command = |on_haswell: bool, program: &Path| {
        let mut command = if on_haswell {
            let mut qemu = Command::new("qemu-x86_64");
            qemu.args(["-cpu", QEMU_MODEL.0]).arg(program);
            qemu
        } else {
            Command::new(program)
        };
        command
            .env("MCP_FOUNDRY_SERVER", server)
            .env("MCP_FOUNDRY_VARIANTS_DIR", &variants_dir)
            .env("MCP_FOUNDRY_LAUNCHER_VERBOSE", "1")
            .env_remove("MCP_FOUNDRY_VARIANT");
        command
    };

    let native =
        mcp_session(command(false, &launcher), call).context("MCP through the launcher")?;
    let chosen = launcher_choice(&native.stderr)
        .context("the launcher did not report its choice")?
        .to_owned();
    let expected = expected_choice(&target.variants)?
        .context("this CPU can run none of the image's builds")?;
    if chosen != expected {
        bail!("on this CPU the launcher chose {chosen}, expected {expected}");
    }
    let mut report = format!(" | this CPU: launcher chose {chosen} as expected");

    let baseline = target
        .variants
        .iter()
        .find(|v| v.target_cpu == BASELINE_CPU);
    let emulatable = std::env::consts::ARCH == "x86_64"
        && baseline.is_some_and(|v| v.target.starts_with("x86_64-"));
    if !emulatable {
        let notice = "!!! SKIPPED: the launcher under qemu -cpu Haswell (needs an x86-64 host \
                      and image with a baseline build) !!!";
        eprintln!("{notice}");
        report.push_str(" | qemu Haswell: SKIPPED");
        return Ok(report);
    }
    let expected = expected_choice_on(&target.variants, Some(QEMU_MODEL.1))?
        .context("a Haswell runs none of the image's builds")?;
    // The launcher execs the server natively (qemu-user does not follow execve), so this
    // checks the choice; the next session checks that the chosen build runs on Haswell.
    let launched = mcp_session(command(true, &launcher), call)
        .context("MCP through the launcher under qemu -cpu Haswell")?;
    let chosen =
        launcher_choice(&launched.stderr).context("the launcher did not report its choice")?;
    if chosen != expected {
        bail!("under qemu -cpu Haswell the launcher chose {chosen}, expected {expected}");
    }
    let chosen_binary = variants_dir.join(&expected).join(server);
    mcp_session(command(true, &chosen_binary), call)
        .with_context(|| format!("MCP with the {expected} build under qemu -cpu Haswell"))?;
    report.push_str(&format!(
        " | qemu Haswell: launcher chose {expected}, it answers MCP"
    ));
    Ok(report)
}

/// The variant named in the launcher's verbose `running the <variant> build: ...` line.
fn launcher_choice(stderr: &str) -> Option<&str> {
    let prefix = format!("{LAUNCHER_BIN}: running the ");
    stderr
        .lines()
        .find_map(|line| line.strip_prefix(&prefix)?.split(' ').next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn variant(name: &str, target_cpu: &str) -> ImageVariant {
        ImageVariant {
            name: name.into(),
            tag: name.into(),
            target: format!("{}-unknown-linux-musl", std::env::consts::ARCH),
            target_cpu: target_cpu.into(),
            sha256: String::new(),
        }
    }

    #[test]
    fn on_a_haswell_the_v3_build_wins_and_avx512_builds_never_do() {
        if std::env::consts::ARCH != "x86_64" {
            eprintln!(
                "!!! SKIPPED: x86-64 levels on a {} host !!!",
                std::env::consts::ARCH
            );
            return;
        }
        let all = [
            variant("generic", "generic"),
            variant("x86-64-v3", "x86-64-v3"),
            variant("x86-64-v4", "x86-64-v4"),
            variant("znver4", "znver4"),
        ];
        assert_eq!(
            expected_choice_on(&all, Some("haswell"))
                .unwrap()
                .as_deref(),
            Some("x86-64-v3")
        );
        assert_eq!(
            expected_choice_on(&all, Some("skylake-avx512"))
                .unwrap()
                .as_deref(),
            Some("x86-64-v4"),
            "an Intel v4 host lacks SSE4A: never znver4"
        );
        assert_eq!(
            expected_choice_on(&all, Some("znver4")).unwrap().as_deref(),
            Some("znver4")
        );
        assert_eq!(
            expected_choice_on(&all, Some("x86-64")).unwrap().as_deref(),
            Some("generic")
        );
    }

    #[test]
    fn the_launcher_choice_is_read_from_its_verbose_line() {
        let stderr = "noise\nmcp-launcher: running the znver4 build: /opt/mcp/znver4/x\n";
        assert_eq!(launcher_choice(stderr), Some("znver4"));
        assert_eq!(launcher_choice("nothing"), None);
    }

    #[test]
    fn the_expected_choice_is_the_most_specialized_build_this_cpu_runs() {
        // The baseline always runs; `native` is this CPU itself, so it runs and needs at
        // least as many features as the baseline.
        let baseline = variant("generic", "generic");
        assert_eq!(
            expected_choice(std::slice::from_ref(&baseline)).unwrap(),
            Some("generic".into())
        );
        let native = variant("here", "native");
        let chosen = expected_choice(&[baseline.clone(), native])
            .unwrap()
            .unwrap();
        let native_extra = cpu::target_features(&baseline.target, "native")
            .unwrap()
            .len()
            > cpu::target_features(&baseline.target, "generic")
                .unwrap()
                .len();
        assert_eq!(chosen, if native_extra { "here" } else { "generic" });
        // A build for a CPU this machine is not never wins, whatever its feature count.
        let foreign = ImageVariant {
            target: "riscv64gc-unknown-linux-gnu".into(),
            ..variant("elsewhere", "generic")
        };
        assert_eq!(
            expected_choice(&[foreign]).unwrap(),
            None,
            "a build for another architecture cannot run here"
        );
    }
}
