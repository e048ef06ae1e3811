//! `cargo xtask image`: reproducible OCI image layouts of every server, from `dist/`, without
//! a container engine (like `ko` for Go).
//!
//! For each server crate, `dist/images/<crate>/` is one OCI layout with one tag per CPU
//! variant (`generic`, `x86-64-v3`, `znver4`, …: the variant's static binary alone),
//! `latest`: the dispatch image with every variant plus `mcp-launcher`, which picks the best
//! build for the CPU at start, and `platforms`: an image index whose entries carry standard
//! platforms (`linux/amd64`, `linux/amd64/v3`, `linux/amd64/v4`, `linux/arm64` when dist has
//! an aarch64 build; see [`platform`]), so a container engine picks the level itself. Every
//! manifest, config and the index name the MCP server ([`registry`]), and
//! `dist/mcp-registry/<crate>/server.json` describes it for the MCP registry. In-image layout:
//!
//! - variant image: `/usr/local/bin/<server>` is the server.
//! - dispatch image: `/opt/mcp/<variant>/<server>` per variant, `/usr/local/bin/mcp-launcher`,
//!   and `/usr/local/bin/<server>` a symlink to it (the launcher reads the server from argv[0]).
//! - both: `/etc/passwd` and `/etc/group` with `nonroot` (uid/gid 65532) as the image user,
//!   its home `/home/nonroot` and the working directory `/work` owned by it, `/tmp` (1777).
//!   No CA certificates: no server makes outgoing TLS connections.

pub mod layout;
pub mod platform;
pub mod registry;
pub mod smoke;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_DESCRIPTION, ANNOTATION_LICENSES, ANNOTATION_REVISION,
    ANNOTATION_SOURCE, ANNOTATION_TITLE, ANNOTATION_VERSION, Arch,
};

use crate::dist::{Artifact, ArtifactKind, BASELINE_CPU, Manifest};
use crate::metadata::{CrateSpec, Role, SmokeCall, Workspace};
use crate::prereq;
use layout::{EntryKind, ImageSpec, IndexSpec, Layer, WrittenImage};
use registry::{Registry, SERVER_NAME_KEY};

/// The non-root user every image runs as (the distroless convention).
pub const IMAGE_UID: u64 = 65532;
/// Tag of the dispatch image.
pub const DISPATCH_TAG: &str = "latest";
/// Where the dispatch image keeps each variant: `<dir>/<variant>/<server>`; the launcher's
/// default `MCP_FOUNDRY_VARIANTS_DIR`.
pub const VARIANTS_DIR: &str = "opt/mcp";
pub const LAUNCHER_BIN: &str = "mcp-launcher";
/// Label naming the build an image holds: a variant name, or `dispatch`.
pub const VARIANT_LABEL: &str = "io.github.mcp-foundry.variant";
const BIN_DIR: &str = "usr/local/bin";
const WORK_DIR: &str = "/work";

#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// Build images of this server crate only (repeatable; default: every server).
    #[arg(long = "crate", value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Build these variants only (repeatable; default: all). `latest` needs all of them.
    #[arg(long = "variant", value_name = "VARIANT")]
    pub variants: Vec<String>,
    /// The `cargo xtask dist` output to package (default: `<workspace>/dist`).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// Where to write the layouts (default: `<dist>/images`).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// The launcher for the dispatch image (default: the `launcher` artifact in
    /// `<dist>/manifest.json`).
    #[arg(long, value_name = "FILE")]
    pub launcher: Option<PathBuf>,
    /// Then run every image: umoci unpack, chroot as the image user, MCP handshake,
    /// tools/list and a tool call; `skopeo inspect`; the dispatch image also under
    /// `qemu-x86_64 -cpu Haswell`; `skopeo copy` selects each platform of the index.
    #[arg(long)]
    pub smoke: bool,
}

/// The OCI layout written for one server crate.
#[derive(Debug, Clone)]
pub struct BuiltLayout {
    pub crate_name: String,
    pub dir: PathBuf,
    pub images: Vec<WrittenImage>,
    /// Every variant build of the server packaged in this layout.
    pub variants: Vec<smoke::ImageVariant>,
    /// sha256 of the launcher in the `latest` image, when it was built.
    pub launcher_sha256: Option<String>,
    pub smoke_call: Option<SmokeCall>,
    /// The platform index's entries: `(tag, architecture, platform variant)`.
    pub platforms: Vec<(String, Arch, Option<String>)>,
    /// The MCP server name on every image and the index.
    pub server_name: String,
    pub server_json: PathBuf,
}

