//! The depth scan of shell code: words, operators, reserved words, parentheses and
//! here-document bodies.

use super::{CaseState, Frame, Heredoc, Scanner, is_assignment, is_reserved_opener};

impl Scanner<'_> {
    pub(super) fn code_step(&mut self, limit: usize) -> Result<(), usize> {
        let c = self.text[self.pos];
        match c {
            b' ' | b'\t' => {
                self.end_word();
                self.pos += 1;
                // Inside `$(…)` a blank is part of the next token, so `#` after it is text.
                let lex = self.lex();
                lex.after_operator = !lex.spaces_in_tokens;
            }
            b'\n' => {
                self.end_word();
                self.separator();
                self.pos += 1;
                self.heredoc_bodies(limit)?;
            }
            b'#' if self.starts_comment() => {
                while self.peek(0).is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
            }
            b'\\' => {
                if self.peek(1) == Some(b'\n') {
                    self.pos += 2;
                } else {
                    self.word_char(true);
                    self.pos = (self.pos + 2).min(self.text.len());
                }
            }
            b'\'' => {
                self.word_char(true);
                self.skip_single_quoted();
            }
            b'"' => {
                self.word_char(true);
                self.pos += 1;
                self.push(Frame::DoubleQuote);
            }
            b'`' => {
                self.word_char(true);
                self.skip_backticks();
            }
            b'$' => {
                self.word_char(false);
                self.dollar(true);
            }
            b'(' => self.open_paren(),
            b')' => self.close_paren(),
            b';' => {
                self.end_word();
                let mut len = 1;
                while len < 3 && matches!(self.peek(len), Some(b';' | b'&')) {
                    len += 1;
                }
                if len > 1 && self.top() == Frame::Case(CaseState::Body) {
                    self.set_top(Frame::Case(CaseState::Pattern));
                }
                self.pos += len;
                self.separator();
            }
            b'&' | b'|' => {
                self.end_word();
                let next = self.peek(1);
                if next == Some(c) {
                    self.pos += 2;
                    self.and_or();
                } else if c == b'&' && next == Some(b'>') {
                    self.pos += if self.peek(2) == Some(b'>') { 3 } else { 2 };
                    self.operator();
                    self.lex().redirect_target = true;
                } else {
                    self.pos += if c == b'|' && next == Some(b'&') {
                        2
                    } else {
                        1
                    };
                    self.separator();
                }
            }
            b'<' | b'>' => self.redirection(),
            _ => {
                self.word_char(false);
                self.pos += 1;
            }
        }
        Ok(())
    }

    pub(super) fn starts_comment(&mut self) -> bool {
        let lex = self.lex();
        if lex.spaces_in_tokens {
            lex.after_operator && lex.word.is_none()
        } else {
            lex.word.is_none()
        }
    }

    pub(super) fn operator(&mut self) {
        let lex = self.lex();
        lex.after_operator = true;
        lex.coproc_name_next = false;
    }

    /// `;`, `&`, `|`, newline: a new command starts.
    pub(super) fn separator(&mut self) {
        self.operator();
        let lex = self.lex();
        lex.command_start = true;
        lex.redirect_target = false;
        lex.coprocs = 0;
        if let Frame::Loop { header: true } = self.top() {
            self.set_top(Frame::Loop { header: false });
        }
    }

    pub(super) fn and_or(&mut self) {
        match self.top() {
            Frame::Test { ops, paren } => {
                self.operator();
                self.set_top(Frame::Test {
                    ops: ops + 1,
                    paren,
                });
            }
            _ => self.separator(),
        }
    }

    pub(super) fn redirection(&mut self) {
        self.end_word();
        if matches!(self.top(), Frame::Test { .. }) {
            // A comparison inside `[[ … ]]`.
            self.pos += 1;
            self.operator();
            return;
        }
        let rest = &self.text[self.pos..];
        let (len, heredoc) = if rest.starts_with(b"<<<") {
            (3, None)
        } else if rest.starts_with(b"<<-") {
            (3, Some(true))
        } else if rest.starts_with(b"<<") {
            (2, Some(false))
        } else if [&b">>"[..], b">|", b"<&", b">&", b"<>"]
            .iter()
            .any(|op| rest.starts_with(op))
        {
            (2, None)
        } else {
            (1, None)
        };
        self.pos += len;
        self.operator();
        let arithmetic = self.arithmetic;
        let process_substitution = len == 1 && self.peek(0) == Some(b'(');
        let lex = self.lex();
        match heredoc {
            Some(strip_tabs) if !arithmetic => lex.heredoc_tag = Some(strip_tabs),
            _ if process_substitution => lex.process_substitution = true,
            _ => lex.redirect_target = true,
        }
    }

    pub(super) fn open_paren(&mut self) {
        let extglob = self.lex().word.is_some_and(|(start, _)| {
            self.pos > start && matches!(self.text[self.pos - 1], b'@' | b'!' | b'?' | b'+' | b'*')
        });
        if extglob {
            self.word_char(false);
            self.skip_extglob();
            return;
        }
        self.end_word();
        match self.top() {
            Frame::Test { .. } => {
                self.pos += 1;
                self.push(Frame::Test {
                    ops: 0,
                    paren: true,
                });
            }
            Frame::Case(CaseState::Pattern) => {
                // The optional `(` before a pattern.
                self.pos += 1;
                self.operator();
            }
            _ => {
                let lex = self.lex();
                let restore = lex.process_substitution.then_some(lex.command_start);
                lex.process_substitution = false;
                if self.peek(1) == Some(b'(') && restore.is_none() {
                    // `((`: the tokenizer reads an arithmetic command until `))`.
                    self.arithmetic = true;
                    self.pos += 2;
                    self.push(Frame::Paren { restore: None });
                    self.push(Frame::Paren { restore: None });
                } else {
                    self.pos += 1;
                    self.push(Frame::Paren { restore });
                }
            }
        }
    }

    pub(super) fn close_paren(&mut self) {
        self.end_word();
        if self.peek(1) == Some(b')') {
            self.arithmetic = false;
        }
        self.pos += 1;
        match self.top() {
            Frame::Paren { restore } => {
                self.pop();
                let lex = self.lex();
                lex.command_start = restore.unwrap_or(true);
                lex.after_operator = true;
            }
            Frame::Test { paren: true, .. } => {
                self.pop();
                self.operator();
            }
            // The word that held `$(` goes on.
            Frame::CommandSubst => {
                self.pop();
            }
            Frame::Case(CaseState::Pattern) => {
                self.set_top(Frame::Case(CaseState::Body));
                self.separator();
            }
            _ => self.operator(),
        }
    }

    /// The bodies of the here-documents whose tags were read on the line that just ended.
    pub(super) fn heredoc_bodies(&mut self, limit: usize) -> Result<(), usize> {
        for doc in std::mem::take(&mut self.pending) {
            let start = self.pos;
            let mut line_start = self.pos;
            let end = loop {
                if line_start >= self.text.len() {
                    self.pos = self.text.len();
                    break self.text.len();
                }
                let line_end = self.text[line_start..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(self.text.len(), |i| line_start + i);
                let mut line = &self.text[line_start..line_end];
                if doc.strip_tabs {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                if line == doc.tag.as_slice() {
                    self.pos = (line_end + 1).min(self.text.len());
                    break line_start;
                }
                line_start = line_end + 1;
            };
            if doc.expands {
                let room = limit.saturating_sub(self.depth);
                match Scanner::new(&self.text[start..end], Frame::HereBody).run(room) {
                    Ok(deepest) => self.max = self.max.max(self.depth + deepest),
                    Err(at) => return Err(start + at),
                }
            }
        }
        Ok(())
    }

    /// The word that just ended, in code: tags, names, reserved words.
    pub(super) fn end_word(&mut self) {
        let Some((start, quoted)) = self.lex().word.take() else {
            return;
        };
        let word = &self.text[start..self.pos];
        let lex = *self.lex();
        if let Some(strip_tabs) = lex.heredoc_tag {
            let tag: Vec<u8> = word
                .iter()
                .copied()
                .filter(|c| !matches!(c, b'\'' | b'"' | b'\\'))
                .collect();
            self.pending.push(Heredoc {
                tag,
                strip_tabs,
                expands: !quoted,
            });
            self.lex().heredoc_tag = None;
            return;
        }
        if lex.redirect_target {
            self.lex().redirect_target = false;
            return;
        }
        if lex.name_next {
            let lex = self.lex();
            lex.name_next = false;
            lex.command_start = true;
            return;
        }
        if lex.coproc_name_next {
            self.lex().coproc_name_next = false;
            if !quoted && !is_reserved_opener(word) {
                let named = self.followed_by_compound();
                self.lex().command_start = named;
                return;
            }
        }
        if quoted {
            self.lex().command_start = false;
            return;
        }
        match self.top() {
            Frame::Test { ops, paren } => {
                match word {
                    b"]]" if !paren => {
                        self.pop();
                        self.lex().command_start = true;
                    }
                    b"!" => self.set_top(Frame::Test {
                        ops: ops + 1,
                        paren,
                    }),
                    _ => {}
                }
                return;
            }
            Frame::Case(CaseState::Subject) => {
                if word == b"in" {
                    self.set_top(Frame::Case(CaseState::Pattern));
                }
                return;
            }
            Frame::Case(CaseState::Pattern) => {
                if word == b"esac" {
                    self.pop();
                    self.lex().command_start = true;
                }
                return;
            }
            Frame::Loop { header: true } if word == b"do" => {
                self.set_top(Frame::Loop { header: false });
                self.lex().command_start = true;
                return;
            }
            _ => {}
        }
        if !lex.command_start {
            return;
        }
        let mut command_start = true;
        match word {
            b"if" => self.push(Frame::If),
            b"while" | b"until" => self.push(Frame::Loop { header: false }),
            b"for" | b"select" => {
                self.push(Frame::Loop { header: true });
                command_start = false;
            }
            b"case" => {
                self.push(Frame::Case(CaseState::Subject));
                command_start = false;
            }
            b"{" => self.push(Frame::Brace),
            b"[[" => {
                self.push(Frame::Test {
                    ops: 0,
                    paren: false,
                });
                command_start = false;
            }
            b"fi" => self.close_block(|f| f == Frame::If),
            b"done" => self.close_block(|f| matches!(f, Frame::Loop { .. })),
            b"esac" => self.close_block(|f| matches!(f, Frame::Case(_))),
            b"}" => self.close_block(|f| f == Frame::Brace),
            b"then" | b"do" | b"else" | b"elif" | b"!" | b"time" | b"in" => {}
            b"function" => {
                self.lex().name_next = true;
                command_start = false;
            }
            b"coproc" => {
                let lex = self.lex();
                lex.coprocs += 1;
                lex.coproc_name_next = true;
            }
            _ if is_assignment(word) => {}
            _ => command_start = false,
        }
        if matches!(
            self.top(),
            Frame::Test { .. } | Frame::Case(CaseState::Subject)
        ) {
            return;
        }
        self.lex().command_start = command_start;
    }

    pub(super) fn close_block(&mut self, matches: impl Fn(Frame) -> bool) {
        if matches(self.top()) {
            self.pop();
        }
    }

    /// Whether the next word (after blanks and newlines) is `{` or `(`: `coproc NAME {…}`.
    pub(super) fn followed_by_compound(&self) -> bool {
        let rest = &self.text[self.pos..];
        let Some(i) = rest.iter().position(|c| !matches!(c, b' ' | b'\t' | b'\n')) else {
            return false;
        };
        match rest[i] {
            b'(' => true,
            b'{' => rest
                .get(i + 1)
                .is_none_or(|&c| matches!(c, b' ' | b'\t' | b'\n')),
            _ => false,
        }
    }
}
