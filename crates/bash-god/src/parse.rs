//! Turns bash source into a flat list of simple commands, with enough structure
//! (pipelines, function bodies, `for` loops, nesting) for the risk rules, the findings
//! and the rewrites.
//!
//! brush-parser gives the program AST but keeps words as raw text, so every word is
//! parsed again with `brush_parser::word::parse`; command substitutions, backticks and
//! process substitutions found there are parsed as programs of their own. Byte spans
//! are kept only when they map back onto the analyzed text exactly (verified, never
//! assumed), because the rewrites edit the original text through them.

use std::ops::Range;

use brush_parser::word::{self, ParameterExpr, WordPiece, WordPieceWithSource};
use brush_parser::{Parser, ParserOptions, ast};
use schemars::JsonSchema;
use serde::Serialize;

/// Longest command text accepted; bash one-liners and scripts sent by an agent are far smaller.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;
/// Deeper nesting than this is reported as opaque instead of recursing further.
const MAX_NESTING: usize = 24;

/// Why a command could not be analyzed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the command is {len} bytes long; at most {max} bytes are accepted, split it up")]
    TooLong { len: usize, max: usize },
    #[error("the command is empty; pass the bash command line to analyze")]
    Empty,
    #[error("bash syntax error: {0}; fix the quoting or the unbalanced construct")]
    Syntax(String),
}

/// Where a simple command sits, from the outermost construct inwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
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
#[derive(Debug, Clone, Default)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

#[derive(Debug, Clone)]
pub struct Redirect {
    pub fd: Option<i32>,
    pub op: RedirectOp,
    pub target: Option<WordInfo>,
}

/// A simple command: assignments, argv words and redirections.
#[derive(Debug, Clone)]
pub struct SimpleCommand {
    /// The command as brush-parser prints it (normalized spacing).
    pub text: String,
    /// argv: the command name then its arguments (may be empty for `X=1` alone).
    pub words: Vec<WordInfo>,
    pub assignments: Vec<String>,
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

#[derive(Debug, Clone, Default)]
pub struct Pipeline {
    /// One entry per stage: the simple command's index, or `None` for a compound stage.
    pub stages: Vec<Option<usize>>,
    /// Ends with `&`.
    pub background: bool,
}

#[derive(Debug, Clone)]
pub struct FunctionDef {
    pub name: String,
    /// Commands and pipelines of the body.
    pub commands: Range<usize>,
    pub pipelines: Range<usize>,
}

#[derive(Debug, Clone)]
pub struct ForLoop {
    pub variable: String,
    pub values: Vec<WordInfo>,
}

/// Everything the analysis needs from one bash program.
#[derive(Debug, Clone, Default)]
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

/// Parses `text` as a bash program.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    if text.len() > MAX_COMMAND_BYTES {
        return Err(ParseError::TooLong {
            len: text.len(),
            max: MAX_COMMAND_BYTES,
        });
    }
    if text.trim().is_empty() {
        return Err(ParseError::Empty);
    }
    let mut walker = Walker {
        original: text,
        options: ParserOptions::default(),
        script: Script::default(),
    };
    walker.program(text, Some(0), &[])?;
    Ok(walker.script)
}

/// The text being walked (the original or a nested substitution) and where it sits.
struct Source<'t> {
    /// Byte offset of this text in the original, when known exactly.
    base: Option<usize>,
    /// Byte offset of each char of this text (plus one past the end): brush spans count chars.
    char_to_byte: Vec<usize>,
    _text: &'t str,
}

impl<'t> Source<'t> {
    fn new(text: &'t str, base: Option<usize>) -> Self {
        let mut char_to_byte: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
        char_to_byte.push(text.len());
        Self {
            base,
            char_to_byte,
            _text: text,
        }
    }
}

struct Walker<'a> {
    original: &'a str,
    options: ParserOptions,
    script: Script,
}

fn with(nesting: &[Nesting], more: Nesting) -> Vec<Nesting> {
    let mut v = nesting.to_vec();
    v.push(more);
    v
}

