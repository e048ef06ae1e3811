//! The workspace as `cargo metadata` describes it: CPU variants from
//! `[workspace.metadata.mcp-foundry.variants]` and each crate's role from its
//! `[package.metadata.mcp-foundry]`. These tables are the only list of crates and variants;
//! everything in xtask derives from them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The workspace: where it lives, where cargo builds, what it ships in which variants.
#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub target_dir: PathBuf,
    /// Sorted by name.
    pub variants: Vec<VariantSpec>,
    /// Sorted by name.
    pub crates: Vec<CrateSpec>,
}

/// One CPU variant, e.g. `generic` or `znver4`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: String,
    pub description: String,
    pub target_cpu: String,
    /// Extra rustflags for artifacts of this variant (never for build scripts: see `dist`).
    pub rustflags: Vec<String>,
    /// Rust `target_arch` values this variant can be built for.
    pub architectures: Vec<String>,
}

/// What a crate is, from `[package.metadata.mcp-foundry] role = ...`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// An MCP server binary: shipped as a static binary and a container image.
    Server,
    /// A crate whose cdylib is shipped as a Python extension module.
    PythonModule,
    /// A library only used by other crates; not shipped on its own.
    Library,
    /// Tooling such as xtask; never shipped.
    BuildTool,
    /// Built for the baseline CPU only (never per variant) and shipped inside the dispatch
    /// images next to every variant of a server (`mcp-launcher`; see `image`).
    Launcher,
}

