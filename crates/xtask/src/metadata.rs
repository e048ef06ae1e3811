//! The workspace as `cargo metadata` describes it (read through the `cargo_metadata` crate):
//! CPU variants from `[workspace.metadata.mcp-foundry.variants]` (parsed by the `cpu-variants`
//! crate, the one parser of that table, shared with the build scripts) and each crate's role
//! from its `[package.metadata.mcp-foundry]`. These tables are the only list of crates and
//! variants; everything in xtask derives from them.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::{Metadata, MetadataCommand, Package, TargetKind};
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

/// One CPU variant, e.g. `generic` or `znver4`, as the `cpu-variants` crate reads it.
pub use cpu_variants::{CiCrates, Variant as VariantSpec};

/// What a crate is, from `[package.metadata.mcp-foundry] role = ...`.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// An MCP server binary: shipped as a static binary and a container image.
    Server,
    /// A crate whose cdylib is shipped as a Python extension module.
    PythonModule,
    /// A library only used by other crates; not shipped on its own.
    #[default]
    Library,
    /// Tooling such as xtask; never shipped.
    BuildTool,
    /// Built for the baseline CPU only (never per variant) and shipped inside the dispatch
    /// images next to every variant of a server (`mcp-launcher`; see `image`).
    Launcher,
}

impl Role {
    /// Every role, for messages.
    pub const ALL: [Role; 5] = [
        Role::Server,
        Role::PythonModule,
        Role::Library,
        Role::BuildTool,
        Role::Launcher,
    ];

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

/// The tool call a server declares for smoke tests in
/// `[package.metadata.mcp-foundry.smoke-call]`: `tool = "..."`, `arguments = { ... }`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeCall {
    pub tool: String,
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// One workspace member.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CrateSpec {
    pub name: String,
    pub version: String,
    pub description: String,
    pub license: Option<String>,
    pub repository: Option<String>,
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
    /// The call the image smoke test makes (default: a read-only tool without arguments).
    pub smoke_call: Option<SmokeCall>,
    /// Programs the server runs that its images must ship (`image-programs = ["bash"]`):
    /// names of [`crate::image::programs::STATIC_PROGRAMS`].
    pub image_programs: Vec<String>,
}

impl CrateSpec {
    /// The directory holding the crate's `Cargo.toml`.
    pub fn dir(&self) -> &Path {
        self.manifest_path.parent().unwrap_or(Path::new("."))
    }
}

/// `[package.metadata.mcp-foundry]`. Unknown keys are errors: a misspelt key would
/// otherwise be ignored silently.
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FoundryPackage {
    role: Role,
    python_module: Option<String>,
    python_feature: Option<String>,
    smoke_call: Option<SmokeCall>,
    #[serde(default)]
    image_programs: Vec<String>,
    /// The build tool the Nix packages embed their dependency list with (nix/lib.nix).
    #[serde(default)]
    dependency_list_tool: bool,
}

