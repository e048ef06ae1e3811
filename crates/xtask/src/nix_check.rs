//! `cargo xtask nix-check`: the offline verification of the Nix flake.
//!
//! The flake cannot be built here (nixpkgs is unreachable and the pinned crane needs
//! Nix >= 2.31), so this checks what can be checked with any `nix-instantiate`, without a
//! store write or a download:
//!
//! 1. every `.nix` file of the flake parses (`nix-instantiate --parse`);
//! 2. `nix/tests/lib.nix`: unit tests of `nix/lib.nix`, given the crates (with roles) and
//!    variants that `cargo metadata` reports, so Nix and Cargo cannot disagree on names;
//! 3. `nix/tests/wiring.nix`: the flake's outputs evaluated with recording stand-ins of
//!    nixpkgs, crane and rust-overlay (see its doc comment for what it does not
//!    prove);
//! 4. `flake.lock` pins every input of the root node (github, full rev, SRI narHash).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::metadata::Workspace;
use crate::process;

/// The evaluator used for every step; Debian's `nix-bin` has it.
const NIX_INSTANTIATE: &str = "nix-instantiate";

/// Runs every offline Nix check for the workspace at `workspace_root`.
pub fn run(workspace_root: &Path) -> Result<()> {
    if !process::on_path(NIX_INSTANTIATE) {
        bail!(
            "`{NIX_INSTANTIATE}` is not on PATH; install Nix (Debian: `apt-get install nix-bin`)"
        );
    }
    let workspace = Workspace::load_from(workspace_root)?;

    let files = nix_files(workspace_root)?;
    for file in &files {
        process::output(nix_instantiate().arg("--parse").arg(file))
            .with_context(|| format!("{} does not parse", file.display()))?;
    }
    eprintln!("nix-check: {} .nix files parse", files.len());

    let expected = serde_json::to_string(&ExpectedNames::from_workspace(&workspace))
        .context("serializing the expected crate and variant names")?;
    for (test, extra_args) in [
        (
            "nix/tests/lib.nix",
            vec!["--argstr", "expectedJson", expected.as_str()],
        ),
        ("nix/tests/wiring.nix", vec![]),
    ] {
        let json = process::output(
            nix_instantiate()
                .args(["--eval", "--strict", "--json"])
                .arg(workspace_root.join(test))
                .arg("--arg")
                .arg("root")
                .arg(nix_path_literal(workspace_root)?)
                .args(extra_args),
        )?;
        let report =
            TestReport::parse(&json).with_context(|| format!("reading the result of {test}"))?;
        report.into_result(test)?;
    }

    let lock_path = workspace_root.join("flake.lock");
    let lock = fs::read_to_string(&lock_path).with_context(|| {
        format!(
            "reading {}; run `nix flake lock` with Nix >= 2.31",
            lock_path.display()
        )
    })?;
    let pinned = check_lock(&lock)
        .with_context(|| format!("{} is not a complete pin", lock_path.display()))?;
    eprintln!("nix-check: flake.lock pins {}", pinned.join(", "));
    Ok(())
}

/// `nix-instantiate` that never writes to the store nor asks a substituter.
fn nix_instantiate() -> Command {
    let mut command = Command::new(NIX_INSTANTIATE);
    command
        .arg("--readonly-mode")
        .env("NIX_CONFIG", "substituters =");
    command
}

/// An absolute path as a Nix path literal (`--arg root /abs/path`).
fn nix_path_literal(path: &Path) -> Result<String> {
    let absolute = path
        .canonicalize()
        .with_context(|| format!("resolving {}", path.display()))?;
    let text = absolute.to_str().with_context(|| {
        format!(
            "{} is not UTF-8; Nix path literals must be",
            absolute.display()
        )
    })?;
    // A Nix path literal cannot hold spaces or most punctuation; refuse instead of quoting.
    if !text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
    {
        bail!(
            "the workspace path {text:?} cannot be written as a Nix path literal; move it to a plain path"
        );
    }
    Ok(text.to_owned())
}

