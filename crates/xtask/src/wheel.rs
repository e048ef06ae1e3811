//! The Python wheel of `cargo xtask dist`: one abi3 wheel per architecture (this machine's
//! and the cross-built ones) holding the baseline build of the extension module and the
//! build of every faster variant of that architecture, so that `import mcp_rust_core` can
//! choose on the user's CPU (see the package's `__init__.py`).
//!
//! Layout (`<m>` is the module name):
//!
//! ```text
//! <m>/__init__.py, __init__.pyi, py.typed     the package sources
//! <m>/<m>.abi3.so                            the baseline variant (loads on any CPU)
//! <m>/_variants/<variant>/<m>.abi3.so        every other variant of the architecture
//! <name>-<version>.dist-info/{METADATA,WHEEL,RECORD}
//! ```
//!
//! The platform tag comes from the modules themselves: the newest `GLIBC_2.N` symbol
//! version any of them needs gives `manylinux_2_N` (PEP 600; dist links them against glibc
//! 2.17, `crate::cross::GLIBC_FLOOR`, hence `manylinux_2_17` + `manylinux2014`), musl gives
//! `musllinux_1_2` (PEP 656), and a module that needs a library outside the manylinux set
//! (libpython above all) is an error, not a wheel that `auditwheel show` would reject.
//!
//! - [`metadata`]: name, version, tags, `METADATA`/`WHEEL` from `pyproject.toml`;
//! - [`elf`]: what each module needs from the system;
//! - [`archive`]: the reproducible zip and its `RECORD`;
//! - [`install_test`]: the wheel installed into fresh venvs of the host's Python and of the
//!   oldest and newest supported ones, with the FFI tests and `auditwheel show`;
//! - [`debian`]: those other Pythons, from cached Debian chroots;
//! - [`emulated`]: the wheel of another architecture (aarch64), tested under qemu-user with
//!   that architecture's Debian CPython and numpy.

pub mod archive;
pub mod debian;
pub mod elf;
pub mod emulated;
pub mod install_test;
pub mod metadata;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use archive::Entry;
use elf::{Libc, Linkage};
use metadata::Metadata;

use crate::dist::BASELINE_CPU;
use crate::dist::manifest::{Artifact, ArtifactKind, Manifest};
use crate::metadata::{CrateSpec, Role};

/// Where `cargo xtask dist` puts the wheels, under its output directory.
pub const WHEELS_DIR: &str = "wheels";

/// Everything a wheel is made of.
#[derive(Debug, Clone)]
pub struct WheelInputs {
    /// The crate directory, holding `pyproject.toml`.
    pub crate_dir: PathBuf,
    pub crate_version: String,
    /// The import name (`mcp_rust_core`).
    pub module: String,
    /// Rust's `target_arch` of the modules (`x86_64`), also the platform tag's suffix.
    pub arch: String,
    /// The package's Python files (`__init__.py`, stubs, `py.typed`).
    pub sources: Vec<PathBuf>,
    /// The baseline variant's extension module.
    pub baseline: PathBuf,
    /// The other variants' extension modules, by variant name.
    pub variants: Vec<(String, PathBuf)>,
}

/// A written wheel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wheel {
    pub path: PathBuf,
    /// `cp39-abi3-manylinux_2_17_x86_64`, ...
    pub tags: Vec<String>,
    /// Paths inside the archive, in archive order.
    pub files: Vec<String>,
}

/// `e_machine` of `arch`'s ELF files.
fn elf_machine(arch: &str) -> Result<u16> {
    match arch {
        "x86_64" => Ok(object::elf::EM_X86_64.0),
        "aarch64" => Ok(object::elf::EM_AARCH64.0),
        other => bail!("no wheel platform tag is known for architecture {other}"),
    }
}

/// Checks one extension module and returns the C library (and glibc version) it needs.
fn check_extension(path: &Path, module: &str, arch: &str) -> Result<Libc> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let check = || -> Result<Libc> {
        let linkage = Linkage::read(&data)?;
        if linkage.machine != elf_machine(arch)? {
            bail!(
                "it is not an {arch} ELF file (e_machine {})",
                linkage.machine
            );
        }
        linkage.check_system_libraries()?;
        let init = format!("PyInit_{module}");
        if !linkage.exports.contains(&init) {
            bail!("it does not export {init}, so Python cannot import it as {module}");
        }
        linkage.libc()
    };
    check().with_context(|| format!("extension module {}", path.display()))
}

