//! The servers' identity in the MCP registry: the server name every image and index carries
//! as `io.modelcontextprotocol.server.name` (the registry's ownership check for OCI
//! packages reads it), and the `server.json` each server is published with.
//!
//! One source of truth, `[workspace.metadata.mcp-foundry.registry]` in the root Cargo.toml:
//! `namespace` (e.g. `io.github.<owner>`, which the publisher must be able to prove) and
//! `image-repository` (where the images are pushed). A server's name is
//! `<namespace>/<crate>`, its image `<image-repository>/<crate>`.
//!
//! Every server.json is checked against the registry's schema before it is written
//! ([`schema`]).

pub mod schema;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use cargo_metadata::MetadataCommand;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::metadata::CrateSpec;

/// Label (image config) and annotation (manifest, index) naming the MCP server.
pub const SERVER_NAME_KEY: &str = "io.modelcontextprotocol.server.name";
/// Where `cargo xtask image` writes `<crate>/server.json` in the dist directory.
pub const REGISTRY_DIR: &str = "mcp-registry";
pub use schema::SERVER_SCHEMA;
/// The registry limits a server's description to this many characters.
const MAX_DESCRIPTION: usize = 100;
/// The port `--transport http` listens on inside the container (the runtime's default), and
/// the loopback port it is published on: fixed, because the registry lets a package's
/// transport URL name only the package's arguments and environment variables, not a variable
/// inside an argument's value (`--publish 127.0.0.1:{port}:8080`).
const HTTP_PORT: u16 = 8080;
/// Where the HTTP package expects the bearer token file inside the container.
const TOKEN_FILE: &str = "/run/secrets/mcp-token";

/// `[workspace.metadata.mcp-foundry.registry]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Registry {
    pub namespace: String,
    pub image_repository: String,
}

impl Registry {
    /// Reads the table from the workspace at `root` (through `cargo metadata`).
    pub fn load(root: &Path) -> Result<Registry> {
        let metadata = MetadataCommand::new()
            .current_dir(root)
            .no_deps()
            .exec()
            .with_context(|| format!("reading the workspace in {}", root.display()))?;
        Self::from_workspace_metadata(&metadata.workspace_metadata)
    }

    pub fn from_workspace_metadata(metadata: &Value) -> Result<Registry> {
        let table = metadata
            .get("mcp-foundry")
            .and_then(|m| m.get("registry"))
            .context(
                "the root Cargo.toml has no [workspace.metadata.mcp-foundry.registry] table; add \
                 `namespace = \"io.github.<owner>\"` and `image-repository = \"ghcr.io/<owner>\"`",
            )?;
        let registry = Registry::deserialize(table).context(
            "[workspace.metadata.mcp-foundry.registry] in the root Cargo.toml is malformed",
        )?;
        registry.validate()?;
        Ok(registry)
    }

    fn validate(&self) -> Result<()> {
        let namespace_ok = !self.namespace.is_empty()
            && self
                .namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-');
        if !namespace_ok {
            bail!(
                "registry namespace {:?} must be reverse-DNS letters, digits, `.` and `-` \
                 (e.g. io.github.<owner>)",
                self.namespace
            );
        }
        let (host, path) = self.image_repository.split_once('/').unwrap_or_default();
        if host.is_empty() || path.is_empty() || !host.contains('.') {
            bail!(
                "image-repository {:?} must be `<registry host>/<path>`, e.g. ghcr.io/<owner>",
                self.image_repository
            );
        }
        Ok(())
    }

    /// `<namespace>/<crate>`.
    pub fn server_name(&self, crate_name: &str) -> String {
        format!("{}/{crate_name}", self.namespace)
    }

