//! SLSA v1 provenance of each dist artifact: an in-toto v1 Statement whose subject is the
//! artifact (dist path + sha256) and whose predicate records what produced it — the source
//! commit, the Cargo.lock hash, the toolchain (`rustc -vV`), the variant's rustflags, target
//! and profile, and the builder (`cargo xtask dist` at that commit).
//!
//! No time stamps and no host names: the statement is a function of the inputs, like the
//! artifact, so two builders that agree on the artifact also agree on its provenance.
//! Statements are unsigned here; `cargo xtask sign` signs them, with every other dist file,
//! through `dist/SHA256SUMS` (crate::sign).

pub mod check;
pub mod referrer;

use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::dist::{Artifact, SourceInfo, sha256_hex};
use crate::process;
use crate::sbom::{self, LinkedCrates};

/// Provenance files: `<variant>/provenance/<rest of the artifact path>` + this.
pub const SUFFIX: &str = ".intoto.json";
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// Media types of the files, for the OCI referrers.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";

/// `rustc -vV` in `root` (the pinned toolchain's full identity, LLVM version included).
pub fn rustc_verbose(root: &Path) -> Result<String> {
    process::output(Command::new("rustc").arg("-vV").current_dir(root))
}

/// The path of a record of `artifact_path` (`generic/bin/devops`) in the directory `kind`
/// of its variant: `generic/<kind>/bin/devops<suffix>`.
pub fn record_path(artifact_path: &str, kind: &str, suffix: &str) -> String {
    match artifact_path.split_once('/') {
        Some((variant, rest)) => format!("{variant}/{kind}/{rest}{suffix}"),
        None => format!("{kind}/{artifact_path}{suffix}"),
    }
}

/// The build's inputs that are not in the artifact record.
#[derive(Debug, Clone)]
pub struct BuildFacts<'a> {
    pub source: &'a SourceInfo,
    /// `rustc -vV`.
    pub rustc_verbose: &'a str,
    /// The workspace's `repository` URL (root Cargo.toml).
    pub repository: &'a str,
    /// Cargo features enabled for the artifact's package.
    pub features: &'a [String],
}

/// The in-toto Statement of `artifact`; `sbom_sha256` links its SBOM as a by-product.
pub fn statement(artifact: &Artifact, facts: &BuildFacts<'_>, sbom_sha256: &str) -> Value {
    let commit = &facts.source.git_commit;
    let repository = facts.repository.trim_end_matches('/');
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": artifact.path,
            "digest": { "sha256": artifact.sha256 },
        }],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": format!("{repository}/blob/{commit}/crates/xtask/src/dist.rs"),
                "externalParameters": {
                    "command": "cargo xtask dist",
                    "crate": artifact.crate_name,
                    "variant": artifact.variant,
                    "target": artifact.target,
                    "features": facts.features,
                },
                "internalParameters": {
                    "profile": artifact.profile,
                    "targetCpu": artifact.target_cpu,
                    // The variant's flags; dist adds only --remap-path-prefix flags that map
                    // this machine's paths to fixed ones (so that they are not in the binary).
                    "rustflags": artifact.rustflags,
                    "rustc": facts.rustc_verbose,
                    // What the compilers saw (a constant, see dist's cargo invocation), and
                    // the commit's time (image mtimes).
                    "sourceDateEpoch": crate::dist::COMPILE_SOURCE_DATE_EPOCH,
                    "commitTime": facts.source.source_date_epoch,
                    "sourceDirty": facts.source.git_dirty,
                },
                "resolvedDependencies": [
                    {
                        "uri": format!("git+{repository}@{commit}"),
                        "digest": { "gitCommit": commit },
                    },
                    {
                        "name": "Cargo.lock",
                        "digest": { "sha256": facts.source.cargo_lock_sha256 },
                    },
                ],
            },
            "runDetails": {
                "builder": {
                    "id": format!("{repository}/blob/{commit}/crates/xtask"),
                    "version": { "rustc": facts.source.rustc_version },
                },
                "metadata": { "invocationId": format!("{commit}/{}", artifact.path) },
                "byproducts": [{
                    "name": record_path(&artifact.path, "sbom", crate::sbom::SBOM_SUFFIX),
                    "digest": { "sha256": sbom_sha256 },
                    "mediaType": crate::sbom::MEDIA_TYPE,
                }],
            },
        },
    })
}

