//! One parallel pass over a tree that gathers everything `complexity`, `find_issues` and
//! `quality_report` need, so the combined report reads and parses each file once.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::LazyLock;

use code_intel::walk::{WalkOptions, WalkSummary, display_path, walk_sources_in};
use code_intel::{FunctionMetrics, Language};
use mcp_server_runtime::Opened;
use regex::Regex;

/// Lines longer than this (in characters) are recorded for the long-line check.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    pub max_line_chars: usize,
}

/// What one text file contains.
#[derive(Debug)]
pub struct ScannedFile {
    /// Path relative to the scanned root (the file name when the root is a file).
    pub path: String,
    pub bytes: u64,
    pub lines: usize,
    pub language: Option<Language>,
    pub functions: Vec<FunctionMetrics>,
    pub has_syntax_errors: bool,
    pub markers: Vec<Marker>,
    /// 1-based numbers and character lengths of lines over `max_line_chars`.
    pub long_lines: Vec<(usize, usize)>,
    /// Hashes of the significant lines (trimmed, with at least one letter or digit) and
    /// their 1-based line numbers, for duplicate detection.
    pub significant_lines: Vec<(u64, usize)>,
}

/// A TODO / FIXME / HACK marker.
#[derive(Debug, Clone)]
pub struct Marker {
    pub line: usize,
    pub tag: &'static str,
    pub text: String,
}

#[derive(Debug)]
pub struct Scan {
    /// Files sorted by path.
    pub files: Vec<ScannedFile>,
    pub walk: WalkSummary,
}

const MARKER_TEXT_CHARS: usize = 160;

static MARKER: LazyLock<Regex> =
    // invariant: a constant pattern, compiled by this module's tests.
    LazyLock::new(|| {
        Regex::new(r"\b(TODO|FIXME|HACK)\b").expect("the marker pattern is valid")
    });

/// Scans every text file under `root` (opened by name; see [`scan_in`]).
pub fn scan(
    root: &Path,
    walk_options: &WalkOptions,
    options: ScanOptions,
    should_stop: impl Fn() -> bool + Sync,
) -> Scan {
    match Opened::open_ambient(root) {
        Ok(root) => scan_in(&root, walk_options, options, should_stop),
        Err(error) => Scan {
            files: Vec::new(),
            walk: WalkSummary::unopenable_root(&error),
        },
    }
}

/// Scans every text file under the opened `root`, reading each beneath its descriptor.
pub fn scan_in(
    root: &Opened,
    walk_options: &WalkOptions,
    options: ScanOptions,
    should_stop: impl Fn() -> bool + Sync,
) -> Scan {
    let output = walk_sources_in(root, walk_options, should_stop, |file| {
        Some(scan_file(root.path(), file.path, file.text, options))
    });
    let mut files = output.items;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Scan {
        files,
        walk: output.summary,
    }
}

fn scan_file(root: &Path, path: &Path, text: &str, options: ScanOptions) -> ScannedFile {
    let language = Language::from_path(path);
    let (functions, has_syntax_errors) =
        match language.map(|language| (language, language.parse(text))) {
            Some((language, Ok(tree))) => (
                code_intel::functions_in_tree(language, &tree, text),
                tree.root_node().has_error(),
            ),
            Some((_, Err(_))) => (Vec::new(), true),
            None => (Vec::new(), false),
        };
    let mut markers = Vec::new();
    let mut long_lines = Vec::new();
    let mut significant_lines = Vec::new();
    let mut lines = 0;
    for (index, line) in text.lines().enumerate() {
        lines += 1;
        let number = index + 1;
        if let Some(found) = MARKER.captures(line) {
            let tag = match &found[1] {
                "TODO" => "TODO",
                "FIXME" => "FIXME",
                _ => "HACK",
            };
            let start = found.get(0).map_or(0, |m| m.start());
            markers.push(Marker {
                line: number,
                tag,
                text: line[start..]
                    .trim()
                    .chars()
                    .take(MARKER_TEXT_CHARS)
                    .collect(),
            });
        }
        // Byte length bounds the character count from above: only count when it may exceed.
        if line.len() > options.max_line_chars {
            let chars = line.chars().count();
            if chars > options.max_line_chars {
                long_lines.push((number, chars));
            }
        }
        let trimmed = line.trim();
        if trimmed.chars().any(char::is_alphanumeric) {
            let mut hasher = DefaultHasher::new();
            trimmed.hash(&mut hasher);
            significant_lines.push((hasher.finish(), number));
        }
    }
    ScannedFile {
        path: display_path(root, path).to_string_lossy().into_owned(),
        bytes: text.len() as u64,
        lines,
        language,
        functions,
        has_syntax_errors,
        markers,
        long_lines,
        significant_lines,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_markers_long_lines_and_functions() {
        let dir = tempfile::tempdir().unwrap();
        let source = format!(
            "// TODO: split this\nfn f(x: u8) -> u8 {{ if x > 1 {{ 1 }} else {{ 0 }} }}\nlet s = \"{}\";\n// TODOS is not a marker, FIXME(ana) is\n",
            "é".repeat(300)
        );
        std::fs::write(dir.path().join("lib.rs"), &source).unwrap();
        let scan = scan(
            dir.path(),
            &WalkOptions::default(),
            ScanOptions {
                max_line_chars: 200,
            },
            || false,
        );
        let file = &scan.files[0];
        assert_eq!(file.path, "lib.rs");
        assert_eq!(file.language, Some(Language::Rust));
        assert_eq!(file.lines, 4);
        assert_eq!(file.functions[0].cyclomatic_complexity, 2);
        let markers: Vec<(usize, &str)> = file.markers.iter().map(|m| (m.line, m.tag)).collect();
        assert_eq!(markers, vec![(1, "TODO"), (4, "FIXME")]);
        assert_eq!(file.markers[0].text, "TODO: split this");
        assert_eq!(file.long_lines, vec![(3, 311)]);
        assert_eq!(file.significant_lines.len(), 4);
    }
}
