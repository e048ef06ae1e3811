//! Declarative manifests: Cargo.toml, package.json, pyproject.toml, setup.cfg,
//! requirements.txt, go.mod, go.work and pom.xml.

use quick_xml::events::Event;
use serde_json::Value as Json;
use toml::{Table, Value as Toml};

use super::{Ecosystem, ManifestReader, Project};

fn parse_toml(text: &str) -> Result<Table, String> {
    text.parse::<Table>()
        .map_err(|err| format!("invalid TOML: {err}"))
}

fn str_at<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(Toml::as_str)
}

fn string_list(value: Option<&Toml>) -> Vec<&str> {
    value
        .and_then(Toml::as_array)
        .map(|items| items.iter().filter_map(Toml::as_str).collect())
        .unwrap_or_default()
}

/// A Cargo dependency's requirement: its version, path, git source or `workspace`.
fn cargo_requirement(value: &Toml) -> Option<String> {
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

pub(super) fn cargo(
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

pub(super) fn npm(
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

pub(super) fn pyproject(
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

pub(super) fn setup_cfg(
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

pub(super) fn requirements(
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

/// go.mod / go.work directives: `keyword args` and `keyword ( args... )` blocks.
fn go_directives(text: &str) -> Vec<(String, String)> {
    let mut directives = Vec::new();
    let mut block: Option<String> = None;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        if let Some(keyword) = &block {
            if line == ")" {
                block = None;
            } else {
                directives.push((keyword.clone(), line.to_owned()));
            }
            continue;
        }
        let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        if rest == "(" {
            block = Some(keyword.to_owned());
        } else {
            directives.push((keyword.to_owned(), rest.to_owned()));
        }
    }
    directives
}

pub(super) fn go_mod(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Go, reader.manifest_name(file));
    // `// indirect` is a comment, so look at raw lines for it.
    let indirect: Vec<&str> = text
        .lines()
        .filter(|line| line.contains("// indirect"))
        .filter_map(|line| line.split_whitespace().find(|word| *word != "require"))
        .collect();
    for (keyword, args) in go_directives(text) {
        let mut words = args.split_whitespace();
        match keyword.as_str() {
            "module" => project.name = words.next().map(|name| name.trim_matches('"').to_owned()),
            "go" | "toolchain" => project.dependency(
                keyword.as_str(),
                words.next().map(str::to_owned),
                "toolchain",
            ),
            "require" => {
                if let Some(path) = words.next() {
                    let kind = if indirect.contains(&path) {
                        "indirect"
                    } else {
                        "normal"
                    };
                    project.dependency(path, words.next().map(str::to_owned), kind);
                }
            }
            _ => {}
        }
    }
    if project.name.is_none() {
        return Err("no `module` directive".to_owned());
    }
    if reader.exists("main.go") {
        let name = project
            .name
            .as_deref()
            .and_then(|n| n.rsplit('/').next())
            .unwrap_or_default()
            .to_owned();
        project.entry("binary", name, Some("main.go".to_owned()));
    }
    for command in reader.expand_members(["cmd/*"]) {
        let name = command.trim_start_matches("cmd/").to_owned();
        project.entry("binary", name, Some(command));
    }
    Ok(project)
}

pub(super) fn go_work(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Go, reader.manifest_name(file));
    let uses: Vec<String> = go_directives(text)
        .into_iter()
        .filter(|(keyword, _)| keyword == "use")
        .map(|(_, dir)| dir)
        .collect();
    project.members = reader.expand_members(uses.iter().map(String::as_str));
    Ok(project)
}

pub(super) fn pom(
    reader: &mut ManifestReader<'_>,
    file: &str,
    source: &str,
) -> Result<Project, String> {
    let mut project = Project::new(Ecosystem::Maven, reader.manifest_name(file));
    let mut xml = quick_xml::Reader::from_str(source);
    let mut path: Vec<String> = Vec::new();
    let mut dependency: Vec<(String, String)> = Vec::new();
    let mut text = String::new();
    let (mut group, mut parent_group, mut parent_version) = (None, None, None);
    loop {
        let event = xml
            .read_event()
            .map_err(|err| format!("invalid XML at byte {}: {err}", xml.error_position()))?;
        match event {
            Event::Start(start) => {
                path.push(String::from_utf8_lossy(start.local_name().as_ref()).into_owned());
                text.clear();
            }
            Event::Text(chunk) => {
                let chunk = chunk
                    .xml_content()
                    .map_err(|err| format!("invalid XML text: {err}"))?;
                text.push_str(&chunk);
            }
            // `&amp;` and friends arrive as their own events between text chunks.
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => Some(ch),
                    _ => match &*reference {
                        b"amp" => Some('&'),
                        b"lt" => Some('<'),
                        b"gt" => Some('>'),
                        b"quot" => Some('"'),
                        b"apos" => Some('\''),
                        _ => None,
                    },
                };
                text.extend(resolved);
            }
            Event::End(_) => {
                let closed = path.join("/");
                let value = std::mem::take(&mut text).trim().to_owned();
                match closed.as_str() {
                    "project/artifactId" => project.name = Some(value),
                    "project/groupId" => group = Some(value),
                    "project/version" => project.version = Some(value),
                    "project/description" => project.description = Some(value),
                    "project/parent/groupId" => parent_group = Some(value),
                    "project/parent/version" => parent_version = Some(value),
                    "project/modules/module" => project.members.push(value),
                    "project/build/plugins/plugin/configuration/mainClass"
                    | "project/build/plugins/plugin/configuration/archive/manifest/mainClass" => {
                        project.entry("main_class", value.clone(), Some(value));
                    }
                    "project/dependencies/dependency"
                    | "project/dependencyManagement/dependencies/dependency" => {
                        let managed = closed.starts_with("project/dependencyManagement");
                        let field = |name: &str| {
                            dependency
                                .iter()
                                .find(|(key, _)| key == name)
                                .map(|(_, value)| value.clone())
                        };
                        let name = format!(
                            "{}:{}",
                            field("groupId").unwrap_or_default(),
                            field("artifactId").unwrap_or_default()
                        );
                        let kind = if managed {
                            "managed".to_owned()
                        } else {
                            field("scope").unwrap_or_else(|| "compile".to_owned())
                        };
                        project.dependency(name, field("version"), &kind);
                        dependency.clear();
                    }
                    other => {
                        if let Some(field) = other
                            .strip_prefix("project/dependencies/dependency/")
                            .or_else(|| {
                                other.strip_prefix(
                                    "project/dependencyManagement/dependencies/dependency/",
                                )
                            })
                        {
                            dependency.push((field.to_owned(), value));
                        }
                    }
                }
                path.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if path.first().is_some_and(|root| root != "project") || project.name.is_none() {
        return Err("no <project><artifactId>; is this a Maven POM?".to_owned());
    }
    project.version = project.version.or(parent_version);
    if let Some(group) = group.or(parent_group) {
        project.name = project.name.map(|artifact| format!("{group}:{artifact}"));
    }
    Ok(project)
}
