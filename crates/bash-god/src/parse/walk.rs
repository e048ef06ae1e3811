//! The walk over brush-parser's AST: every simple command, with the constructs it is nested
//! in, and the strings `eval`/`bash -c` run, parsed as programs of their own.

use std::ops::Range;

use brush_parser::word;
use brush_parser::{Parser, ParserOptions, ast};

use super::{
    Assignment, ForLoop, FunctionDef, MAX_PARSED_BYTES, Nesting, ParseError, Pipeline, Redirect,
    RedirectOp, Script, SimpleCommand, WordInfo, basename, depth,
};

/// The text being walked (the original or a nested substitution) and where it sits.
pub(super) struct Source<'t> {
    /// Byte offset of this text in the original, when known exactly.
    pub(super) base: Option<usize>,
    /// Byte offset of each char of this text (plus one past the end): brush spans count chars.
    pub(super) char_to_byte: Vec<usize>,
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

pub(super) struct Walker<'a> {
    pub(super) original: &'a str,
    pub(super) options: ParserOptions,
    pub(super) script: Script,
    /// Bytes given to brush-parser's program parser so far.
    parsed_bytes: usize,
}

pub(super) fn with(nesting: &[Nesting], more: Nesting) -> Vec<Nesting> {
    let mut v = nesting.to_vec();
    v.push(more);
    v
}

impl<'a> Walker<'a> {
    pub(super) fn new(original: &'a str, options: ParserOptions) -> Self {
        Self {
            original,
            options,
            script: Script::default(),
            parsed_bytes: 0,
        }
    }

    pub(super) fn into_script(self) -> Script {
        self.script
    }

    /// Parses and walks one program: the original text or a nested one. `base` is this
    /// text's byte offset in the original if the caller believes it maps; it is verified
    /// here. The nesting of `text` is measured first, on top of the nesting it sits in.
    pub(super) fn program(
        &mut self,
        text: &str,
        base: Option<usize>,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        depth::check(text, nesting.len())?;
        self.parsed_bytes += text.len();
        if self.parsed_bytes > MAX_PARSED_BYTES {
            return Err(ParseError::TooMuchNested {
                max: MAX_PARSED_BYTES,
            });
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

    pub(super) fn compound_list(
        &mut self,
        list: &ast::CompoundList,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        for ast::CompoundListItem(and_or, separator) in &list.0 {
            let background = matches!(separator, ast::SeparatorOperator::Async);
            for (i, (_, pipeline)) in and_or.into_iter().enumerate() {
                self.pipeline(pipeline, background, i > 0, src, nesting)?;
            }
        }
        Ok(())
    }

    fn pipeline(
        &mut self,
        pipeline: &ast::Pipeline,
        background: bool,
        conditional: bool,
        src: &Source,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
        let id = self.script.pipelines.len();
        self.script.pipelines.push(Pipeline {
            stages: Vec::new(),
            background,
            conditional,
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
                    conditional: false,
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
                Some(Item::AssignmentWord(assignment, w)) => {
                    let info = self.word(w, src, nesting)?;
                    assignments.push(assignment_of(assignment, &info));
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
                match self.program(&text, base, &inner) {
                    Ok(()) => {}
                    // A resource limit, not a property of the string: refuse the whole command.
                    Err(e @ (ParseError::TooDeep { .. } | ParseError::TooMuchNested { .. })) => {
                        return Err(e);
                    }
                    Err(e) => self
                        .script
                        .opaque
                        .push(format!("`{name}` runs a string that does not parse: {e}")),
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
}

/// What the analysis keeps of an assignment word whose whole word parsed to `info`.
fn assignment_of(assignment: &ast::Assignment, info: &WordInfo) -> Assignment {
    let name = match &assignment.name {
        ast::AssignmentName::VariableName(name) => Some(name.clone()),
        ast::AssignmentName::ArrayElementName(..) => None,
    };
    // A static word's literal is `NAME=value` (or `NAME+=value`) with quotes removed.
    let value = match &assignment.value {
        ast::AssignmentValue::Scalar(_) if info.is_static => info
            .literal
            .split_once('=')
            .map(|(_, value)| value.to_owned()),
        _ => None,
    };
    Assignment {
        raw: info.raw.clone(),
        name,
        append: assignment.append,
        value,
    }
}
