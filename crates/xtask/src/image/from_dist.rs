//! Reading `cargo xtask dist` output into [`CrateImages`] requests: which server builds
//! exist for which variant and architecture, checked against `dist/manifest.json`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION, Arch,
};

use super::registry::{REGISTRY_DIR, Registry, SERVER_NAME_KEY};
use super::{
    BuiltLayout, CrateImages, DISPATCH_TAG, ImageArgs, LAUNCHER_BIN, VariantBinary, layout,
    platform, platform_entries, smoke, write_crate_images,
};
use crate::dist::{Artifact, ArtifactKind, BASELINE_CPU, Manifest};
use crate::metadata::{CrateSpec, Role, VariantSpec, Workspace};

/// Builds the layouts for the selected servers and variants from the dist output.
pub fn build_images(
    workspace: &Workspace,
    dist: &Path,
    out: &Path,
    args: &ImageArgs,
) -> Result<Vec<BuiltLayout>> {
    let manifest = Manifest::load(dist)?;
    let servers = select_servers(workspace, &args.crates)?;
    let registry = Registry::load(&workspace.root)?;
    // The layout's main architecture is this machine's, which `cargo xtask dist` builds every
    // variant for; other architectures contribute their baseline build (cross builds).
    let main_arch = std::env::consts::ARCH;
    let variants: Vec<_> = workspace
        .select_variants(&args.variants)?
        .into_iter()
        .filter(|v| v.architectures.iter().any(|a| a == main_arch))
        .collect();
    if variants.is_empty() {
        bail!("none of the selected variants is built for {main_arch}");
    }
    // Only a `--ci-matrix` dist may lack what a variant's ci-crates leave out.
    let ci_dist = manifest.selection.as_ref().is_some_and(|s| s.ci_matrix);
    let mut built = Vec::new();
    for server in servers {
        let server_binaries = || {
            manifest
                .artifacts
                .iter()
                .filter(|a| a.kind == ArtifactKind::ServerBinary && a.crate_name == server.name)
        };
        let builds = variant_builds(
            &manifest.artifacts,
            &server.name,
            &variants,
            main_arch,
            !args.variants.is_empty() || !ci_dist,
            dist,
        )?;
        for notice in &builds.left_out {
            eprintln!("{notice}");
        }
        let artifacts = builds.found;
        let target_arch = main_arch.to_owned();
        let architecture = oci_arch(&target_arch)?;
        let held: Vec<&str> = artifacts.iter().map(|(v, _)| *v).collect();
        let launcher = if makes_dispatch_image(&artifacts) {
            let not_held: Vec<&str> = workspace
                .variants
                .iter()
                .filter(|v| v.supports(main_arch) && !held.contains(&v.name.as_str()))
                .map(|v| v.name.as_str())
                .collect();
            if !not_held.is_empty() {
                eprintln!(
                    "!!! image: {}: `{DISPATCH_TAG}` holds {} only, not {}: the launcher picks \
                     among those !!!",
                    server.name,
                    held.join(", "),
                    not_held.join(", ")
                );
            }
            Some(find_launcher(
                dist,
                &manifest,
                args.launcher.as_deref(),
                &artifacts[0].1.target,
            )?)
        } else {
            eprintln!(
                "image: {}: no `{DISPATCH_TAG}` image: it needs the {BASELINE_CPU} build and \
                 another, dist has {}",
                server.name,
                held.join(", ")
            );
            None
        };
        let server_name = registry.server_name(&server.name);
        let mut labels = image_labels(server, &manifest.git_commit, manifest.source_date_epoch);
        labels.insert(SERVER_NAME_KEY.to_owned(), server_name.clone());
        let annotations = BTreeMap::from([(SERVER_NAME_KEY.to_owned(), server_name.clone())]);
        let mut variant_binaries = Vec::new();
        let mut image_variants = Vec::new();
        for (variant, artifact) in &artifacts {
            let path = dist.join(&artifact.path);
            check_artifact(&path, artifact)?;
            variant_binaries.push(VariantBinary {
                variant: (*variant).to_owned(),
                target_cpu: artifact.target_cpu.clone(),
                path,
            });
            image_variants.push(smoke::ImageVariant::of(artifact, (*variant).to_owned()));
        }
        // Other architectures' baseline builds, when dist has them and the baseline was asked.
        let mut foreign_baselines = Vec::new();
        for artifact in server_binaries().filter(|a| {
            a.target_cpu == BASELINE_CPU
                && arch_of(a) != main_arch
                && variants.iter().any(|v| v.name == a.variant)
        }) {
            let arch = oci_arch(arch_of(artifact))?;
            let path = dist.join(&artifact.path);
            check_artifact(&path, artifact)?;
            image_variants.push(smoke::ImageVariant::of(
                artifact,
                platform::foreign_tag(&artifact.variant, &arch),
            ));
            foreign_baselines.push((
                arch,
                VariantBinary {
                    variant: artifact.variant.clone(),
                    target_cpu: artifact.target_cpu.clone(),
                    path,
                },
            ));
        }
        for baseline in variants.iter().filter(|v| v.target_cpu == BASELINE_CPU) {
            for arch in baseline.architectures.iter().filter(|a| *a != main_arch) {
                if server_binaries().any(|a| a.variant == baseline.name && arch_of(a) == arch) {
                    continue;
                }
                let why = if ci_dist && !baseline.ci_builds(arch, &server.name) {
                    "not in that variant's ci-crates"
                } else {
                    "not built"
                };
                eprintln!(
                    "!!! image: {}: no {arch} build of {} in {}/manifest.json ({why}); its \
                     images have no {arch} platform !!!",
                    server.name,
                    baseline.name,
                    dist.display()
                );
            }
        }
        let request = CrateImages {
            crate_name: server.name.clone(),
            labels,
            annotations,
            architecture,
            variant_binaries,
            foreign_baselines,
            launcher,
            programs: server.image_programs.clone(),
            program_cache: workspace.target_dir.join("image-programs"),
            source_date_epoch: manifest.source_date_epoch,
        };
        let dir = out.join(&server.name);
        let images = write_crate_images(&request, &dir)?;
        // Each image's artifacts' SBOM and provenance, as OCI 1.1 referrers (issue 14).
        let mut records: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (variant, artifact) in &artifacts {
            records.insert((*variant).to_owned(), vec![artifact.path.clone()]);
        }
        for (arch, binary) in &request.foreign_baselines {
            let path = binary.path.strip_prefix(dist).unwrap_or(&binary.path);
            records.insert(
                platform::foreign_tag(&binary.variant, arch),
                vec![path.to_string_lossy().into_owned()],
            );
        }
        if let Some(launcher) = &request.launcher {
            let mut held: Vec<String> = artifacts.iter().map(|(_, a)| a.path.clone()).collect();
            match launcher.strip_prefix(dist) {
                Ok(path) => held.push(path.to_string_lossy().into_owned()),
                Err(_) => eprintln!(
                    "image: {}: `{DISPATCH_TAG}` gets no SBOM or provenance of --launcher {} (not from dist)",
                    server.name,
                    launcher.display()
                ),
            }
            records.insert(DISPATCH_TAG.to_owned(), held);
        }
        crate::provenance::referrer::attach_dist_records(&dir, dist, &images, &records)?;
        let server_json = registry.write_server_json(server, &dist.join(REGISTRY_DIR))?;
        built.push(BuiltLayout {
            crate_name: server.name.clone(),
            dir,
            platforms: platform_entries(&request),
            server_name,
            server_json,
            variants: image_variants,
            launcher_sha256: match &request.launcher {
                Some(path) => Some(layout::sha256_hex(
                    &fs::read(path).with_context(|| format!("reading {}", path.display()))?,
                )),
                None => None,
            },
            images,
            smoke_call: server.smoke_call.clone(),
            programs: server.image_programs.clone(),
        });
    }
    Ok(built)
}

