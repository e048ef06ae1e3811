//! `search_code`: regex search over a tree with ripgrep's own libraries.
//!
//! Files come from the bounded parallel walker of `code-intel` (gitignore-aware, hidden
//! files skipped); each walker thread keeps one `grep-searcher` [`Searcher`] and searches
//! with a line-oriented [`RegexMatcher`], as ripgrep does. Binary files (a NUL byte) are
//! skipped and counted.

use std::cell::RefCell;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use code_intel::walk::{WalkOptions, WalkSummary, walk_paths};
use grep_matcher::Matcher as _;
use grep_regex::{RegexMatcher, RegexMatcherBuilder};
use grep_searcher::{
    BinaryDetection, Searcher, SearcherBuilder, Sink, SinkContext, SinkContextKind, SinkMatch,
};
use mcp_server_runtime::{CancelFlag, Roots, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::paths::{Globs, confine_or_first_root, display_path, glob_overrides, is_hidden_name};

/// Results returned when `max_results` is not given.
pub const DEFAULT_MAX_RESULTS: usize = 200;
/// The largest `max_results` accepted.
pub const MAX_RESULTS_LIMIT: usize = 10_000;
/// The most context lines accepted on each side of a match.
pub const MAX_CONTEXT_LINES: usize = 10;
/// Matched and context lines longer than this are cut (around the match for matched lines).
pub const MAX_LINE_BYTES: usize = 400;

/// Arguments of `search_code`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct SearchParams {
    /// Regular expression (Rust regex syntax, as ripgrep), e.g. `fn\s+main` or `TODO|FIXME`.
    pub pattern: String,
    /// Directory or file to search; relative to the first root. Default: the first root.
    #[serde(default)]
    pub path: Option<String>,
    /// Only files matching this glob (or any of these globs), relative to `path`; a leading
    /// `!` excludes: `"*.rs"`, `["src/**", "!*.min.js"]`.
    #[serde(default)]
    pub glob: Option<Globs>,
    /// Match letters regardless of case.
    #[serde(default)]
    pub case_insensitive: bool,
    /// Treat the pattern as a literal string, not a regex.
    #[serde(default)]
    pub fixed_strings: bool,
    /// Most matches (or, with `count_only`, most files) returned. Default 200, at most 10000.
    #[serde(default)]
    pub max_results: Option<usize>,
    /// Return only the number of matching lines per file.
    #[serde(default)]
    pub count_only: bool,
    /// Lines of context before and after each match (0-10). Default 0.
    #[serde(default)]
    pub context_lines: Option<usize>,
    /// Search hidden files and directories too.
    #[serde(default)]
    pub include_hidden: bool,
}

/// One matching line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct SearchMatch {
    /// File path (relative to the first root when inside it).
    pub path: String,
    /// 1-based line number.
    pub line: u64,
    /// 1-based byte column of the first match on the line.
    pub column: usize,
    /// The line without its terminator (cut to 400 bytes around the match if longer).
    pub text: String,
    /// True when `text` was cut.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub text_truncated: bool,
    /// Context lines before the match, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub before: Vec<String>,
    /// Context lines after the match.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
}

/// Matching lines in one file (`count_only`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FileCount {
    pub path: String,
    /// Number of matching lines.
    pub count: u64,
}

/// What `search_code` found.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SearchOutput {
    /// Matches sorted by path and line (empty with `count_only`).
    pub matches: Vec<SearchMatch>,
    /// Per-file counts sorted by path (only with `count_only`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub counts: Vec<FileCount>,
    /// Matching lines found in total (all of them with `count_only`; with matches, at
    /// least the returned ones: the search stops once `max_results` is exceeded).
    pub total_matches: u64,
    /// Files with at least one match.
    pub files_with_matches: usize,
    /// True when more results exist than were returned; narrow the pattern or path, or
    /// raise `max_results`.
    pub truncated: bool,
    /// Binary files skipped (a NUL byte seen).
    pub binary_files_skipped: usize,
    /// Files walked, caps hit, unreadable entries.
    pub walk: WalkSummary,
}

