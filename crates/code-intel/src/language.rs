//! The languages with a tree-sitter grammar, detected from file names.

use std::cell::RefCell;
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tree_sitter::{Parser, Tree};

/// A programming language this crate can parse.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    /// TypeScript with JSX (`.tsx`), a separate grammar.
    Tsx,
    Go,
}

/// Why a source text could not be parsed.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error(
        "the {0} grammar is incompatible with the linked tree-sitter library; rebuild code-intel"
    )]
    IncompatibleGrammar(Language),
    #[error("tree-sitter gave up parsing the {0} source; the file may be too large or malformed")]
    Aborted(Language),
}

impl Language {
    /// Every supported language, in a stable order.
    pub const ALL: [Language; 6] = [
        Language::Rust,
        Language::Python,
        Language::JavaScript,
        Language::TypeScript,
        Language::Tsx,
        Language::Go,
    ];

    /// Detects the language from a path's extension (case-insensitive).
    pub fn from_path(path: &Path) -> Option<Language> {
        Self::from_extension(path.extension()?.to_str()?)
    }

    /// Detects the language from a file extension without the dot (`"rs"`, `"PY"`).
    pub fn from_extension(extension: &str) -> Option<Language> {
        let language = match extension.to_ascii_lowercase().as_str() {
            "rs" => Language::Rust,
            "py" | "pyi" | "pyw" => Language::Python,
            "js" | "mjs" | "cjs" | "jsx" => Language::JavaScript,
            "ts" | "mts" | "cts" => Language::TypeScript,
            "tsx" => Language::Tsx,
            "go" => Language::Go,
            _ => return None,
        };
        Some(language)
    }

    /// The lowercase name used in tool inputs and outputs.
    pub fn name(self) -> &'static str {
        match self {
            Language::Rust => "rust",
            Language::Python => "python",
            Language::JavaScript => "javascript",
            Language::TypeScript => "typescript",
            Language::Tsx => "tsx",
            Language::Go => "go",
        }
    }

    /// The tree-sitter grammar of this language.
    pub fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Language::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Language::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Language::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }

    /// Parses `source` into a syntax tree.
    ///
    /// Syntax errors do not fail the parse: tree-sitter recovers and marks them
    /// (`tree.root_node().has_error()`), so partial results stay available.
    pub fn parse(self, source: &str) -> Result<Tree, ParseError> {
        thread_local! {
            // One parser per language and thread: creating one allocates, and the
            // parallel walker calls this for every file.
            static PARSERS: RefCell<Vec<Option<Parser>>> =
                RefCell::new((0..Language::ALL.len()).map(|_| None).collect());
        }
        PARSERS.with(|parsers| {
            let mut parsers = parsers.borrow_mut();
            let slot = &mut parsers[self.index()];
            if slot.is_none() {
                let mut parser = Parser::new();
                parser
                    .set_language(&self.grammar())
                    .map_err(|_| ParseError::IncompatibleGrammar(self))?;
                *slot = Some(parser);
            }
            // invariant: the slot was filled just above when it was empty.
            let parser = slot.as_mut().expect("parser was just created");
            parser.parse(source, None).ok_or(ParseError::Aborted(self))
        })
    }

    fn index(self) -> usize {
        Language::ALL
            .iter()
            .position(|language| *language == self)
            // invariant: Language::ALL lists every variant (tested in this module).
            .expect("ALL lists every language")
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Language {
    type Err = String;

    /// Accepts a language name (`"rust"`, `"typescript"`, ...) or a file extension.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let lower = text.trim().to_ascii_lowercase();
        Language::ALL
            .into_iter()
            .find(|language| language.name() == lower)
            .or_else(|| Language::from_extension(&lower))
            .ok_or_else(|| {
                format!(
                    "unknown language {text:?}; use one of: {}",
                    Language::ALL.map(Language::name).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_languages_by_extension() {
        assert_eq!(
            Language::from_path(Path::new("src/main.RS")),
            Some(Language::Rust)
        );
        assert_eq!(
            Language::from_path(Path::new("a/b.tsx")),
            Some(Language::Tsx)
        );
        assert_eq!(
            Language::from_path(Path::new("x.mjs")),
            Some(Language::JavaScript)
        );
        assert_eq!(Language::from_path(Path::new("Makefile")), None);
        assert_eq!(Language::from_path(Path::new("notes.txt")), None);
    }

    #[test]
    fn every_grammar_loads_and_parses() {
        for language in Language::ALL {
            let tree = language.parse("").expect("empty source parses");
            assert!(!tree.root_node().has_error(), "{language}");
        }
    }

    #[test]
    fn parses_names_and_extensions() {
        assert_eq!("Go".parse::<Language>(), Ok(Language::Go));
        assert_eq!("py".parse::<Language>(), Ok(Language::Python));
        let error = "cobol".parse::<Language>().unwrap_err();
        assert!(error.contains("rust, python"), "{error}");
    }
}
