//! The `development` MCP server: what a developer asks about a source tree.
//!
//! - `project_info`: manifests of Cargo, npm, Python, Go, Maven/Gradle, CMake and Nix
//!   flake projects (name, version, dependencies, members, entry points) — [`project`].
//! - `search_code`: regex search with ripgrep's own libraries — [`search`].
//! - `find_symbol`: definitions by name through the tree-sitter grammars of `code-intel` —
//!   [`symbols`].
//! - `list_files`: files honouring `.gitignore` — [`files`].
//! - `git_info`: branch, HEAD, recent commits and changed files through `gix` — [`git`].
//!
//! Every tool confines its paths to the server's roots and runs its work on the blocking
//! pool, checking the call's cancel flag between files.

pub mod files;
pub mod git;
pub mod paths;
pub mod project;
pub mod search;
pub mod symbols;

use std::sync::Arc;

use mcp_server_runtime::{Roots, ServerContext, ToolError, run_blocking};
use rmcp::handler::server::{router::tool::ToolRouter, wrapper::Parameters};
use rmcp::{Json, ServerHandler, tool, tool_handler, tool_router};

pub use paths::display_path;

/// The server: its roots and the router of its tools.
#[derive(Clone)]
pub struct Development {
    roots: Arc<Roots>,
    tool_router: ToolRouter<Self>,
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
            tool_router: Self::tool_router(),
        }
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
}

#[tool_handler(
    router = self.tool_router,
    instructions = "Developer tools over the server's root directories: project_info reads manifests, search_code greps with regexes, find_symbol finds definitions, list_files lists files (honouring .gitignore), git_info reports the git state. Paths are relative to the first root unless absolute, and must stay inside the roots."
)]
impl ServerHandler for Development {}
