//! The schema check against the pinned schema: valid files pass, broken ones are rejected
//! with the pointer and rule that explain why.

use super::*;
use serde_json::json;
use sha2::{Digest, Sha256};

/// A small valid server.json (one OCI package over stdio).
fn valid() -> Value {
    json!({
        "$schema": SERVER_SCHEMA,
        "name": "io.github.example/weather",
        "description": "Weather forecasts",
        "version": "1.2.3",
        "packages": [{
            "registryType": "oci",
            "identifier": "ghcr.io/example/weather:1.2.3",
            "runtimeHint": "docker",
            "runtimeArguments": [{"type": "named", "name": "-i"}],
            "transport": {"type": "stdio"}
        }]
    })
}

/// The problems of `server` as (pointer, rule) pairs.
fn found(server: &Value) -> Vec<(String, String)> {
    problems(server)
        .unwrap()
        .into_iter()
        .map(|p| (p.pointer, p.rule))
        .collect()
}

#[test]
fn the_committed_schema_is_the_published_file_unmodified() {
    let digest = Sha256::digest(SCHEMA_TEXT.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, SCHEMA_SHA256, "the pinned schema file was edited");
    let schema: Value = serde_json::from_str(SCHEMA_TEXT).unwrap();
    assert_eq!(schema["$id"], SERVER_SCHEMA);
    assert!(SERVER_SCHEMA.contains(SERVER_SCHEMA_VERSION));
}

#[test]
fn a_valid_file_passes_and_so_does_another_registry_type() {
    assert_eq!(problems(&valid()).unwrap(), []);
    let mut npm = valid();
    npm["packages"][0] = json!({
        "registryType": "npm", "identifier": "@example/weather", "version": "1.2.3",
        "transport": {"type": "streamable-http", "url": "http://localhost:{--port}/mcp"},
        "packageArguments": [{"type": "named", "name": "--port", "default": "3000"}]
    });
    assert_eq!(problems(&npm).unwrap(), []);
}

#[test]
fn a_package_without_transport_is_rejected_by_the_schema() {
    let mut server = valid();
    server["packages"][0]
        .as_object_mut()
        .unwrap()
        .remove("transport");
    let found = found(&server);
    assert_eq!(found.len(), 1, "{found:?}");
    let (pointer, rule) = &found[0];
    assert_eq!(pointer, "/packages/0");
    assert!(
        rule.contains("`required`") && rule.contains("Package"),
        "{rule}"
    );
}

#[test]
fn a_bad_registry_type_is_rejected() {
    // Not a string: the schema's `type`.
    let mut server = valid();
    server["packages"][0]["registryType"] = json!(7);
    let found_type = found(&server);
    assert!(
        found_type
            .iter()
            .any(|(pointer, rule)| pointer == "/packages/0/registryType" && rule.contains("`type`")),
        "{found_type:?}"
    );
    // A string the registry does not know: the schema names the types only in prose.
    server["packages"][0]["registryType"] = json!("docker");
    assert_eq!(
        found(&server),
        [(
            "/packages/0/registryType".to_owned(),
            "registry rule: registryType".to_owned()
        )]
    );
}

#[test]
fn schema_violations_name_the_pointer_and_the_keyword() {
    let mut server = valid();
    server["description"] = json!("x".repeat(101));
    server["name"] = json!("no-slash");
    server["packages"][0]["transport"] = json!({"type": "carrier-pigeon"});
    server.as_object_mut().unwrap().remove("version");
    let found = found(&server);
    let has = |pointer: &str, keyword: &str| {
        found
            .iter()
            .any(|(p, rule)| p == pointer && rule.contains(&format!("`{keyword}`")))
    };
    assert!(has("/description", "maxLength"), "{found:?}");
    assert!(has("/name", "pattern"), "{found:?}");
    assert!(has("", "required"), "{found:?}");
    assert!(has("/packages/0/transport", "anyOf"), "{found:?}");
}