/// One build of the server to package.
#[derive(Debug, Clone)]
pub struct VariantBinary {
    pub variant: String,
    pub target_cpu: String,
    pub path: PathBuf,
}

/// What to package: everything is explicit so tests can build layouts from any binaries.
#[derive(Debug, Clone)]
pub struct CrateImages {
    pub crate_name: String,
    /// Config labels of every image.
    pub labels: BTreeMap<String, String>,
    /// Annotations of every manifest and of the platform index.
    pub annotations: BTreeMap<String, String>,
    pub architecture: Arch,
    /// The builds for `architecture`, in the workspace's variant order.
    pub variant_binaries: Vec<VariantBinary>,
    /// Baseline builds for other architectures (e.g. aarch64): one image each, in the
    /// platform index and tagged `<variant>-<arch>`.
    pub foreign_baselines: Vec<(Arch, VariantBinary)>,
    /// With a launcher, the `latest` dispatch image is written too.
    pub launcher: Option<PathBuf>,
    pub source_date_epoch: u64,
}

/// `cargo xtask image` with command-line arguments.
pub fn run(workspace: &Workspace, args: &ImageArgs) -> Result<()> {
    let dist = args
        .dist
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    let out = args.out.clone().unwrap_or_else(|| dist.join("images"));
    if args.smoke {
        prereq::ensure(
            &workspace.root,
            &prereq::Needs::new("image --smoke", [prereq::Use::ImageSmoke]),
        )?;
    }
    let built = build_images(workspace, &dist, &out, args)?;
    print_sizes(&built);
    if args.smoke {
        run_smoke(&built)?;
    }
    Ok(())
}

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
        let artifacts: Vec<(&str, &Artifact)> = variants
            .iter()
            .map(|variant| {
                let artifact = server_binaries()
                    .find(|a| a.variant == variant.name && arch_of(a) == main_arch)
                    .with_context(|| {
                        format!(
                            "{}/manifest.json has no {} build of {}; run `cargo xtask dist --crate {} --variant {}`",
                            dist.display(),
                            variant.name,
                            server.name,
                            server.name,
                            variant.name
                        )
                    })?;
                Ok((variant.name.as_str(), artifact))
            })
            .collect::<Result<_>>()?;
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
            source_date_epoch: manifest.source_date_epoch,
        };
        let dir = out.join(&server.name);
        let images = write_crate_images(&request, &dir)?;
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

