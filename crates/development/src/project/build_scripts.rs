//! Manifests that are programs (Gradle, CMake, Nix flakes): their declarative parts only.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value as Json;

use super::{Ecosystem, ManifestReader, Project};

fn regex(pattern: &str) -> Regex {
    // invariant: called only with the constant patterns of this module, covered by its tests.
    Regex::new(pattern).expect("built-in pattern is valid")
}

/// Drops `//` and `#` line comments (outside of nothing smarter: enough for manifests).
fn without_comments(text: &str, marker: &str) -> String {
    text.lines()
        .map(|line| line.split(marker).next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

static GRADLE_ROOT_NAME: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"rootProject\.name\s*=\s*["']([^"']+)["']"#));
static GRADLE_INCLUDE: LazyLock<Regex> = LazyLock::new(|| regex(r"(?m)^\s*include\s*\(?([^)\n]*)"));
static QUOTED: LazyLock<Regex> = LazyLock::new(|| regex(r#"["']([^"']+)["']"#));

pub(super) fn gradle_settings(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let text = without_comments(text, "//");
    let mut project = Project::new(Ecosystem::Gradle, reader.manifest_name(file));
    project.name = GRADLE_ROOT_NAME.captures(&text).map(|c| c[1].to_owned());
    for include in GRADLE_INCLUDE.captures_iter(&text) {
        for name in QUOTED.captures_iter(&include[1]) {
            // `:app:core` is the directory app/core.
            project
                .members
                .push(name[1].trim_start_matches(':').replace(':', "/"));
        }
    }
    Ok(project)
}

static GRADLE_DEPENDENCY: LazyLock<Regex> = LazyLock::new(|| {
    regex(
        r#"(?m)^\s*(implementation|api|compileOnly|runtimeOnly|testImplementation|testRuntimeOnly|testCompileOnly|annotationProcessor|kapt|ksp|classpath|compile|testCompile)\s*\(?\s*["']([^"':]+):([^"':]+)(?::([^"']+))?["']"#,
    )
});
static GRADLE_VERSION: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?m)^\s*version\s*=?\s*["']([^"']+)["']"#));
static GRADLE_MAIN_CLASS: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"mainClass(?:Name)?\s*(?:\.set\s*\(|=)\s*["']([^"']+)["']"#));

pub(super) fn gradle_build(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let text = without_comments(text, "//");
    let mut project = Project::new(Ecosystem::Gradle, reader.manifest_name(file));
    project.version = GRADLE_VERSION.captures(&text).map(|c| c[1].to_owned());
    for found in GRADLE_DEPENDENCY.captures_iter(&text) {
        let name = format!("{}:{}", &found[2], &found[3]);
        project.dependency(name, found.get(4).map(|v| v.as_str().to_owned()), &found[1]);
    }
    if let Some(main) = GRADLE_MAIN_CLASS.captures(&text) {
        project.entry("main_class", &main[1], Some(main[1].to_owned()));
    }
    Ok(project)
}

static CMAKE_COMMAND: LazyLock<Regex> = LazyLock::new(|| {
    regex(r"(?i)\b(project|add_executable|add_library|find_package|add_subdirectory)\s*\(([^)]*)\)")
});
static VERSION_NUMBER: LazyLock<Regex> = LazyLock::new(|| regex(r"^\d+(\.\d+)*$"));

pub(super) fn cmake(
    reader: &mut ManifestReader<'_>,
    file: &str,
    text: &str,
) -> Result<Project, String> {
    let text = without_comments(text, "#");
    let mut project = Project::new(Ecosystem::Cmake, reader.manifest_name(file));
    for command in CMAKE_COMMAND.captures_iter(&text) {
        let args: Vec<&str> = command[2]
            .split_whitespace()
            .map(|a| a.trim_matches('"'))
            .collect();
        let Some(&first) = args.first() else { continue };
        match command[1].to_ascii_lowercase().as_str() {
            "project" if project.name.is_none() => {
                project.name = Some(first.to_owned());
                project.version = args
                    .iter()
                    .position(|arg| *arg == "VERSION")
                    .and_then(|at| args.get(at + 1))
                    .map(|v| (*v).to_owned());
                project.description = args
                    .iter()
                    .position(|arg| *arg == "DESCRIPTION")
                    .and_then(|_| command[2].split('"').nth(1))
                    .map(str::to_owned);
            }
            "add_executable" => {
                project.entry("executable", first, args.get(1).map(|s| (*s).to_owned()))
            }
            "add_library" => project.entry("library", first, None),
            "find_package" => {
                let version = args
                    .get(1)
                    .filter(|v| VERSION_NUMBER.is_match(v))
                    .map(|v| (*v).to_owned());
                let kind = if args.contains(&"REQUIRED") {
                    "required"
                } else {
                    "optional"
                };
                project.dependency(first, version, kind);
            }
            "add_subdirectory" => project.members.push(first.to_owned()),
            _ => {}
        }
    }
    Ok(project)
}

static FLAKE_DESCRIPTION: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"description\s*=\s*"([^"]*)""#));
static FLAKE_INPUT_URL: LazyLock<Regex> =
    LazyLock::new(|| regex(r#"(?:inputs\.)?([A-Za-z0-9_-]+)\.url\s*=\s*"([^"]+)""#));

/// A flake: description from flake.nix; inputs pinned in flake.lock when present (the
/// exact revisions), otherwise the `x.url = "..."` declarations of flake.nix.
pub(super) fn nix_flake(
    text: &str,
    lock: Option<&str>,
    manifest: String,
) -> Result<Project, String> {
    let text = without_comments(text, "#");
    let mut project = Project::new(Ecosystem::NixFlake, manifest);
    project.description = FLAKE_DESCRIPTION.captures(&text).map(|c| c[1].to_owned());
    project.entry("flake", "outputs", Some("flake.nix".to_owned()));
    if let Some(lock) = lock {
        let lock: Json = serde_json::from_str(lock)
            .map_err(|err| format!("flake.lock is invalid JSON: {err}"))?;
        let nodes = &lock["nodes"];
        let root = lock["root"].as_str().unwrap_or("root");
        for (input, node) in nodes[root]["inputs"].as_object().into_iter().flatten() {
            // An input is a node name, or a path of names when it `follows` another input.
            let Some(node_name) = node.as_str() else {
                project.dependency(input.as_str(), Some("follows".to_owned()), "input");
                continue;
            };
            let locked = &nodes[node_name]["locked"];
            let source = match (
                locked["type"].as_str(),
                locked["owner"].as_str(),
                locked["repo"].as_str(),
            ) {
                (Some(kind), Some(owner), Some(repo)) => format!("{kind}:{owner}/{repo}"),
                (Some(kind), _, _) => locked["url"]
                    .as_str()
                    .map_or_else(|| kind.to_owned(), str::to_owned),
                _ => String::new(),
            };
            let requirement = match locked["rev"].as_str() {
                Some(rev) => format!("{source}@{rev}"),
                None => source,
            };
            project.dependency(input.as_str(), Some(requirement), "input");
        }
    } else {
        for found in FLAKE_INPUT_URL.captures_iter(&text) {
            project.dependency(&found[1], Some(found[2].to_owned()), "input");
        }
    }
    Ok(project)
}
