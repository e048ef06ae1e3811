//! `find_symbol`: definitions by name, through the tree-sitter grammars of `code-intel`.

use code_intel::walk::{WalkOptions, WalkSummary, is_binary, walk_paths};
use code_intel::{Language, SymbolKind};
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{confine_or_first_root, display_path};

/// Definitions returned when `max_results` is not given.
pub const DEFAULT_MAX_RESULTS: usize = 100;
/// The largest `max_results` accepted.
pub const MAX_RESULTS_LIMIT: usize = 5_000;
/// Source files larger than this are not parsed.
pub const MAX_SOURCE_BYTES: u64 = 4 * 1024 * 1024;

/// Arguments of `find_symbol`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct FindSymbolParams {
    /// Name of the definition, e.g. `parse_config` or `HttpClient`.
    pub name: String,
    /// Directory or file to search; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Only definitions of this kind.
    #[serde(default)]
    pub kind: Option<SymbolKind>,
    /// Match names containing `name`, ignoring case, instead of exactly.
    #[serde(default)]
    pub partial: bool,
    /// Most definitions returned. Default 100, at most 5000.
    #[serde(default)]
    pub max_results: Option<usize>,
}

/// One definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SymbolMatch {
    /// File path (relative to the first root when inside it).
    pub path: String,
    pub name: String,
    pub kind: SymbolKind,
    /// The enclosing impl/trait/class/receiver type, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Language of the file.
    pub language: String,
    /// 1-based first line.
    pub line: usize,
    /// 1-based byte column.
    pub column: usize,
    /// 1-based last line.
    pub end_line: usize,
    /// The first line of the definition, trimmed (at most 200 bytes).
    pub signature: String,
}

/// What `find_symbol` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct FindSymbolOutput {
    /// Definitions sorted by path and line.
    pub symbols: Vec<SymbolMatch>,
    /// Definitions found in total.
    pub total: usize,
    /// True when more definitions were found than returned.
    pub truncated: bool,
    /// Source files that failed to parse.
    pub parse_failures: usize,
    /// Files walked, caps hit, unreadable entries.
    pub walk: WalkSummary,
}