#[test]
fn the_files_main_wrote_before_are_rejected_by_the_registry_rules() {
    // The 2025-09-29 shape: valid under the 2025-12-11 schema, but it names the older one,
    // and the registry refuses an OCI package with
    // registryBaseUrl and version, and a URL variable hidden inside an argument's value.
    let mut server = valid();
    server["packages"][0] = json!({
        "registryType": "oci", "registryBaseUrl": "https://ghcr.io",
        "identifier": "example/weather", "version": "1.2.3",
        "runtimeArguments": [{"type": "named", "name": "--publish",
            "value": "127.0.0.1:{port}:8080", "variables": {"port": {"default": "8080"}}}],
        "transport": {"type": "streamable-http", "url": "http://localhost:{port}/mcp"}
    });
    server["$schema"] =
        json!("https://static.modelcontextprotocol.io/schemas/2025-09-29/server.schema.json");
    let found = found(&server);
    let pointers: Vec<&str> = found.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/$schema",
            "/packages/0/registryBaseUrl",
            "/packages/0/version",
            "/packages/0/identifier",
            "/packages/0/transport/url"
        ],
        "{found:?}"
    );
    assert!(
        found[1..]
            .iter()
            .all(|(_, rule)| rule.starts_with("registry rule"))
    );
}

#[test]
fn check_names_the_file_every_pointer_and_rule() {
    let mut server = valid();
    server["packages"][0]
        .as_object_mut()
        .unwrap()
        .remove("transport");
    server["packages"][0]["registryType"] = json!("docker");
    let file = Path::new("dist/mcp-registry/weather/server.json");
    let message = check(&server, file).unwrap_err().to_string();
    for part in [
        "dist/mcp-registry/weather/server.json",
        "2 problem(s)",
        "/packages/0: ",
        "/packages/0/registryType: ",
        "`required` at #",
        "registry rule: registryType",
    ] {
        assert!(message.contains(part), "{part:?} missing from:\n{message}");
    }
    assert!(check(&valid(), file).is_ok());
}

#[test]
fn files_are_read_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(server_files(&dir.path().join("absent")).unwrap(), None);
    for (name, text) in [
        ("good", valid().to_string()),
        ("truncated", "{\"name\":".to_owned()),
    ] {
        std::fs::create_dir(dir.path().join(name)).unwrap();
        std::fs::write(dir.path().join(name).join("server.json"), text).unwrap();
    }
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let files = server_files(dir.path()).unwrap().unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.strip_prefix(dir.path()).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "empty/server.json",
            "good/server.json",
            "truncated/server.json"
        ]
    );
    assert!(check_file(&files[1]).is_ok());
    let missing = check_file(&files[0]).unwrap_err();
    assert!(
        format!("{missing:#}").contains("empty/server.json"),
        "{missing:#}"
    );
    let truncated = check_file(&files[2]).unwrap_err();
    assert!(
        format!("{truncated:#}").contains("is not JSON"),
        "{truncated:#}"
    );
}

#[test]
fn url_templates_and_image_references_are_parsed() {
    assert_eq!(
        template_variables("http://{host}:{--port}/mcp/{"),
        ["host", "--port"]
    );
    assert!(template_variables("https://example.com/mcp").is_empty());
    for good in [
        "ghcr.io/o/i:1.0.0",
        "docker.io/o/i:v1",
        "localhost:5000/i:1",
        &format!("ghcr.io/o/i@sha256:{}", "a".repeat(64)),
    ] {
        assert!(is_full_image_reference(good), "{good}");
    }
    for bad in [
        "o/i:1.0.0",
        "ghcr.io/o/i",
        "ghcr.io/o/i:",
        "i:1",
        "ghcr.io/o/i@sha256:short",
        "ghcr.io/o/i :1",
    ] {
        assert!(!is_full_image_reference(bad), "{bad}");
    }
}
