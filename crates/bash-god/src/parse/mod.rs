//! Turns bash source into a flat list of simple commands, with enough structure
//! (pipelines, function bodies, `for` loops, nesting) for the risk rules, the findings
//! and the rewrites.
//!
//! brush-parser gives the program AST but keeps words as raw text, so every word is
//! parsed again with `brush_parser::word::parse`; command substitutions, backticks and
//! process substitutions found there are parsed as programs of their own. Byte spans
//! are kept only when they map back onto the analyzed text exactly (verified, never
//! assumed), because the rewrites edit the original text through them.
//!
//! brush-parser is a recursive (PEG) parser, and so is the walk over its AST: without a
//! bound, deeply nested input (`((((…`, `{ { {…`, `$($($(…`) overflows the stack and aborts
//! the process. Three layers keep that from happening:
//! - [`depth`] measures the nesting of every text before brush-parser sees it (the program,
//!   and each string `eval`/`bash -c` run) and refuses more than [`depth::MAX_NESTING`];
//! - the parse runs on its own thread with a [`PARSE_STACK_BYTES`] stack, far more than the
//!   accepted nesting needs;
//! - in the server, every parse runs in a helper process ([`helper`]) that is killed after a
//!   time limit: brush-parser backtracks, and some nestings well within the limit take
//!   exponential time; a helper that crashes or times out is an error for that call only.

use std::ops::Range;

use brush_parser::ParserOptions;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub mod depth;
pub mod helper;
mod walk;
mod walk_words;

use walk::Walker;

/// Longest command text accepted; bash one-liners and scripts sent by an agent are far smaller.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Most text parsed for one command, nested programs included: each substitution and each
/// `eval`/`bash -c` string is parsed again on its own, which `eval eval eval …` would make
/// quadratic.
pub const MAX_PARSED_BYTES: usize = 4 * MAX_COMMAND_BYTES;
/// Stack of the parsing thread: debug builds use up to ~30 KiB per nesting level, so the
/// accepted nesting needs a few MiB; the rest is margin. Only touched pages are committed.
pub const PARSE_STACK_BYTES: usize = 256 * 1024 * 1024;

/// Why a command could not be analyzed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParseError {
    #[error("the command is {len} bytes long; at most {max} bytes are accepted, split it up")]
    TooLong { len: usize, max: usize },
    #[error("the command is empty; pass the bash command line to analyze")]
    Empty,
    #[error("bash syntax error: {0}; fix the quoting or the unbalanced construct")]
    Syntax(String),
    #[error(
        "the command nests more than {max} levels deep{where_}; flatten the nesting (fewer nested subshells, substitutions and blocks) or split the command up",
        where_ = .at.map(|at| format!(" (at byte {at})")).unwrap_or_default()
    )]
    TooDeep {
        max: usize,
        /// Byte offset (in the text that nests too deeply) where the limit was passed.
        at: Option<usize>,
    },
    #[error(
        "the programs nested in this command (substitutions, `eval` and `bash -c` strings) add up to more than {max} bytes to parse; split the command up"
    )]
    TooMuchNested { max: usize },
    #[error(
        "the parser did not finish within {seconds} s on this command (some nestings make it backtrack exponentially); simplify the nesting or split the command up"
    )]
    TooComplex { seconds: u64 },
    #[error("the parser failed on this command ({0}); simplify the nesting or split it up")]
    ParserFailed(String),
}

/// Where a simple command sits, from the outermost construct inwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Nesting {
    CommandSubstitution,
    Backticks,
    ProcessSubstitution,
    Subshell,
    BraceGroup,
    FunctionBody,
    If,
    Loop,
    Case,
    Coprocess,
    /// The string argument of `eval`, `bash -c`, `sh -c`…
    ShellString,
}

/// One shell word, parsed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WordInfo {
    /// The word as written, quotes included.
    pub raw: String,
    /// Quotes removed; expansions and substitutions kept as their source text.
    pub literal: String,
    /// Byte range of `raw` in the analyzed text, when it maps back exactly.
    pub span: Option<Range<usize>>,
    /// No expansion or substitution: `literal` is exactly what bash passes on.
    pub is_static: bool,
    /// An expansion or substitution outside double quotes (subject to splitting and globbing).
    pub unquoted_expansion: bool,
    /// The whole word is one unquoted parameter expansion such as `$f` or `${name}`.
    pub lone_parameter: bool,
    /// Indices (into `Script::commands`) of commands nested in this word's substitutions.
    pub nested_commands: Range<usize>,
}

/// Kind of an I/O redirection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RedirectOp {
    Read,
    Write,
    Append,
    ReadWrite,
    Clobber,
    DuplicateInput,
    DuplicateOutput,
    HereDocument,
    HereString,
    /// `&>` / `&>>`.
    OutputAndError,
}