/// Runs `search_code`.
pub fn search_code(
    params: &SearchParams,
    roots: &Roots,
    cancel: &CancelFlag,
) -> Result<SearchOutput, ToolError> {
    if params.pattern.is_empty() {
        return Err(ToolError::invalid_input(
            "pattern is empty; pass a regular expression such as \"fn main\"",
        ));
    }
    let max_results = params.max_results.unwrap_or(DEFAULT_MAX_RESULTS);
    if max_results == 0 || max_results > MAX_RESULTS_LIMIT {
        return Err(ToolError::invalid_input(format!(
            "max_results must be between 1 and {MAX_RESULTS_LIMIT}, got {max_results}"
        )));
    }
    let context = params.context_lines.unwrap_or(0);
    if context > MAX_CONTEXT_LINES {
        return Err(ToolError::invalid_input(format!(
            "context_lines must be at most {MAX_CONTEXT_LINES}, got {context}"
        )));
    }
    let base = confine_or_first_root(params.path.as_deref(), roots)?;
    let globs = params.glob.clone().map(Globs::into_vec).unwrap_or_default();
    let overrides = glob_overrides(&base, &globs)?;
    let hide_named_dot_files = overrides.is_some() && !params.include_hidden;
    let matcher = build_matcher(params)?;
    let options = WalkOptions {
        include_hidden: params.include_hidden,
        overrides,
        ..search_walk_options()
    };
    let request = Request {
        matcher: &matcher,
        context,
        count_only: params.count_only,
    };
    Ok(search_tree(
        &base,
        &options,
        hide_named_dot_files,
        &request,
        max_results,
        cancel,
        roots,
    ))
}

/// The walk limits of a search: generous, since searching is cheap per byte.
pub fn search_walk_options() -> WalkOptions {
    WalkOptions {
        max_files: 200_000,
        max_total_bytes: 4 * 1024 * 1024 * 1024,
        max_file_bytes: 64 * 1024 * 1024,
        ..WalkOptions::default()
    }
}

fn build_matcher(params: &SearchParams) -> Result<RegexMatcher, ToolError> {
    RegexMatcherBuilder::new()
        .case_insensitive(params.case_insensitive)
        .fixed_strings(params.fixed_strings)
        // Lets the searcher find candidate lines with the regex's literal prefilter and
        // guarantees matches never span lines, as in ripgrep.
        .line_terminator(Some(b'\n'))
        .build(&params.pattern)
        .map_err(|err| {
            ToolError::invalid_input(format!(
                "invalid regular expression {:?}: {err}; escape special characters or set fixed_strings",
                params.pattern
            ))
        })
}

struct Request<'a> {
    matcher: &'a RegexMatcher,
    context: usize,
    count_only: bool,
}

/// What one file contributed.
struct FileResult {
    path: String,
    count: u64,
    matches: Vec<SearchMatch>,
}

thread_local! {
    // One searcher (and its line buffer) per walker thread, rebuilt when the context
    // setting changes between calls.
    static SEARCHER: RefCell<Option<(usize, Searcher)>> = const { RefCell::new(None) };
}

fn with_searcher<T>(context: usize, work: impl FnOnce(&mut Searcher) -> T) -> T {
    SEARCHER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot
            .as_ref()
            .is_none_or(|(built_for, _)| *built_for != context)
        {
            let searcher = SearcherBuilder::new()
                .line_number(true)
                .before_context(context)
                .after_context(context)
                .binary_detection(BinaryDetection::quit(0))
                .build();
            *slot = Some((context, searcher));
        }
        // invariant: the slot was filled just above when it was empty.
        let (_, searcher) = slot.as_mut().expect("searcher was just built");
        work(searcher)
    })
}

fn search_tree(
    base: &Path,
    options: &WalkOptions,
    hide_named_dot_files: bool,
    request: &Request<'_>,
    max_results: usize,
    cancel: &CancelFlag,
    roots: &Roots,
) -> SearchOutput {
    let found = AtomicUsize::new(0);
    let binary = AtomicUsize::new(0);
    let errors = std::sync::Mutex::new(Vec::new());
    // Matches stop the walk once there are more than we return (so `truncated` is
    // known); counts must be complete, so only cancellation stops them.
    let should_stop = || {
        cancel.is_cancelled()
            || (!request.count_only && found.load(Ordering::Relaxed) > max_results)
    };
    let mut output = walk_paths(base, options, should_stop, |path, _size| {
        if hide_named_dot_files && path != base && is_hidden_name(path) {
            return None;
        }
        let mut sink = FileSink {
            matcher: request.matcher,
            path: display_path(roots, path),
            count_only: request.count_only,
            count: 0,
            matches: Vec::new(),
            pending_before: Vec::new(),
            binary: false,
        };
        let searched = crate::open::open_regular_file(roots, path)
            .map_err(|err| err.to_string())
            .and_then(|open| {
                with_searcher(request.context, |searcher| {
                    searcher.search_file(request.matcher, &open.file, &mut sink)
                })
                .map_err(|err| format!("{}: {err}", path.display()))
            });
        if let Err(err) = searched {
            errors.lock().unwrap_or_else(|e| e.into_inner()).push(err);
            return None;
        }
        if sink.binary {
            binary.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        if sink.count == 0 {
            return None;
        }
        found.fetch_add(
            if request.count_only {
                1
            } else {
                sink.matches.len()
            },
            Ordering::Relaxed,
        );
        Some(FileResult {
            path: sink.path,
            count: sink.count,
            matches: sink.matches,
        })
    });
    let read_errors = errors.into_inner().unwrap_or_else(|e| e.into_inner());
    output.summary.error_count += read_errors.len();
    output
        .summary
        .errors
        .extend(read_errors.into_iter().take(20));
    output.summary.skipped_binary += binary.load(Ordering::Relaxed);
    // The stop we asked for is not a cancellation.
    output.summary.cancelled = cancel.is_cancelled();

    let mut files = output.items;
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let total_matches = files.iter().map(|file| file.count).sum();
    let files_with_matches = files.len();
    let (matches, counts, truncated) = if request.count_only {
        let truncated = files.len() > max_results;
        let counts = files
            .into_iter()
            .take(max_results)
            .map(|file| FileCount {
                path: file.path,
                count: file.count,
            })
            .collect();
        (Vec::new(), counts, truncated)
    } else {
        let mut matches: Vec<SearchMatch> =
            files.into_iter().flat_map(|file| file.matches).collect();
        let truncated = matches.len() > max_results;
        matches.truncate(max_results);
        (matches, Vec::new(), truncated)
    };
    SearchOutput {
        matches,
        counts,
        total_matches,
        files_with_matches,
        truncated,
        binary_files_skipped: binary.into_inner(),
        walk: output.summary,
    }
}

/// Collects one file's matches with their context.
struct FileSink<'a> {
    matcher: &'a RegexMatcher,
    path: String,
    count_only: bool,
    count: u64,
    matches: Vec<SearchMatch>,
    pending_before: Vec<String>,
    binary: bool,
}