/// `flake.nix` and every `.nix` file under `nix/`, sorted.
pub fn nix_files(workspace_root: &Path) -> Result<Vec<PathBuf>> {
    let flake = workspace_root.join("flake.nix");
    if !flake.is_file() {
        bail!("{} is missing", flake.display());
    }
    let mut files = vec![flake];
    let mut pending = vec![workspace_root.join("nix")];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "nix") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// What `nix/tests/lib.nix` compares `nix/lib.nix` with: names as Cargo sees them.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExpectedNames {
    /// Crate name -> role (`server`, `python-module`, ...).
    pub crates: BTreeMap<String, String>,
    pub variants: BTreeMap<String, ExpectedVariant>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct ExpectedVariant {
    #[serde(rename = "target-cpu")]
    pub target_cpu: String,
    pub rustflags: Vec<String>,
    pub architectures: Vec<String>,
}

impl ExpectedNames {
    pub fn from_workspace(workspace: &Workspace) -> ExpectedNames {
        ExpectedNames {
            crates: workspace
                .crates
                .iter()
                .map(|spec| (spec.name.clone(), spec.role.as_str().to_owned()))
                .collect(),
            variants: workspace
                .variants
                .iter()
                .map(|variant| {
                    (
                        variant.name.clone(),
                        ExpectedVariant {
                            target_cpu: variant.target_cpu.clone(),
                            rustflags: variant.rustflags.clone(),
                            architectures: variant.architectures.clone(),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// The `{ passed; failed; }` set the Nix test files evaluate to.
#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct TestReport {
    pub passed: Vec<String>,
    pub failed: Vec<TestFailure>,
}

#[derive(Debug, Deserialize, PartialEq, Eq)]
pub struct TestFailure {
    pub name: String,
    pub message: String,
}

impl TestReport {
    pub fn parse(json: &str) -> Result<TestReport> {
        serde_json::from_str(json).context("expected JSON { passed = [..]; failed = [..]; }")
    }

    /// Ok with a one-line summary on stderr, or an error listing every failed test.
    pub fn into_result(self, test_file: &str) -> Result<()> {
        if self.failed.is_empty() {
            if self.passed.is_empty() {
                bail!("{test_file} ran no tests");
            }
            eprintln!("nix-check: {test_file}: {} tests passed", self.passed.len());
            return Ok(());
        }
        let mut message = format!(
            "{test_file}: {} of {} tests failed:",
            self.failed.len(),
            self.failed.len() + self.passed.len()
        );
        for failure in &self.failed {
            message.push_str(&format!("\n  - {}: {}", failure.name, failure.message));
        }
        bail!(message)
    }
}

#[derive(Deserialize)]
struct FlakeLock {
    version: u64,
    root: String,
    nodes: BTreeMap<String, LockNode>,
}

#[derive(Deserialize)]
struct LockNode {
    #[serde(default)]
    inputs: BTreeMap<String, serde_json::Value>,
    locked: Option<LockedRef>,
}

#[derive(Deserialize)]
struct LockedRef {
    #[serde(rename = "type")]
    kind: String,
    rev: Option<String>,
    #[serde(rename = "narHash")]
    nar_hash: Option<String>,
}

/// Checks that every input of the root node is locked to a GitHub commit with a narHash;
/// returns the pinned input names. `follows` entries (JSON arrays) need no pin of their own.
pub fn check_lock(json: &str) -> Result<Vec<String>> {
    let lock: FlakeLock = serde_json::from_str(json).context("flake.lock is not lock file JSON")?;
    if lock.version != 7 {
        bail!(
            "lock file version {} (expected 7, what Nix >= 2.31 writes)",
            lock.version
        );
    }
    let root = lock
        .nodes
        .get(&lock.root)
        .with_context(|| format!("root node {:?} is missing", lock.root))?;
    if root.inputs.is_empty() {
        bail!("the root node has no inputs");
    }
    let mut problems = Vec::new();
    let mut pinned = Vec::new();
    for (input, target) in &root.inputs {
        let Some(node_name) = target.as_str() else {
            problems.push(format!(
                "{input}: a root input must name a node, not follow another"
            ));
            continue;
        };
        let Some(locked) = lock
            .nodes
            .get(node_name)
            .and_then(|node| node.locked.as_ref())
        else {
            problems.push(format!("{input}: node {node_name:?} has no `locked` entry"));
            continue;
        };
        if locked.kind != "github" {
            problems.push(format!(
                "{input}: locked type is {:?}, expected \"github\"",
                locked.kind
            ));
        }
        match locked.rev.as_deref() {
            Some(rev)
                if rev.len() == 40
                    && rev
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => {}
            other => problems.push(format!(
                "{input}: rev {other:?} is not a full lowercase commit hash"
            )),
        }
        match locked.nar_hash.as_deref() {
            Some(hash) if is_sri_sha256(hash) => {}
            other => problems.push(format!(
                "{input}: narHash {other:?} is not an SRI sha256 hash"
            )),
        }
        pinned.push(input.clone());
    }
    if !problems.is_empty() {
        bail!("{}", problems.join("\n"));
    }
    Ok(pinned)
}

/// `sha256-` followed by the base64 of 32 bytes (43 characters and one `=`).
fn is_sri_sha256(hash: &str) -> bool {
    hash.strip_prefix("sha256-").is_some_and(|b64| {
        b64.len() == 44
            && b64.ends_with('=')
            && b64[..43]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{CrateSpec, Role, VariantSpec};

    const GOOD_LOCK: &str = r#"{
      "nodes": {
        "crane": { "locked": { "lastModified": 1, "narHash": "sha256-nnGD2f8OlAZT2i5OfwikJsw+ifWfiA4d6A8BWlgOXV0=", "owner": "ipetkov", "repo": "crane", "rev": "10e6e3cb966f7cfcc789fe5eee7a85f3188ce08b", "type": "github" } },
        "nixpkgs": { "locked": { "lastModified": 1, "narHash": "sha256-ODZkEK9Gy50yg6h98u7KkitZ3oc/uuTFK00bh1CRdNA=", "owner": "NixOS", "repo": "nixpkgs", "rev": "531670d871c0e29724a02f3cbcac170adc65b58c", "type": "github" } },
        "rust-overlay": { "inputs": { "nixpkgs": ["nixpkgs"] }, "locked": { "lastModified": 1, "narHash": "sha256-YT4Fs2k7bi+7YzuLt93EtIRgjpwHK5ZfsQEIh5dEQSk=", "owner": "oxalica", "repo": "rust-overlay", "rev": "fd2ebb9cc4323d0c5a1336138dab5c3c5a5d8bd9", "type": "github" } },
        "root": { "inputs": { "crane": "crane", "nixpkgs": "nixpkgs", "rust-overlay": "rust-overlay" } }
      },
      "root": "root",
      "version": 7
    }"#;

    #[test]
    fn lock_with_full_pins_is_accepted() {
        assert_eq!(
            check_lock(GOOD_LOCK).unwrap(),
            ["crane", "nixpkgs", "rust-overlay"]
        );
    }

    #[test]
    fn lock_problems_are_all_reported() {
        let bad = GOOD_LOCK
            .replace("10e6e3cb966f7cfcc789fe5eee7a85f3188ce08b", "10e6e3c")
            .replace(
                "sha256-ODZkEK9Gy50yg6h98u7KkitZ3oc/uuTFK00bh1CRdNA=",
                "sha256-short=",
            )
            .replace(
                r#""repo": "rust-overlay", "rev""#,
                r#""repo": "rust-overlay", "xrev""#,
            );
        let error = format!("{:#}", check_lock(&bad).unwrap_err());
        assert!(error.contains("crane: rev Some(\"10e6e3c\")"), "{error}");
        assert!(error.contains("nixpkgs: narHash"), "{error}");
        assert!(error.contains("rust-overlay: rev None"), "{error}");
    }

    #[test]
    fn lock_refuses_other_versions_and_unlocked_inputs() {
        assert!(check_lock(&GOOD_LOCK.replace(r#""version": 7"#, r#""version": 6"#)).is_err());
        let unlocked = GOOD_LOCK.replace(r#""crane": "crane","#, r#""crane": "missing","#);
        let error = format!("{:#}", check_lock(&unlocked).unwrap_err());
        assert!(
            error.contains("node \"missing\" has no `locked` entry"),
            "{error}"
        );
    }

    #[test]
    fn sri_hashes() {
        assert!(is_sri_sha256(
            "sha256-drCgheG8xP1Swm4pdmlPjVNtSfxWmM/MCvrMl9YARnE="
        ));
        assert!(!is_sri_sha256(
            "sha512-drCgheG8xP1Swm4pdmlPjVNtSfxWmM/MCvrMl9YARnE="
        ));
        assert!(!is_sri_sha256(
            "sha256-drCgheG8xP1Swm4pdmlPjVNtSfxWmM/MCvrMl9YARn=="
        ));
        assert!(!is_sri_sha256(
            "sha256-drCgheG8xP1Swm4pdmlPjVNtSfxWmM/MCvrMl9YARnE"
        ));
    }

    #[test]
    fn report_lists_every_failure() {
        let report = TestReport::parse(
            r#"{"passed":["a"],"failed":[{"name":"b","message":"m1"},{"name":"c","message":"m2"}]}"#,
        )
        .unwrap();
        let error = report.into_result("t.nix").unwrap_err().to_string();
        assert!(error.starts_with("t.nix: 2 of 3 tests failed:"), "{error}");
        assert!(
            error.contains("- b: m1") && error.contains("- c: m2"),
            "{error}"
        );
    }

    #[test]
    fn report_without_tests_is_an_error() {
        let report = TestReport::parse(r#"{"passed":[],"failed":[]}"#).unwrap();
        assert!(report.into_result("t.nix").is_err());
        assert!(TestReport::parse("{}").is_err());
    }

    #[test]
    fn expected_names_come_from_the_metadata() {
        let crate_spec = |name: &str, role| CrateSpec {
            name: name.to_owned(),
            version: "0.1.0".to_owned(),
            description: String::new(),
            role,
            manifest_path: PathBuf::from(format!("/w/crates/{name}/Cargo.toml")),
            python_module: None,
            python_feature: None,
            bin_targets: vec![],
            lib_target: None,
            features: vec![],
            ..CrateSpec::default()
        };
        let workspace = Workspace {
            root: PathBuf::from("/w"),
            target_dir: PathBuf::from("/w/target"),
            variants: vec![VariantSpec {
                name: "znver4".to_owned(),
                description: String::new(),
                target_cpu: "znver4".to_owned(),
                rustflags: vec!["-C".to_owned(), "target-cpu=znver4".to_owned()],
                architectures: vec!["x86_64".to_owned()],
                ci_crates: None,
            }],
            crates: vec![
                crate_spec("bash-god", Role::Server),
                crate_spec("mcp-rust-core", Role::PythonModule),
            ],
        };
        let json = serde_json::to_value(ExpectedNames::from_workspace(&workspace)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "crates": { "bash-god": "server", "mcp-rust-core": "python-module" },
                "variants": { "znver4": {
                    "target-cpu": "znver4",
                    "rustflags": ["-C", "target-cpu=znver4"],
                    "architectures": ["x86_64"]
                } }
            })
        );
    }

    #[test]
    fn nix_files_are_found_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("nix/tests/stubs")).unwrap();
        for file in [
            "flake.nix",
            "nix/lib.nix",
            "nix/tests/stubs/crane.nix",
            "nix/README.md",
        ] {
            fs::write(dir.path().join(file), "{ }").unwrap();
        }
        let found: Vec<_> = nix_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().to_owned())
            .collect();
        assert_eq!(
            found,
            [
                PathBuf::from("flake.nix"),
                PathBuf::from("nix/lib.nix"),
                PathBuf::from("nix/tests/stubs/crane.nix"),
            ]
        );
    }

    #[test]
    fn missing_flake_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(
            nix_files(dir.path())
                .unwrap_err()
                .to_string()
                .contains("flake.nix is missing")
        );
    }

    #[test]
    fn nix_path_literals_refuse_unsafe_paths() {
        let dir = tempfile::tempdir().unwrap();
        let odd = dir.path().join("with space");
        fs::create_dir(&odd).unwrap();
        assert!(nix_path_literal(&odd).is_err());
        assert!(nix_path_literal(dir.path()).is_ok());
    }
}
