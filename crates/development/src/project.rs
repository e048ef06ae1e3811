//! `project_info`: what the manifests in a directory say about the project.
//!
//! Declarative manifests are parsed with real parsers (Cargo and pyproject with `toml`,
//! package.json and flake.lock with `serde_json`, pom.xml with `quick-xml`). Go's go.mod,
//! setup.cfg and requirements files have line formats simple enough to read directly.
//! Gradle, CMake and flake.nix are programs: their common declarative forms
//! (`implementation("g:a:v")`, `project(NAME VERSION x)`, `inputs.x.url = "..."`) are
//! matched with regexes and anything computed is not reported.

mod build_scripts;
mod manifests;

use std::path::{Path, PathBuf};

use mcp_server_runtime::{CancelFlag, Roots, ToolError, confine_path};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{confine_or_first_root, display_path};

/// Manifests larger than this are not read.
pub const MAX_MANIFEST_BYTES: u64 = 4 * 1024 * 1024;
/// Workspace members listed at most per project.
const MAX_MEMBERS: usize = 1_000;

/// Arguments of `project_info`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ProjectInfoParams {
    /// Project directory; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
}

/// A build ecosystem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ecosystem {
    Cargo,
    Npm,
    Python,
    Go,
    Maven,
    Gradle,
    Cmake,
    NixFlake,
}

/// One declared dependency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Dependency {
    pub name: String,
    /// Version requirement or source (`^1.2`, `path:../x`, `workspace`), when declared.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requirement: Option<String>,
    /// normal, dev, build, peer, optional, workspace, indirect, test, a Maven scope,
    /// a Gradle configuration, an extras group (`optional:docs`), input (Nix)...
    pub kind: String,
}

/// A way the project is run or consumed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct EntryPoint {
    /// binary, library, main, module, script, console_script, gui_script, executable,
    /// main_class.
    pub kind: String,
    pub name: String,
    /// The file, module path or command it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// What one manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Project {
    pub ecosystem: Ecosystem,
    /// The manifest file read.
    pub manifest: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub dependencies: Vec<Dependency>,
    /// Workspace members / modules / subprojects (globs expanded to directories).
    pub members: Vec<String>,
    pub entry_points: Vec<EntryPoint>,
}

impl Project {
    fn new(ecosystem: Ecosystem, manifest: String) -> Self {
        Self {
            ecosystem,
            manifest,
            name: None,
            version: None,
            description: None,
            dependencies: Vec::new(),
            members: Vec::new(),
            entry_points: Vec::new(),
        }
    }

    fn dependency(&mut self, name: impl Into<String>, requirement: Option<String>, kind: &str) {
        self.dependencies.push(Dependency {
            name: name.into(),
            requirement,
            kind: kind.to_owned(),
        });
    }

    fn entry(&mut self, kind: &str, name: impl Into<String>, target: Option<String>) {
        self.entry_points.push(EntryPoint {
            kind: kind.to_owned(),
            name: name.into(),
            target,
        });
    }
}

/// What `project_info` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectInfo {
    /// The directory examined.
    pub path: String,
    /// Ecosystems detected, one entry per manifest.
    pub projects: Vec<Project>,
    /// Manifests that exist but could not be read or parsed, with the reason.
    pub problems: Vec<String>,
}