    /// The server's `server.json`: the dispatch image (`<version>` tag) as an OCI package,
    /// once over stdio and once as a streamable-HTTP server. An OCI package is the full image
    /// reference, without `registryBaseUrl` or `version` (the registry rejects those since
    /// schema 2025-10-11).
    pub fn server_json(&self, spec: &CrateSpec) -> Result<Value> {
        let identifier = format!("{}/{}:{}", self.image_repository, spec.name, spec.version);
        let description = short_description(&spec.description);
        let package = |transport: Value, runtime_arguments: Value, package_arguments: Value| {
            json!({
                "registryType": "oci",
                "identifier": identifier,
                "runtimeHint": "docker",
                "runtimeArguments": runtime_arguments,
                "packageArguments": package_arguments,
                "transport": transport,
            })
        };
        let workdir_mount = json!({
            "type": "named",
            "name": "--mount",
            "value": "type=bind,src={project_dir},dst=/work",
            "description": "The directory the server may read (and, for some tools, write); it \
                            is the server's only root.",
            "isRequired": true,
            "variables": {
                "project_dir": {"description": "Absolute path of the project directory", "format": "filepath", "isRequired": true}
            }
        });
        let stdio = package(
            json!({"type": "stdio"}),
            json!([{"type": "named", "name": "-i"}, {"type": "named", "name": "--rm"}, workdir_mount]),
            json!([]),
        );
        let http = package(
            json!({
                "type": "streamable-http",
                "url": format!("http://localhost:{HTTP_PORT}/mcp"),
                "headers": [{
                    "name": "Authorization",
                    "value": "Bearer {token}",
                    "isSecret": true,
                    "isRequired": true,
                    "description": "The token in the mounted token file",
                    "variables": {"token": {"isSecret": true, "isRequired": true}}
                }]
            }),
            json!([
                {"type": "named", "name": "--rm"},
                workdir_mount,
                {
                    "type": "named", "name": "--publish",
                    "value": format!("127.0.0.1:{HTTP_PORT}:{HTTP_PORT}"),
                    "description": "The server's port, on the host's loopback interface only"
                },
                {
                    "type": "named", "name": "--mount",
                    "value": format!("type=bind,src={{token_file}},dst={TOKEN_FILE},readonly"),
                    "description": "File holding the bearer token clients must send",
                    "isRequired": true,
                    "variables": {"token_file": {"format": "filepath", "isRequired": true}}
                }
            ]),
            // Inside the container the server must listen on every interface; the runtime
            // then demands a bearer token.
            json!([
                {"type": "named", "name": "--transport", "value": "http"},
                {"type": "named", "name": "--listen", "value": "0.0.0.0"},
                {"type": "named", "name": "--port", "value": HTTP_PORT.to_string()},
                {"type": "named", "name": "--auth-token-file", "value": TOKEN_FILE}
            ]),
        );
        let mut server = json!({
            "$schema": SERVER_SCHEMA,
            "name": self.server_name(&spec.name),
            "description": description,
            "version": spec.version,
            "packages": [stdio, http],
        });
        if let Some(url) = &spec.repository {
            let source = if url.starts_with("https://github.com/") {
                "github"
            } else if url.starts_with("https://gitlab.com/") {
                "gitlab"
            } else {
                "git"
            };
            server["repository"] = json!({"url": url, "source": source});
        }
        Ok(server)
    }

    /// Writes `<out>/<crate>/server.json`, after checking it against the registry's schema
    /// and rules, and returns its path.
    pub fn write_server_json(&self, spec: &CrateSpec, out: &Path) -> Result<PathBuf> {
        let dir = out.join(&spec.name);
        let path = dir.join("server.json");
        let server = self.server_json(spec)?;
        schema::check(&server, &path)?;
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut text = serde_json::to_string_pretty(&server)?;
        text.push('\n');
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        Ok(path)
    }
}

