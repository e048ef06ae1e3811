//! A cheap, conservative measure of how deeply bash text nests, taken before brush-parser (a
//! recursive parser) sees the text, so that deep nesting is refused instead of overflowing
//! the stack.
//!
//! The scan follows the lexical rules of brush-parser's tokenizer where they decide what
//! nests: quotes and escapes, comments, here-document bodies, `$(…)`, `$((…))`, `${…}`,
//! `$[…]`, backticks (skipped: the program inside is measured when it is parsed), extended
//! globs, `[[ … ]]`, and reserved words at the start of a command. Each open construct adds
//! a weight; the text's nesting is the deepest sum. When the scan cannot tell, it errs
//! towards a deeper count: closing words (`fi`, `done`, `esac`, `}`) only count where a
//! command starts, opening ones wherever one may start. The server does not depend on the
//! scan being exact: its parses run in a helper process (see `helper.rs`).

use super::ParseError;

mod code;
mod text;

/// Deepest nesting accepted. Real scripts stay far below (a function holding a loop holding
/// a `case` holding an `if` with a `$(…)` in it is 5); the parser's stack needs grow with
/// this limit, not with the input's length.
pub const MAX_NESTING: usize = 128;

/// Refuses `text` when its nesting, on top of `outer` levels it is nested in, exceeds
/// [`MAX_NESTING`].
pub fn check(text: &str, outer: usize) -> Result<(), ParseError> {
    let limit = MAX_NESTING.saturating_sub(outer);
    match Scanner::new(text.as_bytes(), Frame::Top).run(limit) {
        Ok(_) => Ok(()),
        Err(at) => Err(ParseError::TooDeep {
            max: MAX_NESTING,
            at: (outer == 0).then_some(at),
        }),
    }
}

