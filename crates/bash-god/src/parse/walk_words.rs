//! The walk through words: every word is parsed again with `brush_parser::word::parse`, and
//! the programs of command substitutions, backticks and expanded texts are walked in turn.

use brush_parser::ast;
use brush_parser::word::{self, ParameterExpr, WordPiece, WordPieceWithSource};

use super::walk::{Source, Walker, with};
use super::{Nesting, ParseError, WordInfo};

impl Walker<'_> {
    pub(super) fn word(
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
    pub(super) fn pieces(
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
    pub(super) fn text_substitutions(
        &mut self,
        text: &str,
        nesting: &[Nesting],
    ) -> Result<(), ParseError> {
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
