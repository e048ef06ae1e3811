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

use super::registry::{Registry, SERVER_NAME_KEY};
use super::{
    BuiltLayout, CrateImages, DISPATCH_TAG, ImageArgs, LAUNCHER_BIN, VariantBinary, layout,
    platform, platform_entries, smoke, write_crate_images,
};
use crate::dist::{Artifact, ArtifactKind, BASELINE_CPU, Manifest};
use crate::metadata::{CrateSpec, Role, Workspace};

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
    let arch_of = |artifact: &Artifact| {
        artifact
            .target
            .split('-')
            .next()
            .unwrap_or_default()
            .to_owned()
    };
    let mut built = Vec::new();
    for server in servers {
        let server_binaries = || {
            manifest
                .artifacts
                .iter()
                .filter(|a| a.kind == ArtifactKind::ServerBinary && a.crate_name == server.name)
        };
        let mut artifacts: Vec<(&str, &Artifact)> = Vec::new();
        for variant in &variants {
            let found =
                server_binaries().find(|a| a.variant == variant.name && arch_of(a) == main_arch);
            match found {
                Some(artifact) => artifacts.push((variant.name.as_str(), artifact)),
                // A variant asked for by name must be there; by default, a variant dist did
                // not build for this server (`cargo xtask ci`'s ci-crates) is left out loudly.
                None if args.variants.is_empty() && variant.ci_crates.is_some() => eprintln!(
                    "!!! image: {}: no {} build in {}/manifest.json (not in that variant's \
                     ci-crates); its images leave it out !!!",
                    server.name,
                    variant.name,
                    dist.display()
                ),
                None => bail!(
                    "{}/manifest.json has no {} build of {}; run `cargo xtask dist --crate {} --variant {}`",
                    dist.display(),
                    variant.name,
                    server.name,
                    server.name,
                    variant.name
                ),
            }
        }
        if artifacts.is_empty() {
            bail!(
                "{}/manifest.json has no {main_arch} build of {}; run `cargo xtask dist --crate {}`",
                dist.display(),
                server.name,
                server.name
            );
        }
        let target_arch = main_arch.to_owned();
        let architecture = oci_arch(&target_arch)?;
        // The launcher knows every variant of its architecture; a dispatch image missing one
        // would make it exec a binary that is not there.
        let arch_variants: Vec<&str> = workspace
            .variants
            .iter()
            .filter(|v| v.architectures.contains(&target_arch))
            .map(|v| v.name.as_str())
            .collect();
        let all_variants = arch_variants
            .iter()
            .all(|name| artifacts.iter().any(|(v, _)| v == name));
        let launcher = if all_variants && arch_variants.len() > 1 {
            Some(find_launcher(
                dist,
                &manifest,
                args.launcher.as_deref(),
                &artifacts[0].1.target,
            )?)
        } else {
            eprintln!(
                "image: {}: no `{DISPATCH_TAG}` image, it needs every variant ({})",
                server.name,
                arch_variants.join(", ")
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
            let arch = oci_arch(&arch_of(artifact))?;
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
        let server_json = registry.write_server_json(server, &dist.join("mcp-registry"))?;
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
