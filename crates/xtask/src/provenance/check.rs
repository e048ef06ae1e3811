//! `cargo xtask verify`'s supply-chain check: every binary of `dist/manifest.json` has its
//! SBOM and provenance, and they agree with the file — the provenance's subject is the
//! file's sha256, its SBOM by-product is the SBOM's, the SBOM describes the file (name and
//! sha256), and the SBOM lists exactly the crates of the dependency list embedded in the
//! shipped file and in its unstripped copy (name and version, both ways).

use std::collections::BTreeSet;
use std::fs;
use std::io::Read as _;
use std::path::Path;

use anyhow::{Context, Result, bail};
use object::{Object as _, ObjectSection as _};
use serde_json::Value;

use super::{PREDICATE_TYPE, STATEMENT_TYPE, SUFFIX, record_path};
use crate::dist::{Artifact, ArtifactKind, Manifest, hash_file, sha256_hex};
use crate::sbom;
use crate::verify::Finding;

/// `(name, version)` of each crate of a list.
type CrateSet = BTreeSet<(String, String)>;

/// Whether dist ships records for an artifact of this kind.
pub fn has_records(kind: ArtifactKind) -> bool {
    matches!(
        kind,
        ArtifactKind::ServerBinary | ArtifactKind::SharedLibrary | ArtifactKind::PythonExtension
    )
}

/// Every disagreement between `dist`'s binaries and their records, one finding each.
pub fn dist_records(dist: &Path, manifest: &Manifest) -> Vec<Finding> {
    let mut findings = Vec::new();
    for artifact in manifest.artifacts.iter().filter(|a| has_records(a.kind)) {
        if let Err(e) = check_artifact(dist, artifact) {
            findings.push(Finding {
                artifact: artifact.path.clone(),
                crate_name: String::new(),
                message: format!("supply chain: {e:#}"),
            });
        }
    }
    findings
}

fn check_artifact(dist: &Path, artifact: &Artifact) -> Result<()> {
    let file = dist.join(&artifact.path);
    let (sha256, _) = hash_file(&file)?;
    let sbom_path = record_path(&artifact.path, "sbom", sbom::SBOM_SUFFIX);
    let sbom_bytes = read(dist, &sbom_path)?;
    let statement: Value = json(&read(
        dist,
        &record_path(&artifact.path, "provenance", SUFFIX),
    )?)?;
    if statement["_type"] != STATEMENT_TYPE || statement["predicateType"] != PREDICATE_TYPE {
        bail!("the provenance is not an in-toto v1 Statement with a SLSA v1 predicate");
    }
    let subject = &statement["subject"][0];
    if subject["name"] != artifact.path.as_str() || subject["digest"]["sha256"] != sha256 {
        bail!(
            "the provenance's subject is {} sha256 {}, the file's sha256 is {sha256}",
            subject["name"],
            subject["digest"]["sha256"]
        );
    }
    let byproduct = &statement["predicate"]["runDetails"]["byproducts"][0];
    if byproduct["name"] != sbom_path.as_str()
        || byproduct["digest"]["sha256"] != sha256_hex(&sbom_bytes)
    {
        bail!("the provenance names another SBOM than {sbom_path}");
    }
    let bom: Value = json(&sbom_bytes)?;
    let component = &bom["metadata"]["component"];
    if bom["bomFormat"] != "CycloneDX"
        || component["name"] != artifact.crate_name.as_str()
        || component["hashes"][0]["content"] != sha256
    {
        bail!("the SBOM {sbom_path} does not describe this file ({sha256})");
    }
    let listed: CrateSet = std::iter::once(component)
        .chain(bom["components"].as_array().into_iter().flatten())
        .map(|c| (text(&c["name"]), text(&c["version"])))
        .collect();
    let mut copies = vec![artifact.path.clone()];
    copies.extend(artifact.unstripped_path.clone());
    for copy in copies {
        let embedded = embedded_crates(&dist.join(&copy))
            .with_context(|| format!("reading the dependency list embedded in {copy}"))?;
        if embedded != listed {
            let only_sbom: Vec<_> = listed.difference(&embedded).collect();
            let only_binary: Vec<_> = embedded.difference(&listed).collect();
            bail!(
                "the SBOM and the list embedded in {copy} differ: only in the SBOM {only_sbom:?}, \
                 only in the binary {only_binary:?}"
            );
        }
    }
    Ok(())
}