/// The nesting of `text` (the deepest sum of open constructs' weights).
pub fn measure(text: &str) -> usize {
    Scanner::new(text.as_bytes(), Frame::Top)
        .run(usize::MAX)
        .unwrap_or(usize::MAX)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Top,
    /// `(` in code: subshell, function parentheses, array, `((` command; `restore` is what
    /// `command_start` goes back to when it closes (a process substitution is an argument).
    Paren {
        restore: Option<bool>,
    },
    /// `$(`.
    CommandSubst,
    /// `$((`: the tokenizer counts parentheses from 2 and closes at 0.
    Arith {
        open: usize,
        token_start: bool,
    },
    /// `${`.
    Param,
    /// `$[`.
    LegacyArith,
    DoubleQuote,
    /// The body of a here-document that expands (`<<EOF`, not `<<'EOF'`).
    HereBody,
    If,
    /// `while`/`until`/`for`/`select`; `header` until the `do` of a `for` can come.
    Loop {
        header: bool,
    },
    Brace,
    Case(CaseState),
    /// `[[`, and a parenthesis inside it; `ops` counts `&&`, `||` and `!`, each one level
    /// of brush-parser's expression tree.
    Test {
        ops: usize,
        paren: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CaseState {
    /// Between `case` and `in`.
    Subject,
    Pattern,
    Body,
}

impl Frame {
    fn weight(self) -> usize {
        match self {
            Frame::Top | Frame::DoubleQuote | Frame::HereBody => 0,
            Frame::Arith { open, .. } => open,
            Frame::Test { ops, .. } => 1 + ops,
            _ => 1,
        }
    }
}

/// The lexical state of code inside one frame.
#[derive(Debug, Clone, Copy, Default)]
struct Lex {
    /// Start of the word being read, and whether any of it was quoted or escaped.
    word: Option<(usize, bool)>,
    command_start: bool,
    /// Blanks do not end tokens (inside `$(…)`, as brush's tokenizer reads it), so `#` only
    /// starts a comment right after an operator.
    spaces_in_tokens: bool,
    after_operator: bool,
    redirect_target: bool,
    /// The next word is a here-document tag; `Some(strip_tabs)`.
    heredoc_tag: Option<bool>,
    /// The next word names a function (`function NAME`) or a coprocess.
    name_next: bool,
    coproc_name_next: bool,
    /// The next `(` opens a process substitution.
    process_substitution: bool,
    /// `coproc` words of the current command: each one is a level of recursion.
    coprocs: usize,
}

struct Heredoc {
    tag: Vec<u8>,
    strip_tabs: bool,
    expands: bool,
}

struct Scanner<'t> {
    text: &'t [u8],
    pos: usize,
    stack: Vec<(Frame, Lex)>,
    depth: usize,
    max: usize,
    pending: Vec<Heredoc>,
    /// `((` was read as an arithmetic command: `<<` is a shift until the next `))`.
    arithmetic: bool,
}

fn is_operator_char(c: u8) -> bool {
    matches!(c, b'&' | b'|' | b';' | b'(' | b')' | b'<' | b'>' | b'\n')
}

impl<'t> Scanner<'t> {
    fn new(text: &'t [u8], frame: Frame) -> Self {
        let lex = Lex {
            command_start: true,
            after_operator: true,
            ..Lex::default()
        };
        Self {
            text,
            pos: 0,
            stack: vec![(frame, lex)],
            depth: frame.weight(),
            max: frame.weight(),
            pending: Vec::new(),
            arithmetic: false,
        }
    }

    /// The deepest nesting, or the offset where it first exceeded `limit`.
    fn run(mut self, limit: usize) -> Result<usize, usize> {
        while self.pos < self.text.len() {
            let before = self.pos;
            match self.top() {
                Frame::Arith { .. } => self.arith_step(),
                Frame::Param => self.param_step(b'}'),
                Frame::LegacyArith => self.param_step(b']'),
                Frame::DoubleQuote => self.quoted_step(true),
                Frame::HereBody => self.quoted_step(false),
                _ => self.code_step(limit)?,
            }
            let coprocs: usize = self.stack.iter().map(|(_, lex)| lex.coprocs).sum();
            self.max = self.max.max(self.depth + coprocs);
            if self.max > limit {
                return Err(before);
            }
            // invariant: every step consumes at least one byte.
            debug_assert!(self.pos > before, "the depth scan did not advance");
        }
        Ok(self.max)
    }

    fn top(&self) -> Frame {
        self.stack.last().map_or(Frame::Top, |(frame, _)| *frame)
    }

    fn lex(&mut self) -> &mut Lex {
        // invariant: the Top frame (or a sub-scan's root frame) is never popped.
        &mut self.stack.last_mut().expect("the root frame stays").1
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.text.get(self.pos + ahead).copied()
    }

    fn push(&mut self, frame: Frame) {
        let spaces_in_tokens = match frame {
            Frame::CommandSubst | Frame::Arith { .. } => true,
            Frame::Param | Frame::LegacyArith => false,
            _ => self.stack.last().is_some_and(|(_, l)| l.spaces_in_tokens),
        };
        let lex = Lex {
            command_start: true,
            after_operator: true,
            spaces_in_tokens,
            ..Lex::default()
        };
        self.depth += frame.weight();
        self.stack.push((frame, lex));
    }

    fn pop(&mut self) -> Option<Frame> {
        if self.stack.len() <= 1 {
            return None;
        }
        // Pending coprocs of an unfinished command in the frame end with it.
        let (frame, _) = self.stack.pop()?;
        self.depth -= frame.weight();
        Some(frame)
    }

    /// Replaces the top frame (same kind, new state), keeping the depth in step.
    fn set_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            self.depth = self.depth - top.0.weight() + frame.weight();
            top.0 = frame;
        }
    }

    fn word_char(&mut self, quoted: bool) {
        let pos = self.pos;
        let lex = self.lex();
        match &mut lex.word {
            Some((_, q)) => *q |= quoted,
            None => lex.word = Some((pos, quoted)),
        }
        lex.after_operator = false;
    }
}

fn is_reserved_opener(word: &[u8]) -> bool {
    matches!(
        word,
        b"if"
            | b"while"
            | b"until"
            | b"for"
            | b"select"
            | b"case"
            | b"{"
            | b"[["
            | b"function"
            | b"coproc"
    )
}

/// `NAME=…`, `NAME+=…`, `NAME[…]=…`.
fn is_assignment(word: &[u8]) -> bool {
    let Some(eq) = word.iter().position(|&c| c == b'=') else {
        return false;
    };
    let name = word[..eq].strip_suffix(b"+").unwrap_or(&word[..eq]);
    let name = match name.iter().position(|&c| c == b'[') {
        Some(bracket) if name.ends_with(b"]") => &name[..bracket],
        _ => name,
    };
    !name.is_empty()
        && !name[0].is_ascii_digit()
        && name.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

#[cfg(test)]
mod tests;
