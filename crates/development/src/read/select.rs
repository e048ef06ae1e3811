//! Choosing the bytes of a file: line ranges, byte ranges and tails, each bounded by
//! `max` bytes and saying where to continue when cut.

use std::fs::File;
use std::io::{BufRead as _, BufReader, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::FileExt as _;

/// Lines are counted to the end (for `total_lines`) only in files up to this size.
const MAX_COUNTED_BYTES: u64 = 64 * 1024 * 1024;

/// The bytes chosen, where they are, and how to continue.
pub(super) struct Selection {
    pub bytes: Vec<u8>,
    pub offset: u64,
    pub lines: Option<(u64, u64)>,
    pub total_lines: Option<u64>,
    pub truncated: bool,
    pub next_line: Option<u64>,
    pub next_offset: Option<u64>,
    pub note: Option<String>,
}

pub(super) fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

pub(super) fn read_bytes(
    file: &File,
    size: u64,
    offset: u64,
    length: Option<u64>,
    max: usize,
) -> std::io::Result<Selection> {
    let wanted = length.unwrap_or(u64::MAX).min(size.saturating_sub(offset));
    let take = wanted.min(max as u64);
    let mut bytes = vec![0; usize::try_from(take).unwrap_or(max)];
    let read = read_at_most(file, &mut bytes, offset)?;
    bytes.truncate(read);
    let truncated = (read as u64) < wanted;
    let end = offset + read as u64;
    Ok(Selection {
        bytes,
        offset,
        lines: None,
        total_lines: None,
        truncated,
        next_line: None,
        next_offset: truncated.then_some(end),
        note: truncated.then(|| {
            format!(
                "truncated at max_bytes: returned bytes {offset}..{end} of {size}; continue with offset={end}"
            )
        }),
    })
}

pub(super) fn read_lines(
    file: &File,
    size: u64,
    start: u64,
    end: Option<u64>,
    max: usize,
) -> std::io::Result<Selection> {
    if start == 1
        && end.is_none()
        && size <= max as u64
        && let Some(whole) = read_whole(file, size)?
    {
        return Ok(whole);
    }
    let mut reader = BufReader::with_capacity(buffer_for(size, 64 * 1024), file);
    reader.seek(SeekFrom::Start(0))?;
    let mut line = Vec::new();
    let mut number = 0u64;
    let mut position = 0u64;
    let mut selection = Selection {
        // Whole-file reads are the common case: one allocation, no regrowth.
        bytes: Vec::with_capacity(usize::try_from(size).map_or(max, |size| size.min(max))),
        offset: 0,
        lines: None,
        total_lines: None,
        truncated: false,
        next_line: None,
        next_offset: None,
        note: None,
    };
    let mut first_returned = None;
    loop {
        line.clear();
        // Read at most one byte past what can still be returned, so a huge line without
        // a newline cannot make this read unbounded.
        let room = max - selection.bytes.len();
        let read = (&mut reader)
            .take(room as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if read == 0 {
            break;
        }
        // Either a whole line (with its newline, or the last one of the file) or the
        // first `room + 1` bytes of a longer line.
        let whole = line.ends_with(b"\n") || position + read as u64 >= size;
        let this_line = number + 1;
        if this_line < start {
            let rest = if whole { 0 } else { skip_line(&mut reader)? };
            position += read as u64 + rest;
            number += 1;
            continue;
        }
        if end.is_some_and(|end| this_line > end) {
            break;
        }
        let first = *first_returned.get_or_insert(this_line);
        if selection.bytes.is_empty() {
            selection.offset = position;
        }
        if !whole || selection.bytes.len() + line.len() > max {
            selection.truncated = true;
            if selection.bytes.is_empty() {
                // Not even this line fits: return its start, continue by offset.
                selection
                    .bytes
                    .extend_from_slice(&line[..room.min(line.len())]);
                let next = position + selection.bytes.len() as u64;
                selection.next_offset = Some(next);
                selection.note = Some(format!(
                    "line {this_line} is longer than max_bytes ({max}); continue with offset={next}"
                ));
                selection.lines = Some((this_line, this_line));
            } else {
                selection.next_line = Some(this_line);
                selection.note = Some(format!(
                    "truncated at max_bytes ({max}): returned lines {first}..={}; continue with start_line={this_line}",
                    this_line - 1
                ));
            }
            break;
        }
        selection.bytes.extend_from_slice(&line);
        position += read as u64;
        number += 1;
        selection.lines = Some((first, number));
    }
    if size <= MAX_COUNTED_BYTES {
        selection.total_lines = Some(count_lines(file, size)?);
    }
    Ok(selection)
}

/// The most common request, a whole file that fits: one read, lines counted in memory
/// (no line-by-line pass, no second read to count them). `None` when the file's size
/// changed since it was opened: the caller takes the general path.
fn read_whole(file: &File, size: u64) -> std::io::Result<Option<Selection>> {
    let Ok(len) = usize::try_from(size) else {
        return Ok(None);
    };
    // One byte more than expected shows a file that grew.
    let mut bytes = vec![0; len + 1];
    let read = read_at_most(file, &mut bytes, 0)?;
    if read != len {
        return Ok(None);
    }
    bytes.truncate(len);
    let lines = memchr::memchr_iter(b'\n', &bytes).count() as u64
        + u64::from(bytes.last().is_some_and(|byte| *byte != b'\n'));
    Ok(Some(Selection {
        bytes,
        offset: 0,
        lines: (lines > 0).then_some((1, lines)),
        total_lines: Some(lines),
        truncated: false,
        next_line: None,
        next_offset: None,
        note: None,
    }))
}

/// A read buffer for a file of `size` bytes: at most `max`, but no larger than the file
/// plus the byte that shows its end. Most files read are small, and a buffer sized for
/// big ones costs a fresh mapping and its page faults on every call. Never below 8 KiB:
/// files that report size 0 yet have content (procfs) must not be read a byte at a time.
fn buffer_for(size: u64, max: usize) -> usize {
    const FLOOR: usize = 8 * 1024;
    usize::try_from(size.saturating_add(1))
        .map_or(max, |fit| fit.max(FLOOR))
        .min(max)
}

/// Consumes the rest of the current line; returns the bytes skipped.
fn skip_line(reader: &mut BufReader<&File>) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(skipped);
        }
        match memchr::memchr(b'\n', buffer) {
            Some(at) => {
                reader.consume(at + 1);
                return Ok(skipped + at as u64 + 1);
            }
            None => {
                let n = buffer.len();
                reader.consume(n);
                skipped += n as u64;
            }
        }
    }
}