/// Runs `find_symbol`.
pub fn find_symbol(
    params: &FindSymbolParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<FindSymbolOutput, ToolError> {
    let name = params.name.trim();
    if name.is_empty() {
        return Err(ToolError::invalid_input(
            "name is empty; pass the name of a function, type or class",
        ));
    }
    let max_results = params.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if max_results == 0 || max_results > MAX_RESULTS_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {max_results}"
        )));
    }
    let base = confine_or_first_root(params.path.as_deref(), roots)?;
    let lowered = name.to_lowercase();
    let name_matches = |candidate: &str| {
        if params.partial {
            candidate.to_lowercase().contains(&lowered)
        } else {
            candidate == name
        }
    };
    let parse_failures = std::sync::atomic::AtomicUsize::new(0);
    let options = WalkOptions {
        max_file_bytes: MAX_SOURCE_BYTES,
        ..WalkOptions::default()
    };
    let skipped_binary = std::sync::atomic::AtomicUsize::new(0);
    let read_errors = std::sync::Mutex::new(Vec::new());
    let mut output = walk_paths(
        &base,
        &options,
        || cancel.is_cancelled(),
        |path, _size| {
            // Only files of a known language are read at all.
            let language = Language::from_path(path)?;
            let bytes = match crate::open::read_regular_file(roots, path, MAX_SOURCE_BYTES) {
                Ok(bytes) => bytes,
                Err(err) => {
                    read_errors
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(err.to_string());
                    return None;
                }
            };
            if is_binary(&bytes) {
                skipped_binary.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return None;
            }
            let text = String::from_utf8_lossy(&bytes);
            let file = code_intel::walk::SourceFile { path, text: &text };
            // Parsing is the expensive part: skip files that cannot contain the name.
            let could_contain = if params.partial {
                file.text.to_lowercase().contains(&lowered)
            } else {
                file.text.contains(name)
            };
            if !could_contain {
                return None;
            }
            let Ok(symbols) = code_intel::symbols(language, file.text) else {
                parse_failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return None;
            };
            let lines: Vec<&str> = file.text.lines().collect();
            let path = display_path(roots, file.path);
            let found: Vec<SymbolMatch> = symbols
                .into_iter()
                .filter(|symbol| params.kind.is_none_or(|kind| kind == symbol.kind))
                .filter(|symbol| name_matches(&symbol.name))
                .map(|symbol| {
                    let first_line = lines
                        .get(symbol.line.saturating_sub(1))
                        .copied()
                        .unwrap_or("");
                    let first_line = first_line.trim();
                    let signature = &first_line[..first_line.floor_char_boundary(200)];
                    SymbolMatch {
                        path: path.clone(),
                        language: language.name().to_owned(),
                        signature: signature.to_owned(),
                        name: symbol.name,
                        kind: symbol.kind,
                        container: symbol.container,
                        line: symbol.line,
                        column: symbol.column,
                        end_line: symbol.end_line,
                    }
                })
                .collect();
            (!found.is_empty()).then_some(found)
        },
    );
    output.summary.skipped_binary += skipped_binary.into_inner();
    let read_errors = read_errors.into_inner().unwrap_or_else(|e| e.into_inner());
    output.summary.error_count += read_errors.len();
    let room = 20usize.saturating_sub(output.summary.errors.len());
    output
        .summary
        .errors
        .extend(read_errors.into_iter().take(room));
    let mut symbols: Vec<SymbolMatch> = output.items.into_iter().flatten().collect();
    symbols.sort_by(|a, b| (&a.path, a.line, a.column).cmp(&(&b.path, b.line, b.column)));
    let total = symbols.len();
    symbols.truncate(max_results);
    Ok(FindSymbolOutput {
        truncated: total > symbols.len(),
        symbols,
        total,
        parse_failures: parse_failures.into_inner(),
        walk: output.summary,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join("py")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(
            root.join("src/lib.rs"),
            "pub struct Config { x: u8 }\n\nimpl Config {\n    pub fn parse(text: &str) -> Self {\n        Config { x: 0 }\n    }\n}\n\nfn parse() {}\n",
        )
        .unwrap();
        fs::write(
            root.join("py/app.py"),
            "class Config:\n    def parse(self):\n        pass\n",
        )
        .unwrap();
        fs::write(root.join("go.go"), "package main\n\nfunc ParseAll() {}\n").unwrap();
        fs::write(root.join("blob.rs"), b"fn parse() {}\x00\x01").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    fn params(name: &str) -> FindSymbolParams {
        FindSymbolParams {
            name: name.to_owned(),
            path: None,
            kind: None,
            partial: false,
            max_results: None,
        }
    }

    fn found(out: &FindSymbolOutput) -> Vec<(String, SymbolKind, usize)> {
        out.symbols
            .iter()
            .map(|s| (s.path.clone(), s.kind, s.line))
            .collect()
    }

    #[test]
    fn finds_definitions_across_languages() {
        let (_dir, roots) = fixture();
        let out = find_symbol(&params("parse"), &roots, &CancelFlag::new()).unwrap();
        assert_eq!(
            found(&out),
            vec![
                ("py/app.py".to_owned(), SymbolKind::Method, 2),
                ("src/lib.rs".to_owned(), SymbolKind::Method, 4),
                ("src/lib.rs".to_owned(), SymbolKind::Function, 9),
            ]
        );
        assert_eq!(out.symbols[1].container.as_deref(), Some("Config"));
        assert_eq!(
            out.symbols[1].signature,
            "pub fn parse(text: &str) -> Self {"
        );
        assert_eq!(out.walk.skipped_binary, 1);
    }

    #[test]
    fn filters_by_kind_and_partial_names() {
        let (_dir, roots) = fixture();
        let mut p = params("Config");
        p.kind = Some(SymbolKind::Class);
        let out = find_symbol(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(
            found(&out),
            vec![("py/app.py".to_owned(), SymbolKind::Class, 1)]
        );
        let mut p = params("parseall");
        p.partial = true;
        let out = find_symbol(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!(
            found(&out),
            vec![("go.go".to_owned(), SymbolKind::Function, 3)]
        );
        assert_eq!(out.symbols[0].language, "go");
    }

    #[test]
    fn max_results_truncates_and_bad_input_errors() {
        let (_dir, roots) = fixture();
        let mut p = params("parse");
        p.max_results = Some(1);
        let out = find_symbol(&p, &roots, &CancelFlag::new()).unwrap();
        assert_eq!((out.symbols.len(), out.total, out.truncated), (1, 3, true));
        assert!(find_symbol(&params("  "), &roots, &CancelFlag::new()).is_err());
        let mut p = params("parse");
        p.path = Some("../".into());
        let err = find_symbol(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("denied"), "{err}");
        p.path = Some("empty".into());
        let out = find_symbol(&p, &roots, &CancelFlag::new()).unwrap();
        assert!(out.symbols.is_empty());
    }
}
