//! The `development` MCP server: what a developer asks about a source tree.
//!
//! - `project_info`: manifests of Cargo, npm, Python, Go, Maven/Gradle, CMake and Nix
//!   flake projects (name, version, dependencies, members, entry points) — [`project`].
//! - `search_code`: regex search with ripgrep's own libraries — [`search`].
//! - `find_symbol`: definitions by name through the tree-sitter grammars of `code-intel` —
//!   [`symbols`].
//! - `list_files`: files honouring `.gitignore` — [`files`].
//! - `read_file`, `read_files`: contents by line range, byte range or tail, capped, with
//!   binary detection and lossless non-UTF-8 handling — [`read`].
//! - `directory_tree`: nested JSON listing, depth-limited, `.gitignore`-aware — [`tree`].
//! - `file_info`: size, times, kind and permissions — [`file_info`].
//! - `git_info`, `git_diff`, `git_log`, `git_show`, `git_branches`: repository state,
//!   diffs and history through `gix`, read-only and confined to the roots — [`git`].
//!
//! Every tool confines its paths to the server's roots and runs its work on the blocking
//! pool, checking the call's cancel flag between files.

pub mod file_info;
pub mod files;
pub mod git;
mod open;
pub mod paths;
pub mod project;
pub mod read;
pub mod search;
pub mod symbols;
pub mod tree;

use std::sync::{Arc, OnceLock};

use mcp_server_runtime::{Limits, Roots, ServerContext, ToolError, run_blocking};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};

pub use paths::display_path;

/// The server: its roots and limits (its tools are in [`Development::router`]).
#[derive(Clone)]
pub struct Development {
    roots: Arc<Roots>,
    limits: Limits,
}

impl std::fmt::Debug for Development {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Development")
            .field("roots", &self.roots)
            .finish_non_exhaustive()
    }
}

// Tools spell out `Result<Json<T>, ToolError>`: rmcp's macro derives the output schema from
// that literal shape and would not see through the `ToolResult<T>` alias.
#[tool_router]
impl Development {
    /// A server confined to the roots of `ctx`.
    pub fn new(ctx: ServerContext) -> Self {
        Self {
            roots: ctx.roots,
            limits: ctx.limits,
        }
    }