impl RedirectOp {
    /// Whether the redirection writes to its target.
    pub fn writes(self) -> bool {
        matches!(
            self,
            Self::Write | Self::Append | Self::ReadWrite | Self::Clobber | Self::OutputAndError
        )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Redirect {
    pub fd: Option<i32>,
    pub op: RedirectOp,
    pub target: Option<WordInfo>,
}

/// `NAME=value` before a command name (or alone).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    /// As written.
    pub raw: String,
    /// The variable, for `NAME=` and `NAME+=` (not an array element).
    pub name: Option<String>,
    /// `NAME+=…`.
    pub append: bool,
    /// The scalar value when it is a literal (no expansion or substitution), quotes removed.
    pub value: Option<String>,
}

/// A simple command: assignments, argv words and redirections.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimpleCommand {
    /// The command as brush-parser prints it (normalized spacing).
    pub text: String,
    /// argv: the command name then its arguments (may be empty for `X=1` alone).
    pub words: Vec<WordInfo>,
    pub assignments: Vec<Assignment>,
    pub redirects: Vec<Redirect>,
    pub nesting: Vec<Nesting>,
    /// Byte range covering every word of the command that maps back exactly.
    pub span: Option<Range<usize>>,
    /// Index into `Script::pipelines` and position inside it.
    pub pipeline: usize,
    pub stage: usize,
}

impl SimpleCommand {
    /// A stand-in carrying only text, for findings about constructs that are not simple
    /// commands (a `for` header, a substitution outside any command).
    pub fn synthetic(text: String) -> Self {
        Self {
            text,
            words: Vec::new(),
            assignments: Vec::new(),
            redirects: Vec::new(),
            nesting: Vec::new(),
            span: None,
            pipeline: 0,
            stage: 0,
        }
    }

    /// The command name as bash would see it when static (`None` for assignments only).
    pub fn name(&self) -> Option<&str> {
        self.words.first().map(|w| w.literal.as_str())
    }

    pub fn args(&self) -> &[WordInfo] {
        self.words.get(1..).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Pipeline {
    /// One entry per stage: the simple command's index, or `None` for a compound stage.
    pub stages: Vec<Option<usize>>,
    /// Ends with `&`.
    pub background: bool,
    /// Follows `&&` or `||`: whether it runs depends on the pipeline before it.
    pub conditional: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunctionDef {
    pub name: String,
    /// Commands and pipelines of the body.
    pub commands: Range<usize>,
    pub pipelines: Range<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForLoop {
    pub variable: String,
    pub values: Vec<WordInfo>,
}

/// Everything the analysis needs from one bash program.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Script {
    pub commands: Vec<SimpleCommand>,
    pub pipelines: Vec<Pipeline>,
    pub functions: Vec<FunctionDef>,
    pub for_loops: Vec<ForLoop>,
    /// Byte spans of backtick substitutions (`` `cmd` ``) that map back exactly.
    pub backticks: Vec<Range<usize>>,
    /// Constructs whose commands cannot be known before running (e.g. `eval "$x"`).
    pub opaque: Vec<String>,
}

/// Parses `text` as a bash program: in a helper process when the server enabled it (see
/// [`helper::contain_parsing`]), else on a thread of this process. Blocking.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    check_size(text)?;
    match helper::containment() {
        Some(containment) => containment.parse(text),
        None => parse_here(text),
    }
}

/// Parses `text` in this process, on a thread with a [`PARSE_STACK_BYTES`] stack, after
/// [`depth::check`] has bounded its nesting. Blocking.
pub fn parse_here(text: &str) -> Result<Script, ParseError> {
    check_size(text)?;
    depth::check(text, 0)?;
    std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("bash-parse".to_owned())
            .stack_size(PARSE_STACK_BYTES)
            .spawn_scoped(scope, || {
                let mut walker = Walker::new(text, ParserOptions::default());
                walker.program(text, Some(0), &[])?;
                Ok(walker.into_script())
            })
            .map_err(|e| {
                ParseError::ParserFailed(format!("cannot start the parsing thread: {e}"))
            })?;
        parser.join().unwrap_or_else(|_| {
            Err(ParseError::ParserFailed(
                "the parser panicked on this input".to_owned(),
            ))
        })
    })
}

fn check_size(text: &str) -> Result<(), ParseError> {
    if text.len() > MAX_COMMAND_BYTES {
        return Err(ParseError::TooLong {
            len: text.len(),
            max: MAX_COMMAND_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    Ok(())
}

/// `/usr/bin/rm` → `rm`.
pub fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests;