/// The crates of the `.dep-v0` section of the ELF file `path` (cargo-auditable's format).
pub fn embedded_crates(path: &Path) -> Result<CrateSet> {
    let data = fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let file = object::File::parse(data.as_slice())?;
    let section = file
        .section_by_name(sbom::SECTION)
        .with_context(|| format!("no {} section", sbom::SECTION))?;
    let mut json = Vec::new();
    flate2::read::ZlibDecoder::new(section.data()?).read_to_end(&mut json)?;
    let info: auditable_serde::VersionInfo = serde_json::from_slice(&json)
        .context("the section is not a valid cargo-auditable dependency list")?;
    Ok(info
        .packages
        .into_iter()
        .map(|p| (p.name, p.version.to_string()))
        .collect())
}

fn read(dist: &Path, relative: &str) -> Result<Vec<u8>> {
    let path = dist.join(relative);
    fs::read(&path).with_context(|| format!("{relative} is missing; rerun `cargo xtask dist`"))
}

fn json(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).context("not JSON")
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provenance::{BuildFacts, write_records};
    use crate::sbom::{LinkedCrate, LinkedCrates};

    /// A dist holding one small real ELF (`/bin/true`) with an embedded list, and its records.
    fn small_dist(dist: &Path) -> Artifact {
        let linked = LinkedCrates {
            crates: vec![
                LinkedCrate {
                    name: "demo".into(),
                    version: "0.1.0".into(),
                    source: None,
                    dependencies: vec![1],
                    root: true,
                },
                LinkedCrate {
                    name: "serde".into(),
                    version: "1.0.228".into(),
                    source: Some("registry+https://github.com/rust-lang/crates.io-index".into()),
                    dependencies: vec![],
                    root: false,
                },
            ],
        };
        let section = linked.section_bytes().unwrap();
        for copy in ["generic/bin/demo", "generic/unstripped/bin/demo"] {
            let path = dist.join(copy);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::copy("/bin/true", &path).unwrap();
            sbom::embed(&crate::sbom::tests::rust_objcopy(), &path, &section).unwrap();
        }
        let (source, mut artifact) =
            crate::provenance::tests::sample("generic/bin/demo", "generic", "");
        artifact.sha256 = hash_file(&dist.join("generic/bin/demo")).unwrap().0;
        artifact.unstripped_path = Some("generic/unstripped/bin/demo".into());
        let facts = BuildFacts {
            source: &source,
            rustc_verbose: "rustc 1.95.0",
            repository: "https://example.org/r",
            features: &[],
        };
        write_records(dist, [&artifact], &linked, &facts).unwrap();
        artifact
    }

    #[test]
    fn records_that_agree_pass_and_each_kind_of_disagreement_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path();
        let artifact = small_dist(dist);
        check_artifact(dist, &artifact).unwrap();
        assert_eq!(
            embedded_crates(&dist.join("generic/bin/demo"))
                .unwrap()
                .len(),
            2
        );
        let error = |dist: &Path| format!("{:#}", check_artifact(dist, &artifact).unwrap_err());

        // An SBOM that lists a crate the binary does not carry.
        let sbom_path = dist.join("generic/sbom/bin/demo.cdx.json");
        let original = fs::read(&sbom_path).unwrap();
        let mut bom: Value = serde_json::from_slice(&original).unwrap();
        bom["components"][0]["version"] = "1.0.0".into();
        fs::write(&sbom_path, serde_json::to_vec(&bom).unwrap()).unwrap();
        assert!(error(dist).contains("another SBOM"), "{}", error(dist));
        // Even with the provenance re-pointed at the edited SBOM, the lists differ.
        let statement_path = dist.join("generic/provenance/bin/demo.intoto.json");
        let mut statement: Value =
            serde_json::from_slice(&fs::read(&statement_path).unwrap()).unwrap();
        statement["predicate"]["runDetails"]["byproducts"][0]["digest"]["sha256"] =
            sha256_hex(&fs::read(&sbom_path).unwrap()).into();
        fs::write(&statement_path, serde_json::to_vec(&statement).unwrap()).unwrap();
        assert!(error(dist).contains("differ"), "{}", error(dist));

        // A changed binary no longer matches the provenance's subject.
        let again = tempfile::tempdir().unwrap();
        small_dist(again.path());
        let binary = again.path().join("generic/bin/demo");
        let mut bytes = fs::read(&binary).unwrap();
        bytes.push(0);
        fs::write(&binary, bytes).unwrap();
        assert!(
            error(again.path()).contains("subject"),
            "{}",
            error(again.path())
        );

        // An unstripped copy without the list.
        let third = tempfile::tempdir().unwrap();
        small_dist(third.path());
        fs::copy(
            "/bin/true",
            third.path().join("generic/unstripped/bin/demo"),
        )
        .unwrap();
        assert!(
            error(third.path()).contains("unstripped"),
            "{}",
            error(third.path())
        );

        // A missing record.
        fs::remove_file(third.path().join("generic/sbom/bin/demo.cdx.json")).unwrap();
        assert!(error(third.path()).contains("rerun `cargo xtask dist`"));
    }
}