impl Sink for FileSink<'_> {
    type Error = std::io::Error;

    fn matched(&mut self, _searcher: &Searcher, mat: &SinkMatch<'_>) -> Result<bool, Self::Error> {
        self.count += 1;
        if self.count_only {
            return Ok(true);
        }
        let line = trim_terminator(mat.bytes());
        let start = match self.matcher.find(line) {
            Ok(Some(found)) => found.start(),
            _ => 0,
        };
        let (text, text_truncated) = window_around(line, start);
        self.matches.push(SearchMatch {
            path: self.path.clone(),
            line: mat.line_number().unwrap_or(0),
            column: start + 1,
            text,
            text_truncated,
            before: std::mem::take(&mut self.pending_before),
            after: Vec::new(),
        });
        Ok(true)
    }

    fn context(
        &mut self,
        _searcher: &Searcher,
        context: &SinkContext<'_>,
    ) -> Result<bool, Self::Error> {
        let line = String::from_utf8_lossy(trim_terminator(context.bytes()));
        let line = &line[..line.floor_char_boundary(MAX_LINE_BYTES)];
        match context.kind() {
            SinkContextKind::Before => self.pending_before.push(line.to_owned()),
            SinkContextKind::After => {
                if let Some(last) = self.matches.last_mut() {
                    last.after.push(line.to_owned());
                }
            }
            SinkContextKind::Other => {}
        }
        Ok(true)
    }

    fn binary_data(&mut self, _searcher: &Searcher, _offset: u64) -> Result<bool, Self::Error> {
        // Like ripgrep: a file with a NUL byte is binary and left out entirely.
        self.binary = true;
        self.count = 0;
        self.matches.clear();
        Ok(false)
    }
}

