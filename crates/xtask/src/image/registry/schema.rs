//! Checks a `server.json` the way the MCP registry does before it accepts it, offline:
//!
//! 1. the official JSON Schema, validated by the `jsonschema` crate: the pinned, unmodified
//!    file in `crates/xtask/schemas/mcp-registry/` (where it comes from and why it is
//!    committed: the README there; its sha256 is checked by a test);
//! 2. `$schema` names that version (the registry only warns about older ones);
//! 3. the publishing rules the schema states only in prose, which the registry enforces when
//!    publishing: a package's transport URL may name only its own arguments and environment
//!    variables (the schema's `url` description), `registryType` is one the schema names, and
//!    an OCI package is a full image reference without `registryBaseUrl`, `version` or
//!    `fileSha256` (schema version 2025-10-11 onwards).
//!
//! Every problem names the JSON pointer of the offending value and the rule it breaks; the
//! file-level functions add the file.

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use jsonschema::Validator;
use serde_json::Value;

/// The schema version our files follow, and the `$schema` they name.
pub const SERVER_SCHEMA_VERSION: &str = "2025-12-11";
pub const SERVER_SCHEMA: &str =
    "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json";
/// The schema file, unmodified (see crates/xtask/schemas/mcp-registry/README.md).
const SCHEMA_TEXT: &str =
    include_str!("../../../schemas/mcp-registry/2025-12-11.server.schema.json");
/// The published file's sha256, checked by a test: the committed copy is never edited.
#[cfg(test)]
const SCHEMA_SHA256: &str = "3fba09590c99f61735d234822279f4223fab9e300c0a81e81c91ab62a4114de0";
/// The registry types the schema names (`Package.registryType`).
const REGISTRY_TYPES: [&str; 5] = ["npm", "pypi", "oci", "nuget", "mcpb"];

/// One way a server.json breaks the schema or a registry rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON pointer (RFC 6901) of the offending value; empty for the document itself.
    pub pointer: String,
    /// The rule: the schema keyword and its location in the schema, or the registry rule.
    pub rule: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pointer = if self.pointer.is_empty() {
            "(document)"
        } else {
            &self.pointer
        };
        write!(f, "{pointer}: {} [{}]", self.message, self.rule)
    }
}

/// The compiled schema (draft-07; `format` asserted, as the registry's validator does).
fn validator() -> Result<Validator> {
    let schema: Value = serde_json::from_str(SCHEMA_TEXT)
        .context("the pinned server.json schema is not JSON (was it edited?)")?;
    jsonschema::draft7::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|error| anyhow::anyhow!("the pinned server.json schema does not compile: {error}"))
}

/// Every problem of `server`, schema violations first; empty when the registry would accept
/// it (as far as it can be checked offline: not that the image exists and carries the name).
pub fn problems(server: &Value) -> Result<Vec<Problem>> {
    let mut problems: Vec<Problem> = validator()?
        .iter_errors(server)
        .map(|error| Problem {
            pointer: error.instance_path().as_str().to_owned(),
            rule: format!(
                "schema {SERVER_SCHEMA_VERSION} `{}` at #{}",
                error.kind().keyword(),
                error.schema_path().as_str()
            ),
            message: error.to_string(),
        })
        .collect();
    if let Some(declared) = server.get("$schema").and_then(Value::as_str)
        && declared != SERVER_SCHEMA
    {
        problems.push(Problem {
            pointer: "/$schema".to_owned(),
            rule: format!("the file is checked against {SERVER_SCHEMA}"),
            message: format!(
                "{declared:?} is not the schema version this check knows; write `$schema` as \
                 {SERVER_SCHEMA:?}"
            ),
        });
    }
    if let Some(packages) = server.get("packages").and_then(Value::as_array) {
        for (index, package) in packages.iter().enumerate() {
            package_rules(&format!("/packages/{index}"), package, &mut problems);
        }
    }
    Ok(problems)
}

