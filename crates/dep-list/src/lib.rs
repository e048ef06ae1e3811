//! The dependency list every mcp-foundry artifact embeds, the way `cargo auditable` does it:
//! a zlib-compressed JSON list in an ELF section named `.dep-v0`, which `cargo audit bin`,
//! syft and trivy read. One crate computes it for both pipelines, `cargo xtask dist` (as a
//! library) and the Nix packages (the `dep-list embed` command in each package's
//! postInstall), so an artifact's bytes do not depend on which one built it.
//!
//! The list is what cargo builds into the artifact: `cargo tree` of its package alone for
//! its target and features (the Python feature for the module), normal edges only — build
//! scripts, dev-dependencies and other targets' dependencies are not linked, nor are
//! proc-macros (they run in the compiler; cargo-auditable lists them) and what they depend
//! on. Not the whole `Cargo.lock`, and not `cargo metadata`'s resolution either: that one
//! unifies features over every workspace member, xtask's included, and lists crates the
//! artifact does not link. The workspace-hack (cargo-hakari's `hakari-package`) keeps a
//! package's features the same alone and in dist's joint build; it is an empty crate no
//! code refers to, so rustc never loads it nor what it depends on, and the tree is pruned
//! there (a crate it alone reaches is not linked). Sources come from `cargo metadata`.
//!
//! The list is embedded after stripping, with the toolchain's `rust-objcopy --add-section`,
//! as a non-allocated section like cargo-auditable's: the code is untouched, and the bytes
//! are a function of the sources (sorted, fixed compression level), so rebuilds stay
//! bit-identical.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use auditable_serde::{DependencyKind, Package as AuditablePackage, Source, VersionInfo};
use cargo_metadata::{CargoOpt, Metadata, MetadataCommand};
use object::Object as _;
use serde_json::json;

/// The ELF section cargo-auditable's readers look for.
pub const SECTION: &str = ".dep-v0";
/// cargo-auditable's compression level (fast, and fixed: the output must not vary).
const ZLIB_LEVEL: u32 = 7;

/// One crate linked into an artifact.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LinkedCrate {
    pub name: String,
    pub version: String,
    /// cargo's source id (`registry+…`, `git+…`), `None` for path dependencies.
    pub source: Option<String>,
    /// Indices into the list of the crates this one depends on (normal dependencies).
    pub dependencies: Vec<usize>,
    /// The artifact's own package.
    pub root: bool,
}

/// The crates linked into one artifact, root included, sorted by name, version and source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedCrates {
    pub crates: Vec<LinkedCrate>,
}

/// cargo's resolution for one target and feature set: `cargo metadata` (sources and
/// repositories of the packages) and what `cargo tree` needs to ask for one package.
#[derive(Debug, Clone)]
pub struct Resolution {
    pub metadata: Metadata,
    /// cargo-hakari's `hakari-package` (`.config/hakari.toml`), when the workspace has one.
    pub unifier: Option<String>,
    root: PathBuf,
    target: String,
    features: Vec<String>,
}

/// The `hakari-package` of `root/.config/hakari.toml`, if there is one.
pub fn feature_unifier(root: &Path) -> Result<Option<String>> {
    let path = root.join(".config/hakari.toml");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let config: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(config
        .get("hakari-package")
        .and_then(toml::Value::as_str)
        .map(str::to_owned))
}

/// `cargo metadata` resolved for `target` with `features` (`package/feature`) enabled.
pub fn resolve(root: &Path, target: &str, features: &[String]) -> Result<Resolution> {
    let mut command = MetadataCommand::new();
    command.current_dir(root).other_options(vec![
        "--locked".to_owned(),
        "--filter-platform".to_owned(),
        target.to_owned(),
    ]);
    if !features.is_empty() {
        command.features(CargoOpt::SomeFeatures(features.to_vec()));
    }
    let metadata = command.exec().with_context(|| {
        format!(
            "resolving the dependencies of {} for {target} (cargo metadata)",
            root.display()
        )
    })?;
    Ok(Resolution {
        metadata,
        unifier: feature_unifier(root)?,
        root: root.to_owned(),
        target: target.to_owned(),
        features: features.to_vec(),
    })
}