/// Lines in the file: newlines, plus one for a last line without a newline.
pub(super) fn count_lines(file: &File, size: u64) -> std::io::Result<u64> {
    let mut buffer = vec![0; buffer_for(size, 256 * 1024)];
    let mut offset = 0;
    let mut lines = 0u64;
    let mut last = b'\n';
    while offset < size {
        let read = read_at_most(file, &mut buffer, offset)?;
        if read == 0 {
            break;
        }
        lines += memchr::memchr_iter(b'\n', &buffer[..read]).count() as u64;
        last = buffer[read - 1];
        offset += read as u64;
    }
    Ok(lines + u64::from(last != b'\n'))
}

pub(super) fn read_tail(
    file: &File,
    size: u64,
    wanted: u64,
    max: usize,
) -> std::io::Result<Selection> {
    // Walk back from the end in chunks until `wanted` line starts are found. A newline at
    // the very end closes the last line rather than starting a new one.
    let chunk = 64 * 1024u64;
    let mut start = size;
    let mut found = 0u64;
    let mut position = size;
    let mut buffer = vec![0; buffer_for(size, chunk as usize)];
    'scan: while position > 0 {
        let from = position.saturating_sub(chunk);
        let read = read_at_most(file, &mut buffer[..(position - from) as usize], from)?;
        for (i, byte) in buffer[..read].iter().enumerate().rev() {
            let at = from + i as u64;
            if *byte == b'\n' && at + 1 < size {
                found += 1;
                if found == wanted {
                    start = at + 1;
                    break 'scan;
                }
            }
        }
        position = from;
        start = 0;
        // Reading back past max bytes cannot help: only the last max bytes are returned.
        if size - position > max as u64 + chunk {
            break;
        }
    }
    let available = size - start;
    let mut offset = start;
    let mut truncated = false;
    if available > max as u64 {
        // Keep the end: drop whole leading lines until the rest fits.
        truncated = true;
        offset = size - max as u64;
        let mut probe = vec![0; max];
        let read = read_at_most(file, &mut probe, offset)?;
        if let Some(newline) = memchr::memchr(b'\n', &probe[..read])
            && newline + 1 < read
        {
            offset += newline as u64 + 1;
        }
    }
    let mut bytes = vec![0; usize::try_from(size - offset).unwrap_or(max)];
    let read = read_at_most(file, &mut bytes, offset)?;
    bytes.truncate(read);
    let total_lines = (size <= MAX_COUNTED_BYTES)
        .then(|| count_lines(file, size))
        .transpose()?;
    let returned_lines = memchr::memchr_iter(b'\n', &bytes).count() as u64
        + u64::from(bytes.last().is_some_and(|b| *b != b'\n'));
    let lines = total_lines.map(|total| (total + 1 - returned_lines.min(total), total));
    Ok(Selection {
        bytes,
        offset,
        lines: lines.filter(|_| returned_lines > 0),
        total_lines,
        truncated,
        next_line: None,
        next_offset: None,
        note: truncated.then(|| {
            format!(
                "the last {wanted} lines are more than max_bytes ({max}); returned bytes {offset}..{size}, earlier lines left out"
            )
        }),
    })
}
