//! What one dist run builds where: the architectures (this machine's and the cross-built
//! ones), the jobs (one cargo invocation per variant × target triple × profile), and where a
//! job's artifacts go in `dist/`.

use std::path::PathBuf;

use anyhow::{Result, bail};

use super::manifest::Selection;
use super::{BASELINE_CPU, DistRequest, Job, profile_for, target_triple};
use crate::metadata::{CrateSpec, Role, VariantSpec};

/// The architectures to build for: `requested` (each declared by a selected variant), or by
/// default every architecture a selected variant declares; this machine's first, since
/// foreign ones are cross-built and only their baseline is shipped.
pub fn architectures(variants: &[&VariantSpec], requested: &[String]) -> Result<Vec<String>> {
    let host = std::env::consts::ARCH;
    let mut declared: Vec<String> = vec![host.to_owned()];
    for variant in variants {
        for arch in &variant.architectures {
            if !declared.contains(arch) {
                declared.push(arch.clone());
            }
        }
    }
    if requested.is_empty() {
        return Ok(declared);
    }
    for arch in requested {
        if !declared.contains(arch) {
            bail!(
                "--arch {arch}: no selected variant declares it; architectures: {}",
                declared.join(", ")
            );
        }
    }
    Ok(declared
        .into_iter()
        .filter(|arch| requested.contains(arch))
        .collect())
}

/// The directory of a variant's artifacts for `target`, relative to the dist directory:
/// `<variant>`, or `<variant>/<arch>` for another architecture than this machine's (so a
/// cross build never collides with the native one: `generic/aarch64/bin/<server>`).
pub fn artifact_dir(variant: &str, target: &str) -> PathBuf {
    let mut dir = PathBuf::from(variant);
    if crate::cross::is_foreign(target) {
        dir.push(crate::cross::target_arch(target));
    }
    dir
}

/// The builds for `architectures`: one per variant × target triple × profile. Variants not
/// available on an architecture are skipped with a note. The Python module is built for
/// every architecture (zig links it against glibc's floor, see `crate::cross`).
pub(crate) fn plan<'a>(
    variants: &[&'a VariantSpec],
    crates: &[&'a CrateSpec],
    architectures: &[String],
) -> Vec<Job<'a>> {
    let mut jobs: Vec<Job<'a>> = Vec::new();
    for arch in architectures {
        plan_arch(&mut jobs, variants, crates, arch);
    }
    jobs
}

