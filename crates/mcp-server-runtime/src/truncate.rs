//! Shortening text for a reader: keep the head and the tail, say how much was cut.
//!
//! One marker format for every server: [`truncate_middle`] cuts finished text,
//! [`HeadTail`] keeps both ends of a stream as it arrives (command output), and both put
//! [`truncation_marker`] where the middle was.

use std::collections::VecDeque;

/// The line that replaces a removed middle: `\n[… N bytes truncated …]\n`.
pub fn truncation_marker(removed: u64) -> String {
    format!("\n[… {removed} bytes truncated …]\n")
}

/// Shortens `text` to at most `max_bytes` by cutting out its middle, keeping the head and
/// the tail (both cut on UTF-8 character boundaries) around a [`truncation_marker`].
/// Returns the text and whether it was truncated.
///
/// Text within the limit is returned unchanged. When `max_bytes` is smaller than the
/// marker itself, the result is just the marker (slightly over the limit, but still
/// telling the reader what happened).
pub fn truncate_middle(text: &str, max_bytes: usize) -> (String, bool) {
    if text.len() <= max_bytes {
        return (text.to_owned(), false);
    }
    // The marker's length depends on N; size it for the largest possible N (all of it).
    let marker_budget = truncation_marker(text.len() as u64).len();
    let keep = max_bytes.saturating_sub(marker_budget);
    let head_end = text.floor_char_boundary(keep / 2);
    let tail_start = text.ceil_char_boundary(text.len() - (keep - keep / 2));
    let removed = tail_start - head_end;
    let mut out = String::with_capacity(max_bytes.max(marker_budget));
    out.push_str(&text[..head_end]);
    out.push_str(&truncation_marker(removed as u64));
    out.push_str(&text[tail_start..]);
    (out, true)
}

/// Keeps the first and the last `cap / 2` bytes of a stream, counting the rest: bounded
/// memory however much a command prints.
#[derive(Debug, Clone, Default)]
pub struct HeadTail {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    half: usize,
    total: u64,
}

impl HeadTail {
    /// A buffer keeping at most `cap` bytes.
    pub fn new(cap: usize) -> Self {
        Self {
            head: Vec::new(),
            tail: VecDeque::new(),
            half: cap / 2,
            total: 0,
        }
    }

    /// Appends the next bytes of the stream.
    pub fn push(&mut self, mut bytes: &[u8]) {
        self.total += bytes.len() as u64;
        let room = self.half.saturating_sub(self.head.len());
        let (head, rest) = bytes.split_at(room.min(bytes.len()));
        self.head.extend_from_slice(head);
        bytes = rest;
        if bytes.len() >= self.half {
            self.tail.clear();
            self.tail.extend(&bytes[bytes.len() - self.half..]);
        } else {
            let overflow = (self.tail.len() + bytes.len()).saturating_sub(self.half);
            self.tail.drain(..overflow);
            self.tail.extend(bytes);
        }
    }

    /// Bytes pushed so far, kept or not.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The text (invalid UTF-8 replaced), with the dropped middle replaced by
    /// [`truncation_marker`] counting every dropped byte; and whether anything was dropped.
    pub fn finish(self) -> (String, bool) {
        let kept = self.head.len() + self.tail.len();
        let dropped = self.total - kept as u64;
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let tail_bytes: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail_bytes);
        if dropped == 0 {
            return (head + &tail, false);
        }
        (format!("{head}{}{tail}", truncation_marker(dropped)), true)
    }
}

/// The byte count a [`truncation_marker`] in `text` states, if there is one.
pub fn truncated_bytes(text: &str) -> Option<u64> {
    let start = text.find("\n[… ")? + "\n[… ".len();
    let rest = &text[start..];
    let end = rest.find(" bytes truncated …]\n")?;
    rest[..end].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_within_the_limit_is_untouched() {
        assert_eq!(truncate_middle("hello", 10), ("hello".to_owned(), false));
        assert_eq!(truncate_middle("hello", 5), ("hello".to_owned(), false));
        assert_eq!(truncate_middle("", 0), (String::new(), false));
    }

    #[test]
    fn long_text_keeps_head_and_tail_around_an_exact_marker() {
        let text = format!("{}{}", "a".repeat(1000), "z".repeat(1000));
        let (out, truncated) = truncate_middle(&text, 200);
        assert!(truncated);
        assert!(out.len() <= 200, "{} bytes", out.len());
        assert!(out.starts_with("aaaa") && out.ends_with("zzzz"), "{out}");
        assert!(out.contains(" bytes truncated …]"), "{out}");
        let removed = truncated_bytes(&out).unwrap();
        let kept = out.len() - truncation_marker(removed).len();
        assert_eq!(
            removed,
            (text.len() - kept) as u64,
            "marker states the removed byte count"
        );
    }

    #[test]
    fn cuts_fall_on_char_boundaries_for_every_limit() {
        let text = "é😀ab€".repeat(40);
        for max in 0..text.len() {
            let (out, truncated) = truncate_middle(&text, max);
            assert!(truncated);
            let at = out.find("\n[… ").unwrap();
            let end = out.rfind("…]\n").unwrap() + "…]\n".len();
            assert!(
                text.starts_with(&out[..at]),
                "head is a prefix at max={max}"
            );
            assert!(text.ends_with(&out[end..]), "tail is a suffix at max={max}");
            let marker_len = end - at;
            if max >= marker_len {
                assert!(out.len() <= max, "max={max} got {}", out.len());
            }
            assert_eq!(
                truncated_bytes(&out).unwrap(),
                (text.len() - (out.len() - marker_len)) as u64
            );
        }
    }

    #[test]
    fn head_tail_keeps_both_ends() {
        let mut buffer = HeadTail::new(10);
        for chunk in [&b"abc"[..], b"defgh", b"ijklmnop", b"qrstuvwxyz"] {
            buffer.push(chunk);
        }
        assert_eq!(buffer.total(), 26);
        let (text, truncated) = buffer.finish();
        assert!(truncated);
        assert!(text.starts_with("abcde"), "{text}");
        assert!(text.ends_with("vwxyz"), "{text}");
        assert_eq!(truncated_bytes(&text), Some(16), "{text}");
        let mut small = HeadTail::new(10);
        small.push(b"hi");
        assert_eq!(small.finish(), ("hi".to_owned(), false));
    }

    #[test]
    fn no_marker_no_count() {
        assert_eq!(truncated_bytes("plain text"), None);
        assert_eq!(truncated_bytes("\n[… many bytes truncated …]\n"), None);
    }
}