/// Whether a server's builds make a `latest` image: the launcher picks among the builds the
/// image holds (release images hold every variant; `cargo xtask ci`'s those of the
/// ci-crates), so two builds make a choice, and the baseline must be one of them, or
/// `latest` would not run on every CPU of the architecture.
fn makes_dispatch_image(builds: &[(&str, &Artifact)]) -> bool {
    builds.len() > 1 && builds.iter().any(|(_, a)| a.target_cpu == BASELINE_CPU)
}

/// The target architecture an artifact was built for (`x86_64` of `x86_64-unknown-linux-musl`).
fn arch_of(artifact: &Artifact) -> &str {
    crate::cross::target_arch(&artifact.target)
}

/// The builds of one server that its images hold, and why any variant is left out.
#[derive(Debug)]
struct VariantBuilds<'a> {
    /// `(variant, server binary)` for `arch`, in the order of the variants asked for.
    found: Vec<(&'a str, &'a Artifact)>,
    /// One loud notice per variant left out.
    left_out: Vec<String>,
}

/// Picks the server binary of `server` for each of `variants` on `arch` from dist's artifacts.
///
/// A missing build is an error (dist is incomplete), with one exception: unless
/// `every_build_required` (a variant asked for by name, or a dist that was not a
/// `--ci-matrix` run), a variant whose `ci-crates` leave this server out is left out of its
/// images with a loud notice, because `cargo xtask ci` builds such a variant only for its
/// `ci-crates`.
fn variant_builds<'a>(
    artifacts: &'a [Artifact],
    server: &str,
    variants: &[&'a VariantSpec],
    arch: &str,
    every_build_required: bool,
    dist: &Path,
) -> Result<VariantBuilds<'a>> {
    let mut builds = VariantBuilds {
        found: Vec::new(),
        left_out: Vec::new(),
    };
    for variant in variants {
        let found = artifacts.iter().find(|a| {
            a.kind == ArtifactKind::ServerBinary
                && a.crate_name == server
                && a.variant == variant.name
                && arch_of(a) == arch
        });
        let ci_leaves_out = !variant.ci_builds(arch, server);
        match found {
            Some(artifact) => builds.found.push((variant.name.as_str(), artifact)),
            None if !every_build_required && ci_leaves_out => builds.left_out.push(format!(
                "!!! image: {server}: no {} build in {}/manifest.json (not in that variant's \
                 ci-crates); its images leave it out !!!",
                variant.name,
                dist.display()
            )),
            None => bail!(
                "{}/manifest.json has no {} build of {server}; run `cargo xtask dist --crate {server} --variant {}`",
                dist.display(),
                variant.name,
                variant.name
            ),
        }
    }
    if builds.found.is_empty() {
        bail!(
            "{}/manifest.json has no {arch} build of {server}; run `cargo xtask dist --crate {server}`",
            dist.display()
        );
    }
    Ok(builds)
}