    /// The router of the tools, built on first use: generating the thirteen tools' input
    /// and output schemas was a tenth of the start-up CPU time, and `initialize` does not
    /// need them (`tools/list` and `tools/call` do).
    fn router(&self) -> &'static ToolRouter<Self> {
        static ROUTER: OnceLock<ToolRouter<Development>> = OnceLock::new();
        ROUTER.get_or_init(Self::tool_router)
    }

    /// Content bytes a reading tool may return: 2/5 of the output cap leaves room for
    /// JSON escaping and, for bytes that are not UTF-8, the base64 copy beside the text.
    fn content_budget(&self) -> usize {
        self.limits.max_output_bytes / 5 * 2
    }

    /// Describe the project(s) at a directory: ecosystem (Cargo, npm, Python, Go,
    /// Maven, Gradle, CMake, Nix flake), name, version, dependencies, workspace members and
    /// entry points, read from the manifests found there.
    #[tool(annotations(
        title = "Project info",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn project_info(
        &self,
        Parameters(params): Parameters<project::ProjectInfoParams>,
    ) -> Result<Json<project::ProjectInfo>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| project::project_info(&params, &roots, cancel).map(Json)).await
    }

    /// Search file contents with a regular expression (Rust regex syntax, like ripgrep),
    /// honouring .gitignore and skipping hidden and binary files. Returns file, line,
    /// column, the matching line and optional context lines, or per-file counts with
    /// count_only.
    #[tool(annotations(
        title = "Search code",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn search_code(
        &self,
        Parameters(params): Parameters<search::SearchParams>,
    ) -> Result<Json<search::SearchOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| search::search_code(&params, &roots, cancel).map(Json)).await
    }

    /// Find where functions, methods, types, classes, traits, interfaces, constants or
    /// modules are defined, by name, parsing Rust, Python, JavaScript, TypeScript and Go
    /// with tree-sitter.
    #[tool(annotations(
        title = "Find symbol",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn find_symbol(
        &self,
        Parameters(params): Parameters<symbols::FindSymbolParams>,
    ) -> Result<Json<symbols::FindSymbolOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| symbols::find_symbol(&params, &roots, cancel).map(Json)).await
    }

    /// List files under a directory, honouring .gitignore and skipping hidden files,
    /// optionally filtered by a glob, sorted by path.
    #[tool(annotations(
        title = "List files",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn list_files(
        &self,
        Parameters(params): Parameters<files::ListFilesParams>,
    ) -> Result<Json<files::ListFilesOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| files::list_files(&params, &roots, cancel).map(Json)).await
    }

    /// Read a text file, whole or in part: a line range (start_line/end_line), the last
    /// lines (tail_lines) or a byte range (offset/length), within max_bytes (the cut is
    /// flagged with how to continue). Binary files are detected; bytes that are not UTF-8
    /// show as U+FFFD with the exact bytes in content_base64; encoding "base64" returns
    /// any file's exact bytes.
    #[tool(annotations(
        title = "Read file",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn read_file(
        &self,
        Parameters(params): Parameters<read::ReadFileParams>,
    ) -> Result<Json<read::FileContent>, ToolError> {
        let roots = Arc::clone(&self.roots);
        let budget = self.content_budget();
        run_blocking(move |_cancel| read::read_file(&params, &roots, budget).map(Json)).await
    }

    /// Read several files at once (up to 50), each from its start within max_bytes; a
    /// file that cannot be read gets an error entry and the others are still returned.
    #[tool(annotations(
        title = "Read files",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn read_files(
        &self,
        Parameters(params): Parameters<read::ReadFilesParams>,
    ) -> Result<Json<read::ReadFilesOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        let budget = self.content_budget();
        run_blocking(move |cancel| read::read_files(&params, &roots, budget, cancel).map(Json))
            .await
    }

    /// A directory as a nested JSON tree (name, kind, size, children), depth-limited,
    /// sorted, honouring .gitignore and skipping hidden entries unless asked.
    #[tool(annotations(
        title = "Directory tree",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn directory_tree(
        &self,
        Parameters(params): Parameters<tree::DirectoryTreeParams>,
    ) -> Result<Json<tree::DirectoryTreeOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| tree::directory_tree(&params, &roots, cancel).map(Json)).await
    }

    /// Size, modification/access/creation times, kind (file, directory, symlink, FIFO...),
    /// permissions, owner and link count of a path, without opening it.
    #[tool(annotations(
        title = "File info",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn file_info(
        &self,
        Parameters(params): Parameters<file_info::FileInfoParams>,
    ) -> Result<Json<file_info::FileInfo>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |_cancel| file_info::file_info(&params, &roots).map(Json)).await
    }

    /// Git state of the repository containing a path: current branch, HEAD commit,
    /// recent commits (author, date, summary) and changed files (staged, unstaged,
    /// untracked).
    #[tool(annotations(
        title = "Git info",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn git_info(
        &self,
        Parameters(params): Parameters<git::GitInfoParams>,
    ) -> Result<Json<git::GitInfo>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| git::git_info(&params, &roots, cancel).map(Json)).await
    }

    /// Unified diff with per-file line counts: working tree vs index (default), index vs
    /// HEAD (staged: true), or between two revisions (from, to = HEAD). Filter with git
    /// pathspecs in `paths`; context_lines like `git diff -U`.
    #[tool(annotations(
        title = "Git diff",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn git_diff(
        &self,
        Parameters(params): Parameters<git::diff::GitDiffParams>,
    ) -> Result<Json<git::diff::GitDiffOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| git::diff::git_diff(&params, &roots, cancel).map(Json)).await
    }

    /// Commit history from a revision (default HEAD), newest first: filter by paths,
    /// author, since/until dates (ISO 8601 or "2 weeks ago"); page with max_count and skip.
    #[tool(annotations(
        title = "Git log",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn git_log(
        &self,
        Parameters(params): Parameters<git::log::GitLogParams>,
    ) -> Result<Json<git::log::GitLogOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| git::log::git_log(&params, &roots, cancel).map(Json)).await
    }

    /// One commit: author, committer, dates, full message, per-file line counts and the
    /// diff against its first parent. `REV:PATH` shows a file's content or a directory's
    /// entries at that revision instead.
    #[tool(annotations(
        title = "Git show",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn git_show(
        &self,
        Parameters(params): Parameters<git::show::GitShowParams>,
    ) -> Result<Json<git::show::GitShowOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| git::show::git_show(&params, &roots, cancel).map(Json)).await
    }

    /// Local and/or remote-tracking branches with their tip commit, upstream and which one
    /// is checked out; optionally only those containing (or not containing) a commit.
    #[tool(annotations(
        title = "Git branches",
        read_only_hint = true,
        destructive_hint = false,
        idempotent_hint = true,
        open_world_hint = false
    ))]
    async fn git_branches(
        &self,
        Parameters(params): Parameters<git::branches::GitBranchesParams>,
    ) -> Result<Json<git::branches::GitBranchesOutput>, ToolError> {
        let roots = Arc::clone(&self.roots);
        run_blocking(move |cancel| git::branches::git_branches(&params, &roots, cancel).map(Json))
            .await
    }
}

#[tool_handler(
    router = self.router(),
    instructions = "Read-only developer tools over the server's root directories: project_info reads manifests, search_code greps with regexes, find_symbol finds definitions, list_files and directory_tree list files (honouring .gitignore), read_file/read_files read contents, file_info describes a path, git_info/git_diff/git_log/git_show/git_branches read git state and history. Paths are relative to the first root unless absolute, and must stay inside the roots."
)]
impl ServerHandler for Development {}
