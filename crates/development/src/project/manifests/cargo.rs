//! Cargo.toml: package, dependencies (also per target and the workspace's), workspace
//! members and the library and binary targets, declared or found by Cargo's layout rules.

use toml::{Table, Value as Toml};

use super::{parse_toml, str_at, string_list};
use crate::project::{Ecosystem, ManifestReader, Project};

/// A Cargo dependency's requirement: its version, path, git source or `workspace`.
pub(super) fn cargo_requirement(value: &Toml) -> Option<String> {
    match value {
        Toml::String(version) => Some(version.clone()),
        Toml::Table(spec) => {
            if spec.get("workspace").and_then(Toml::as_bool) == Some(true) {
                Some("workspace".to_owned())
            } else if let Some(version) = str_at(spec, "version") {
                Some(version.to_owned())
            } else if let Some(path) = str_at(spec, "path") {
                Some(format!("path:{path}"))
            } else {
                str_at(spec, "git").map(|git| format!("git:{git}"))
            }
        }
        _ => None,
    }
}

fn cargo_dependencies(project: &mut Project, table: &Table, suffix: &str) {
    for (section, kind) in [
        ("dependencies", "normal"),
        ("dev-dependencies", "dev"),
        ("build-dependencies", "build"),
    ] {
        let Some(deps) = table.get(section).and_then(Toml::as_table) else {
            continue;
        };
        let kind = format!("{kind}{suffix}");
        for (name, spec) in deps {
            // `foo = { package = "real-name" }` renames: report the crate actually used.
            let crate_name = spec
                .as_table()
                .and_then(|spec| str_at(spec, "package"))
                .unwrap_or(name);
            project.dependency(crate_name, cargo_requirement(spec), &kind);
        }
    }
}

pub(in crate::project) fn cargo(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let manifest = parse_toml(text)?;
    let mut project = Project::new(Ecosystem::Cargo, reader.manifest_name(file));
    let package = manifest.get("package").and_then(Toml::as_table);
    if let Some(package) = package {
        project.name = str_at(package, "name").map(str::to_owned);
        project.version = package.get("version").and_then(cargo_requirement);
        project.description = package.get("description").and_then(cargo_requirement);
    }
    cargo_dependencies(&mut project, &manifest, "");
    if let Some(targets) = manifest.get("target").and_then(Toml::as_table) {
        for (cfg, table) in targets {
            if let Some(table) = table.as_table() {
                cargo_dependencies(&mut project, table, &format!(" ({cfg})"));
            }
        }
    }
    if let Some(workspace) = manifest.get("workspace").and_then(Toml::as_table) {
        project.members = reader.expand_members(string_list(workspace.get("members")));
        if let Some(deps) = workspace.get("dependencies").and_then(Toml::as_table) {
            for (name, spec) in deps {
                project.dependency(name.as_str(), cargo_requirement(spec), "workspace");
            }
        }
        if project.name.is_none() {
            project.version = workspace
                .get("package")
                .and_then(Toml::as_table)
                .and_then(|package| str_at(package, "version"))
                .map(str::to_owned);
        }
    }
    if package.is_some() {
        cargo_targets(reader, &manifest, &mut project);
    }
    Ok(project)
}

fn cargo_targets(reader: &ManifestReader<'_>, manifest: &Table, project: &mut Project) {
    let package_name = project.name.clone().unwrap_or_default();
    let lib = manifest.get("lib").and_then(Toml::as_table);
    let lib_path = lib.and_then(|lib| str_at(lib, "path")).map(str::to_owned);
    if lib.is_some() || reader.exists("src/lib.rs") {
        let name = lib
            .and_then(|lib| str_at(lib, "name"))
            .map_or_else(|| package_name.replace('-', "_"), str::to_owned);
        project.entry(
            "library",
            name,
            Some(lib_path.unwrap_or_else(|| "src/lib.rs".to_owned())),
        );
    }
    let bins = manifest
        .get("bin")
        .and_then(Toml::as_array)
        .cloned()
        .unwrap_or_default();
    for bin in bins.iter().filter_map(Toml::as_table) {
        let name = str_at(bin, "name").unwrap_or(&package_name).to_owned();
        let path = str_at(bin, "path").map(str::to_owned);
        project.entry("binary", name, path);
    }
    let declared = |name: &str| {
        project
            .entry_points
            .iter()
            .any(|e| e.kind == "binary" && e.name == name)
    };
    if reader.exists("src/main.rs") && !declared(&package_name) {
        project.entry(
            "binary",
            package_name.clone(),
            Some("src/main.rs".to_owned()),
        );
    }
    if let Ok(entries) = std::fs::read_dir(reader.dir.join("src/bin")) {
        let mut found: Vec<(String, String)> = entries
            .flatten()
            .filter_map(|entry| {
                let file_name = entry.file_name().to_string_lossy().into_owned();
                let stem = file_name.strip_suffix(".rs")?.to_owned();
                Some((stem, format!("src/bin/{file_name}")))
            })
            .collect();
        found.sort();
        for (name, path) in found {
            if !project
                .entry_points
                .iter()
                .any(|e| e.kind == "binary" && e.name == name)
            {
                project.entry("binary", name, Some(path));
            }
        }
    }
}