/// The registry's rules for one package that the schema states only in prose.
fn package_rules(pointer: &str, package: &Value, problems: &mut Vec<Problem>) {
    let mut problem = |at: &str, rule: &str, message: String| {
        problems.push(Problem {
            pointer: format!("{pointer}{at}"),
            rule: format!("registry rule: {rule}"),
            message,
        })
    };
    let registry_type = package.get("registryType").and_then(Value::as_str);
    if let Some(kind) = registry_type
        && !REGISTRY_TYPES.contains(&kind)
    {
        problem(
            "/registryType",
            "registryType",
            format!(
                "{kind:?} is not a registry type the registry knows; use one of {}",
                REGISTRY_TYPES.join(", ")
            ),
        );
    }
    if registry_type == Some("oci") {
        for field in ["registryBaseUrl", "version", "fileSha256"] {
            if package.get(field).is_some() {
                problem(
                    &format!("/{field}"),
                    "oci packages",
                    format!(
                        "an oci package must not have `{field}`: the registry rejects it; the \
                         identifier is the full image reference (`ghcr.io/<owner>/<image>:<tag>`)"
                    ),
                );
            }
        }
        if let Some(identifier) = package.get("identifier").and_then(Value::as_str)
            && !is_full_image_reference(identifier)
        {
            problem(
                "/identifier",
                "oci packages",
                format!(
                    "{identifier:?} is not a full image reference \
                     `<registry host>/<path>:<tag>` (or `@sha256:<digest>`)"
                ),
            );
        }
    }
    if let Some(url) = package.pointer("/transport/url").and_then(Value::as_str) {
        let known = package_variables(package);
        for variable in template_variables(url) {
            if !known.iter().any(|k| k == variable) {
                problem(
                    "/transport/url",
                    "package transport url",
                    format!(
                        "{{{variable}}} in {url:?} names no argument (name or valueHint) or \
                         environment variable of this package; known: [{}]",
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

/// What a package's transport URL may name: its arguments' names and `valueHint`s and its
/// environment variables' names.
fn package_variables(package: &Value) -> Vec<String> {
    let mut names = Vec::new();
    for list in [
        "runtimeArguments",
        "packageArguments",
        "environmentVariables",
    ] {
        for item in package
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for key in ["name", "valueHint"] {
                if let Some(name) = item.get(key).and_then(Value::as_str) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

/// The `{name}`s of a URL template.
fn template_variables(url: &str) -> Vec<&str> {
    let mut variables = Vec::new();
    let mut rest = url;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        variables.push(&after[..close]);
        rest = &after[close + 1..];
    }
    variables
}

/// `<host with a dot or port>/<path>` with a `:<tag>` or `@sha256:<digest>`.
fn is_full_image_reference(identifier: &str) -> bool {
    let (name, has_version) = match identifier.split_once('@') {
        Some((name, digest)) => (name, digest.starts_with("sha256:") && digest.len() == 71),
        None => match identifier.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') && !tag.is_empty() => (name, true),
            _ => (identifier, false),
        },
    };
    let Some((host, path)) = name.split_once('/') else {
        return false;
    };
    has_version
        && (host.contains('.') || host.contains(':'))
        && !path.is_empty()
        && !identifier.chars().any(char::is_whitespace)
}

/// Fails, naming `file` and every problem, unless `server` passes.
pub fn check(server: &Value, file: &Path) -> Result<()> {
    let problems = problems(server)?;
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "{} does not pass the MCP registry's server.json schema {SERVER_SCHEMA_VERSION} and \
         publishing rules ({} problem(s)):\n  {}",
        file.display(),
        problems.len(),
        problems
            .iter()
            .map(Problem::to_string)
            .collect::<Vec<_>>()
            .join("\n  ")
    )
}

/// Reads and checks one server.json file.
pub fn check_file(path: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let server: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    check(&server, path)
}

/// Every `<dir>/<server>/server.json` under `dir` (`dist/mcp-registry`), sorted; a server
/// directory without one is an error. `None` when `dir` does not exist.
pub fn server_files(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("listing {}", dir.display())),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        if entry.file_type()?.is_dir() {
            files.push(entry.path().join("server.json"));
        }
    }
    files.sort();
    Ok(Some(files))
}

#[cfg(test)]
mod tests;
