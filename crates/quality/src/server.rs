//! The MCP tools: input validation, path confinement and blocking-pool dispatch around
//! the analyses of the other modules.

use code_intel::walk::{WalkOptions, WalkSummary};
use mcp_server_runtime::{CancelFlag, Opened, ServerContext, ToolError, run_blocking};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::complexity::{ComplexityReport, complexity_report};
use crate::issues::{IssueThresholds, IssuesReport, find_issues};
use crate::report::{QualityReport, quality_report};
use crate::scan::{Scan, ScanOptions, scan_in};
use crate::stats::{CodeStats, code_stats_in};

const DEFAULT_COMPLEXITY_LIMIT: usize = 50;
const DEFAULT_ISSUE_LIMIT: usize = 200;
const MAX_LIMIT: usize = 10_000;

/// Caps of every walk the server does (command-line options of the binary).
#[derive(Debug, Clone, Copy)]
pub struct WalkLimits {
    pub max_files: usize,
    pub max_bytes: u64,
}

impl Default for WalkLimits {
    fn default() -> Self {
        let defaults = WalkOptions::default();
        Self {
            max_files: defaults.max_files,
            max_bytes: defaults.max_total_bytes,
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct PathParams {
    /// File or directory to analyze, absolute or relative to the first root (default: the first root).
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ComplexityParams {
    /// File or directory to analyze, absolute or relative to the first root (default: the first root).
    #[serde(default)]
    pub path: Option<String>,
    /// List only functions with at least this cyclomatic complexity (default 1: all).
    #[serde(default)]
    pub threshold: Option<u32>,
    /// At most this many functions, most complex first (default 50, at most 10000).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct FindIssuesParams {
    /// File or directory to analyze, absolute or relative to the first root (default: the first root).
    #[serde(default)]
    pub path: Option<String>,
    /// Report functions with a cyclomatic complexity above this (default 15).
    #[serde(default)]
    pub max_complexity: Option<u32>,
    /// Report functions spanning more lines than this (default 100).
    #[serde(default)]
    pub max_function_lines: Option<usize>,
    /// Report lines with more characters than this (default 200).
    #[serde(default)]
    pub max_line_length: Option<usize>,
    /// Report files with more lines than this (default 2000).
    #[serde(default)]
    pub max_file_lines: Option<usize>,
    /// Report identical runs of at least this many significant lines across files (default 6, at least 2).
    #[serde(default)]
    pub min_duplicate_lines: Option<usize>,
    /// At most this many issues in the list; counts cover all (default 200, at most 10000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The quality server.
#[derive(Debug, Clone)]
pub struct Quality {
    context: ServerContext,
    walk_limits: WalkLimits,
    tool_router: ToolRouter<Self>,
}

#[tool_handler(
    router = self.tool_router,
    instructions = "Code quality of the files under the server's roots: code_stats (lines per language, as the tokei tool counts them), complexity (cyclomatic complexity per function for Rust, Python, JavaScript/TypeScript and Go), find_issues (TODO/FIXME/HACK, complex or long functions, long lines, large files, duplicate blocks) and quality_report (all combined into a 0-100 score with hotspots). Paths are absolute or relative to the first root; .gitignore is honoured; binary files are skipped."
)]
impl ServerHandler for Quality {}

// Tools spell out `Result<Json<T>, ToolError>`: rmcp's macro derives the output schema
// from the written return type and cannot see through the `ToolResult` alias.
#[tool_router(router = tool_router)]
impl Quality {
    pub fn new(context: ServerContext, walk_limits: WalkLimits) -> Self {
        Self {
            context,
            walk_limits,
            tool_router: Self::tool_router(),
        }
    }

    /// Lines of code, comments and blanks per language, counted by the tokei library.
    #[tool(
        name = "code_stats",
        description = "Count files, lines, code, comments and blanks per language under a path (tokei's counts: identical to the tokei command line tool). Honours .gitignore/.ignore/.tokeignore; says when a file or byte cap was hit.",
        annotations(
            title = "Code statistics",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn code_stats(
        &self,
        Parameters(params): Parameters<PathParams>,
    ) -> Result<Json<CodeStats>, ToolError> {
        let root = self.confine(params.path.as_deref())?;
        let options = self.walk_options();
        let stats = run_blocking(move |cancel| {
            let stats = code_stats_in(&root, &options, stop_on(cancel));
            check_cancelled(&stats.walk)?;
            Ok(stats)
        })
        .await?;
        Ok(Json(stats))
    }

    /// Functions by cyclomatic complexity.
    #[tool(
        name = "complexity",
        description = "Cyclomatic complexity (McCabe, counted like the lizard analyzer) and length of every function under a path, parsed with tree-sitter (Rust, Python, JavaScript, TypeScript/TSX, Go). Most complex first, with file:line.",
        annotations(
            title = "Function complexity",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn complexity(
        &self,
        Parameters(params): Parameters<ComplexityParams>,
    ) -> Result<Json<ComplexityReport>, ToolError> {
        let threshold = params.threshold.unwrap_or(1);
        let limit = check_limit(params.limit, DEFAULT_COMPLEXITY_LIMIT)?;
        let root = self.confine(params.path.as_deref())?;
        let options = self.walk_options();
        let report = run_blocking(move |cancel| {
            let scan = scan_tree(&root, &options, IssueThresholds::default(), cancel)?;
            Ok(complexity_report(&scan, threshold, limit))
        })
        .await?;
        Ok(Json(report))
    }

    /// Issues worth a look.
    #[tool(
        name = "find_issues",
        description = "Find TODO/FIXME/HACK markers, functions over a complexity or length threshold, very long lines, very large files and exact duplicate blocks across files under a path. Thresholds are optional.",
        annotations(
            title = "Find code issues",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn find_issues(
        &self,
        Parameters(params): Parameters<FindIssuesParams>,
    ) -> Result<Json<IssuesReport>, ToolError> {
        let thresholds = thresholds_from(&params)?;
        let limit = check_limit(params.limit, DEFAULT_ISSUE_LIMIT)?;
        let root = self.confine(params.path.as_deref())?;
        let options = self.walk_options();
        let report = run_blocking(move |cancel| {
            let scan = scan_tree(&root, &options, thresholds, cancel)?;
            Ok(find_issues(&scan, &thresholds, limit))
        })
        .await?;
        Ok(Json(report))
    }

    /// Everything combined into a score.
    #[tool(
        name = "quality_report",
        description = "One summary of a path's code quality: line counts, complexity and issues combined into a 0-100 score and grade (with the penalties that make it up), the top hotspot files and the most complex functions.",
        annotations(
            title = "Quality report",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn quality_report(
        &self,
        Parameters(params): Parameters<PathParams>,
    ) -> Result<Json<QualityReport>, ToolError> {
        let root = self.confine(params.path.as_deref())?;
        let options = self.walk_options();
        let report = run_blocking(move |cancel| {
            let thresholds = IssueThresholds::default();
            let stats = code_stats_in(&root, &options, stop_on(cancel));
            check_cancelled(&stats.walk)?;
            let scan = scan_tree(&root, &options, thresholds, cancel)?;
            Ok(quality_report(&stats, &scan, &thresholds))
        })
        .await?;
        Ok(Json(report))
    }
}

impl Quality {
    /// The file or directory to analyze, opened beneath its root: every file the walk
    /// reads is then opened beneath it too.
    fn confine(&self, path: Option<&str>) -> Result<Opened, ToolError> {
        Ok(self.context.roots.open(path.unwrap_or("."))?)
    }

    fn walk_options(&self) -> WalkOptions {
        WalkOptions {
            max_files: self.walk_limits.max_files,
            max_total_bytes: self.walk_limits.max_bytes,
            ..WalkOptions::default()
        }
    }
}

fn stop_on(cancel: &CancelFlag) -> impl Fn() -> bool + Sync + use<> {
    let cancel = cancel.clone();
    move || cancel.is_cancelled()
}

fn check_cancelled(walk: &WalkSummary) -> Result<(), ToolError> {
    if walk.cancelled {
        return Err(ToolError::cancelled());
    }
    Ok(())
}

fn scan_tree(
    root: &Opened,
    options: &WalkOptions,
    thresholds: IssueThresholds,
    cancel: &CancelFlag,
) -> Result<Scan, ToolError> {
    let scanned = scan_in(
        root,
        options,
        ScanOptions {
            max_line_chars: thresholds.max_line_length,
        },
        stop_on(cancel),
    );
    check_cancelled(&scanned.walk)?;
    Ok(scanned)
}

fn check_limit(limit: Option<usize>, default: usize) -> Result<usize, ToolError> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        Some(limit) => Err(ToolError::invalid_input(format!(
            "limit {limit} is out of range; use 1 to {MAX_LIMIT}"
        ))),
    }
}

fn thresholds_from(params: &FindIssuesParams) -> Result<IssueThresholds, ToolError> {
    let defaults = IssueThresholds::default();
    let thresholds = IssueThresholds {
        max_complexity: params.max_complexity.unwrap_or(defaults.max_complexity),
        max_function_lines: params
            .max_function_lines
            .unwrap_or(defaults.max_function_lines),
        max_line_length: params.max_line_length.unwrap_or(defaults.max_line_length),
        max_file_lines: params.max_file_lines.unwrap_or(defaults.max_file_lines),
        max_file_bytes: defaults.max_file_bytes,
        min_duplicate_lines: params
            .min_duplicate_lines
            .unwrap_or(defaults.min_duplicate_lines),
    };
    if !(2..=1000).contains(&thresholds.min_duplicate_lines) {
        return Err(ToolError::invalid_input(format!(
            "min_duplicate_lines {} is out of range; use 2 to 1000",
            thresholds.min_duplicate_lines
        )));
    }
    if thresholds.max_line_length == 0 {
        return Err(ToolError::invalid_input(
            "max_line_length must be at least 1",
        ));
    }
    Ok(thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_server_runtime::{Roots, ToolErrorKind, ToolResult};
    use std::fs;

    fn expect_error<T>(result: ToolResult<T>, what: &str) -> ToolError {
        match result {
            Ok(_) => panic!("{what}: expected an error"),
            Err(error) => error,
        }
    }

    fn server(root: &std::path::Path) -> Quality {
        let roots = Roots::new([root.to_path_buf()]).expect("root exists");
        Quality::new(ServerContext::new(roots), WalkLimits::default())
    }

    #[tokio::test]
    async fn paths_outside_the_roots_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let quality = server(dir.path());
        let outside = tempfile::tempdir().unwrap();
        for path in [
            "..",
            "/etc",
            outside.path().to_str().unwrap(),
            "missing/dir",
        ] {
            let error = expect_error(
                quality
                    .code_stats(Parameters(PathParams {
                        path: Some(path.to_owned()),
                    }))
                    .await,
                path,
            );
            assert_ne!(
                error.kind(),
                ToolErrorKind::Failed,
                "{path}: {}",
                error.message()
            );
        }
    }

    #[tokio::test]
    async fn bad_limits_and_thresholds_are_invalid_input() {
        let dir = tempfile::tempdir().unwrap();
        let quality = server(dir.path());
        let error = expect_error(
            quality
                .complexity(Parameters(ComplexityParams {
                    path: None,
                    threshold: None,
                    limit: Some(0),
                }))
                .await,
            "limit 0",
        );
        assert_eq!(error.kind(), ToolErrorKind::InvalidInput);
        assert!(
            error.message().contains("1 to 10000"),
            "{}",
            error.message()
        );
        let params = FindIssuesParams {
            path: None,
            max_complexity: None,
            max_function_lines: None,
            max_line_length: None,
            max_file_lines: None,
            min_duplicate_lines: Some(1),
            limit: None,
        };
        let error = expect_error(quality.find_issues(Parameters(params)).await, "min 1");
        assert_eq!(error.kind(), ToolErrorKind::InvalidInput);
    }

    #[tokio::test]
    async fn tools_analyze_a_relative_path() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("src")).unwrap();
        fs::write(
            dir.path().join("src/m.py"),
            "def f(x):\n    return 1 if x else 2\n",
        )
        .unwrap();
        let quality = server(dir.path());
        let Json(report) = quality
            .complexity(Parameters(ComplexityParams {
                path: Some("src".into()),
                threshold: Some(2),
                limit: None,
            }))
            .await
            .unwrap();
        assert_eq!(report.functions.len(), 1);
        assert_eq!(report.functions[0].file, "m.py");
        let Json(report) = quality
            .quality_report(Parameters(PathParams { path: None }))
            .await
            .unwrap();
        assert_eq!(report.summary.lines.files, 1);
    }
}