impl Role {
    /// Crates with this role end up in `dist/`.
    pub fn is_shipped(self) -> bool {
        matches!(self, Role::Server | Role::PythonModule | Role::Launcher)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Server => "server",
            Role::PythonModule => "python-module",
            Role::Library => "library",
            Role::BuildTool => "build-tool",
            Role::Launcher => "launcher",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One workspace member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrateSpec {
    pub name: String,
    pub version: String,
    pub description: String,
    pub role: Role,
    pub manifest_path: PathBuf,
    /// Python import name (`python-module = "..."`), for `Role::PythonModule`.
    pub python_module: Option<String>,
    /// Cargo feature that enables the Python bindings (`python-feature = "..."`).
    pub python_feature: Option<String>,
    /// Names of the crate's `[[bin]]` targets.
    pub bin_targets: Vec<String>,
    /// Name of the crate's library target (underscored, as rustc names its files).
    pub lib_target: Option<String>,
    /// Cargo features the crate declares.
    pub features: Vec<String>,
    /// `ci-dist = true`: `cargo xtask ci` builds, audits and images this crate even
    /// without `--full-matrix` (python-module and launcher crates always are).
    pub ci_dist: bool,
}

impl CrateSpec {
    /// The directory holding the crate's `Cargo.toml`.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

impl Workspace {
    /// Runs `cargo metadata --format-version 1 --no-deps` for the workspace xtask belongs to.
    pub fn load() -> Result<Workspace> {
        // xtask lives in `<root>/crates/xtask`, so the workspace is two levels up; running
        // from there makes `cargo xtask` work from any current directory.
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = manifest_dir.ancestors().nth(2).unwrap_or(manifest_dir);
        Self::load_from(root)
    }

    /// Runs `cargo metadata` in `dir` (any directory inside the workspace).
    pub fn load_from(dir: &Path) -> Result<Workspace> {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let output = Command::new(&cargo)
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .current_dir(dir)
            .output()
            .with_context(|| format!("could not run `{cargo} metadata`; is cargo on PATH?"))?;
        if !output.status.success() {
            bail!(
                "`cargo metadata` failed in {}:\n{}",
                dir.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let json = String::from_utf8(output.stdout).context("cargo metadata printed non-UTF-8")?;
        Self::from_metadata_json(&json)
    }

    /// Parses the JSON printed by `cargo metadata --format-version 1`.
    pub fn from_metadata_json(json: &str) -> Result<Workspace> {
        let raw: RawMetadata =
            serde_json::from_str(json).context("cargo metadata output is not the expected JSON")?;

        let variant_table = raw
            .metadata
            .and_then(|m| m.mcp_foundry)
            .map(|m| m.variants)
            .unwrap_or_default();
        if variant_table.is_empty() {
            bail!(
                "no CPU variants found: add `[workspace.metadata.mcp-foundry.variants.<name>]` \
                 tables to the root Cargo.toml"
            );
        }
        let variants = variant_table
            .into_iter()
            .map(|(name, raw)| VariantSpec {
                name,
                description: raw.description,
                target_cpu: raw.target_cpu,
                rustflags: raw.rustflags,
                architectures: raw.architectures,
            })
            .collect();

        let members: Vec<&String> = raw.workspace_members.iter().collect();
        let mut crates = Vec::new();
        for package in raw.packages {
            if !members.contains(&&package.id) {
                continue;
            }
            let Some(foundry) = package.metadata.and_then(|m| m.mcp_foundry) else {
                bail!(
                    "crate `{}` ({}) has no `[package.metadata.mcp-foundry]` table; add one with \
                     `role = \"server\" | \"python-module\" | \"library\" | \"build-tool\"`",
                    package.name,
                    package.manifest_path.display()
                );
            };
            let role = match foundry.role.as_deref() {
                Some("server") => Role::Server,
                Some("python-module") => Role::PythonModule,
                Some("library") => Role::Library,
                Some("build-tool") => Role::BuildTool,
                Some("launcher") => Role::Launcher,
                other => bail!(
                    "crate `{}` has role {:?} in [package.metadata.mcp-foundry]; valid roles: \
                     server, python-module, library, build-tool, launcher",
                    package.name,
                    other.unwrap_or("<missing>")
                ),
            };
            if role == Role::PythonModule
                && (foundry.python_module.is_none() || foundry.python_feature.is_none())
            {
                bail!(
                    "crate `{}` has role python-module but lacks `python-module = \"<import name>\"` \
                     or `python-feature = \"<cargo feature>\"` in [package.metadata.mcp-foundry]",
                    package.name
                );
            }
            let bin_targets = package
                .targets
                .iter()
                .filter(|t| t.kind.iter().any(|k| k == "bin"))
                .map(|t| t.name.clone())
                .collect();
            let lib_target = package
                .targets
                .iter()
                .find(|t| {
                    t.kind
                        .iter()
                        .any(|k| matches!(k.as_str(), "lib" | "rlib" | "cdylib" | "dylib"))
                })
                .map(|t| t.name.replace('-', "_"));
            crates.push(CrateSpec {
                name: package.name,
                version: package.version,
                description: package.description.unwrap_or_default(),
                role,
                manifest_path: package.manifest_path,
                python_module: foundry.python_module,
                python_feature: foundry.python_feature,
                bin_targets,
                lib_target,
                features: package.features.into_keys().collect(),
                ci_dist: foundry.ci_dist.unwrap_or(false),
            });
        }
        crates.sort_by(|a, b| a.name.cmp(&b.name));

        Ok(Workspace {
            root: raw.workspace_root,
            target_dir: raw.target_directory,
            variants,
            crates,
        })
    }

    /// The variant called `name`, or an error listing the valid names.
    pub fn variant(&self, name: &str) -> Result<&VariantSpec> {
        self.variants
            .iter()
            .find(|v| v.name == name)
            .with_context(|| {
                format!(
                    "unknown variant `{name}`; valid variants: {}",
                    join_names(self.variants.iter().map(|v| v.name.as_str()))
                )
            })
    }

    /// The crate called `name`, or an error listing the valid names.
    pub fn crate_spec(&self, name: &str) -> Result<&CrateSpec> {
        self.crates
            .iter()
            .find(|c| c.name == name)
            .with_context(|| {
                format!(
                    "unknown crate `{name}`; workspace crates: {}",
                    join_names(self.crates.iter().map(|c| c.name.as_str()))
                )
            })
    }

    /// Crates that end up in `dist/` (servers and the Python module).
    pub fn shipped_crates(&self) -> impl Iterator<Item = &CrateSpec> {
        self.crates.iter().filter(|c| c.role.is_shipped())
    }

    /// Server crates.
    pub fn servers(&self) -> impl Iterator<Item = &CrateSpec> {
        self.crates.iter().filter(|c| c.role == Role::Server)
    }

    /// The named variants, or all of them when `names` is empty.
    pub fn select_variants(&self, names: &[String]) -> Result<Vec<&VariantSpec>> {
        if names.is_empty() {
            return Ok(self.variants.iter().collect());
        }
        let mut selected = Vec::new();
        for name in names {
            let variant = self.variant(name)?;
            if !selected.contains(&variant) {
                selected.push(variant);
            }
        }
        Ok(selected)
    }

    /// The named shipped crates, or all shipped crates when `names` is empty.
    pub fn select_shipped_crates(&self, names: &[String]) -> Result<Vec<&CrateSpec>> {
        if names.is_empty() {
            return Ok(self.shipped_crates().collect());
        }
        let mut selected = Vec::new();
        for name in names {
            let spec = self.crate_spec(name)?;
            if !spec.role.is_shipped() {
                bail!(
                    "crate `{name}` has role {} and is not shipped; shipped crates: {}",
                    spec.role,
                    join_names(self.shipped_crates().map(|c| c.name.as_str()))
                );
            }
            if !selected.contains(&spec) {
                selected.push(spec);
            }
        }
        Ok(selected)
    }
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[derive(Deserialize)]
struct RawMetadata {
    packages: Vec<RawPackage>,
    workspace_members: Vec<String>,
    workspace_root: PathBuf,
    target_directory: PathBuf,
    metadata: Option<RawWorkspaceMetadata>,
}

#[derive(Deserialize)]
struct RawWorkspaceMetadata {
    #[serde(rename = "mcp-foundry")]
    mcp_foundry: Option<RawFoundryWorkspace>,
}

#[derive(Deserialize)]
struct RawFoundryWorkspace {
    #[serde(default)]
    variants: BTreeMap<String, RawVariant>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawVariant {
    description: String,
    target_cpu: String,
    #[serde(default)]
    rustflags: Vec<String>,
    architectures: Vec<String>,
}

#[derive(Deserialize)]
struct RawPackage {
    id: String,
    name: String,
    version: String,
    description: Option<String>,
    manifest_path: PathBuf,
    #[serde(default)]
    targets: Vec<RawTarget>,
    #[serde(default)]
    features: BTreeMap<String, serde_json::Value>,
    metadata: Option<RawPackageMetadata>,
}

#[derive(Deserialize)]
struct RawTarget {
    name: String,
    kind: Vec<String>,
}

#[derive(Deserialize)]
struct RawPackageMetadata {
    #[serde(rename = "mcp-foundry")]
    mcp_foundry: Option<RawFoundryPackage>,
}

#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawFoundryPackage {
    role: Option<String>,
    python_module: Option<String>,
    python_feature: Option<String>,
    ci_dist: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(
        name: &str,
        foundry: serde_json::Value,
        kinds: &[(&str, &str)],
    ) -> serde_json::Value {
        serde_json::json!({
            "id": format!("path+file:///ws/crates/{name}#0.1.0"),
            "name": name,
            "version": "0.1.0",
            "description": format!("the {name} crate"),
            "manifest_path": format!("/ws/crates/{name}/Cargo.toml"),
            "targets": kinds.iter().map(|(kind, target)| serde_json::json!({"name": target, "kind": [kind]})).collect::<Vec<_>>(),
            "features": {"python": ["dep:pyo3"], "default": []},
            "metadata": {"mcp-foundry": foundry},
        })
    }

    fn sample() -> String {
        let packages = vec![
            package(
                "bash-god",
                serde_json::json!({"role": "server"}),
                &[("bin", "bash-god")],
            ),
            package(
                "mcp-rust-core",
                serde_json::json!({"role": "python-module", "python-module": "mcp_rust_core", "python-feature": "python"}),
                &[("lib", "mcp-rust-core"), ("cdylib", "mcp-rust-core")],
            ),
            package(
                "xtask",
                serde_json::json!({"role": "build-tool"}),
                &[("bin", "xtask")],
            ),
        ];
        let members: Vec<_> = packages.iter().map(|p| p["id"].clone()).collect();
        serde_json::json!({
            "packages": packages,
            "workspace_members": members,
            "workspace_root": "/ws",
            "target_directory": "/ws/target",
            "metadata": {"mcp-foundry": {"variants": {
                "znver4": {"description": "Zen 4", "target-cpu": "znver4", "rustflags": ["-C", "target-cpu=znver4"], "architectures": ["x86_64"]},
                "generic": {"description": "baseline", "target-cpu": "generic", "rustflags": [], "architectures": ["x86_64", "aarch64"]}
            }}},
            "version": 1
        })
        .to_string()
    }

    #[test]
    fn parses_variants_and_roles() {
        let ws = Workspace::from_metadata_json(&sample()).unwrap();
        assert_eq!(ws.root, PathBuf::from("/ws"));
        assert_eq!(ws.target_dir, PathBuf::from("/ws/target"));
        let names: Vec<_> = ws.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["generic", "znver4"]);
        let znver4 = ws.variant("znver4").unwrap();
        assert_eq!(znver4.target_cpu, "znver4");
        assert_eq!(znver4.rustflags, ["-C", "target-cpu=znver4"]);
        assert_eq!(znver4.architectures, ["x86_64"]);

        let core = ws.crate_spec("mcp-rust-core").unwrap();
        assert_eq!(core.role, Role::PythonModule);
        assert_eq!(core.python_module.as_deref(), Some("mcp_rust_core"));
        assert_eq!(core.python_feature.as_deref(), Some("python"));
        assert_eq!(core.lib_target.as_deref(), Some("mcp_rust_core"));
        assert_eq!(core.dir(), Path::new("/ws/crates/mcp-rust-core"));
        assert!(core.features.contains(&"python".to_owned()));

        let server = ws.crate_spec("bash-god").unwrap();
        assert_eq!(server.role, Role::Server);
        assert_eq!(server.bin_targets, ["bash-god"]);

        let shipped: Vec<_> = ws.shipped_crates().map(|c| c.name.as_str()).collect();
        assert_eq!(shipped, ["bash-god", "mcp-rust-core"]);
        let servers: Vec<_> = ws.servers().map(|c| c.name.as_str()).collect();
        assert_eq!(servers, ["bash-god"]);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let ws = Workspace::from_metadata_json(&sample()).unwrap();
        let err = ws.variant("haswell").unwrap_err().to_string();
        assert!(
            err.contains("haswell") && err.contains("generic, znver4"),
            "{err}"
        );
        let err = ws.crate_spec("nope").unwrap_err().to_string();
        assert!(err.contains("bash-god, mcp-rust-core, xtask"), "{err}");
        let err = ws
            .select_shipped_crates(&["xtask".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not shipped") && err.contains("bash-god, mcp-rust-core"),
            "{err}"
        );
    }

    #[test]
    fn selection_defaults_to_everything_and_dedups() {
        let ws = Workspace::from_metadata_json(&sample()).unwrap();
        assert_eq!(ws.select_variants(&[]).unwrap().len(), 2);
        assert_eq!(ws.select_shipped_crates(&[]).unwrap().len(), 2);
        let picked = ws
            .select_variants(&["znver4".to_owned(), "znver4".to_owned()])
            .unwrap();
        assert_eq!(picked.len(), 1);
    }

    #[test]
    fn missing_or_bad_role_is_an_error_naming_the_crate() {
        let json = sample().replace("\"build-tool\"", "\"tool\"");
        let err = Workspace::from_metadata_json(&json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("xtask") && err.contains("valid roles"),
            "{err}"
        );
    }

    #[test]
    fn loads_the_real_workspace() {
        let ws = Workspace::load().unwrap();
        assert!(ws.root.join("Cargo.toml").is_file());
        assert!(ws.variant("generic").is_ok());
        assert_eq!(ws.crate_spec("xtask").unwrap().role, Role::BuildTool);
    }
}