impl LinkedCrates {
    /// The crates linked into `package` (a package name of the workspace): cargo tree's
    /// normal dependencies of a build of that package alone for the resolution's target and
    /// features, outside proc-macros and the feature unifier (see the module documentation).
    pub fn of(resolution: &Resolution, package: &str) -> Result<LinkedCrates> {
        let metadata = &resolution.metadata;
        if !metadata
            .workspace_packages()
            .iter()
            .any(|p| p.name.as_str() == package)
        {
            bail!("`{package}` is not a package of the workspace");
        }
        let graph = tree::linked(resolution, package)?;
        // Sources from the metadata: (name, version) → cargo's source id.
        let mut sources: BTreeMap<(&str, String), Option<String>> = BTreeMap::new();
        for p in &metadata.packages {
            sources.insert(
                (p.name.as_str(), p.version.to_string()),
                p.source.as_ref().map(|s| s.repr.clone()),
            );
        }
        let keys: Vec<&tree::Key> = graph.keys().collect();
        let index: BTreeMap<&tree::Key, usize> =
            keys.iter().enumerate().map(|(i, k)| (*k, i)).collect();
        let mut crates = Vec::new();
        for key in &keys {
            let (name, version) = key;
            let source = sources
                .get(&(name.as_str(), version.clone()))
                .with_context(|| format!("{name} {version} is not in cargo metadata's packages"))?
                .clone();
            let mut dependencies: Vec<usize> = graph[*key].iter().map(|d| index[d]).collect();
            dependencies.sort_unstable();
            crates.push(LinkedCrate {
                name: name.clone(),
                version: version.clone(),
                source,
                dependencies,
                root: name == package,
            });
        }
        Ok(LinkedCrates { crates })
    }

    /// The root crate (the artifact's package).
    pub fn root(&self) -> Option<&LinkedCrate> {
        self.crates.iter().find(|c| c.root)
    }

    /// The list in cargo-auditable's format.
    pub fn to_auditable(&self) -> Result<VersionInfo> {
        let mut packages = Vec::new();
        for c in &self.crates {
            packages.push(AuditablePackage {
                name: c.name.clone(),
                version: c.version.parse().with_context(|| {
                    format!("version {} of {} is not semver", c.version, c.name)
                })?,
                source: auditable_source(c.source.as_deref()),
                kind: DependencyKind::Runtime,
                dependencies: c.dependencies.clone(),
                root: c.root,
            });
        }
        // Through the format's own validation (one root, no cycles).
        let json = serde_json::to_string(&json!({ "packages": packages }))?;
        serde_json::from_str(&json).context("the dependency list fails cargo-auditable's checks")
    }

    /// The bytes of the `.dep-v0` section: the JSON list, zlib-compressed.
    pub fn section_bytes(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(&self.to_auditable()?)?;
        let mut encoder =
            flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(ZLIB_LEVEL));
        encoder.write_all(&json)?;
        Ok(encoder.finish()?)
    }
}

pub fn auditable_source(source: Option<&str>) -> Source {
    match source {
        None => Source::Local,
        Some(s) if is_default_registry(s) => Source::CratesIo,
        Some(s) if s.starts_with("git+") => Source::Git,
        Some(s) if s.starts_with("registry+") || s.starts_with("sparse+") => Source::Registry,
        Some(s) => Source::Other(s.to_owned()),
    }
}

/// Cargo's default registry, in its git and sparse spellings.
pub fn is_default_registry(source: &str) -> bool {
    source == "registry+https://github.com/rust-lang/crates.io-index"
        || source.starts_with("sparse+https://index.crates.io")
}

/// Adds `section` (the bytes of [`LinkedCrates::section_bytes`]) to the ELF file `path` in
/// place, as the non-allocated section [`SECTION`].
///
/// A file that already has the section is refused: objcopy would add a second one, and
/// readers take the first.
pub fn embed(objcopy: &Path, path: &Path, section: &[u8]) -> Result<()> {
    let contents = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let elf = object::File::parse(contents.as_slice()).with_context(|| {
        format!(
            "{} is not an object file objcopy can change",
            path.display()
        )
    })?;
    if elf.section_by_name(SECTION).is_some() {
        bail!(
            "{} already has a {SECTION} section (is it embedded twice?); embed into a freshly \
             stripped file",
            path.display()
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut data = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    data.write_all(section)?;
    data.flush()?;
    output(
        Command::new(objcopy)
            .arg("--add-section")
            .arg(format!("{SECTION}={}", data.path().display()))
            .arg(path),
    )
    .with_context(|| format!("embedding the dependency list into {}", path.display()))?;
    Ok(())
}

/// The toolchain's own `rust-objcopy` (what dist strips and embeds with), of the toolchain
/// `rustc` resolves to in `dir`.
pub fn toolchain_objcopy(dir: &Path) -> Result<PathBuf> {
    let rustc = |what: &str| {
        output(
            Command::new("rustc")
                .args(["--print", what])
                .current_dir(dir),
        )
    };
    let objcopy = Path::new(&rustc("sysroot")?)
        .join("lib/rustlib")
        .join(rustc("host-tuple")?)
        .join("bin/rust-objcopy");
    if !objcopy.is_file() {
        bail!(
            "{} is missing; it ships with the Rust toolchain (reinstall the toolchain, or pass \
             --objcopy)",
            objcopy.display()
        );
    }
    Ok(objcopy)
}

/// The trimmed stdout of `command`; its stderr in the error when it fails.
fn output(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("could not start {shown}; is it installed and on PATH?"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

mod tree;

#[cfg(test)]
mod tests;
