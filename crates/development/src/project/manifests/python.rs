//! Python: pyproject.toml (PEP 621, dependency groups, build-system, Poetry), setup.cfg and
//! requirements files.

use toml::Value as Toml;

use super::cargo::cargo_requirement;
use super::{parse_toml, str_at, string_list};
use crate::project::{Ecosystem, ManifestReader, Project};

/// Splits a PEP 508 requirement (`requests[socks]>=2.0; python_version<"3.8"`) into the
/// distribution name and the rest.
///
/// Kept by hand on purpose: `pep508_rs` would add `url` with `idna` (ICU tables, about 25
/// crates) to a static server binary only to split a name from its specifier, which is
/// all that is reported here; the name rule (letters, digits, `-_.`) is PEP 508's.
fn pep508(spec: &str) -> Option<(String, Option<String>)> {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = &spec[..end];
    if name.is_empty() {
        return None;
    }
    let rest = spec[end..].trim();
    Some((name.to_owned(), (!rest.is_empty()).then(|| rest.to_owned())))
}

pub(in crate::project) fn pyproject(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let manifest = parse_toml(text)?;
    let mut project = Project::new(Ecosystem::Python, reader.manifest_name(file));
    let table = |value: Option<&Toml>| value.and_then(Toml::as_table).cloned().unwrap_or_default();
    let pep621 = table(manifest.get("project"));
    project.name = str_at(&pep621, "name").map(str::to_owned);
    project.version = str_at(&pep621, "version").map(str::to_owned);
    project.description = str_at(&pep621, "description").map(str::to_owned);
    for spec in string_list(pep621.get("dependencies")) {
        if let Some((name, requirement)) = pep508(spec) {
            project.dependency(name, requirement, "normal");
        }
    }
    for (group, specs) in table(pep621.get("optional-dependencies")) {
        for spec in string_list(Some(&specs)) {
            if let Some((name, requirement)) = pep508(spec) {
                project.dependency(name, requirement, &format!("optional:{group}"));
            }
        }
    }
    for (group, specs) in table(manifest.get("dependency-groups")) {
        for spec in string_list(Some(&specs)) {
            if let Some((name, requirement)) = pep508(spec) {
                project.dependency(name, requirement, &format!("group:{group}"));
            }
        }
    }
    for spec in string_list(table(manifest.get("build-system")).get("requires")) {
        if let Some((name, requirement)) = pep508(spec) {
            project.dependency(name, requirement, "build");
        }
    }
    for (section, kind) in [("scripts", "console_script"), ("gui-scripts", "gui_script")] {
        for (name, target) in table(pep621.get(section)) {
            project.entry(kind, name, target.as_str().map(str::to_owned));
        }
    }
    let poetry = table(table(manifest.get("tool")).get("poetry"));
    if !poetry.is_empty() {
        project.name = project
            .name
            .or_else(|| str_at(&poetry, "name").map(str::to_owned));
        project.version = project
            .version
            .or_else(|| str_at(&poetry, "version").map(str::to_owned));
        project.description = project
            .description
            .or_else(|| str_at(&poetry, "description").map(str::to_owned));
        let mut sections = vec![("normal".to_owned(), table(poetry.get("dependencies")))];
        sections.push(("dev".to_owned(), table(poetry.get("dev-dependencies"))));
        for (group, config) in table(poetry.get("group")) {
            let deps = config
                .as_table()
                .and_then(|c| c.get("dependencies"))
                .cloned();
            sections.push((format!("group:{group}"), table(deps.as_ref())));
        }
        for (kind, deps) in sections {
            for (name, spec) in deps {
                if name != "python" {
                    project.dependency(name, cargo_requirement(&spec), &kind);
                }
            }
        }
        for (name, target) in table(poetry.get("scripts")) {
            project.entry("console_script", name, target.as_str().map(str::to_owned));
        }
    }
    Ok(project)
}

pub(in crate::project) fn setup_cfg(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Python, reader.manifest_name(file));
    // setuptools' dialect: `key = value` or `key: value`, indented continuation lines,
    // no quoting or escapes.
    let options = ini::ParseOption {
        enabled_quote: false,
        enabled_escape: false,
        enabled_indented_mutiline_value: true,
        ..ini::ParseOption::default()
    };
    let ini = ini::Ini::load_from_str_opt(text, options).map_err(|err| err.to_string())?;
    let entries = ini.iter().flat_map(|(section, properties)| {
        properties
            .iter()
            .map(move |(key, value)| (section.unwrap_or_default(), key, value.to_owned()))
    });
    for (section, key, value) in entries {
        let lines = || value.lines().map(str::trim).filter(|line| !line.is_empty());
        match (section, key) {
            ("metadata", "name") => project.name = Some(value.clone()),
            ("metadata", "version") => project.version = Some(value.clone()),
            ("metadata", "description") => project.description = Some(value.clone()),
            ("options", "install_requires") | ("options", "setup_requires") => {
                let kind = if key == "install_requires" {
                    "normal"
                } else {
                    "build"
                };
                for (name, requirement) in lines().filter_map(pep508) {
                    project.dependency(name, requirement, kind);
                }
            }
            ("options.extras_require", group) => {
                for (name, requirement) in lines().filter_map(pep508) {
                    project.dependency(name, requirement, &format!("optional:{group}"));
                }
            }
            ("options.entry_points", "console_scripts" | "gui_scripts") => {
                let kind = key.trim_end_matches('s');
                for line in lines() {
                    if let Some((name, target)) = line.split_once('=') {
                        project.entry(kind, name.trim(), Some(target.trim().to_owned()));
                    }
                }
            }
            _ => {}
        }
    }
    if project.name.is_none() && project.dependencies.is_empty() && project.entry_points.is_empty()
    {
        return Err("no [metadata] or [options] package information".to_owned());
    }
    Ok(project)
}

pub(in crate::project) fn requirements(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Python, reader.manifest_name(file));
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or_default().trim();
        // Options (-r other.txt, -e ., --index-url) and URLs are not package names.
        if line.is_empty() || line.starts_with(['#', '-']) || line.contains("://") {
            continue;
        }
        if let Some((name, requirement)) = pep508(line) {
            project.dependency(name, requirement, "normal");
        }
    }
    Ok(project)
}
