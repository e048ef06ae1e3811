//! Tests of project detection: one fixture tree per ecosystem, read through the real walk.

use std::fs;

use super::*;

fn run(dir: &Path) -> ProjectInfo {
    let roots = Roots::new([dir.to_path_buf()]).unwrap();
    project_info(
        &ProjectInfoParams { path: None },
        &roots,
        &CancelFlag::new(),
    )
    .unwrap()
}

fn write(dir: &Path, file: &str, text: &str) {
    let path = dir.join(file);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

fn deps(project: &Project) -> Vec<(&str, Option<&str>, &str)> {
    project
        .dependencies
        .iter()
        .map(|d| (d.name.as_str(), d.requirement.as_deref(), d.kind.as_str()))
        .collect()
}

fn entries(project: &Project) -> Vec<(&str, &str)> {
    project
        .entry_points
        .iter()
        .map(|e| (e.kind.as_str(), e.name.as_str()))
        .collect()
}

#[test]
fn cargo_package_and_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(
        root,
        "Cargo.toml",
        r#"[package]
name = "demo-app"
version = "1.2.3"
description = "A demo"

[dependencies]
serde = { version = "1", features = ["derive"] }
local = { path = "../local" }
shared.workspace = true
json = { package = "serde_json", version = "1.0" }

[dev-dependencies]
tempfile = "3"

[target.'cfg(unix)'.dependencies]
libc = "0.2"

[[bin]]
name = "tool"
path = "src/tool.rs"

[workspace]
members = ["crates/*", "extra"]
[workspace.dependencies]
anyhow = "1"
"#,
    );
    write(root, "src/main.rs", "fn main() {}");
    write(root, "src/lib.rs", "");
    write(root, "src/bin/helper.rs", "fn main() {}");
    write(root, "crates/b/Cargo.toml", "");
    write(root, "crates/a/Cargo.toml", "");
    write(root, "crates/notes.txt", "");
    let info = run(root);
    assert!(info.problems.is_empty(), "{:?}", info.problems);
    let cargo = &info.projects[0];
    assert_eq!(cargo.ecosystem, Ecosystem::Cargo);
    assert_eq!(cargo.manifest, "Cargo.toml");
    assert_eq!(cargo.name.as_deref(), Some("demo-app"));
    assert_eq!(cargo.version.as_deref(), Some("1.2.3"));
    assert_eq!(
        deps(cargo),
        vec![
            ("serde_json", Some("1.0"), "normal"),
            ("local", Some("path:../local"), "normal"),
            ("serde", Some("1"), "normal"),
            ("shared", Some("workspace"), "normal"),
            ("tempfile", Some("3"), "dev"),
            ("libc", Some("0.2"), "normal (cfg(unix))"),
            ("anyhow", Some("1"), "workspace"),
        ]
    );
    assert_eq!(cargo.members, vec!["crates/a", "crates/b", "extra"]);
    assert_eq!(
        entries(cargo),
        vec![
            ("library", "demo_app"),
            ("binary", "tool"),
            ("binary", "demo-app"),
            ("binary", "helper")
        ]
    );
}

#[test]
fn npm_with_workspaces_bin_and_scripts() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "package.json",
        r#"{"name": "@acme/cli", "version": "0.4.0", "main": "dist/index.js",
            "bin": "bin/cli.js", "scripts": {"test": "vitest"},
            "dependencies": {"react": "^18.0.0"}, "devDependencies": {"vitest": "1.0.0"},
            "workspaces": ["packages/*"]}"#,
    );
    write(dir.path(), "packages/core/package.json", "{}");
    let info = run(dir.path());
    let npm = &info.projects[0];
    assert_eq!(
        (npm.ecosystem, npm.name.as_deref()),
        (Ecosystem::Npm, Some("@acme/cli"))
    );
    assert_eq!(
        deps(npm),
        vec![
            ("react", Some("^18.0.0"), "normal"),
            ("vitest", Some("1.0.0"), "dev")
        ]
    );
    assert_eq!(npm.members, vec!["packages/core"]);
    assert_eq!(
        entries(npm),
        vec![("main", "main"), ("binary", "cli"), ("script", "test")]
    );
}

#[test]
fn python_pyproject_setup_cfg_and_requirements() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pyproject.toml",
        r#"[build-system]
