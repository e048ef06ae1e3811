//! The quality MCP server: line counts (tokei), cyclomatic complexity (tree-sitter),
//! issues and a scored report over the files under the configured roots.

pub mod complexity;
pub mod issues;
pub mod report;
pub mod scan;
pub mod stats;