/// Assembles the wheel into `out_dir` and returns it.
pub fn build(inputs: &WheelInputs, out_dir: &Path) -> Result<Wheel> {
    let metadata = Metadata::read(
        &inputs.crate_dir.join("pyproject.toml"),
        &inputs.crate_version,
    )?;
    let module = &inputs.module;
    let extension = format!("{module}.abi3.so");

    let mut libc = check_extension(&inputs.baseline, module, &inputs.arch)?;
    let mut entries = Vec::new();
    for source in &inputs.sources {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no UTF-8 file name", source.display()))?;
        let data =
            std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
        entries.push(Entry::file(format!("{module}/{name}"), data));
    }
    let mut extensions = vec![(format!("{module}/{extension}"), &inputs.baseline)];
    for (variant, path) in &inputs.variants {
        match (libc, check_extension(path, module, &inputs.arch)?) {
            (Libc::Glibc { minor }, Libc::Glibc { minor: other }) => {
                libc = Libc::Glibc {
                    minor: minor.max(other),
                }
            }
            (Libc::Musl, Libc::Musl) => {}
            _ => bail!(
                "{} and {} are linked against different C libraries (glibc and musl); one \
                 wheel cannot hold both",
                inputs.baseline.display(),
                path.display()
            ),
        }
        extensions.push((format!("{module}/_variants/{variant}/{extension}"), path));
    }
    for (archive_path, path) in extensions {
        let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        entries.push(Entry {
            path: archive_path,
            data,
            executable: true,
        });
    }
    entries.sort_by(|a, b| a.path.cmp(&b.path));
    if let Some(pair) = entries.windows(2).find(|pair| pair[0].path == pair[1].path) {
        bail!("two files would be {} in the wheel", pair[0].path);
    }

    let python_tag = format!("cp3{}", metadata.python_minor);
    let platforms = metadata::platform_tags(libc, &inputs.arch);
    let tags: Vec<String> = platforms
        .iter()
        .map(|platform| format!("{python_tag}-abi3-{platform}"))
        .collect();
    let dist_info = metadata.dist_info();
    entries.push(Entry::file(
        format!("{dist_info}/METADATA"),
        metadata.metadata_file(),
    ));
    entries.push(Entry::file(
        format!("{dist_info}/WHEEL"),
        metadata.wheel_file(&tags),
    ));
    let record_path = format!("{dist_info}/RECORD");
    let record = archive::record(&entries, &record_path);
    entries.push(Entry::file(record_path, record));

    let file_name = format!(
        "{}-{}-{python_tag}-abi3-{}.whl",
        metadata.file_name(),
        metadata.version,
        platforms.join(".")
    );
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let path = out_dir.join(file_name);
    archive::write_zip(&path, &entries)?;
    Ok(Wheel {
        path,
        tags,
        files: entries.into_iter().map(|e| e.path).collect(),
    })
}

/// The wheels of a published `dist/` (`out`): one per Python-module crate in `crates` and
/// architecture in `manifest`, made of that architecture's baseline package and every other
/// variant's module built for it. Replaces `out/wheels/`. No wheel (said loudly) for an
/// architecture whose baseline variant was not built, since a wheel without it would not
/// import on every CPU its tag promises.
pub fn from_dist(out: &Path, manifest: &Manifest, crates: &[&CrateSpec]) -> Result<Vec<Wheel>> {
    from_dist_into(out, manifest, crates, &out.join(WHEELS_DIR))
}