fn select_servers<'a>(workspace: &'a Workspace, names: &[String]) -> Result<Vec<&'a CrateSpec>> {
    let servers: Vec<&CrateSpec> = workspace.servers().collect();
    if names.is_empty() {
        if servers.is_empty() {
            bail!("the workspace has no crate with role \"server\"");
        }
        return Ok(servers);
    }
    names
        .iter()
        .map(|name| {
            servers
                .iter()
                .copied()
                .find(|s| &s.name == name)
                .with_context(|| {
                    let valid: Vec<&str> = servers.iter().map(|s| s.name.as_str()).collect();
                    format!(
                        "`{name}` is not a server crate; server crates: {}",
                        valid.join(", ")
                    )
                })
        })
        .collect()
}

fn oci_arch(target_arch: &str) -> Result<Arch> {
    match target_arch {
        "x86_64" => Ok(Arch::Amd64),
        "aarch64" => Ok(Arch::ARM64),
        other => bail!("no OCI architecture known for target architecture `{other}`"),
    }
}

/// Refuses a dist file that changed since `cargo xtask dist` recorded it.
fn check_artifact(path: &Path, artifact: &Artifact) -> Result<()> {
    let data = fs::read(path)
        .with_context(|| format!("reading {}; rerun `cargo xtask dist`", path.display()))?;
    let actual = layout::sha256_hex(&data);
    if actual != artifact.sha256 {
        bail!(
            "{} has sha256 {actual} but dist/manifest.json records {}; rerun `cargo xtask dist`",
            path.display(),
            artifact.sha256
        );
    }
    Ok(())
}