fn image_labels(spec: &CrateSpec, git_commit: &str, epoch: u64) -> BTreeMap<String, String> {
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

/// `/etc/passwd`, `/etc/group`, home, work and tmp directories shared by every image.
fn base_layer() -> Result<Layer> {
    let mut layer = Layer::default();
    let passwd = format!(
        "root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{IMAGE_UID}:{IMAGE_UID}:nonroot:/home/nonroot:/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nnonroot:x:{IMAGE_UID}:\n");
    layer.add("etc/passwd", EntryKind::File(passwd.into_bytes()), 0o644, 0)?;
    layer.add("etc/group", EntryKind::File(group.into_bytes()), 0o644, 0)?;
    layer.add("home/nonroot", EntryKind::Directory, 0o755, IMAGE_UID)?;
    layer.add(WORK_DIR, EntryKind::Directory, 0o755, IMAGE_UID)?;
    layer.add("tmp", EntryKind::Directory, 0o1777, 0)?;
    Ok(layer)
}

fn read_binary(path: &Path) -> Result<EntryKind> {
    Ok(EntryKind::File(
        fs::read(path).with_context(|| format!("reading {}", path.display()))?,
    ))
}

/// The image specs (one per variant, plus `latest` with a launcher) of one crate.
pub fn image_specs(request: &CrateImages) -> Result<Vec<ImageSpec>> {
    let server = &request.crate_name;
    let entrypoint = vec![format!("/{BIN_DIR}/{server}")];
    let spec = |tag: &str,
                layer: Layer,
                variant_label: &str,
                architecture: &Arch,
                platform_variant: Option<String>| {
        let mut labels = request.labels.clone();
        labels.insert(VARIANT_LABEL.to_owned(), variant_label.to_owned());
        ImageSpec {
            tag: tag.to_owned(),
            layer,
            architecture: architecture.clone(),
            platform_variant,
            annotations: request.annotations.clone(),
            entrypoint: entrypoint.clone(),
            env: vec!["PATH=/usr/local/bin".to_owned()],
            user: format!("{IMAGE_UID}:{IMAGE_UID}"),
            working_dir: WORK_DIR.to_owned(),
            labels,
            source_date_epoch: request.source_date_epoch,
        }
    };
    let single = |binary: &VariantBinary| -> Result<Layer> {
        let mut layer = base_layer()?;
        layer.add(
            &format!("{BIN_DIR}/{server}"),
            read_binary(&binary.path)?,
            0o755,
            0,
        )?;
        Ok(layer)
    };
    let mut specs = Vec::new();
    for binary in &request.variant_binaries {
        let platform_variant =
            platform::standard_variant(&request.architecture, &binary.target_cpu).flatten();
        specs.push(spec(
            &binary.variant,
            single(binary)?,
            &binary.variant,
            &request.architecture,
            platform_variant,
        ));
    }
    for (arch, binary) in &request.foreign_baselines {
        specs.push(spec(
            &platform::foreign_tag(&binary.variant, arch),
            single(binary)?,
            &binary.variant,
            arch,
            None,
        ));
    }
    if let Some(launcher) = &request.launcher {
        let mut layer = base_layer()?;
        for binary in &request.variant_binaries {
            layer.add(
                &format!("{VARIANTS_DIR}/{}/{server}", binary.variant),
                read_binary(&binary.path)?,
                0o755,
                0,
            )?;
        }
        layer.add(
            &format!("{BIN_DIR}/{LAUNCHER_BIN}"),
            read_binary(launcher)?,
            0o755,
            0,
        )?;
        layer.add(
            &format!("{BIN_DIR}/{server}"),
            EntryKind::Symlink(LAUNCHER_BIN.to_owned()),
            0o777,
            0,
        )?;
        specs.push(spec(
            DISPATCH_TAG,
            layer,
            "dispatch",
            &request.architecture,
            None,
        ));
    }
    Ok(specs)
}

/// The platform index's entries, `(tag, architecture, platform variant)`: every build with
/// a standard platform ([`platform::standard_variant`]).
pub fn platform_entries(request: &CrateImages) -> Vec<(String, Arch, Option<String>)> {
    let main = request.variant_binaries.iter().filter_map(|binary| {
        let variant = platform::standard_variant(&request.architecture, &binary.target_cpu)?;
        Some((
            binary.variant.clone(),
            request.architecture.clone(),
            variant,
        ))
    });
    let foreign = request
        .foreign_baselines
        .iter()
        .filter_map(|(arch, binary)| {
            let variant = platform::standard_variant(arch, &binary.target_cpu)?;
            Some((
                platform::foreign_tag(&binary.variant, arch),
                arch.clone(),
                variant,
            ))
        });
    main.chain(foreign).collect()
}

/// Writes the crate's layout to `dir`, replacing an older one only once the new one is
/// complete.
pub fn write_crate_images(request: &CrateImages, dir: &Path) -> Result<Vec<WrittenImage>> {
    let specs = image_specs(request)?;
    let entries = platform_entries(request);
    let indexes: Vec<IndexSpec> = if entries.is_empty() {
        Vec::new()
    } else {
        vec![IndexSpec {
            tag: platform::PLATFORM_INDEX_TAG.to_owned(),
            images: entries.into_iter().map(|(tag, ..)| tag).collect(),
            annotations: request.annotations.clone(),
        }]
    };
    let parent = dir.parent().context("image directory has no parent")?;
    fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let file_name = dir
        .file_name()
        .context("image directory has no name")?
        .to_string_lossy();
    let partial = parent.join(format!(".{file_name}.partial"));
    if partial.exists() {
        fs::remove_dir_all(&partial).with_context(|| format!("removing {}", partial.display()))?;
    }
    let written = layout::write_layout(&partial, &specs, &indexes)?;
    if dir.exists() {
        fs::remove_dir_all(dir)
            .with_context(|| format!("removing the previous {}", dir.display()))?;
    }
    fs::rename(&partial, dir)
        .with_context(|| format!("moving {} to {}", partial.display(), dir.display()))?;
    Ok(written)
}

fn print_sizes(built: &[BuiltLayout]) {
    const GOAL: u64 = 5 * 1024 * 1024;
    println!(
        "{:<24} {:<8} {:>12} {:>14}  manifest",
        "image", "tag", "compressed", "uncompressed"
    );
    for layout in built {
        for image in &layout.images {
            let note = if image.tag != DISPATCH_TAG && image.compressed_size > GOAL {
                "  (over the 5 MiB goal)"
            } else {
                ""
            };
            println!(
                "{:<24} {:<8} {:>12} {:>14}  {}{note}",
                layout.crate_name,
                image.tag,
                human_size(image.compressed_size),
                human_size(image.uncompressed_layer_size),
                image.manifest_digest
            );
        }
        let platforms: Vec<String> = layout
            .platforms
            .iter()
            .map(|(tag, arch, variant)| {
                format!(
                    "{}={tag}",
                    platform::platform_name(arch, variant.as_deref())
                )
            })
            .collect();
        println!(
            "{:<24} {:<8} {}  [{SERVER_NAME_KEY}={}; {}]",
            layout.crate_name,
            platform::PLATFORM_INDEX_TAG,
            platforms.join(", "),
            layout.server_name,
            layout.server_json.display()
        );
    }
}

fn human_size(bytes: u64) -> String {
    format!("{:.2} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What each platform of the layout's index must select.
fn selections(layout: &BuiltLayout) -> Vec<platform::Selection> {
    layout
        .platforms
        .iter()
        .filter_map(|(tag, architecture, variant)| {
            let image = layout.images.iter().find(|image| &image.tag == tag)?;
            Some(platform::Selection {
                tag: tag.clone(),
                architecture: architecture.clone(),
                variant: variant.clone(),
                manifest_digest: image.manifest_digest.clone(),
            })
        })
        .collect()
}

/// Smoke-tests every image of `built` (see [`smoke`]). Images whose build this CPU cannot
/// run are checked without running and listed loudly at the end.
pub fn run_smoke(built: &[BuiltLayout]) -> Result<()> {
    let mut failures = Vec::new();
    let mut not_run = Vec::new();
    for layout in built {
        for image in &layout.images {
            let dispatch = image.tag == DISPATCH_TAG;
            let target = smoke::SmokeTarget {
                layout_dir: layout.dir.clone(),
                tag: image.tag.clone(),
                server: layout.crate_name.clone(),
                call: layout.smoke_call.clone(),
                variants: layout
                    .variants
                    .iter()
                    .filter(|v| {
                        if dispatch {
                            v.is_main_arch()
                        } else {
                            v.tag == image.tag
                        }
                    })
                    .cloned()
                    .collect(),
                launcher_sha256: if dispatch {
                    layout.launcher_sha256.clone()
                } else {
                    None
                },
            };
            let name = format!("{}:{}", layout.crate_name, image.tag);
            match smoke::smoke_image(&target) {
                Ok(outcome) => {
                    println!("smoke ok   {name}  {}", outcome.report);
                    if let Some(notice) = outcome.skipped_run {
                        eprintln!("{notice}");
                        not_run.push(name);
                    }
                }
                Err(error) => {
                    println!("smoke FAIL {name}  {error:#}");
                    failures.push(name);
                }
            }
        }
    }
    for layout in built {
        let name = format!("{}:{}", layout.crate_name, platform::PLATFORM_INDEX_TAG);
        match platform::check_selection(&layout.dir, &selections(layout)) {
            Ok(report) => println!("smoke ok   {name}  skopeo selects {report}"),
            Err(error) => {
                println!("smoke FAIL {name}  {error:#}");
                failures.push(name);
            }
        }
    }
    if !not_run.is_empty() {
        eprintln!(
            "\n!!! SKIPPED on this CPU ({}): running {} (layout, config and labels were checked) !!!\n",
            crate::cpu::this_cpu(),
            not_run.join(", ")
        );
    }
    if !failures.is_empty() {
        bail!("image smoke test failed for {}", failures.join(", "));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