requires = ["hatchling>=1.0"]
[project]
name = "tool"
version = "2.0"
dependencies = ["requests[socks]>=2.31; python_version >= '3.8'", "click"]
[project.optional-dependencies]
docs = ["sphinx"]
[project.scripts]
tool = "tool.cli:main"
"#,
    );
    write(
        dir.path(),
        "setup.cfg",
        "[metadata]\nname = legacy\nversion = 0.1\n\n[options]\ninstall_requires =\n    numpy>=1.20\n    scipy\n\n[options.entry_points]\nconsole_scripts =\n    legacy = legacy.main:run\n",
    );
    write(
        dir.path(),
        "requirements.txt",
        "# pinned\nflask==3.0.0\n-r dev.txt\n\nhttps://example.invalid/x.whl\n",
    );
    let info = run(dir.path());
    assert!(info.problems.is_empty(), "{:?}", info.problems);
    let [pyproject, setup_cfg, requirements] = &info.projects[..] else {
        panic!("three python manifests expected: {:?}", info.projects)
    };
    assert_eq!(pyproject.name.as_deref(), Some("tool"));
    assert_eq!(
        deps(pyproject),
        vec![
            (
                "requests",
                Some("[socks]>=2.31; python_version >= '3.8'"),
                "normal"
            ),
            ("click", None, "normal"),
            ("sphinx", None, "optional:docs"),
            ("hatchling", Some(">=1.0"), "build"),
        ]
    );
    assert_eq!(entries(pyproject), vec![("console_script", "tool")]);
    assert_eq!(
        (setup_cfg.name.as_deref(), setup_cfg.version.as_deref()),
        (Some("legacy"), Some("0.1"))
    );
    assert_eq!(
        deps(setup_cfg),
        vec![
            ("numpy", Some(">=1.20"), "normal"),
            ("scipy", None, "normal")
        ]
    );
    assert_eq!(entries(setup_cfg), vec![("console_script", "legacy")]);
    assert_eq!(
        deps(requirements),
        vec![("flask", Some("==3.0.0"), "normal")]
    );
}

#[test]
fn go_module() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "go.mod",
        "module example.com/svc\n\ngo 1.22\n\nrequire github.com/a/b v1.0.0\nrequire (\n\tgithub.com/c/d v0.3.1 // indirect\n\tgolang.org/x/sys v0.20.0\n)\n",
    );
    write(dir.path(), "main.go", "package main");
    write(dir.path(), "cmd/worker/main.go", "package main");
    let info = run(dir.path());
    let go = &info.projects[0];
    assert_eq!(go.name.as_deref(), Some("example.com/svc"));
    assert_eq!(
        deps(go),
        vec![
            ("go", Some("1.22"), "toolchain"),
            ("github.com/a/b", Some("v1.0.0"), "normal"),
            ("github.com/c/d", Some("v0.3.1"), "indirect"),
            ("golang.org/x/sys", Some("v0.20.0"), "normal"),
        ]
    );
    assert_eq!(entries(go), vec![("binary", "svc"), ("binary", "worker")]);
}

#[test]
fn maven_gradle_cmake_and_flake() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "pom.xml",
        r#"<?xml version="1.0"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <parent><groupId>org.acme</groupId><version>3.1</version></parent>
  <artifactId>server</artifactId>
  <description>Acme &amp; co</description>
  <modules><module>api</module><module>impl</module></modules>
  <dependencies>
    <dependency><groupId>junit</groupId><artifactId>junit</artifactId><version>4.13</version><scope>test</scope></dependency>
    <dependency><groupId>com.google.guava</groupId><artifactId>guava</artifactId></dependency>
  </dependencies>
</project>"#,
    );
    write(
        dir.path(),
        "settings.gradle.kts",
        "rootProject.name = \"acme\"\ninclude(\":app\", \":lib:core\")\n",
    );
    write(
        dir.path(),
        "build.gradle.kts",
        "version = \"1.0\"\ndependencies {\n    implementation(\"com.squareup:okio:3.9.0\")\n    // implementation(\"x:commented:1\")\n    testImplementation(\"org.junit:junit-bom\")\n}\napplication { mainClass.set(\"acme.Main\") }\n",
    );
    write(
        dir.path(),
        "CMakeLists.txt",
        "cmake_minimum_required(VERSION 3.20)\nproject(engine VERSION 0.9.1 LANGUAGES CXX)\n# add_executable(old old.c)\nfind_package(Boost 1.80 REQUIRED)\nfind_package(ZLIB)\nadd_library(core src/core.cpp)\nadd_executable(engine main.cpp)\nadd_subdirectory(tests)\n",
    );
    write(
        dir.path(),
        "flake.nix",
        "{\n  description = \"Acme flake\";\n  inputs.nixpkgs.url = \"github:NixOS/nixpkgs/nixos-unstable\";\n  inputs = { utils.url = \"github:numtide/flake-utils\"; };\n  outputs = { self, ... }: { };\n}\n",
    );
    let info = run(dir.path());
    assert!(info.problems.is_empty(), "{:?}", info.problems);
    let by = |ecosystem| {
        info.projects
            .iter()
            .filter(move |p| p.ecosystem == ecosystem)
    };
    let maven = by(Ecosystem::Maven).next().unwrap();
    assert_eq!(maven.name.as_deref(), Some("org.acme:server"));
    assert_eq!(maven.version.as_deref(), Some("3.1"));
    assert_eq!(maven.description.as_deref(), Some("Acme & co"));
    assert_eq!(maven.members, vec!["api", "impl"]);
    assert_eq!(
        deps(maven),
        vec![
            ("junit:junit", Some("4.13"), "test"),
            ("com.google.guava:guava", None, "compile")
        ]
    );
    let gradle: Vec<_> = by(Ecosystem::Gradle).collect();
    assert_eq!(gradle[0].name.as_deref(), Some("acme"));
    assert_eq!(gradle[0].members, vec!["app", "lib/core"]);
    assert_eq!(
        deps(gradle[1]),
        vec![
            ("com.squareup:okio", Some("3.9.0"), "implementation"),
            ("org.junit:junit-bom", None, "testImplementation")
        ]
    );
    assert_eq!(entries(gradle[1]), vec![("main_class", "acme.Main")]);
    let cmake = by(Ecosystem::Cmake).next().unwrap();
    assert_eq!(
        (cmake.name.as_deref(), cmake.version.as_deref()),
        (Some("engine"), Some("0.9.1"))
    );
    assert_eq!(
        deps(cmake),
        vec![
            ("Boost", Some("1.80"), "required"),
            ("ZLIB", None, "optional")
        ]
    );
    assert_eq!(
        entries(cmake),
        vec![("library", "core"), ("executable", "engine")]
    );
    assert_eq!(cmake.members, vec!["tests"]);
    let flake = by(Ecosystem::NixFlake).next().unwrap();
    assert_eq!(flake.description.as_deref(), Some("Acme flake"));
    assert_eq!(
        deps(flake),
        vec![
            (
                "nixpkgs",
                Some("github:NixOS/nixpkgs/nixos-unstable"),
                "input"
            ),
            ("utils", Some("github:numtide/flake-utils"), "input"),
        ]
    );
}