fn plan_arch<'a>(
    jobs: &mut Vec<Job<'a>>,
    variants: &[&'a VariantSpec],
    crates: &[&'a CrateSpec],
    arch: &str,
) {
    for &variant in variants {
        if !variant.architectures.iter().any(|a| a == arch) {
            eprintln!(
                "note: variant `{}` is not available on {arch} (architectures: {}); skipped",
                variant.name,
                variant.architectures.join(", ")
            );
            continue;
        }
        for &spec in crates {
            // The launcher picks the best variant on the user's CPU, so it must run on any
            // CPU: it is built in the baseline variant only.
            if spec.role == Role::Launcher && variant.target_cpu != BASELINE_CPU {
                continue;
            }
            let target = target_triple(spec.role, arch);
            let profile = profile_for(spec.role);
            match jobs.iter_mut().find(|job| {
                job.variant.name == variant.name && job.target == target && job.profile == profile
            }) {
                Some(job) => job.specs.push(spec),
                None => jobs.push(Job {
                    specs: vec![spec],
                    variant,
                    target,
                    profile,
                    env: Vec::new(),
                    rustflags: Vec::new(),
                }),
            }
        }
    }
}

/// Narrows `jobs` to what `cargo xtask ci` builds: in a variant with `ci-crates`, only
/// those crates (for the job's architecture). Says loudly what is left out, so nobody takes
/// CI for the full matrix.
pub(crate) fn keep_ci_crates(jobs: &mut Vec<Job<'_>>) {
    for job in jobs.iter_mut() {
        let arch = crate::cross::target_arch(&job.target);
        let (kept, left_out): (Vec<&CrateSpec>, Vec<&CrateSpec>) = job
            .specs
            .iter()
            .partition(|spec| job.variant.ci_builds(arch, &spec.name));
        if !left_out.is_empty() {
            let list = |specs: &[&CrateSpec]| {
                specs
                    .iter()
                    .map(|spec| spec.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let built = if kept.is_empty() {
                "none of its crates (its `ci-crates` name none)".to_owned()
            } else {
                format!("{} only (its `ci-crates`)", list(&kept))
            };
            eprintln!(
                "!!! CI matrix: {} × {}: built for {built}; NOT built here: {}. `cargo xtask \
                 dist` builds every crate. !!!",
                job.variant.name,
                job.target,
                list(&left_out)
            );
        }
        job.specs = kept;
    }
    jobs.retain(|job| !job.specs.is_empty());
}

/// What `request` asks for, and what the workspace ships that it leaves out (the manifest's
/// [`Selection`]).
pub(crate) fn selection(request: &DistRequest<'_>, ci_matrix: bool) -> Result<Selection> {
    let workspace = request.workspace;
    let every_variant: Vec<&VariantSpec> = workspace.variants.iter().collect();
    let variants: Vec<String> = request.variants.iter().map(|v| v.name.clone()).collect();
    let crates: Vec<String> = request.crates.iter().map(|c| c.name.clone()).collect();
    let mut left_out = Vec::new();
    let mut leave_out = |kind: &str, every: Vec<String>, chosen: &[String]| {
        left_out.extend(
            every
                .into_iter()
                .filter(|name| !chosen.contains(name))
                .map(|name| format!("{kind} {name}")),
        );
    };
    leave_out(
        "variant",
        every_variant.iter().map(|v| v.name.clone()).collect(),
        &variants,
    );
    leave_out(
        "crate",
        workspace.shipped_crates().map(|c| c.name.clone()).collect(),
        &crates,
    );
    leave_out(
        "architecture",
        architectures(&every_variant, &[])?,
        &request.architectures,
    );
    Ok(Selection {
        variants,
        crates,
        architectures: request.architectures.clone(),
        ci_matrix,
        left_out,
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::metadata::CiCrates;

    fn variant(name: &str, rustflags: &[&str], architectures: &[&str]) -> VariantSpec {
        VariantSpec {
            name: name.into(),
            description: String::new(),
            target_cpu: name.into(),
            rustflags: rustflags.iter().map(|s| s.to_string()).collect(),
            architectures: architectures.iter().map(|s| s.to_string()).collect(),
            ci_crates: None,
        }
    }

    pub(crate) fn crate_spec(name: &str, role: Role) -> CrateSpec {
        CrateSpec {
            name: name.into(),
            role,
            manifest_path: PathBuf::from(format!("/ws/crates/{name}/Cargo.toml")),
            bin_targets: vec![name.into()],
            ..CrateSpec::default()
        }
    }

    #[test]
    fn plan_builds_the_launcher_for_the_baseline_only_and_skips_undeclared_architectures() {
        let generic = variant("generic", &[], &["x86_64", "aarch64"]);
        let znver4 = variant("znver4", &["-C", "target-cpu=znver4"], &["x86_64"]);
        let server = crate_spec("bash-god", Role::Server);
        let launcher = crate_spec("mcp-launcher", Role::Launcher);
        let core = CrateSpec {
            lib_target: Some("mcp_rust_core".into()),
            ..crate_spec("mcp-rust-core", Role::PythonModule)
        };
        let both = ["x86_64".to_owned(), "aarch64".to_owned()];
        let jobs = plan(&[&generic, &znver4], &[&server, &launcher, &core], &both);
        let names: Vec<_> = jobs
            .iter()
            .map(|job| format!("{}/{}/{}", job.variant.name, job.crate_names(), job.target))
            .collect();
        assert_eq!(
            names,
            [
                "generic/bash-god, mcp-launcher/x86_64-unknown-linux-musl",
                "generic/mcp-rust-core/x86_64-unknown-linux-gnu",
                "znver4/bash-god/x86_64-unknown-linux-musl",
                "znver4/mcp-rust-core/x86_64-unknown-linux-gnu",
                // Cross-built: the baseline only (the only variant declaring aarch64).
                "generic/bash-god, mcp-launcher/aarch64-unknown-linux-musl",
                "generic/mcp-rust-core/aarch64-unknown-linux-gnu",
            ]
        );
        assert!(
            jobs.iter()
                .all(|job| job.env.is_empty() && job.rustflags.is_empty()),
            "the toolchain is set by build_with"
        );
        for job in &jobs {
            assert!(job.specs.iter().all(|s| profile_for(s.role) == job.profile));
        }
        let on_arm = plan(&[&generic, &znver4], &[&server], &["aarch64".to_owned()]);
        assert_eq!(on_arm.len(), 1);
        assert_eq!(on_arm[0].target, "aarch64-unknown-linux-musl");
    }

    #[test]
    fn the_ci_matrix_keeps_a_variants_ci_crates_and_every_crate_of_the_others() {
        let generic = VariantSpec {
            ci_crates: Some(CiCrates::ByArchitecture(
                [("aarch64".to_owned(), vec!["mcp-rust-core".into()])].into(),
            )),
            ..variant("generic", &[], &["x86_64", "aarch64"])
        };
        let v3 = VariantSpec {
            ci_crates: Some(CiCrates::Everywhere(vec![
                "bash-god".into(),
                "mcp-rust-core".into(),
            ])),
            ..variant("x86-64-v3", &["-C", "target-cpu=x86-64-v3"], &["x86_64"])
        };
        let v4 = VariantSpec {
            ci_crates: Some(CiCrates::Everywhere(vec!["mcp-rust-core".into()])),
            ..variant("x86-64-v4", &["-C", "target-cpu=x86-64-v4"], &["x86_64"])
        };
        let server = crate_spec("bash-god", Role::Server);
        let other = crate_spec("devops", Role::Server);
        let core = CrateSpec {
            lib_target: Some("mcp_rust_core".into()),
            ..crate_spec("mcp-rust-core", Role::PythonModule)
        };
        let mut jobs = plan(
            &[&generic, &v3, &v4],
            &[&server, &other, &core],
            &["x86_64".to_owned(), "aarch64".to_owned()],
        );
        keep_ci_crates(&mut jobs);
        let names: Vec<_> = jobs
            .iter()
            .map(|job| {
                let arch = crate::cross::target_arch(&job.target);
                format!("{}/{arch}/{}", job.variant.name, job.crate_names())
            })
            .collect();
        assert_eq!(
            names,
            [
                "generic/x86_64/bash-god, devops",
                "generic/x86_64/mcp-rust-core",
                "x86-64-v3/x86_64/bash-god",
                "x86-64-v3/x86_64/mcp-rust-core",
                // v4's server job lists none of its ci-crates: it goes.
                "x86-64-v4/x86_64/mcp-rust-core",
                // generic's aarch64 list names the module alone; x86_64 is not in it.
                "generic/aarch64/mcp-rust-core",
            ]
        );
    }

    #[test]
    fn a_partial_selection_names_what_it_leaves_out() {
        let host = std::env::consts::ARCH;
        let workspace = crate::metadata::Workspace {
            root: PathBuf::from("/ws"),
            target_dir: PathBuf::from("/ws/target"),
            variants: vec![
                variant("generic", &[], &[host, "riscv64"]),
                variant("znver4", &["-C", "target-cpu=znver4"], &[host]),
            ],
            crates: vec![
                crate_spec("bash-god", Role::Server),
                crate_spec("code-intel", Role::Library),
                crate_spec("devops", Role::Server),
            ],
        };
        let mut request = DistRequest {
            workspace: &workspace,
            variants: workspace.variants.iter().collect(),
            crates: workspace.shipped_crates().collect(),
            architectures: vec![host.to_owned(), "riscv64".to_owned()],
            out: PathBuf::from("/ws/dist"),
            target_base: PathBuf::from("/ws/target/dist"),
            source: crate::provenance::tests::sample("generic/bin/s", "generic", "00").0,
        };
        let full = selection(&request, false).unwrap();
        assert!(full.is_complete(), "{full:?}");
        assert_eq!(full.describe(), "complete");
        assert!(!selection(&request, true).unwrap().is_complete());

        request.variants.truncate(1);
        request.crates.truncate(1);
        request.architectures.truncate(1);
        let partial = selection(&request, false).unwrap();
        assert_eq!(
            partial.left_out,
            ["variant znver4", "crate devops", "architecture riscv64"]
        );
        assert!(!partial.is_complete());
        assert_eq!(
            (partial.variants, partial.crates),
            (vec!["generic".to_owned()], vec!["bash-god".to_owned()])
        );
    }

    #[test]
    fn every_declared_architecture_is_built_by_default_this_machines_first() {
        let host = std::env::consts::ARCH;
        let generic = variant("generic", &[], &["aarch64", host]);
        let znver4 = variant("znver4", &["-C", "target-cpu=znver4"], &[host]);
        let mut expected = vec![host.to_owned()];
        if host != "aarch64" {
            expected.push("aarch64".to_owned());
        }
        assert_eq!(architectures(&[&generic, &znver4], &[]).unwrap(), expected);
        // Only what the selected variants declare.
        assert_eq!(architectures(&[&znver4], &[]).unwrap(), [host]);
        assert_eq!(
            architectures(&[&generic], &["aarch64".to_owned()]).unwrap(),
            ["aarch64"]
        );
        let err = architectures(&[&znver4], &["riscv64".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("--arch riscv64") && err.contains(host),
            "{err}"
        );
    }
}