/// Builds the wheels of `dist_dir` again into `rebuild_dir` and fails unless each is the
/// same bytes as the one in `dist_dir/wheels/` (`cargo xtask ci`: the wheel is a pure
/// function of the published modules and sources, with no time or order in it).
pub fn check_reproducible(
    dist_dir: &Path,
    crates: &[&CrateSpec],
    rebuild_dir: &Path,
) -> Result<()> {
    let manifest = Manifest::load(dist_dir)?;
    for wheel in from_dist_into(dist_dir, &manifest, crates, rebuild_dir)? {
        let name = wheel.path.file_name().unwrap_or_default();
        let published = dist_dir.join(WHEELS_DIR).join(name);
        let (a, b) = (std::fs::read(&published), std::fs::read(&wheel.path));
        match (a, b) {
            (Ok(a), Ok(b)) if a == b => {
                eprintln!(
                    "--> wheel rebuilt byte for byte: {}",
                    name.to_string_lossy()
                )
            }
            (Ok(_), Ok(_)) => bail!(
                "the wheel is not reproducible: {} and its rebuild {} differ",
                published.display(),
                wheel.path.display()
            ),
            (Err(error), _) => {
                return Err(error).with_context(|| format!("reading {}", published.display()));
            }
            (_, Err(error)) => {
                return Err(error).with_context(|| format!("reading {}", wheel.path.display()));
            }
        }
    }
    Ok(())
}

/// [`from_dist`], writing into `wheels_dir` (replaced).
fn from_dist_into(
    out: &Path,
    manifest: &Manifest,
    crates: &[&CrateSpec],
    wheels_dir: &Path,
) -> Result<Vec<Wheel>> {
    if wheels_dir.exists() {
        std::fs::remove_dir_all(wheels_dir)
            .with_context(|| format!("removing stale {}", wheels_dir.display()))?;
    }
    let modules: Vec<&&CrateSpec> = crates
        .iter()
        .filter(|spec| spec.role == Role::PythonModule)
        .collect();
    if modules.is_empty() {
        return Ok(Vec::new());
    }
    let mut wheels = Vec::new();
    for spec in modules {
        let module = spec
            .python_module
            .clone()
            .with_context(|| format!("crate `{}` has no python-module name", spec.name))?;
        let extensions: Vec<&Artifact> = manifest
            .artifacts
            .iter()
            .filter(|a| a.kind == ArtifactKind::PythonExtension && a.crate_name == spec.name)
            .collect();
        for arch in manifest.architectures() {
            // The architecture's builds in the table's order (the baseline first).
            let mut builds: Vec<&Artifact> = extensions
                .iter()
                .copied()
                .filter(|a| crate::cross::target_arch(&a.target) == arch)
                .collect();
            if builds.is_empty() {
                continue;
            }
            builds.sort_by_key(|a| manifest.variants.iter().position(|v| v.name == a.variant));
            let Some(baseline) = builds.iter().find(|a| a.target_cpu == BASELINE_CPU) else {
                eprintln!(
                    "NOTE: no {arch} wheel of `{}`: the baseline variant (target-cpu \
                     {BASELINE_CPU}) was not built for {arch} in this run; run `cargo xtask \
                     dist` without --variant to get one",
                    spec.name
                );
                continue;
            };
            let baseline_path = out.join(&baseline.path);
            let baseline_package = baseline_path
                .parent()
                .with_context(|| format!("{} has no directory", baseline.path))?;
            let mut sources = Vec::new();
            for entry in std::fs::read_dir(baseline_package)
                .with_context(|| format!("reading {}", baseline_package.display()))?
            {
                let path = entry?.path();
                if path.is_file() && !path.to_string_lossy().ends_with(".so") {
                    sources.push(path);
                }
            }
            sources.sort();
            let inputs = WheelInputs {
                crate_dir: spec.dir().to_owned(),
                crate_version: spec.version.clone(),
                module: module.clone(),
                arch: arch.clone(),
                sources,
                baseline: baseline_path.clone(),
                variants: builds
                    .iter()
                    .filter(|a| a.variant != baseline.variant)
                    .map(|a| (a.variant.clone(), out.join(&a.path)))
                    .collect(),
            };
            let wheel = build(&inputs, wheels_dir)
                .with_context(|| format!("building the {arch} wheel of `{}`", spec.name))?;
            eprintln!("wrote {} ({})", wheel.path.display(), wheel.tags.join(", "));
            wheels.push(wheel);
        }
    }
    Ok(wheels)
}
