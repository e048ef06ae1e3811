//! What a build script needs from the variants table, from the environment cargo gives it.
//!
//! ```no_run
//! let build = cpu_variants::build_script::load().unwrap_or_else(|e| panic!("{e}"));
//! for required in build.required_features().unwrap_or_else(|e| panic!("{e}")) {
//!     println!("{} needs {:?}", required.variant, required.features);
//! }
//! ```

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use crate::features::{self, RequiredFeatures, Rustc};
use crate::{Error, Variant};

/// The variants table and the target being compiled, as seen by a build script.
#[derive(Debug, Clone)]
pub struct BuildScript {
    /// The root `Cargo.toml` the table was read from.
    pub workspace_manifest: PathBuf,
    /// `CARGO_CFG_TARGET_ARCH`, e.g. `x86_64`.
    pub target_arch: String,
    /// `$RUSTC` (or `rustc`) for `$TARGET`.
    pub rustc: Rustc,
    pub out_dir: PathBuf,
    /// The whole table, every architecture.
    pub variants: Vec<Variant>,
}

/// Reads `CARGO_MANIFEST_DIR`, `RUSTC`, `TARGET`, `CARGO_CFG_TARGET_ARCH` and `OUT_DIR`,
/// finds the workspace manifest above the crate, prints the `cargo:rerun-if-…` lines that
/// make cargo rerun the build script when the table or the compiler changes, and reads the
/// table.
pub fn load() -> Result<BuildScript, Error> {
    let var = |var: &'static str| std::env::var(var).map_err(|_| Error::Env { var });
    let manifest_dir = PathBuf::from(var("CARGO_MANIFEST_DIR")?);
    let workspace_manifest = find_workspace_manifest(&manifest_dir)?;
    println!("cargo:rerun-if-changed={}", workspace_manifest.display());
    println!("cargo:rerun-if-env-changed=RUSTC");
    let variants = crate::from_manifest(&workspace_manifest)?;
    Ok(BuildScript {
        workspace_manifest,
        target_arch: var("CARGO_CFG_TARGET_ARCH")?,
        rustc: Rustc::new(
            std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned()),
            var("TARGET")?,
        ),
        out_dir: PathBuf::from(var("OUT_DIR")?),
        variants,
    })
}

/// The nearest `Cargo.toml` with a `[workspace]` table in `dir` or above it.
pub fn find_workspace_manifest(dir: &Path) -> Result<PathBuf, Error> {
    for candidate in dir.ancestors().map(|d| d.join("Cargo.toml")) {
        let Ok(text) = std::fs::read_to_string(&candidate) else {
            continue;
        };
        let is_workspace = text
            .parse::<toml::Table>()
            .is_ok_and(|table| table.contains_key("workspace"));
        if is_workspace {
            return Ok(candidate);
        }
    }
    Err(Error::NoWorkspace {
        dir: dir.to_owned(),
    })
}

impl BuildScript {
    /// The variants that can be built for the target's architecture, in table order.
    pub fn variants_for_target(&self) -> Vec<&Variant> {
        self.variants
            .iter()
            .filter(|v| v.supports(&self.target_arch))
            .collect()
    }

    /// The target features of the target's baseline (no variant rustflags).
    pub fn baseline(&self) -> Result<BTreeSet<String>, Error> {
        self.rustc.target_features(&[])
    }

    /// What each variant for the target's architecture needs beyond the baseline.
    pub fn required_features(&self) -> Result<Vec<RequiredFeatures>, Error> {
        features::required_features(&self.rustc, &self.target_arch, &self.variants)
    }

    /// The features of `features` the generated detection code cannot check (see
    /// [`features::undetectable`]); the probe is compiled in `OUT_DIR`.
    pub fn undetectable(&self, features: &BTreeSet<String>) -> Result<Vec<String>, Error> {
        features::undetectable(&self.rustc, &self.target_arch, &self.out_dir, features)
    }

    /// Fails unless every one of `features` can be checked at run time.
    pub fn ensure_detectable(&self, features: &BTreeSet<String>) -> Result<(), Error> {
        features::ensure_detectable(&self.rustc, &self.target_arch, &self.out_dir, features)
    }

    /// Writes generated code to `OUT_DIR/name`.
    pub fn write_generated(&self, name: &str, code: &str) -> Result<(), Error> {
        let path = self.out_dir.join(name);
        std::fs::write(&path, code).map_err(|source| Error::Write { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_manifest_is_found_from_any_crate_directory() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let found = find_workspace_manifest(here).unwrap();
        assert_eq!(
            found.canonicalize().unwrap(),
            here.join("../../Cargo.toml").canonicalize().unwrap()
        );
        let nested = here.join("src");
        assert_eq!(find_workspace_manifest(&nested).unwrap(), found);
    }

    #[test]
    fn a_crate_outside_any_workspace_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        let err = find_workspace_manifest(dir.path()).unwrap_err();
        assert!(matches!(err, Error::NoWorkspace { .. }), "{err}");
    }
}