impl Walker<'_> {
    /// `base` is this text's byte offset in the original if the caller believes it maps;
    /// it is verified here.
    fn program(
        &mut self,
        text: &str,
        base: Option<usize>,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        if nesting.len() > MAX_NESTING {
            self.script
                .opaque
                .push(format!("nesting deeper than {MAX_NESTING} levels"));
            return Ok(());
        }
        let base = base.filter(|&b| self.original.get(b..b + text.len()) == Some(text));
        let program = Parser::new(text.as_bytes(), &self.options)
            .parse_program()
            .map_err(|e| ParseError::Syntax(e.to_string()))?;
        let source = Source::new(text, base);
        for list in &program.complete_commands {
            self.compound_list(list, &source, nesting)?;
        }
        Ok(())
    }

    fn compound_list(
        &mut self,
        list: &ast::CompoundList,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            let background = matches!(separator, ast::SeparatorOperator::Async);
            for (_, pipeline) in and_or {
                self.pipeline(pipeline, background, src, nesting)?;
            }
        }
        Ok(())
    }

    fn pipeline(
        &mut self,
        pipeline: &ast::Pipeline,
        background: bool,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        let id = self.script.pipelines.len();
        self.script.pipelines.push(Pipeline {
            stages: Vec::new(),
            background,
        });
        let mut stages = Vec::with_capacity(pipeline.seq.len());
        for (stage, command) in pipeline.seq.iter().enumerate() {
            stages.push(self.command(command, id, stage, src, nesting)?);
        }
        self.script.pipelines[id].stages = stages;
        Ok(())
    }

    fn command(
        &mut self,
        command: &ast::Command,
        pipeline: usize,
        stage: usize,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<Option<usize>, ParseError> {
        match command {
            ast::Command::Simple(simple) => {
                self.simple(simple, pipeline, stage, src, nesting).map(Some)
            }
            ast::Command::Compound(compound, redirects) => {
                self.compound(compound, src, nesting)?;
                self.redirect_list(redirects.as_ref(), src, nesting)?;
                Ok(None)
            }
            ast::Command::Function(def) => {
                let (commands, pipelines) =
                    (self.script.commands.len(), self.script.pipelines.len());
                let body = with(nesting, Nesting::FunctionBody);
                self.compound(&def.body.0, src, &body)?;
                self.redirect_list(def.body.1.as_ref(), src, &body)?;
                self.script.functions.push(FunctionDef {
                    name: def.fname.value.clone(),
                    commands: commands..self.script.commands.len(),
                    pipelines: pipelines..self.script.pipelines.len(),
                });
                Ok(None)
            }
            ast::Command::ExtendedTest(test, redirects) => {
                self.extended_test(&test.expr, src, nesting)?;
                self.redirect_list(redirects.as_ref(), src, nesting)?;
                Ok(None)
            }
        }
    }

    fn extended_test(
        &mut self,
        expr: &ast::ExtendedTestExpr,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        use ast::ExtendedTestExpr as E;
        match expr {
            E::And(a, b) | E::Or(a, b) => {
                self.extended_test(a, src, nesting)?;
                self.extended_test(b, src, nesting)
            }
            E::Not(a) | E::Parenthesized(a) => self.extended_test(a, src, nesting),
            E::UnaryTest(_, w) => self.word(w, src, nesting).map(drop),
            E::BinaryTest(_, a, b) => {
                self.word(a, src, nesting)?;
                self.word(b, src, nesting).map(drop)
            }
        }
    }

    fn compound(
        &mut self,
        compound: &ast::CompoundCommand,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        use ast::CompoundCommand as C;
        match compound {
            C::Arithmetic(a) => self.text_substitutions(&a.expr.value, nesting),
            C::ArithmeticForClause(a) => {
                for expr in [&a.initializer, &a.condition, &a.updater]
                    .into_iter()
                    .flatten()
                {
                    self.text_substitutions(&expr.value, nesting)?;
                }
                self.compound_list(&a.body.list, src, &with(nesting, Nesting::Loop))
            }
            C::BraceGroup(b) => {
                self.compound_list(&b.list, src, &with(nesting, Nesting::BraceGroup))
            }
            C::Subshell(s) => self.compound_list(&s.list, src, &with(nesting, Nesting::Subshell)),
            C::ForClause(f) => {
                let mut values = Vec::new();
                for value in f.values.iter().flatten() {
                    values.push(self.word(value, src, nesting)?);
                }
                self.script.for_loops.push(ForLoop {
                    variable: f.variable_name.clone(),
                    values,
                });
                self.compound_list(&f.body.list, src, &with(nesting, Nesting::Loop))
            }
            C::CaseClause(c) => {
                self.word(&c.value, src, nesting)?;
                let inner = with(nesting, Nesting::Case);
                for item in &c.cases {
                    for pattern in &item.patterns {
                        self.word(pattern, src, nesting)?;
                    }
                    if let Some(list) = &item.cmd {
                        self.compound_list(list, src, &inner)?;
                    }
                }
                Ok(())
            }
            C::IfClause(i) => {
                let inner = with(nesting, Nesting::If);
                self.compound_list(&i.condition, src, &inner)?;
                self.compound_list(&i.then, src, &inner)?;
                for clause in i.elses.iter().flatten() {
                    if let Some(condition) = &clause.condition {
                        self.compound_list(condition, src, &inner)?;
                    }
                    self.compound_list(&clause.body, src, &inner)?;
                }
                Ok(())
            }
            C::WhileClause(w) | C::UntilClause(w) => {
                let inner = with(nesting, Nesting::Loop);
                self.compound_list(&w.0, src, &inner)?;
                self.compound_list(&w.1.list, src, &inner)
            }
            C::Coprocess(c) => {
                let id = self.script.pipelines.len();
                self.script.pipelines.push(Pipeline {
                    stages: Vec::new(),
                    background: true,
                });
                let stage =
                    self.command(&c.body, id, 0, src, &with(nesting, Nesting::Coprocess))?;
                self.script.pipelines[id].stages = vec![stage];
                Ok(())
            }
        }
    }

    fn simple(
        &mut self,
        simple: &ast::SimpleCommand,
        pipeline: usize,
        stage: usize,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<usize, ParseError> {
        use ast::CommandPrefixOrSuffixItem as Item;
        let mut words = Vec::new();
        let mut assignments = Vec::new();
        let mut redirects = Vec::new();
        let items = simple
            .prefix
            .iter()
            .flat_map(|p| p.0.iter())
            .map(Some)
            .chain(std::iter::once(None))
            .chain(simple.suffix.iter().flat_map(|s| s.0.iter()).map(Some));
        for item in items {
            match item {
                None => {
                    if let Some(name) = &simple.word_or_name {
                        words.push(self.word(name, src, nesting)?);
                    }
                }
                Some(Item::IoRedirect(r)) => redirects.push(self.redirect(r, src, nesting)?),
                Some(Item::Word(w)) => words.push(self.word(w, src, nesting)?),
                // After the command name, `name=value` is an ordinary argument (`dd of=x`).
                Some(Item::AssignmentWord(_, w)) if !words.is_empty() => {
                    words.push(self.word(w, src, nesting)?);
                }
                Some(Item::AssignmentWord(_, w)) => {
                    self.word(w, src, nesting)?;
                    assignments.push(w.value.clone());
                }
                Some(Item::ProcessSubstitution(kind, subshell)) => {
                    let start = self.script.commands.len();
                    self.compound_list(
                        &subshell.list,
                        src,
                        &with(nesting, Nesting::ProcessSubstitution),
                    )?;
                    let marker = match kind {
                        ast::ProcessSubstitutionKind::Read => "<(…)",
                        ast::ProcessSubstitutionKind::Write => ">(…)",
                    };
                    words.push(WordInfo {
                        raw: marker.to_owned(),
                        literal: marker.to_owned(),
                        nested_commands: start..self.script.commands.len(),
                        ..WordInfo::default()
                    });
                }
            }
        }
        let span = words
            .iter()
            .chain(redirects.iter().filter_map(|r| r.target.as_ref()))
            .map(|w| w.span.clone())
            .try_fold(None::<Range<usize>>, |acc, span| {
                let span = span?;
                Some(Some(match acc {
                    None => span,
                    Some(acc) => acc.start.min(span.start)..acc.end.max(span.end),
                }))
            })
            .flatten();
        let index = self.script.commands.len();
        self.script.commands.push(SimpleCommand {
            text: simple.to_string(),
            words,
            assignments,
            redirects,
            nesting: nesting.to_vec(),
            span,
            pipeline,
            stage,
        });
        self.shell_string(index, nesting)?;
        Ok(index)
    }

    /// `eval STR…` and `bash -c STR` run a string as a program: analyze it too.
    fn shell_string(&mut self, index: usize, nesting: &[Nesting]) -> Result<(), ParseError> {
        let command = &self.script.commands[index];
        let words = crate::risk::effective_argv(&command.words);
        let Some(name) = words.first().map(|w| basename(&w.literal).to_owned()) else {
            return Ok(());
        };
        let script_word = match name.as_str() {
            "eval" => {
                let args = &words[1..];
                if args.iter().all(|w| w.is_static) {
                    let joined = args
                        .iter()
                        .map(|w| w.literal.as_str())
                        .collect::<Vec<_>>()
                        .join(" ");
                    let base = match args {
                        [only] => only.span.as_ref().map(|s| s.start + 1),
                        _ => None,
                    };
                    Some((joined, base))
                } else {
                    None
                }
            }
            "bash" | "sh" | "dash" | "zsh" | "ksh" | "mksh" | "ash" | "busybox" => {
                let c = words[1..].iter().position(|w| {
                    w.literal.starts_with('-')
                        && !w.literal.starts_with("--")
                        && w.literal.contains('c')
                });
                match c.and_then(|i| words.get(i + 2)) {
                    Some(w) if w.is_static => {
                        Some((w.literal.clone(), w.span.as_ref().map(|s| s.start + 1)))
                    }
                    Some(_) => None,
                    None => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        match script_word {
            Some((text, base)) => {
                let inner = with(nesting, Nesting::ShellString);
                if let Err(e) = self.program(&text, base, &inner) {
                    self.script
                        .opaque
                        .push(format!("`{name}` runs a string that does not parse: {e}"));
                }
            }
            None => self.script.opaque.push(format!(
                "`{name}` runs a string built at run time; its commands cannot be checked"
            )),
        }
        Ok(())
    }

    fn redirect_list(
        &mut self,
        list: Option<&ast::RedirectList>,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        for r in list.iter().flat_map(|l| l.0.iter()) {
            self.redirect(r, src, nesting)?;
        }
        Ok(())
    }

    fn redirect(
        &mut self,
        redirect: &ast::IoRedirect,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<Redirect, ParseError> {
        use ast::IoFileRedirectKind as K;
        use ast::IoFileRedirectTarget as T;
        Ok(match redirect {
            ast::IoRedirect::File(fd, kind, target) => {
                let op = match kind {
                    K::Read => RedirectOp::Read,
                    K::Write => RedirectOp::Write,
                    K::Append => RedirectOp::Append,
                    K::ReadAndWrite => RedirectOp::ReadWrite,
                    K::Clobber => RedirectOp::Clobber,
                    K::DuplicateInput => RedirectOp::DuplicateInput,
                    K::DuplicateOutput => RedirectOp::DuplicateOutput,
                };
                let target = match target {
                    T::Filename(w) | T::Duplicate(w) => Some(self.word(w, src, nesting)?),
                    T::Fd(_) => None,
                    T::ProcessSubstitution(_, subshell) => {
                        self.compound_list(
                            &subshell.list,
                            src,
                            &with(nesting, Nesting::ProcessSubstitution),
                        )?;
                        None
                    }
                };
                Redirect {
                    fd: *fd,
                    op,
                    target,
                }
            }
            ast::IoRedirect::HereDocument(fd, doc) => {
                if doc.requires_expansion {
                    match word::parse_heredoc(&doc.doc.value, &self.options) {
                        Ok(pieces) => {
                            let mut sink = WordInfo::default();
                            self.pieces(&pieces, &doc.doc.value, None, false, &mut sink, nesting)?;
                        }
                        Err(e) => self.script.opaque.push(format!("here-document: {e}")),
                    }
                }
                Redirect {
                    fd: *fd,
                    op: RedirectOp::HereDocument,
                    target: None,
                }
            }
            ast::IoRedirect::HereString(fd, w) => Redirect {
                fd: *fd,
                op: RedirectOp::HereString,
                target: Some(self.word(w, src, nesting)?),
            },
            ast::IoRedirect::OutputAndError(w, _append) => Redirect {
                fd: None,
                op: RedirectOp::OutputAndError,
                target: Some(self.word(w, src, nesting)?),
            },
        })
    }

    fn word(
        &mut self,
        w: &ast::Word,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<WordInfo, ParseError> {
        let span = match (src.base, &w.loc) {
            (Some(base), Some(loc)) => {
                let start = src.char_to_byte.get(loc.start.index).map(|b| base + b);
                let end = src.char_to_byte.get(loc.end.index).map(|b| base + b);
                start
                    .zip(end)
                    .map(|(s, e)| s..e)
                    .filter(|r| self.original.get(r.clone()) == Some(w.value.as_str()))
            }
            _ => None,
        };
        let start = self.script.commands.len();
        let mut info = WordInfo {
            raw: w.value.clone(),
            is_static: true,
            span,
            ..WordInfo::default()
        };
        match word::parse(&w.value, &self.options) {
            Ok(pieces) => {
                info.lone_parameter = matches!(
                    pieces.as_slice(),
                    [WordPieceWithSource { piece: WordPiece::ParameterExpansion(p), .. }]
                        if splits(p)
                );
                let word_start = info.span.as_ref().map(|s| s.start);
                self.pieces(&pieces, &w.value, word_start, false, &mut info, nesting)?;
            }
            Err(e) => {
                info.literal = w.value.clone();
                info.is_static = false;
                self.script
                    .opaque
                    .push(format!("word `{}` could not be parsed: {e}", w.value));
            }
        }
        info.nested_commands = start..self.script.commands.len();
        Ok(info)
    }

    /// Accumulates the literal value of `pieces` into `info` and analyzes nested programs.
    /// `word_start` is the byte offset of `raw` in the original text, if known.
    fn pieces(
        &mut self,
        pieces: &[WordPieceWithSource],
        raw: &str,
        word_start: Option<usize>,
        in_double_quotes: bool,
        info: &mut WordInfo,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        for p in pieces {
            let piece_raw = raw.get(p.start_index..p.end_index).unwrap_or_default();
            let piece_start = word_start.map(|s| s + p.start_index);
            match &p.piece {
                WordPiece::Text(s)
                | WordPiece::SingleQuotedText(s)
                | WordPiece::AnsiCQuotedText(s) => info.literal.push_str(s),
                WordPiece::DoubleQuotedSequence(inner)
                | WordPiece::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner, raw, word_start, true, info, nesting)?;
                }
                WordPiece::EscapeSequence(s) => {
                    info.literal.push_str(s.strip_prefix('\\').unwrap_or(s));
                }
                WordPiece::TildeExpansion(_) => {
                    info.literal.push_str(piece_raw);
                    info.is_static = false;
                }
                WordPiece::ParameterExpansion(expr) => {
                    info.literal.push_str(piece_raw);
                    info.is_static = false;
                    info.unquoted_expansion |= !in_double_quotes;
                    let before = self.script.commands.len();
                    for text in parameter_texts(expr) {
                        self.text_substitutions(text, nesting)?;
                    }
                    let found = self.script.commands.len() > before;
                    if !found && (piece_raw.contains("$(") || piece_raw.contains('`')) {
                        self.script.opaque.push(format!(
                            "command substitution inside `{piece_raw}` cannot be analyzed"
                        ));
                    }
                }
                WordPiece::CommandSubstitution(program) => {
                    info.literal.push_str(piece_raw);
                    info.is_static = false;
                    info.unquoted_expansion |= !in_double_quotes;
                    let base = piece_start.map(|s| s + 2);
                    self.program(program, base, &with(nesting, Nesting::CommandSubstitution))?;
                }
                WordPiece::BackquotedCommandSubstitution(program) => {
                    info.literal.push_str(piece_raw);
                    info.is_static = false;
                    info.unquoted_expansion |= !in_double_quotes;
                    if let Some(start) = piece_start {
                        let span = start..start + piece_raw.len();
                        let maps = self.original.get(span.clone()) == Some(piece_raw);
                        if maps && piece_raw.starts_with('`') && piece_raw.ends_with('`') {
                            self.script.backticks.push(span);
                        }
                    }
                    let base = piece_start.map(|s| s + 1);
                    self.program(program, base, &with(nesting, Nesting::Backticks))?;
                }
                WordPiece::ArithmeticExpression(expr) => {
                    info.literal.push_str(piece_raw);
                    info.is_static = false;
                    info.unquoted_expansion |= !in_double_quotes;
                    self.text_substitutions(&expr.value, nesting)?;
                }
            }
        }
        Ok(())
    }

    /// Finds command substitutions in a text that is expanded like a word (arithmetic,
    /// parameter defaults) but has no position in the original.
    fn text_substitutions(&mut self, text: &str, nesting: &[Nesting]) -> Result<(), ParseError> {
        if !(text.contains('$') || text.contains('`')) {
            return Ok(());
        }
        match word::parse(text, &self.options) {
            Ok(pieces) => {
                let mut sink = WordInfo::default();
                self.pieces(&pieces, text, None, false, &mut sink, nesting)
            }
            Err(e) => {
                self.script
                    .opaque
                    .push(format!("`{text}` could not be parsed: {e}"));
                Ok(())
            }
        }
    }
}

/// Whether an unquoted expansion of this parameter is subject to word splitting in a way
/// that matters (`$?`, `$#`, `$$` and `$!` are numbers).
fn splits(expr: &ParameterExpr) -> bool {
    use brush_parser::word::{Parameter, SpecialParameter};
    match expr {
        ParameterExpr::Parameter { parameter, .. } => match parameter {
            Parameter::Special(special) => {
                matches!(special, SpecialParameter::AllPositionalParameters { .. })
            }
            _ => true,
        },
        _ => false,
    }
}

/// The embedded strings of a parameter expansion that bash expands as words.
fn parameter_texts(expr: &ParameterExpr) -> Vec<&str> {
    use ParameterExpr as P;
    let mut texts = Vec::new();
    match expr {
        P::UseDefaultValues {
            default_value: v, ..
        }
        | P::AssignDefaultValues {
            default_value: v, ..
        }
        | P::IndicateErrorIfNullOrUnset {
            error_message: v, ..
        }
        | P::UseAlternativeValue {
            alternative_value: v,
            ..
        }
        | P::RemoveSmallestSuffixPattern { pattern: v, .. }
        | P::RemoveLargestSuffixPattern { pattern: v, .. }
        | P::RemoveSmallestPrefixPattern { pattern: v, .. }
        | P::RemoveLargestPrefixPattern { pattern: v, .. }
        | P::UppercaseFirstChar { pattern: v, .. }
        | P::UppercasePattern { pattern: v, .. }
        | P::LowercaseFirstChar { pattern: v, .. }
        | P::LowercasePattern { pattern: v, .. } => texts.extend(v.as_deref()),
        P::ReplaceSubstring {
            pattern,
            replacement,
            ..
        } => {
            texts.push(pattern.as_str());
            texts.extend(replacement.as_deref());
        }
        P::Substring { offset, length, .. } => {
            texts.push(offset.value.as_str());
            texts.extend(length.as_ref().map(|l| l.value.as_str()));
        }
        _ => {}
    }
    texts
}

/// `/usr/bin/rm` → `rm`.
pub fn basename(name: &str) -> &str {
    name.rsplit('/').next().unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(script: &Script) -> Vec<String> {
        script
            .commands
            .iter()
            .map(|c| c.name().unwrap_or("").to_owned())
            .collect()
    }

    #[test]
    fn finds_commands_in_every_construct() {
        let src = r#"a | b && c || d; e
f() { g | h & }
if i; then j; elif k; then l; else m; fi
while n; do o; done
for x in $(p); do q; done
case "$x" in y) r ;; esac
( s ) ; { t; }
u "$(v `w`)" <(x1) > >(x2)
[[ -n $(x3) ]]
echo $(( $(x4) + 1 )) ${z:-$(x5)}
"#;
        let script = parse(src).unwrap();
        let mut found = names(&script);
        found.sort();
        let mut expected: Vec<String> = [
            "a", "b", "c", "d", "e", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r",
            "s", "t", "u", "v", "w", "x1", "x2", "x3", "echo", "x4", "x5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        expected.sort();
        assert_eq!(found, expected);
        assert!(script.opaque.is_empty(), "{:?}", script.opaque);
    }

    #[test]
    fn nesting_is_recorded() {
        let script = parse("echo \"$(ls `pwd`)\"").unwrap();
        let ls = script
            .commands
            .iter()
            .find(|c| c.name() == Some("ls"))
            .unwrap();
        assert_eq!(ls.nesting, vec![Nesting::CommandSubstitution]);
        let pwd = script
            .commands
            .iter()
            .find(|c| c.name() == Some("pwd"))
            .unwrap();
        assert_eq!(
            pwd.nesting,
            vec![Nesting::CommandSubstitution, Nesting::Backticks]
        );
    }

    #[test]
    fn literal_values_drop_quotes() {
        let script = parse(r#"rm -rf "/" '~' \/etc"#).unwrap();
        let lits: Vec<_> = script.commands[0]
            .words
            .iter()
            .map(|w| w.literal.as_str())
            .collect();
        assert_eq!(lits, ["rm", "-rf", "/", "~", "/etc"]);
        assert!(script.commands[0].words.iter().all(|w| w.is_static));
    }

    #[test]
    fn spans_map_back_to_the_text_including_nested_programs() {
        let src = "echo $(cat  'a b' | grep x) é `ls  -l`";
        let script = parse(src).unwrap();
        for command in &script.commands {
            for w in &command.words {
                let span = w.span.clone().expect("span maps back");
                assert_eq!(&src[span], w.raw);
            }
        }
        assert_eq!(script.backticks.len(), 1);
        assert_eq!(&src[script.backticks[0].clone()], "`ls  -l`");
    }

    #[test]
    fn unquoted_expansions_are_flagged() {
        let script = parse(r#"rm $f "$g" ${h} "x$i" $?"#).unwrap();
        let w = &script.commands[0].words;
        assert!(w[1].unquoted_expansion && w[1].lone_parameter);
        assert!(!w[2].unquoted_expansion);
        assert!(w[3].lone_parameter);
        assert!(!w[4].unquoted_expansion);
        assert!(!w[5].lone_parameter);
    }

    #[test]
    fn shell_strings_are_parsed() {
        let script = parse(r#"bash -c 'rm -rf /tmp/x'; eval "ls | wc -l""#).unwrap();
        let nested: Vec<_> = script
            .commands
            .iter()
            .filter(|c| c.nesting == [Nesting::ShellString])
            .map(|c| c.name().unwrap())
            .collect();
        assert_eq!(nested, ["rm", "ls", "wc"]);
    }

    #[test]
    fn dynamic_shell_strings_are_opaque() {
        let script = parse(r#"eval "$cmd""#).unwrap();
        assert_eq!(script.opaque.len(), 1);
    }

    #[test]
    fn functions_and_pipelines_are_recorded() {
        let script = parse(":(){ :|:& };:").unwrap();
        assert_eq!(script.functions.len(), 1);
        assert_eq!(script.functions[0].name, ":");
        let body = &script.functions[0];
        assert_eq!(body.commands.len(), 2);
        assert!(script.pipelines[body.pipelines.start].background);
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(parse("  "), Err(ParseError::Empty)));
        assert!(matches!(
            parse("echo \"unterminated"),
            Err(ParseError::Syntax(_))
        ));
        assert!(matches!(parse("if true; then"), Err(ParseError::Syntax(_))));
        let long = "x".repeat(MAX_COMMAND_BYTES + 1);
        assert!(matches!(parse(&long), Err(ParseError::TooLong { .. })));
    }
}
