//! The depth scan inside quotes, substitutions and arithmetic, and the constructs skipped
//! whole (single quotes, backticks, extended globs).

use super::{Frame, Scanner, is_operator_char};

impl Scanner<'_> {
    /// `$` in code (`code`), in double quotes or in a here-document body.
    pub(super) fn dollar(&mut self, code: bool) {
        match self.peek(1) {
            Some(b'(') if self.peek(2) == Some(b'(') => {
                self.pos += 3;
                self.push(Frame::Arith {
                    open: 2,
                    token_start: true,
                });
            }
            Some(b'(') => {
                self.pos += 2;
                self.push(Frame::CommandSubst);
            }
            Some(b'{') => {
                self.pos += 2;
                self.push(Frame::Param);
            }
            Some(b'[') => {
                self.pos += 2;
                self.push(Frame::LegacyArith);
            }
            Some(b'\'') if code => {
                self.pos += 1;
                self.skip_ansi_c();
            }
            Some(b'"') if code => {
                self.pos += 2;
                self.push(Frame::DoubleQuote);
            }
            _ => self.pos += 1,
        }
    }

    /// `$((…))`: quotes, substitutions and parentheses counted like the tokenizer does.
    pub(super) fn arith_step(&mut self) {
        let Frame::Arith { open, token_start } = self.top() else {
            return;
        };
        let c = self.text[self.pos];
        let mut next_token_start = is_operator_char(c);
        match c {
            b'#' if token_start => {
                while self.peek(0).is_some_and(|c| c != b'\n') {
                    self.pos += 1;
                }
                next_token_start = false;
            }
            b'(' => {
                self.pos += 1;
                self.set_top(Frame::Arith {
                    open: open + 1,
                    token_start: true,
                });
                return;
            }
            b')' => {
                self.pos += 1;
                if open <= 1 {
                    self.pop();
                } else {
                    self.set_top(Frame::Arith {
                        open: open - 1,
                        token_start: true,
                    });
                }
                return;
            }
            b'\'' => self.skip_single_quoted(),
            b'"' => {
                self.pos += 1;
                self.set_top(Frame::Arith {
                    open,
                    token_start: false,
                });
                self.push(Frame::DoubleQuote);
                return;
            }
            b'\\' => self.pos = (self.pos + 2).min(self.text.len()),
            b'`' => self.skip_backticks(),
            b'$' => {
                self.set_top(Frame::Arith {
                    open,
                    token_start: false,
                });
                self.dollar(true);
                return;
            }
            _ => self.pos += 1,
        }
        self.set_top(Frame::Arith {
            open,
            token_start: next_token_start,
        });
    }

    /// `${…}` (closed by `}`) and `$[…]` (closed by `]`): quotes and substitutions nest.
    pub(super) fn param_step(&mut self, close: u8) {
        match self.text[self.pos] {
            c if c == close => {
                self.pos += 1;
                self.pop();
            }
            b'\'' => self.skip_single_quoted(),
            b'"' => {
                self.pos += 1;
                self.push(Frame::DoubleQuote);
            }
            b'\\' => self.pos = (self.pos + 2).min(self.text.len()),
            b'`' => self.skip_backticks(),
            b'$' => self.dollar(true),
            _ => self.pos += 1,
        }
    }

    /// Inside double quotes (`closes`) or a here-document body: only `$…`, backticks and
    /// backslashes matter.
    pub(super) fn quoted_step(&mut self, closes: bool) {
        match self.text[self.pos] {
            b'"' if closes => {
                self.pos += 1;
                self.pop();
            }
            b'\\' => self.pos = (self.pos + 2).min(self.text.len()),
            b'`' => self.skip_backticks(),
            b'$' => self.dollar(false),
            _ => self.pos += 1,
        }
    }

    pub(super) fn skip_single_quoted(&mut self) {
        self.pos += 1;
        while self.peek(0).is_some_and(|c| c != b'\'') {
            self.pos += 1;
        }
        self.pos = (self.pos + 1).min(self.text.len());
    }

    /// `$'…'`, from its quote: backslashes escape.
    pub(super) fn skip_ansi_c(&mut self) {
        self.pos += 1;
        while let Some(c) = self.peek(0) {
            self.pos += if c == b'\\' { 2 } else { 1 };
            if c == b'\'' {
                break;
            }
        }
        self.pos = self.pos.min(self.text.len());
    }

    /// `` `…` ``, as the tokenizer reads it: to the next unescaped backtick, quotes ignored.
    /// The program inside is measured when the walker parses it.
    pub(super) fn skip_backticks(&mut self) {
        self.pos += 1;
        while let Some(c) = self.peek(0) {
            self.pos += if c == b'\\' { 2 } else { 1 };
            if c == b'`' {
                break;
            }
        }
        self.pos = self.pos.min(self.text.len());
    }

    /// `@(…)`, `!(…)`… as the tokenizer reads them: to the matching parenthesis, quotes
    /// ignored; each parenthesis level counts.
    pub(super) fn skip_extglob(&mut self) {
        let mut open = 0usize;
        let mut deepest = 0usize;
        while let Some(c) = self.peek(0) {
            self.pos += 1;
            match c {
                b'\\' => self.pos = (self.pos + 1).min(self.text.len()),
                b'(' => {
                    open += 1;
                    deepest = deepest.max(open);
                }
                b')' => {
                    open = open.saturating_sub(1);
                    if open == 0 {
                        break;
                    }
                }
                _ => {}
            }
        }
        self.max = self.max.max(self.depth + deepest);
    }
}
