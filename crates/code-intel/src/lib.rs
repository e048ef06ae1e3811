//! Code intelligence shared by the mcp-foundry servers.
//!
//! - [`Language`] holds the tree-sitter grammars (Rust, Python, JavaScript, TypeScript, TSX, Go),
//!   detected from file extensions, with [`Language::parse`].
//! - [`functions`] finds each function with its cyclomatic complexity (comparable with the
//!   `lizard` analyzer), length and location.
//! - [`symbols`] finds definitions (functions, methods, types, classes, traits, interfaces, ...)
//!   with their kind, name, container and location.
//! - [`walk`] is a parallel walker over the `ignore` crate with caps on files and bytes that
//!   report when they are hit, and binary-file skipping.
//!
//! ```
//! use code_intel::{Language, SymbolKind};
//!
//! let source = "struct Point;\nfn norm(x: f64) -> f64 { if x < 0.0 { -x } else { x } }\n";
//! let functions = code_intel::functions(Language::Rust, source).unwrap();
//! assert_eq!(functions[0].name, "norm");
//! assert_eq!(functions[0].cyclomatic_complexity, 2);
//!
//! let symbols = code_intel::symbols(Language::Rust, source).unwrap();
//! assert_eq!(symbols[0].kind, SymbolKind::Struct);
//! assert_eq!((symbols[1].name.as_str(), symbols[1].line), ("norm", 2));
//! ```

mod functions;
mod language;
mod symbols;
mod syntax;
pub mod walk;

pub use functions::{FunctionMetrics, functions, functions_in_tree};
pub use language::{Language, ParseError};
pub use symbols::{Symbol, SymbolKind, symbols, symbols_in_tree};