fn trim_terminator(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The line as text, cut to [`MAX_LINE_BYTES`] starting a little before the match so a
/// match deep inside a huge (minified) line is still shown.
fn window_around(line: &[u8], match_start: usize) -> (String, bool) {
    if line.len() <= MAX_LINE_BYTES {
        return (String::from_utf8_lossy(line).into_owned(), false);
    }
    let start = match_start.saturating_sub(MAX_LINE_BYTES / 4);
    let end = (start + MAX_LINE_BYTES).min(line.len());
    // Lossy decoding turns a char split at either edge into U+FFFD instead of failing.
    (
        String::from_utf8_lossy(&line[start..end]).into_owned(),
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn params(pattern: &str) -> SearchParams {
        SearchParams {
            pattern: pattern.to_owned(),
            path: None,
            glob: None,
            case_insensitive: false,
            fixed_strings: false,
            max_results: None,
            count_only: false,
            context_lines: None,
            include_hidden: false,
        }
    }

    fn fixture() -> (tempfile::TempDir, Roots) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "target/\n").unwrap();
        fs::create_dir_all(root.join("src")).unwrap();
        fs::create_dir_all(root.join("target")).unwrap();
        fs::create_dir_all(root.join("empty")).unwrap();
        fs::write(
            root.join("src/main.rs"),
            "// head\nfn main() {\n    println!(\"Hello\");\n}\n// tail\n",
        )
        .unwrap();
        fs::write(
            root.join("src/lib.py"),
            "def hello():\n    return 'hello'\n",
        )
        .unwrap();
        fs::write(root.join("target/out.rs"), "fn main() {}\n").unwrap();
        fs::write(root.join("blob.bin"), b"fn main\x00binary").unwrap();
        let roots = Roots::new([root.to_path_buf()]).unwrap();
        (dir, roots)
    }

    fn run(params: &SearchParams, roots: &Roots) -> SearchOutput {
        search_code(params, roots, &CancelFlag::new()).unwrap()
    }

    #[test]
    fn finds_matches_with_line_and_column_skipping_ignored_and_binary() {
        let (_dir, roots) = fixture();
        let out = run(&params(r"fn\s+main"), &roots);
        assert_eq!(out.matches.len(), 1, "{out:?}");
        let found = &out.matches[0];
        assert_eq!(
            (found.path.as_str(), found.line, found.column),
            ("src/main.rs", 2, 1)
        );
        assert_eq!(found.text, "fn main() {");
        assert_eq!(out.binary_files_skipped, 1);
        assert!(!out.truncated);
    }

    #[test]
    fn context_lines_and_case_insensitive() {
        let (_dir, roots) = fixture();
        let mut p = params("hello");
        p.case_insensitive = true;
        p.context_lines = Some(1);
        p.glob = Some(Globs::One("*.rs".into()));
        let out = run(&p, &roots);
        assert_eq!(out.matches.len(), 1, "{out:?}");
        let found = &out.matches[0];
        assert_eq!(found.column, 15);
        assert_eq!(found.before, vec!["fn main() {"]);
        assert_eq!(found.after, vec!["}"]);
    }

    #[test]
    fn count_only_counts_per_file() {
        let (_dir, roots) = fixture();
        let mut p = params("(?i)hello");
        p.count_only = true;
        let out = run(&p, &roots);
        assert!(out.matches.is_empty());
        let counts: Vec<_> = out
            .counts
            .iter()
            .map(|c| (c.path.as_str(), c.count))
            .collect();
        assert_eq!(counts, vec![("src/lib.py", 2), ("src/main.rs", 1)]);
        assert_eq!(out.total_matches, 3);
    }

    #[test]
    fn max_results_truncates() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("many.txt"), "x\n".repeat(50)).unwrap();
        let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
        let mut p = params("x");
        p.max_results = Some(10);
        let out = run(&p, &roots);
        assert_eq!(out.matches.len(), 10);
        assert!(out.truncated);
        assert_eq!(out.matches[9].line, 10);
    }

    #[test]
    fn huge_lines_are_cut_around_the_match() {
        let dir = tempfile::tempdir().unwrap();
        let line = format!("{}NEEDLE{}\n", "a".repeat(500_000), "b".repeat(500_000));
        fs::write(dir.path().join("min.js"), line).unwrap();
        let roots = Roots::new([dir.path().to_path_buf()]).unwrap();
        let out = run(&params("NEEDLE"), &roots);
        let found = &out.matches[0];
        assert_eq!(found.column, 500_001);
        assert!(found.text_truncated);
        assert!(found.text.len() <= MAX_LINE_BYTES);
        assert!(found.text.contains("NEEDLE"));
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let (_dir, roots) = fixture();
        let err = search_code(&params("(unclosed"), &roots, &CancelFlag::new()).unwrap_err();
        assert!(
            err.to_string().contains("invalid regular expression"),
            "{err}"
        );
        let err = search_code(&params(""), &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().contains("pattern is empty"), "{err}");
        let mut p = params("x");
        p.path = Some("../..".into());
        let err = search_code(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(
            err.to_string().contains("outside the allowed roots"),
            "{err}"
        );
        p.path = Some("missing".into());
        let err = search_code(&p, &roots, &CancelFlag::new()).unwrap_err();
        assert!(err.to_string().starts_with("not found"), "{err}");
        let mut p = params("x");
        p.max_results = Some(0);
        assert!(search_code(&p, &roots, &CancelFlag::new()).is_err());
    }

    #[test]
    fn empty_directory_and_single_file() {
        let (_dir, roots) = fixture();
        let mut p = params("main");
        p.path = Some("empty".into());
        let out = run(&p, &roots);
        assert!(out.matches.is_empty() && !out.truncated);
        p.path = Some("src/main.rs".into());
        let out = run(&p, &roots);
        assert_eq!(out.matches.len(), 1);
        assert_eq!(out.matches[0].path, "src/main.rs");
    }

    #[test]
    fn cancelled_search_says_so() {
        let (_dir, roots) = fixture();
        let cancel = CancelFlag::new();
        cancel.cancel();
        let out = search_code(&params("main"), &roots, &cancel).unwrap();
        assert!(out.walk.cancelled);
        assert!(out.matches.is_empty());
    }
}
