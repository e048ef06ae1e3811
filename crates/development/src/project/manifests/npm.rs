//! package.json: name, dependencies by kind, workspaces, entry points and scripts.

use serde_json::Value as Json;

use crate::project::{Ecosystem, ManifestReader, Project};

pub(in crate::project) fn npm(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let manifest: Json =
        serde_json::from_str(text).map_err(|err| format!("invalid JSON: {err}"))?;
    let Some(manifest) = manifest.as_object() else {
        return Err("the top level is not a JSON object".to_owned());
    };
    let text_of = |key: &str| manifest.get(key).and_then(Json::as_str).map(str::to_owned);
    let mut project = Project::new(Ecosystem::Npm, reader.manifest_name(file));
    project.name = text_of("name");
    project.version = text_of("version");
    project.description = text_of("description");
    for (section, kind) in [
        ("dependencies", "normal"),
        ("devDependencies", "dev"),
        ("peerDependencies", "peer"),
        ("optionalDependencies", "optional"),
    ] {
        for (name, requirement) in manifest
            .get(section)
            .and_then(Json::as_object)
            .into_iter()
            .flatten()
        {
            project.dependency(name.as_str(), requirement.as_str().map(str::to_owned), kind);
        }
    }
    let workspaces = match manifest.get("workspaces") {
        Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
        Some(Json::Object(config)) => config
            .get("packages")
            .and_then(Json::as_array)
            .map(|items| items.iter().filter_map(Json::as_str).collect())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    project.members = reader.expand_members(workspaces);
    for key in ["main", "module", "types"] {
        if let Some(target) = text_of(key) {
            project.entry(key, key, Some(target));
        }
    }
    match manifest.get("bin") {
        Some(Json::String(target)) => {
            let name = project.name.clone().unwrap_or_default();
            let name = name.rsplit('/').next().unwrap_or_default().to_owned();
            project.entry("binary", name, Some(target.clone()));
        }
        Some(Json::Object(bins)) => {
            for (name, target) in bins {
                project.entry("binary", name.as_str(), target.as_str().map(str::to_owned));
            }
        }
        _ => {}
    }
    for (name, command) in manifest
        .get("scripts")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        project.entry("script", name.as_str(), command.as_str().map(str::to_owned));
    }
    Ok(project)
}
