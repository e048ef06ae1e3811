//! `cargo xtask image`: reproducible OCI image layouts of every server, from `dist/`, without
//! a container engine (like `ko` for Go).
//!
//! For each server crate, `dist/images/<crate>/` is one OCI layout with one tag per CPU
//! variant (`generic`, `x86-64-v3`, `znver4`, …: the variant's static binary alone),
//! `latest`: the dispatch image with every variant built (two at least) plus `mcp-launcher`,
//! which picks the best build the image holds for the CPU at start, and `platforms`: an image
//! index whose entries carry standard platforms (`linux/amd64`, `linux/amd64/v3`, `linux/amd64/v4`, `linux/arm64` when dist has
//! an aarch64 build; see [`platform`]), so a container engine picks the level itself. Every
//! manifest, config and the index name the MCP server ([`registry`]), and
//! `dist/mcp-registry/<crate>/server.json` describes it for the MCP registry. In-image layout:
//!
//! - variant image: `/usr/local/bin/<server>` is the server.
//! - dispatch image: `/opt/mcp/<variant>/<server>` per variant, `/usr/local/bin/mcp-launcher`,
//!   and `/usr/local/bin/<server>` a symlink to it (the launcher reads the server from `argv[0]`).
//! - both: `/etc/passwd` and `/etc/group` with `nonroot` (uid/gid 65532) as the image user,
//!   its home `/home/nonroot` and the working directory `/work` owned by it, `/tmp` (1777).
//!   No CA certificates: no server makes outgoing TLS connections.

mod from_dist;
pub mod layout;
pub mod platform;
pub mod programs;
pub mod registry;
pub mod smoke;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use oci_spec::image::Arch;

use crate::metadata::{SmokeCall, Workspace};
use crate::prereq;
use layout::{EntryKind, ImageSpec, IndexSpec, Layer, WrittenImage};
use registry::SERVER_NAME_KEY;

pub use from_dist::build_images;
#[cfg(test)]
use from_dist::image_labels;

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
/// Where `cargo xtask image` writes the layouts by default, in the dist directory.
pub const IMAGES_DIR: &str = "images";
const BIN_DIR: &str = "usr/local/bin";
const WORK_DIR: &str = "/work";

#[derive(Debug, Clone, clap::Args)]
pub struct ImageArgs {
    /// Build images of this server crate only (repeatable; default: every server).
    #[arg(long = "crate", value_name = "CRATE")]
    pub crates: Vec<String>,
    /// Build these variants only (repeatable; default: all). `latest` needs two of them.
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
    /// The programs the images ship (`image-programs`), which the smoke test runs.
    pub programs: Vec<String>,
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
    /// Programs the server runs (`image-programs`), in every image.
    pub programs: Vec<String>,
    /// Where programs for other architectures are fetched to ([`programs::resolve`]).
    pub program_cache: PathBuf,
    pub source_date_epoch: u64,
}

/// `cargo xtask image` with command-line arguments.
pub fn run(workspace: &Workspace, args: &ImageArgs) -> Result<()> {
    let dist = args
        .dist
        .clone()
        .unwrap_or_else(|| workspace.root.join("dist"));
    let out = args.out.clone().unwrap_or_else(|| dist.join(IMAGES_DIR));
    let needs = if args.smoke {
        prereq::Needs::new(
            "image --smoke",
            [prereq::Use::Image, prereq::Use::ImageSmoke],
        )
    } else {
        prereq::Needs::new("image", [prereq::Use::Image])
    };
    prereq::ensure(&workspace.root, &needs)?;
    if args.smoke {
        // Optional: without a static qemu-user, other architectures' images are checked but
        // not run, and the smoke test says so per image.
        let emulated = prereq::Needs::new(
            "image --smoke (other architectures)",
            [prereq::Use::ImageSmokeEmulated],
        );
        if let Err(error) = prereq::ensure(&workspace.root, &emulated) {
            eprintln!("!!! {error:#} !!!");
        }
    }
    let built = build_images(workspace, &dist, &out, args)?;
    print_sizes(&built);
    if args.smoke {
        run_smoke(&built)?;
    }
    Ok(())
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
            env: vec!["PATH=/usr/local/bin:/usr/bin".to_owned()],
            user: format!("{IMAGE_UID}:{IMAGE_UID}"),
            working_dir: WORK_DIR.to_owned(),
            labels,
            source_date_epoch: request.source_date_epoch,
        }
    };
    let with_programs = |architecture: &Arch| -> Result<Layer> {
        let mut layer = base_layer()?;
        for program in programs::resolve(&request.programs, architecture, &request.program_cache)? {
            layer.add(&program.image_path, EntryKind::File(program.data), 0o755, 0)?;
        }
        Ok(layer)
    };
    let single = |binary: &VariantBinary, architecture: &Arch| -> Result<Layer> {
        let mut layer = with_programs(architecture)?;
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
            single(binary, &request.architecture)?,
            &binary.variant,
            &request.architecture,
            platform_variant,
        ));
    }
    for (arch, binary) in &request.foreign_baselines {
        specs.push(spec(
            &platform::foreign_tag(&binary.variant, arch),
            single(binary, arch)?,
            &binary.variant,
            arch,
            None,
        ));
    }
    if let Some(launcher) = &request.launcher {
        let mut layer = with_programs(&request.architecture)?;
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
                programs: layout.programs.clone(),
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
