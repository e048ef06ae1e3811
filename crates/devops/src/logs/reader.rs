//! Line reading with a per-line byte cap, so a file with a gigantic (or no) line break never
//! needs more than `max_line_bytes` of memory.

use std::io::{self, BufRead};

/// Reads lines from `reader`, keeping at most `max_line_bytes` of each line.
pub struct CappedLines<R> {
    reader: R,
    line: Vec<u8>,
    max_line_bytes: usize,
    bytes_read: u64,
}

/// One line without its terminator (`\n` or `\r\n`).
pub struct Line<'a> {
    pub bytes: &'a [u8],
    /// The line was longer than the cap; `bytes` holds its beginning.
    pub truncated: bool,
}

impl<R: BufRead> CappedLines<R> {
    pub fn new(reader: R, max_line_bytes: usize) -> Self {
        Self {
            reader,
            line: Vec::new(),
            max_line_bytes,
            bytes_read: 0,
        }
    }

    /// Bytes consumed from the reader so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// The next line, or `None` at end of input.
    pub fn next_line(&mut self) -> io::Result<Option<Line<'_>>> {
        self.line.clear();
        let mut truncated = false;
        let mut saw_input = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            saw_input = true;
            let (consumed, content, complete) = match memchr::memchr(b'\n', available) {
                Some(end) => (end + 1, &available[..end], true),
                None => (available.len(), available, false),
            };
            let room = self.max_line_bytes.saturating_sub(self.line.len());
            if content.len() > room {
                truncated = true;
                self.line.extend_from_slice(&content[..room]);
            } else {
                self.line.extend_from_slice(content);
            }
            self.reader.consume(consumed);
            self.bytes_read += consumed as u64;
            if complete {
                break;
            }
        }
        if !saw_input {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        Ok(Some(Line {
            bytes: &self.line,
            truncated,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor};

    fn collect(input: &[u8], cap: usize, buffer: usize) -> Vec<(Vec<u8>, bool)> {
        let mut lines = CappedLines::new(BufReader::with_capacity(buffer, Cursor::new(input)), cap);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push((line.bytes.to_vec(), line.truncated));
        }
        assert_eq!(lines.bytes_read(), input.len() as u64);
        out
    }

    #[test]
    fn splits_lines_and_strips_terminators() {
        let out = collect(b"a\r\nbb\n\nlast", 100, 3);
        let lines: Vec<&[u8]> = out.iter().map(|(l, _)| l.as_slice()).collect();
        assert_eq!(lines, vec![&b"a"[..], b"bb", b"", b"last"]);
        assert!(out.iter().all(|(_, t)| !t));
    }

    #[test]
    fn caps_huge_lines_across_buffer_refills() {
        let mut input = vec![b'x'; 100_000];
        input.extend_from_slice(b"\nshort\n");
        let out = collect(&input, 1_000, 4_096);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].0.len(), 1_000);
        assert!(out[0].1);
        assert_eq!(out[1], (b"short".to_vec(), false));
    }

    #[test]
    fn empty_input_has_no_lines() {
        assert!(collect(b"", 10, 8).is_empty());
    }
}