/// The crate description cut to the registry's limit at a word boundary.
fn short_description(description: &str) -> String {
    let description = description.trim();
    if description.chars().count() <= MAX_DESCRIPTION {
        return description.to_owned();
    }
    let mut cut: String = description.chars().take(MAX_DESCRIPTION - 1).collect();
    if let Some(space) = cut.rfind(' ') {
        cut.truncate(space);
    }
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> Registry {
        Registry {
            namespace: "io.github.example".into(),
            image_repository: "ghcr.io/example".into(),
        }
    }

    #[test]
    fn the_table_is_read_and_checked() {
        let metadata = json!({"mcp-foundry": {"registry": {
            "namespace": "io.github.example", "image-repository": "ghcr.io/example"}}});
        assert_eq!(
            Registry::from_workspace_metadata(&metadata).unwrap(),
            registry()
        );
        let missing = Registry::from_workspace_metadata(&json!({"mcp-foundry": {}}))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("[workspace.metadata.mcp-foundry.registry]"),
            "{missing}"
        );
        for bad in [
            json!({"namespace": "io github/x", "image-repository": "ghcr.io/e"}),
            json!({"namespace": "io.github.e", "image-repository": "example"}),
            json!({"namespace": "io.github.e", "image-repository": "ghcr.io/e", "extra": 1}),
        ] {
            let metadata = json!({"mcp-foundry": {"registry": bad}});
            assert!(
                Registry::from_workspace_metadata(&metadata).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn the_workspace_names_its_servers() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let registry = Registry::load(&root).unwrap();
        assert!(registry.server_name("devops").ends_with("/devops"));
    }

    #[test]
    fn server_json_has_stdio_and_http_oci_packages() {
        let spec = CrateSpec {
            name: "devops".into(),
            version: "0.3.1".into(),
            description: "word ".repeat(40),
            repository: Some("https://github.com/example/repo".into()),
            ..CrateSpec::default()
        };
        let server = registry().server_json(&spec).unwrap();
        assert_eq!(server["name"], "io.github.example/devops");
        assert_eq!(server["version"], "0.3.1");
        let description = server["description"].as_str().unwrap();
        assert!(
            description.chars().count() <= MAX_DESCRIPTION,
            "{description}"
        );
        assert_eq!(server["repository"]["source"], "github");
        let packages = server["packages"].as_array().unwrap();
        let transports: Vec<&str> = packages
            .iter()
            .map(|p| p["transport"]["type"].as_str().unwrap())
            .collect();
        assert_eq!(transports, ["stdio", "streamable-http"]);
        for package in packages {
            assert_eq!(package["registryType"], "oci");
            // The crate version is the tag: never `latest`.
            assert_eq!(package["identifier"], "ghcr.io/example/devops:0.3.1");
            assert!(package.get("registryBaseUrl").is_none() && package.get("version").is_none());
        }
        let http = &packages[1];
        let args: Vec<&str> = http["packageArguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap())
            .collect();
        // Listening beyond loopback needs a token: the runtime refuses it otherwise.
        assert!(args.contains(&"--listen") && args.contains(&"--auth-token-file"));
        assert_eq!(http["transport"]["url"], "http://localhost:8080/mcp");
        let publish = http["runtimeArguments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == "--publish")
            .unwrap();
        // Published on the host's loopback only, on the port the URL names.
        assert_eq!(publish["value"], "127.0.0.1:8080:8080");
        assert_eq!(schema::problems(&server).unwrap(), []);
    }

    #[test]
    fn every_server_json_of_the_workspace_is_written_and_passes_the_schema() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let workspace = crate::metadata::Workspace::load_from(&root).unwrap();
        let registry = Registry::load(&root).unwrap();
        let out = tempfile::tempdir().unwrap();
        let servers: Vec<&CrateSpec> = workspace.servers().collect();
        assert!(servers.len() >= 4, "{servers:?}");
        for server in servers {
            let path = registry.write_server_json(server, out.path()).unwrap();
            schema::check_file(&path).unwrap();
            let written: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            assert_eq!(written["$schema"], SERVER_SCHEMA);
            assert_eq!(written["name"], registry.server_name(&server.name));
        }
    }
}