impl Workspace {
    /// Reads the workspace xtask belongs to.
    pub fn load() -> Result<Workspace> {
        // xtask lives in `<root>/crates/xtask`, so the workspace is two levels up; running
        // from there makes `cargo xtask` work from any current directory. `cargo run` sets
        // CARGO_MANIFEST_DIR at run time too, and that one wins: a binary cargo reused from
        // another checkout's target directory (a worktree seeded with hard links) would
        // otherwise act on the checkout it was compiled in.
        let run_time = std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from);
        let manifest_dir = run_time.unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir.ancestors().nth(2).unwrap_or(&manifest_dir);
        Self::load_from(root)
    }

    /// Runs `cargo metadata --no-deps` in `dir` (any directory inside the workspace).
    pub fn load_from(dir: &Path) -> Result<Workspace> {
        let metadata = MetadataCommand::new()
            .current_dir(dir)
            .no_deps()
            .exec()
            .with_context(|| format!("reading the workspace in {}", dir.display()))?;
        Self::from_metadata(metadata)
    }

    /// The workspace described by `cargo metadata` output.
    pub fn from_metadata(metadata: Metadata) -> Result<Workspace> {
        let variants = cpu_variants::from_workspace_metadata(&metadata.workspace_metadata)
            .context("reading the CPU variants of the root Cargo.toml")?;

        let mut crates = metadata
            .packages
            .iter()
            .filter(|package| metadata.workspace_members.contains(&package.id))
            .map(crate_spec)
            .collect::<Result<Vec<_>>>()?;
        crates.sort_by(|a, b| a.name.cmp(&b.name));
        for variant in &variants {
            for name in variant.ci_crates.iter().flat_map(|ci| ci.names()) {
                if !crates.iter().any(|c| c.name == name && c.role.is_shipped()) {
                    bail!(
                        "variant `{}`: ci-crates names `{name}`, which is not a shipped crate; \
                         shipped crates: {}",
                        variant.name,
                        join_names(
                            crates
                                .iter()
                                .filter(|c| c.role.is_shipped())
                                .map(|c| c.name.as_str())
                        )
                    );
                }
            }
        }

        Ok(Workspace {
            root: metadata.workspace_root.into_std_path_buf(),
            target_dir: metadata.target_directory.into_std_path_buf(),
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

    /// Crates that end up in `dist/` (servers, the launcher and the Python module).
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

/// One member's [`CrateSpec`], with errors naming the crate and the fix.
fn crate_spec(package: &Package) -> Result<CrateSpec> {
    let name = package.name.to_string();
    let roles = join_names(Role::ALL.iter().map(|r| r.as_str()));
    let Some(table) = package.metadata.get("mcp-foundry") else {
        bail!(
            "crate `{name}` ({}) has no `[package.metadata.mcp-foundry]` table; add one with \
             `role = \"<role>\"` (roles: {roles})",
            package.manifest_path
        );
    };
    let foundry = FoundryPackage::deserialize(table).with_context(|| {
        format!(
            "[package.metadata.mcp-foundry] of crate `{name}` ({}) is malformed; keys: role \
             ({roles}), python-module, python-feature, smoke-call, image-programs, \
             dependency-list-tool",
            package.manifest_path
        )
    })?;
    if foundry.role == Role::PythonModule
        && (foundry.python_module.is_none() || foundry.python_feature.is_none())
    {
        bail!(
            "crate `{name}` has role python-module but lacks `python-module = \"<import name>\"` \
             or `python-feature = \"<cargo feature>\"` in [package.metadata.mcp-foundry]"
        );
    }
    if foundry.dependency_list_tool && foundry.role != Role::BuildTool {
        bail!(
            "crate `{name}` sets dependency-list-tool but its role is not build-tool: the tool \
             runs on the build machine after each Nix package build and is never shipped"
        );
    }
    let bin_targets = package
        .targets
        .iter()
        .filter(|t| t.is_kind(TargetKind::Bin))
        .map(|t| t.name.clone())
        .collect();
    let lib_target = package
        .targets
        .iter()
        .find(|t| {
            t.kind.iter().any(|k| {
                matches!(
                    k,
                    TargetKind::Lib | TargetKind::RLib | TargetKind::CDyLib | TargetKind::DyLib
                )
            })
        })
        .map(|t| t.name.replace('-', "_"));
    Ok(CrateSpec {
        name,
        version: package.version.to_string(),
        description: package.description.clone().unwrap_or_default(),
        license: package.license.clone(),
        repository: package.repository.clone(),
        role: foundry.role,
        manifest_path: package.manifest_path.clone().into_std_path_buf(),
        python_module: foundry.python_module,
        python_feature: foundry.python_feature,
        bin_targets,
        lib_target,
        features: package.features.keys().cloned().collect(),
        smoke_call: foundry.smoke_call,
        image_programs: foundry.image_programs,
    })
}

fn join_names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const VARIANTS: &str = r#"
[workspace.metadata.mcp-foundry.variants.znver4]
description = "Zen 4"
target-cpu = "znver4"
rustflags = ["-C", "target-cpu=znver4"]
architectures = ["x86_64"]

[workspace.metadata.mcp-foundry.variants.generic]
description = "baseline"
target-cpu = "generic"
architectures = ["x86_64", "aarch64"]
"#;

    /// A real workspace on disk: `cargo metadata` reads it as it reads ours.
    fn fixture(root_extra: &str, members: &[(&str, &str, &[&str])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = format!("[workspace]\nresolver = \"3\"\nmembers = [\"crates/*\"]\n{root_extra}");
        fs::write(dir.path().join("Cargo.toml"), root).unwrap();
        for (name, manifest_tail, files) in members {
            let crate_dir = dir.path().join("crates").join(name);
            fs::create_dir_all(crate_dir.join("src")).unwrap();
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\
                 description = \"the {name} crate\"\nlicense = \"MIT\"\n{manifest_tail}"
            );
            fs::write(crate_dir.join("Cargo.toml"), manifest).unwrap();
            for file in *files {
                fs::write(crate_dir.join(file), "").unwrap();
            }
        }
        dir
    }

    fn sample() -> tempfile::TempDir {
        fixture(
            VARIANTS,
            &[
                (
                    "bash-god",
                    "[package.metadata.mcp-foundry]\nrole = \"server\"\n\
                     smoke-call = { tool = \"analyze\", arguments = { command = \"ls\" } }\n",
                    &["src/main.rs"],
                ),
                (
                    "mcp-rust-core",
                    "[lib]\ncrate-type = [\"rlib\", \"cdylib\"]\n\
                     [features]\npython = []\n\
                     [package.metadata.mcp-foundry]\nrole = \"python-module\"\n\
                     python-module = \"mcp_rust_core\"\npython-feature = \"python\"\n",
                    &["src/lib.rs"],
                ),
                (
                    "xtask",
                    "[package.metadata.mcp-foundry]\nrole = \"build-tool\"\n",
                    &["src/main.rs"],
                ),
            ],
        )
    }

    #[test]
    fn parses_variants_roles_and_targets() {
        let dir = sample();
        let ws = Workspace::load_from(dir.path()).unwrap();
        assert_eq!(ws.root, dir.path().canonicalize().unwrap());
        assert_eq!(ws.target_dir, ws.root.join("target"));
        let names: Vec<_> = ws.variants.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(names, ["generic", "znver4"]);
        let znver4 = ws.variant("znver4").unwrap();
        assert_eq!(znver4.target_cpu, "znver4");
        assert_eq!(znver4.rustflags, ["-C", "target-cpu=znver4"]);
        assert_eq!(znver4.architectures, ["x86_64"]);
        assert!(ws.variant("generic").unwrap().rustflags.is_empty());

        let core = ws.crate_spec("mcp-rust-core").unwrap();
        assert_eq!(core.role, Role::PythonModule);
        assert_eq!(core.python_module.as_deref(), Some("mcp_rust_core"));
        assert_eq!(core.python_feature.as_deref(), Some("python"));
        assert_eq!(core.lib_target.as_deref(), Some("mcp_rust_core"));
        assert_eq!(core.dir(), ws.root.join("crates/mcp-rust-core"));
        assert_eq!(core.features, ["python"]);
        assert_eq!(core.license.as_deref(), Some("MIT"));

        let server = ws.crate_spec("bash-god").unwrap();
        assert_eq!(server.role, Role::Server);
        assert_eq!(server.bin_targets, ["bash-god"]);
        assert_eq!(server.description, "the bash-god crate");
        let call = server.smoke_call.as_ref().unwrap();
        assert_eq!(call.tool, "analyze");
        assert_eq!(call.arguments, serde_json::json!({"command": "ls"}));

        let shipped: Vec<_> = ws.shipped_crates().map(|c| c.name.as_str()).collect();
        assert_eq!(shipped, ["bash-god", "mcp-rust-core"]);
        let servers: Vec<_> = ws.servers().map(|c| c.name.as_str()).collect();
        assert_eq!(servers, ["bash-god"]);
    }

    #[test]
    fn unknown_names_list_the_valid_ones() {
        let dir = sample();
        let ws = Workspace::load_from(dir.path()).unwrap();
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
        let dir = sample();
        let ws = Workspace::load_from(dir.path()).unwrap();
        assert_eq!(ws.select_variants(&[]).unwrap().len(), 2);
        assert_eq!(ws.select_shipped_crates(&[]).unwrap().len(), 2);
        let picked = ws
            .select_variants(&["znver4".to_owned(), "znver4".to_owned()])
            .unwrap();
        assert_eq!(picked.len(), 1);
    }

    #[test]
    fn bad_metadata_is_an_error_naming_the_crate_and_the_fix() {
        let load = |tail: &str| {
            let dir = fixture(VARIANTS, &[("srv", tail, &["src/main.rs"])]);
            format!("{:#}", Workspace::load_from(dir.path()).unwrap_err())
        };
        let err = load("[package.metadata.mcp-foundry]\nrole = \"tool\"\n");
        assert!(
            err.contains("`srv`") && err.contains("server, python-module"),
            "{err}"
        );
        let err = load("");
        assert!(
            err.contains("`srv`") && err.contains("[package.metadata.mcp-foundry]"),
            "{err}"
        );
        // A misspelt key is refused, not ignored.
        let err = load("[package.metadata.mcp-foundry]\nrole = \"server\"\nsmoke_call = 1\n");
        assert!(err.contains("`srv`") && err.contains("smoke_call"), "{err}");
        let err = load(
            "[package.metadata.mcp-foundry]\nrole = \"server\"\nsmoke-call = { arguments = {} }\n",
        );
        assert!(err.contains("`srv`") && err.contains("tool"), "{err}");
        let err = load("[package.metadata.mcp-foundry]\nrole = \"python-module\"\n");
        assert!(err.contains("python-module = "), "{err}");
        // The dependency-list tool runs on the build machine: a shipped crate cannot be it.
        let err = load(
            "[package.metadata.mcp-foundry]\nrole = \"server\"\ndependency-list-tool = true\n",
        );
        assert!(
            err.contains("`srv`") && err.contains("dependency-list-tool"),
            "{err}"
        );

        let dir = fixture(
            "",
            &[(
                "srv",
                "[package.metadata.mcp-foundry]\nrole = \"server\"\n",
                &["src/main.rs"],
            )],
        );
        let err = format!("{:#}", Workspace::load_from(dir.path()).unwrap_err());
        assert!(err.contains("defines no CPU variant"), "{err}");
    }

    #[test]
    fn loads_the_real_workspace() {
        let ws = Workspace::load().unwrap();
        assert!(ws.root.join("Cargo.toml").is_file());
        assert!(ws.variant("generic").is_ok());
        assert_eq!(ws.crate_spec("xtask").unwrap().role, Role::BuildTool);
    }
}
