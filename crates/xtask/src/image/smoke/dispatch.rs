//! The dispatch image's launcher: it must pick the build this CPU should run
//! ([`expected_choice`]), natively and under `qemu-x86_64 -cpu Haswell`, where the chosen
//! build must then answer MCP.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use super::super::{BIN_DIR, LAUNCHER_BIN, VARIANTS_DIR};
use super::{ImageVariant, SmokeTarget};
use crate::cpu;
use crate::dist::BASELINE_CPU;
use crate::mcp_client::mcp_session;

/// The emulated CPU of the dispatch check: qemu's model name and rustc's name of the same
/// CPU (AVX2, FMA, BMI2: x86-64-v3; no AVX-512, no SSE4A).
const QEMU_MODEL: (&str, &str) = ("Haswell", "haswell");

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
pub(super) fn check_dispatch(rootfs: &Path, target: &SmokeTarget) -> Result<String> {
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