#[test]
fn flake_lock_pins_inputs() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "flake.nix",
        "{ inputs.nixpkgs.url = \"github:NixOS/nixpkgs\"; outputs = _: {}; }",
    );
    write(
        dir.path(),
        "flake.lock",
        r#"{"nodes": {"nixpkgs": {"locked": {"type": "github", "owner": "NixOS", "repo": "nixpkgs", "rev": "abc123"}},
                      "root": {"inputs": {"nixpkgs": "nixpkgs", "utils": ["other", "utils"]}}},
            "root": "root", "version": 7}"#,
    );
    let info = run(dir.path());
    assert_eq!(
        deps(&info.projects[0]),
        vec![
            ("nixpkgs", Some("github:NixOS/nixpkgs@abc123"), "input"),
            ("utils", Some("follows"), "input")
        ]
    );
}

#[test]
fn broken_manifests_are_problems_not_failures() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Cargo.toml", "[package\nname = ");
    write(dir.path(), "package.json", "{ not json");
    write(
        dir.path(),
        "pom.xml",
        "<project><artifactId>x</wrong></project>",
    );
    write(dir.path(), "go.mod", "go 1.22\n");
    fs::write(dir.path().join("pyproject.toml"), [0xff, 0xfe, 0x00]).unwrap();
    let info = run(dir.path());
    assert!(info.projects.is_empty(), "{:?}", info.projects);
    assert_eq!(info.problems.len(), 5, "{:?}", info.problems);
    assert!(
        info.problems[0].starts_with("Cargo.toml: invalid TOML"),
        "{:?}",
        info.problems
    );
}

#[test]
fn empty_directory_escapes_and_symlinked_manifests() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("empty")).unwrap();
    let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
    let params = |path: &str| ProjectInfoParams {
        path: Some(path.to_owned()),
    };
    let info = project_info(&params("empty"), &roots, &CancelFlag::new()).unwrap();
    assert!(info.projects.is_empty() && info.problems.is_empty());
    let err = project_info(&params(".."), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().starts_with("denied"), "{err}");
    let err = project_info(&params("missing"), &roots, &CancelFlag::new()).unwrap_err();
    assert!(err.to_string().starts_with("not found"), "{err}");

    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "Cargo.toml",
        "[package]\nname = \"secret\"\n",
    );
    std::os::unix::fs::symlink(
        outside.path().join("Cargo.toml"),
        dir.path().join("Cargo.toml"),
    )
    .unwrap();
    let info = run(dir.path());
    assert!(info.projects.is_empty());
    assert!(
        info.problems[0].contains("outside the allowed roots"),
        "{:?}",
        info.problems
    );
}

#[test]
fn a_fifo_named_like_a_manifest_is_a_problem_and_does_not_hang() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("Cargo.toml");
    crate::open::make_fifo(&fifo);
    write(dir.path(), "package.json", r#"{"name": "still-read"}"#);
    // No writer ever opens the FIFO: reading it the old way blocked this call forever.
    let info = run(dir.path());
    assert_eq!(info.projects.len(), 1, "{info:?}");
    assert_eq!(info.projects[0].name.as_deref(), Some("still-read"));
    assert!(
        info.problems[0].starts_with("Cargo.toml:") && info.problems[0].contains("FIFO"),
        "{:?}",
        info.problems
    );
}
