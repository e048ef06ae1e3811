//! Keeps the repository's conventions true, like rust-analyzer's `tidy.rs`: plain checks over
//! the tracked files (and, for the tool lists, the real server binaries), each failing with what
//! to fix. Conventions that only live in a review comment drift; these cannot.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask::metadata::{Role, Workspace};

/// Files allowed over [`MAX_LINES`], each with the reason it is still one file. Keep it short:
/// split along the seams that are already there instead of adding an entry.
const LONG_FILES: &[(&str, &str)] = &[(
    "crates/bash-god/src/risk/table.rs",
    "the risk rules table: one row per rule, read top to bottom",
)];

/// The agreed size of a source file.
const MAX_LINES: usize = 600;

/// Every tracked `.rs` file under `crates/`, relative to the workspace root.
fn rust_files(root: &Path) -> Vec<PathBuf> {
    let output = Command::new("git")
        .args(["ls-files", "-z", "--", "crates/*.rs"])
        .current_dir(root)
        .output()
        .expect("git ls-files runs (the tidy test needs a git checkout)");
    assert!(output.status.success(), "git ls-files failed");
    output
        .stdout
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
        // Deleted in the work tree but still in the index: nothing to check.
        .filter(|path| root.join(path).exists())
        .collect()
}

fn workspace() -> Workspace {
    Workspace::load().expect("cargo metadata of the workspace")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let root = workspace().root;
    let missing: Vec<_> = rust_files(&root)
        .into_iter()
        .filter(|path| !read(&root.join(path)).starts_with("//!"))
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` comment saying what the module is for:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn no_file_is_over_the_agreed_size_unless_listed() {
    let root = workspace().root;
    let listed: BTreeMap<&str, &str> = LONG_FILES.iter().copied().collect();
    let mut problems = Vec::new();
    for path in rust_files(&root) {
        let lines = read(&root.join(&path)).lines().count();
        let name = path.to_string_lossy().into_owned();
        match (lines > MAX_LINES, listed.contains_key(name.as_str())) {
            (true, false) => problems.push(format!(
                "{name}: {lines} lines (> {MAX_LINES}); split it along its seams, or add it to \
                 LONG_FILES in crates/xtask/tests/tidy.rs with the reason"
            )),
            (false, true) => problems.push(format!(
                "{name}: {lines} lines, no longer over {MAX_LINES}; remove it from LONG_FILES"
            )),
            _ => {}
        }
    }
    for name in listed.keys() {
        if !root.join(name).exists() {
            problems.push(format!(
                "{name} is in LONG_FILES but does not exist; remove it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The `[package.metadata.mcp-foundry] role` of every member is written out and is one xtask
/// knows (a missing role would silently default to `library`, and the crate would never ship).
#[test]
fn every_crate_declares_a_known_role() {
    let workspace = workspace();
    let known: Vec<&str> = Role::ALL.iter().map(|role| role.as_str()).collect();
    let mut problems = Vec::new();
    for spec in &workspace.crates {
        let manifest: toml::Table = read(&spec.manifest_path)
            .parse()
            .expect("Cargo.toml parses");
        let role = manifest
            .get("package")
            .and_then(|p| p.get("metadata"))
            .and_then(|m| m.get("mcp-foundry"))
            .and_then(|f| f.get("role"))
            .and_then(|r| r.as_str());
        match role {
            Some(role) if known.contains(&role) => {}
            Some(role) => problems.push(format!(
                "{}: role `{role}` is not one of {known:?}",
                spec.name
            )),
            None => problems.push(format!(
                "{}: no `[package.metadata.mcp-foundry] role = ...` (one of {known:?})",
                spec.name
            )),
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A version requirement written in some Cargo.toml, with whether its line explains itself.
struct DeclaredVersion {
    file: String,
    version: String,
    commented: bool,
}

/// The package's dependency tables: `[dependencies]`, `[dev-dependencies]`,
/// `[build-dependencies]`, and the same under every `[target.'cfg'.…]`.
fn package_dependency_tables(manifest: &toml::Table) -> Vec<&toml::Table> {
    let sections = ["dependencies", "dev-dependencies", "build-dependencies"];
    let targets = manifest
        .get("target")
        .and_then(|t| t.as_table())
        .into_iter()
        .flat_map(|targets| targets.values().filter_map(|t| t.as_table()));
    std::iter::once(manifest)
        .chain(targets)
        .flat_map(|table| sections.iter().filter_map(|s| table.get(*s)?.as_table()))
        .collect()
}

/// `name = "1.2"` or `name = { version = "1.2", ... }` in any dependency table of `manifest`.
fn declared_versions(file: &str, text: &str) -> Vec<(String, DeclaredVersion)> {
    let manifest: toml::Table = text.parse().expect("Cargo.toml parses");
    let mut tables = package_dependency_tables(&manifest);
    if let Some(table) = manifest
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(|t| t.as_table())
    {
        tables.push(table);
    }
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for table in tables {
        for (name, value) in table {
            let version = match value {
                toml::Value::String(version) => Some(version.clone()),
                toml::Value::Table(t) => t.get("version").and_then(|v| v.as_str()).map(Into::into),
                _ => None,
            };
            let Some(version) = version else { continue };
            // The comment may sit on the line itself or on the lines just above it.
            let commented = lines.iter().enumerate().any(|(i, line)| {
                line.trim_start().starts_with(&format!("{name} "))
                    && (line.contains('#')
                        || i.checked_sub(1)
                            .is_some_and(|above| lines[above].trim_start().starts_with('#')))
            });
            found.push((
                name.clone(),
                DeclaredVersion {
                    file: file.to_owned(),
                    version,
                    commented,
                },
            ));
        }
    }
    found
}

/// The semver-compatible series a requirement selects (`1.54` and `1` -> `1`; `0.4.42` ->
/// `0.4`): two requirements in one series resolve to one crate, so they are not two versions.
fn compatible(requirement: &str) -> String {
    let version = requirement.trim_start_matches(['^', '=', '~', ' ']);
    let mut series = Vec::new();
    for part in version.split('.') {
        series.push(part);
        if part != "0" {
            break;
        }
    }
    series.join(".")
}

#[test]
fn version_series_follow_semver_compatibility() {
    assert_eq!(compatible("1.54"), "1");
    assert_eq!(compatible("^1"), "1");
    assert_eq!(compatible("0.4.42"), "0.4");
    assert_eq!(compatible("0.0.3"), "0.0.3");
    assert_ne!(compatible("0.23"), compatible("0.22"));
}

#[test]
fn no_dependency_is_declared_at_two_versions_without_a_comment() {
    let workspace = workspace();
    let mut manifests = vec![workspace.root.join("Cargo.toml")];
    // The workspace-hack's manifest is generated by cargo-hakari (checked by `cargo xtask ci`).
    manifests.extend(
        workspace
            .crates
            .iter()
            .filter(|c| c.name != "workspace-hack")
            .map(|c| c.manifest_path.clone()),
    );
    let mut by_name: BTreeMap<String, Vec<DeclaredVersion>> = BTreeMap::new();
    for manifest in &manifests {
        let file = manifest
            .strip_prefix(&workspace.root)
            .unwrap_or(manifest)
            .display()
            .to_string();
        for (name, declared) in declared_versions(&file, &read(manifest)) {
            by_name.entry(name).or_default().push(declared);
        }
    }
    let mut problems = Vec::new();
    for (name, declared) in &by_name {
        let versions: BTreeSet<String> = declared.iter().map(|d| compatible(&d.version)).collect();
        if versions.len() < 2 {
            continue;
        }
        for d in declared.iter().filter(|d| !d.commented) {
            problems.push(format!(
                "{}: `{name}` at \"{}\" while the workspace also declares {:?}: use \
                 `{name}.workspace = true`, or say why on that line (`# ...`)",
                d.file, d.version, versions
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Members take every dependency from `[workspace.dependencies]` (`name.workspace = true`),
/// so a version, its features' baseline and its source are written once, in the root.
#[test]
fn members_take_their_dependencies_from_the_workspace() {
    let workspace = workspace();
    let mut problems = Vec::new();
    // The workspace-hack's manifest is generated by cargo-hakari (checked by `cargo xtask ci`).
    for spec in workspace
        .crates
        .iter()
        .filter(|c| c.name != "workspace-hack")
    {
        let manifest: toml::Table = read(&spec.manifest_path)
            .parse()
            .expect("Cargo.toml parses");
        for table in package_dependency_tables(&manifest) {
            for (name, value) in table {
                let inherited = value
                    .get("workspace")
                    .and_then(|w| w.as_bool())
                    .unwrap_or(false);
                if !inherited {
                    problems.push(format!(
                        "{}: `{name}` is declared here; add it to [workspace.dependencies] in \
                         the root Cargo.toml and write `{name} = {{ workspace = true }}`",
                        spec.name
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The source files of `crate_dir` that are test-only: `tests/`, `benches/`, `examples/`, and
/// modules declared under a `#[cfg(...test...)]` attribute (with everything below them).
fn test_only_files(crate_dir: &Path, files: &[PathBuf]) -> BTreeSet<PathBuf> {
    let mut test_dirs: Vec<PathBuf> = ["tests", "benches", "examples"]
        .iter()
        .map(|d| crate_dir.join(d))
        .collect();
    let mut test_files = BTreeSet::new();
    for file in files
        .iter()
        .filter(|f| f.starts_with(crate_dir.join("src")))
    {
        let text = read(file);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let line = line.trim();
            if !(line.starts_with("#[cfg(") && line.contains("test")) {
                continue;
            }
            let Some(declaration) = lines[i + 1..]
                .iter()
                .map(|l| l.trim())
                .find(|l| !l.starts_with("#["))
            else {
                continue;
            };
            let Some(module) = declaration
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .strip_prefix("mod ")
                .and_then(|rest| rest.strip_suffix(';'))
            else {
                continue;
            };
            // `lib.rs`, `main.rs` and `mod.rs` declare siblings; `foo.rs` declares `foo/…`.
            let stem = file
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            let dir = match stem {
                "lib" | "main" | "mod" => file.parent().map(Path::to_path_buf),
                _ => file.parent().map(|p| p.join(stem)),
            }
            .unwrap_or_default();
            test_files.insert(dir.join(format!("{module}.rs")));
            test_dirs.push(dir.join(module));
        }
    }
    files
        .iter()
        .filter(|f| test_files.contains(*f) || test_dirs.iter().any(|d| f.starts_with(d)))
        .cloned()
        .collect()
}

/// `unwrap()`/`expect(` in a non-test line of `text` with no `invariant:` comment on it or on
/// the three lines above (the usual place for a multi-line call's explanation). Items under
/// `#[cfg(test)]` are skipped whole (by their braces), wherever they stand: a test-only
/// helper in the middle of a file does not hide the code after it.
fn unexplained_panics(text: &str) -> Vec<(usize, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start();
        if trimmed.starts_with("#[cfg(test)]") {
            i = end_of_item(&lines, i + 1) + 1;
            continue;
        }
        i += 1;
        if trimmed.starts_with("//") || !(line.contains(".unwrap()") || line.contains(".expect(")) {
            continue;
        }
        let explained = lines[(i - 1).saturating_sub(3)..i]
            .iter()
            .any(|l| l.contains("invariant:"));
        if !explained {
            found.push((i, trimmed.to_owned()));
        }
    }
    found
}

/// The index of the last line of the item starting at `start` (after its attributes): the
/// line that closes its first brace, or the line ending in `;` for an item without a body.
fn end_of_item(lines: &[&str], start: usize) -> usize {
    let mut depth = 0i64;
    let mut opened = false;
    let body = lines
        .iter()
        .enumerate()
        .skip(start)
        .skip_while(|(_, l)| l.trim_start().starts_with("#["));
    for (index, line) in body {
        depth += line.matches('{').count() as i64 - line.matches('}').count() as i64;
        opened |= line.contains('{');
        if (opened && depth <= 0) || (!opened && line.trim_end().ends_with(';')) {
            return index;
        }
    }
    lines.len()
}

#[test]
fn servers_and_their_libraries_do_not_panic_without_saying_why() {
    let workspace = workspace();
    let files: Vec<PathBuf> = rust_files(&workspace.root)
        .into_iter()
        .map(|f| workspace.root.join(f))
        .collect();
    let mut problems = Vec::new();
    // Everything but the build tool ships or is linked into what ships: the Python module's
    // learning store also runs inside bash-god.
    let runs_in_a_server = workspace
        .crates
        .iter()
        .filter(|c| c.role != Role::BuildTool)
        .filter(|c| c.name != "workspace-hack");
    for spec in runs_in_a_server {
        let dir = spec.dir().to_path_buf();
        let crate_files: Vec<PathBuf> = files
            .iter()
            .filter(|f| f.starts_with(&dir))
            .cloned()
            .collect();
        let tests = test_only_files(&dir, &crate_files);
        for file in crate_files.iter().filter(|f| !tests.contains(*f)) {
            // Build scripts run at build time, not in a server.
            if file.file_name().is_some_and(|n| n == "build.rs") {
                continue;
            }
            for (line, code) in unexplained_panics(&read(file)) {
                let shown = file.strip_prefix(&workspace.root).unwrap_or(file);
                problems.push(format!("{}:{line}: {code}", shown.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "unwrap()/expect() in code that runs in a server, without an `// invariant:` comment \
         saying why it cannot fail (return an error instead where it can):\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_panic_scan_sees_what_it_must() {
    let text = "fn a() {\n    x.unwrap();\n    // invariant: checked above\n    y.expect(\"z\");\n}\n\
                #[cfg(test)]\nmod tests { fn b() { q.unwrap(); } }\n";
    assert_eq!(
        unexplained_panics(text),
        vec![(2, "x.unwrap();".to_owned())]
    );
    // A test-only item in the middle of a file hides neither the code after it nor itself
    // ends the scan early; a test-only statement inside a function is skipped whole.
    let text = "#[cfg(test)]\nfn helper() {\n    a.unwrap();\n}\n\
                #[cfg(test)]\n#[allow(unused)]\nuse std::fmt;\n\
                fn served() {\n    #[cfg(test)]\n    if let Some(x) = y {\n        x.unwrap();\n    }\n    \
                b.unwrap();\n}\n";
    assert_eq!(
        unexplained_panics(text),
        vec![(13, "b.unwrap();".to_owned())]
    );
}

/// Each server's README lists exactly the tools its real binary answers in `tools/list`:
/// every server's tests make that check (`testing::assert_readme_documents`) on the binary
/// cargo builds for them, so this test needs no build of its own.
#[test]
fn each_servers_tests_check_its_readme_tool_list() {
    let workspace = workspace();
    let servers: Vec<_> = workspace.servers().collect();
    assert!(
        !servers.is_empty(),
        "the workspace metadata declares no server"
    );
    let mut problems = Vec::new();
    for server in &servers {
        let tests = server.dir().join("tests");
        let checked = fs::read_dir(&tests)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                entry.path().extension().is_some_and(|e| e == "rs")
                    && read(&entry.path()).contains("assert_readme_documents(")
            });
        if !checked {
            problems.push(format!(
                "{}: no test in {} calls `assert_readme_documents` on the tools its binary lists",
                server.name,
                tests.display()
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