/// Runs `project_info`.
pub fn project_info(
    params: &ProjectInfoParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<ProjectInfo, ToolError> {
    let dir = confine_or_first_root(params.path.as_deref(), roots)?;
    if !dir.is_dir() {
        return Err(ToolError::invalid_input(format!(
            "{} is a file; pass the project directory that holds the manifests",
            display_path(roots, &dir)
        )));
    }
    let mut reader = ManifestReader {
        dir: &dir,
        roots,
        problems: Vec::new(),
    };
    let mut projects = Vec::new();
    type Parser = fn(&mut ManifestReader<'_>, &str, &str) -> Result<Project, String>;
    let parsers: [(&str, Parser); 13] = [
        ("Cargo.toml", manifests::cargo),
        ("package.json", manifests::npm),
        ("pyproject.toml", manifests::pyproject),
        ("setup.cfg", manifests::setup_cfg),
        ("requirements.txt", manifests::requirements),
        ("go.mod", manifests::go_mod),
        ("go.work", manifests::go_work),
        ("pom.xml", manifests::pom),
        ("settings.gradle", build_scripts::gradle_settings),
        ("settings.gradle.kts", build_scripts::gradle_settings),
        ("build.gradle", build_scripts::gradle_build),
        ("build.gradle.kts", build_scripts::gradle_build),
        ("CMakeLists.txt", build_scripts::cmake),
    ];
    for (file_name, parse) in parsers {
        cancel.check()?;
        if let Some(text) = reader.read(file_name) {
            match parse(&mut reader, file_name, &text) {
                Ok(project) => projects.push(project),
                Err(reason) => reader.problems.push(format!("{file_name}: {reason}")),
            }
        }
    }
    if let Some(text) = reader.read("flake.nix") {
        let lock = reader.read("flake.lock");
        let manifest = reader.manifest_name("flake.nix");
        match build_scripts::nix_flake(&text, lock.as_deref(), manifest) {
            Ok(project) => projects.push(project),
            Err(reason) => reader.problems.push(format!("flake.nix: {reason}")),
        }
    }
    Ok(ProjectInfo {
        path: display_path(roots, &dir),
        projects,
        problems: reader.problems,
    })
}

/// Reads manifests of one directory, confined to the roots.
struct ManifestReader<'a> {
    dir: &'a Path,
    roots: &'a Roots,
    problems: Vec<String>,
}

impl ManifestReader<'_> {
    /// The text of `file_name` in the directory, or `None` when it does not exist. A
    /// manifest that is a symlink out of the roots, too large or unreadable is a problem.
    fn read(&mut self, file_name: &str) -> Option<String> {
        let candidate = self.dir.join(file_name);
        if std::fs::symlink_metadata(&candidate).is_err() {
            return None;
        }
        let path = match confine_path(&candidate.to_string_lossy(), self.roots) {
            Ok(path) => path,
            Err(err) => {
                self.problems.push(format!("{file_name}: {err}"));
                return None;
            }
        };
        // Read one byte past the limit to tell "exactly at the limit" from "over it".
        match crate::open::read_regular_file(self.roots, &path, MAX_MANIFEST_BYTES + 1) {
            Ok(bytes) if bytes.len() as u64 > MAX_MANIFEST_BYTES => {
                self.problems.push(format!(
                    "{file_name}: more than the {MAX_MANIFEST_BYTES}-byte limit"
                ));
                None
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => Some(text),
                Err(_) => {
                    self.problems.push(format!("{file_name}: not valid UTF-8"));
                    None
                }
            },
            Err(err) => {
                self.problems.push(format!("{file_name}: {err}"));
                None
            }
        }
    }

    fn manifest_name(&self, file_name: &str) -> String {
        display_path(self.roots, &self.dir.join(file_name))
    }

    fn exists(&self, relative: &str) -> bool {
        self.dir.join(relative).exists()
    }

    /// Member patterns (`crates/*`, `packages/**`) expanded to existing directories,
    /// relative to the project directory; plain names are kept as written.
    fn expand_members<'p>(&self, patterns: impl IntoIterator<Item = &'p str>) -> Vec<String> {
        let mut members = Vec::new();
        for pattern in patterns {
            let pattern = pattern
                .trim()
                .trim_start_matches("./")
                .trim_end_matches('/');
            if pattern.is_empty() {
                continue;
            }
            if !pattern.contains(['*', '?', '[']) {
                members.push(pattern.to_owned());
                continue;
            }
            let mut current: Vec<PathBuf> = vec![PathBuf::new()];
            for component in pattern.split('/') {
                let mut next = Vec::new();
                if !component.contains(['*', '?', '[']) {
                    next.extend(current.iter().map(|prefix| prefix.join(component)));
                } else if let Ok(glob) = globset::Glob::new(component) {
                    let matcher = glob.compile_matcher();
                    for prefix in &current {
                        let Ok(entries) = std::fs::read_dir(self.dir.join(prefix)) else {
                            continue;
                        };
                        for entry in entries.flatten() {
                            let name = entry.file_name();
                            if entry.file_type().is_ok_and(|kind| kind.is_dir())
                                && !name.to_string_lossy().starts_with('.')
                                && matcher.is_match(&name)
                            {
                                next.push(prefix.join(name));
                            }
                        }
                    }
                }
                current = next;
            }
            let mut found: Vec<String> = current
                .into_iter()
                .filter(|relative| self.dir.join(relative).is_dir())
                .map(|relative| relative.display().to_string())
                .collect();
            found.sort();
            members.extend(found);
        }
        members.dedup();
        members.truncate(MAX_MEMBERS);
        members
    }
}

#[cfg(test)]
mod tests;
