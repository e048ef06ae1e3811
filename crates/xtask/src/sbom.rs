//! What is linked into an artifact, and the two records of it that `cargo xtask dist` ships:
//! the dependency list embedded in the binary the way `cargo auditable` does it (the
//! `dep-list` crate, shared with the Nix packages), and a CycloneDX 1.5 SBOM file next to
//! the artifact, made from the same list.

use anyhow::{Context, Result};
pub use dep_list::{LinkedCrate, LinkedCrates, SECTION, embed, resolve};
use serde_json::{Value, json};

/// CycloneDX SBOM files: `<variant>/sbom/<artifact file name>` + this.
pub const SBOM_SUFFIX: &str = ".cdx.json";
/// The SBOM files' media type (CycloneDX JSON), for the OCI referrers.
pub const MEDIA_TYPE: &str = "application/vnd.cyclonedx+json";

/// A CycloneDX 1.5 SBOM of the list of an artifact named `artifact` (its dist path) with `sha256`.
/// The root crate describes the artifact (`metadata.component`); every other linked
/// crate is one component, with the dependency graph.
pub fn cyclonedx(list: &LinkedCrates, artifact: &str, sha256: &str) -> Result<Value> {
    let root = list
        .root()
        .context("the dependency list has no root crate")?;
    let bom_ref = |c: &LinkedCrate| purl(c);
    let mut components = Vec::new();
    for c in list.crates.iter().filter(|c| !c.root) {
        let mut component = json!({
            "type": "library",
            "bom-ref": bom_ref(c),
            "name": c.name,
            "version": c.version,
            "scope": "required",
            "purl": purl(c),
        });
        if let Some(source) = &c.source {
            component["externalReferences"] = json!([{ "type": "distribution", "url": source }]);
        }
        components.push(component);
    }
    let dependencies: Vec<Value> = list
        .crates
        .iter()
        .map(|c| {
            json!({
                "ref": bom_ref(c),
                "dependsOn": c.dependencies.iter()
                    .map(|&i| bom_ref(&list.crates[i]))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "version": 1,
        "metadata": {
            "tools": { "components": [{
                "type": "application",
                "name": "cargo xtask dist",
                "description": "mcp-foundry's build driver (crates/xtask/src/sbom.rs, crates/dep-list)",
            }]},
            "component": {
                "type": "application",
                "bom-ref": bom_ref(root),
                "name": root.name,
                "version": root.version,
                "purl": purl(root),
                "description": format!("dist artifact {artifact}"),
                "hashes": [{ "alg": "SHA-256", "content": sha256 }],
            },
        },
        "components": components,
        "dependencies": dependencies,
    }))
}

/// The package URL: `pkg:cargo/name@version` for the default registry; other sources carry
/// their location as a qualifier (purl-spec's `repository_url`/`vcs_url`), path crates are
/// this repository's own.
fn purl(c: &LinkedCrate) -> String {
    let base = format!("pkg:cargo/{}@{}", c.name, c.version);
    match c.source.as_deref() {
        None => base,
        Some(s) if dep_list::is_default_registry(s) => base,
        Some(s) => match s.strip_prefix("git+") {
            Some(url) => format!("{base}?vcs_url={}", percent_encode(&format!("git+{url}"))),
            None => format!("{base}?repository_url={}", percent_encode(s)),
        },
    }
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests;
