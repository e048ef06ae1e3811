//! The quality MCP server: line counts (tokei), cyclomatic complexity (tree-sitter),
//! issues and a scored report over the files under the configured roots.
//!
//! The analyses live in their own modules and work on a plain directory; [`Quality`]
//! adds the MCP tools around them (input checks, path confinement, cancellation).

pub mod complexity;
pub mod issues;
pub mod report;
pub mod scan;
mod server;
pub mod stats;

pub use server::{ComplexityParams, FindIssuesParams, PathParams, Quality, WalkLimits};