/// Writes the SBOM and the provenance statement of every binary among `artifacts` (all of
/// one crate, linking `linked`) under `dir` (the staging directory), at [`record_path`]s.
/// Returns the written paths, relative to `dir`.
pub fn write_records<'a>(
    dir: &Path,
    artifacts: impl IntoIterator<Item = &'a Artifact>,
    linked: &LinkedCrates,
    facts: &BuildFacts<'_>,
) -> Result<Vec<String>> {
    let mut written = Vec::new();
    for artifact in artifacts {
        if !check::has_records(artifact.kind) {
            continue;
        }
        let sbom = to_file_bytes(&sbom::cyclonedx(linked, &artifact.path, &artifact.sha256)?)?;
        let sbom_path = record_path(&artifact.path, "sbom", sbom::SBOM_SUFFIX);
        write(dir, &sbom_path, &sbom)?;
        let statement = to_file_bytes(&statement(artifact, facts, &sha256_hex(&sbom)))?;
        let statement_path = record_path(&artifact.path, "provenance", SUFFIX);
        write(dir, &statement_path, &statement)?;
        written.extend([sbom_path, statement_path]);
    }
    Ok(written)
}

/// Pretty JSON with a final newline (serde_json keeps the order of `json!` maps sorted).
fn to_file_bytes(value: &Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn write(dir: &Path, relative: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::dist::ArtifactKind;
    use crate::metadata::Role;

    /// The build inputs and a server binary of `variant` at `path`, for tests.
    pub(crate) fn sample(path: &str, variant: &str, sha256: &str) -> (SourceInfo, Artifact) {
        let source = SourceInfo {
            git_commit: "c0ffee".into(),
            git_dirty: false,
            source_date_epoch: 1_700_000_000,
            rustc_version: "rustc 1.95.0".into(),
            cargo_lock_sha256: "10ck".into(),
            pyo3_python: "python3".into(),
        };
        let crate_name = path.rsplit('/').next().unwrap_or_default().to_owned();
        let artifact = Artifact {
            path: path.into(),
            kind: ArtifactKind::ServerBinary,
            crate_name,
            crate_version: "0.1.0".into(),
            role: Role::Server,
            variant: variant.into(),
            target: "x86_64-unknown-linux-musl".into(),
            target_cpu: variant.into(),
            rustflags: vec!["-C".into(), format!("target-cpu={variant}")],
            profile: "audit".into(),
            sha256: sha256.into(),
            size: 1,
            unstripped_path: None,
            unstripped_sha256: None,
            rustc_version: source.rustc_version.clone(),
            git_commit: source.git_commit.clone(),
            cargo_lock_sha256: source.cargo_lock_sha256.clone(),
        };
        (source, artifact)
    }

    #[test]
    fn the_statement_names_the_artifact_and_every_input() {
        let (source, artifact) = sample("znver4/bin/devops", "znver4", "abc");
        let facts = BuildFacts {
            source: &source,
            rustc_verbose: "rustc 1.95.0\nLLVM version: 20",
            repository: "https://example.org/r/",
            features: &[],
        };
        let s = statement(&artifact, &facts, "5b0m");
        assert_eq!(s["_type"], STATEMENT_TYPE);
        assert_eq!(s["predicateType"], PREDICATE_TYPE);
        assert_eq!(s["subject"][0]["digest"]["sha256"], "abc");
        let definition = &s["predicate"]["buildDefinition"];
        assert_eq!(definition["externalParameters"]["variant"], "znver4");
        assert_eq!(
            definition["internalParameters"]["rustflags"][1],
            "target-cpu=znver4"
        );
        assert!(
            definition["internalParameters"]["rustc"]
                .as_str()
                .unwrap()
                .contains("LLVM")
        );
        let deps = &definition["resolvedDependencies"];
        assert_eq!(deps[0]["digest"]["gitCommit"], "c0ffee");
        assert_eq!(deps[0]["uri"], "git+https://example.org/r@c0ffee");
        assert_eq!(deps[1]["digest"]["sha256"], "10ck");
        assert_eq!(
            s["predicate"]["runDetails"]["byproducts"][0]["name"],
            "znver4/sbom/bin/devops.cdx.json"
        );
        assert_eq!(s, statement(&artifact, &facts, "5b0m"), "deterministic");
    }

    #[test]
    fn records_sit_in_their_variants_directory() {
        assert_eq!(
            record_path("generic/python/m/m.abi3.so", "provenance", SUFFIX),
            "generic/provenance/python/m/m.abi3.so.intoto.json"
        );
    }
}