fn find_launcher(
    dist: &Path,
    manifest: &Manifest,
    explicit: Option<&Path>,
    target: &str,
) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--launcher {} is not a file", path.display());
        }
        return Ok(path.to_owned());
    }
    let artifact = manifest
        .artifacts
        .iter()
        .find(|a| a.role == Role::Launcher && a.kind == ArtifactKind::ServerBinary && a.target == target)
        .with_context(|| {
            format!(
                "the `{DISPATCH_TAG}` image needs {LAUNCHER_BIN} for {target}, but {}/manifest.json lists \
                 none; build it with `cargo xtask dist` (crates with role \"launcher\" are built for the \
                 baseline CPU) or pass --launcher FILE",
                dist.display()
            )
        })?;
    let path = dist.join(&artifact.path);
    check_artifact(&path, artifact)?;
    Ok(path)
}

pub(super) fn image_labels(
    spec: &CrateSpec,
    git_commit: &str,
    epoch: u64,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        (ANNOTATION_TITLE.to_owned(), spec.name.clone()),
        (ANNOTATION_DESCRIPTION.to_owned(), spec.description.clone()),
        (ANNOTATION_VERSION.to_owned(), spec.version.clone()),
        (ANNOTATION_REVISION.to_owned(), git_commit.to_owned()),
        (ANNOTATION_CREATED.to_owned(), layout::rfc3339(epoch)),
    ]);
    if let Some(source) = &spec.repository {
        labels.insert(ANNOTATION_SOURCE.to_owned(), source.clone());
    }
    if let Some(license) = &spec.license {
        labels.insert(ANNOTATION_LICENSES.to_owned(), license.clone());
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::manifest::tests::artifact;
    use crate::metadata::CiCrates;

    const DIST: &str = "/tmp/dist";

    fn variant(name: &str, ci_crates: Option<&[&str]>) -> VariantSpec {
        VariantSpec {
            name: name.into(),
            description: String::new(),
            target_cpu: name.into(),
            rustflags: Vec::new(),
            architectures: vec!["x86_64".into()],
            ci_crates: ci_crates
                .map(|names| CiCrates::Everywhere(names.iter().map(|n| n.to_string()).collect())),
        }
    }

    fn server_binary(server: &str, variant: &str, target: &str) -> Artifact {
        Artifact {
            crate_name: server.into(),
            variant: variant.into(),
            target: target.into(),
            ..artifact(&format!("{variant}/{target}/bin/{server}"))
        }
    }

    /// dist as `cargo xtask ci` leaves it: `generic` for both servers, `x86-64-v3` (ci-crates
    /// bash-god) only for bash-god, and an aarch64 `generic` of devops.
    fn ci_dist() -> Vec<Artifact> {
        vec![
            server_binary("bash-god", "generic", "x86_64-unknown-linux-musl"),
            server_binary("bash-god", "x86-64-v3", "x86_64-unknown-linux-musl"),
            server_binary("devops", "generic", "x86_64-unknown-linux-musl"),
            server_binary("devops", "generic", "aarch64-unknown-linux-musl"),
        ]
    }

    fn pick<'a>(
        artifacts: &'a [Artifact],
        server: &str,
        variants: &[&'a VariantSpec],
        every_build_required: bool,
    ) -> Result<VariantBuilds<'a>> {
        variant_builds(
            artifacts,
            server,
            variants,
            "x86_64",
            every_build_required,
            Path::new(DIST),
        )
    }

    fn found_paths(builds: &VariantBuilds<'_>) -> Vec<(String, String)> {
        builds
            .found
            .iter()
            .map(|(v, a)| ((*v).to_owned(), a.path.clone()))
            .collect()
    }

    #[test]
    fn by_default_a_variant_whose_ci_crates_leave_the_server_out_is_left_out_loudly() {
        let (generic, v3) = (
            variant("generic", None),
            variant("x86-64-v3", Some(&["bash-god", "mcp-rust-core"])),
        );
        let artifacts = ci_dist();
        let builds = pick(&artifacts, "devops", &[&generic, &v3], false).unwrap();
        assert_eq!(
            found_paths(&builds),
            [(
                "generic".to_owned(),
                "generic/x86_64-unknown-linux-musl/bin/devops".to_owned()
            )]
        );
        assert_eq!(builds.left_out.len(), 1, "{:?}", builds.left_out);
        let notice = &builds.left_out[0];
        assert!(
            notice.starts_with("!!! image: devops: no x86-64-v3 build in /tmp/dist/manifest.json")
        );
        assert!(
            notice.contains("ci-crates") && notice.ends_with("!!!"),
            "{notice}"
        );

        // bash-god is in the ci-crates, so both of its builds are there and nothing is left out.
        let builds = pick(&artifacts, "bash-god", &[&generic, &v3], false).unwrap();
        assert_eq!(
            found_paths(&builds),
            [
                (
                    "generic".to_owned(),
                    "generic/x86_64-unknown-linux-musl/bin/bash-god".to_owned()
                ),
                (
                    "x86-64-v3".to_owned(),
                    "x86-64-v3/x86_64-unknown-linux-musl/bin/bash-god".to_owned()
                ),
            ]
        );
        assert!(builds.left_out.is_empty(), "{:?}", builds.left_out);
    }

    #[test]
    fn latest_needs_the_baseline_and_another_build() {
        let build = |variant: &str, target_cpu: &str| Artifact {
            target_cpu: target_cpu.into(),
            ..server_binary("bash-god", variant, "x86_64-unknown-linux-musl")
        };
        let (generic, v3, v4) = (
            build("generic", BASELINE_CPU),
            build("x86-64-v3", "x86-64-v3"),
            build("x86-64-v4", "x86-64-v4"),
        );
        assert!(makes_dispatch_image(&[
            ("generic", &generic),
            ("x86-64-v3", &v3)
        ]));
        assert!(
            !makes_dispatch_image(&[("generic", &generic)]),
            "nothing to choose"
        );
        assert!(
            !makes_dispatch_image(&[("x86-64-v3", &v3), ("x86-64-v4", &v4)]),
            "without the baseline, latest would fail on a CPU older than x86-64-v3"
        );
    }

    #[test]
    fn a_variant_asked_for_by_name_must_be_there() {
        let v3 = variant("x86-64-v3", Some(&["bash-god"]));
        let artifacts = ci_dist();
        let error = pick(&artifacts, "devops", &[&v3], true)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "/tmp/dist/manifest.json has no x86-64-v3 build of devops; \
             run `cargo xtask dist --crate devops --variant x86-64-v3`"
        );
    }

    #[test]
    fn a_missing_build_of_a_variant_ci_builds_for_the_server_means_dist_is_incomplete() {
        let artifacts = ci_dist();
        // No ci-crates: dist builds the variant for every server.
        let znver4 = variant("znver4", None);
        let error = pick(&artifacts, "bash-god", &[&znver4], false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("has no znver4 build of bash-god")
                && error.contains("cargo xtask dist --crate bash-god --variant znver4"),
            "{error}"
        );
        // ci-crates that name the server: ci builds it there too.
        let v4 = variant("x86-64-v4", Some(&["bash-god"]));
        let error = pick(&artifacts, "bash-god", &[&v4], false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("has no x86-64-v4 build of bash-god"),
            "{error}"
        );
    }

    #[test]
    fn a_server_with_no_build_for_this_architecture_is_an_error_even_if_all_were_left_out() {
        let v3 = variant("x86-64-v3", Some(&["bash-god"]));
        // Only an aarch64 build of devops for a variant that runs on both.
        let artifacts = vec![server_binary(
            "devops",
            "x86-64-v3",
            "aarch64-unknown-linux-musl",
        )];
        let error = pick(&artifacts, "devops", &[&v3], false)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "/tmp/dist/manifest.json has no x86_64 build of devops; run `cargo xtask dist --crate devops`"
        );
    }

    #[test]
    fn only_server_binaries_of_the_server_and_architecture_count() {
        let generic = variant("generic", None);
        let mut python_module = server_binary("devops", "generic", "x86_64-unknown-linux-musl");
        python_module.kind = ArtifactKind::SharedLibrary;
        let artifacts = vec![
            python_module,
            server_binary("bash-god", "generic", "x86_64-unknown-linux-musl"),
            server_binary("devops", "generic", "aarch64-unknown-linux-musl"),
        ];
        let error = pick(&artifacts, "devops", &[&generic], false)
            .unwrap_err()
            .to_string();
        assert!(error.contains("has no generic build of devops"), "{error}");
    }
}
