//! `find_issues`: markers, complex or long functions, long lines, large files and exact
//! duplicate blocks across files.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hasher};

use code_intel::walk::WalkSummary;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scan::{Scan, ScannedFile};

/// Thresholds of `find_issues`; every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(default)]
pub struct IssueThresholds {
    /// Functions with a cyclomatic complexity above this are reported (lizard's default: 15).
    pub max_complexity: u32,
    /// Functions spanning more lines than this are reported.
    pub max_function_lines: usize,
    /// Lines with more characters than this are reported.
    pub max_line_length: usize,
    /// Files with more lines than this are reported.
    pub max_file_lines: usize,
    /// Files larger than this many bytes are reported.
    pub max_file_bytes: u64,
    /// Identical runs of at least this many significant lines (blank and punctuation-only
    /// lines are skipped, indentation is ignored) in two files are reported.
    pub min_duplicate_lines: usize,
}

impl Default for IssueThresholds {
    fn default() -> Self {
        Self {
            max_complexity: 15,
            max_function_lines: 100,
            max_line_length: 200,
            max_file_lines: 2000,
            max_file_bytes: 1024 * 1024,
            min_duplicate_lines: 6,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueKind {
    Marker,
    ComplexFunction,
    LongFunction,
    LongLine,
    LargeFile,
    DuplicateBlock,
}

/// A place in a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Location {
    pub file: String,
    pub start_line: usize,
    pub end_line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Issue {
    pub kind: IssueKind,
    pub file: String,
    /// 1-based line (1 for whole-file issues).
    pub line: usize,
    pub message: String,
    /// For duplicate blocks: the other copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<Location>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct IssueCounts {
    pub markers: usize,
    pub complex_functions: usize,
    pub long_functions: usize,
    pub long_lines: usize,
    pub large_files: usize,
    pub duplicate_blocks: usize,
    /// Significant lines inside duplicate blocks (counted once per copy beyond the first).
    pub duplicated_lines: usize,
}

/// The result of `find_issues`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct IssuesReport {
    /// Issues ordered by file and line, at most `limit`.
    pub issues: Vec<Issue>,
    /// Counts of every issue found, including those cut by `limit`.
    pub counts: IssueCounts,
    pub truncated: bool,
    pub thresholds: IssueThresholds,
    pub walk: WalkSummary,
}

/// Copies of one text found at most this often are ignored: they are boilerplate
/// (license headers, generated tables), and pairing them all would be quadratic.
const MAX_COPIES_PER_WINDOW: usize = 8;

pub fn find_issues(scan: &Scan, thresholds: &IssueThresholds, limit: usize) -> IssuesReport {
    let mut issues = Vec::new();
    let mut counts = IssueCounts::default();
    for file in &scan.files {
        file_issues(file, thresholds, &mut issues, &mut counts);
    }
    for block in duplicate_blocks(&scan.files, thresholds.min_duplicate_lines.max(1)) {
        counts.duplicate_blocks += 1;
        counts.duplicated_lines += block.significant_lines;
        issues.push(Issue {
            kind: IssueKind::DuplicateBlock,
            file: block.first.file.clone(),
            line: block.first.start_line,
            message: format!(
                "{} lines (to line {}) are identical to {}:{}-{}",
                block.significant_lines,
                block.first.end_line,
                block.second.file,
                block.second.start_line,
                block.second.end_line
            ),
            duplicate_of: Some(block.second),
        });
    }
    issues.sort_by(|a, b| (&a.file, a.line, a.kind).cmp(&(&b.file, b.line, b.kind)));
    let truncated = issues.len() > limit;
    issues.truncate(limit);
    IssuesReport {
        issues,
        counts,
        truncated,
        thresholds: *thresholds,
        walk: scan.walk.clone(),
    }
}

fn file_issues(
    file: &ScannedFile,
    thresholds: &IssueThresholds,
    issues: &mut Vec<Issue>,
    counts: &mut IssueCounts,
) {
    let mut push = |kind, line, message: String| {
        issues.push(Issue {
            kind,
            file: file.path.clone(),
            line,
            message,
            duplicate_of: None,
        });
    };
    for marker in &file.markers {
        counts.markers += 1;
        push(IssueKind::Marker, marker.line, marker.text.clone());
    }
    for function in &file.functions {
        if function.cyclomatic_complexity > thresholds.max_complexity {
            counts.complex_functions += 1;
            push(
                IssueKind::ComplexFunction,
                function.start_line,
                format!(
                    "{} has cyclomatic complexity {} (over {}); split it into smaller functions",
                    function.qualified_name,
                    function.cyclomatic_complexity,
                    thresholds.max_complexity
                ),
            );
        }
        if function.lines > thresholds.max_function_lines {
            counts.long_functions += 1;
            push(
                IssueKind::LongFunction,
                function.start_line,
                format!(
                    "{} spans {} lines (over {})",
                    function.qualified_name, function.lines, thresholds.max_function_lines
                ),
            );
        }
    }
    for &(line, chars) in &file.long_lines {
        if chars > thresholds.max_line_length {
            counts.long_lines += 1;
            push(
                IssueKind::LongLine,
                line,
                format!(
                    "line has {chars} characters (over {})",
                    thresholds.max_line_length
                ),
            );
        }
    }
    if file.lines > thresholds.max_file_lines || file.bytes > thresholds.max_file_bytes {
        counts.large_files += 1;
        push(
            IssueKind::LargeFile,
            1,
            format!(
                "file has {} lines and {} bytes (limits {} lines, {} bytes)",
                file.lines, file.bytes, thresholds.max_file_lines, thresholds.max_file_bytes
            ),
        );
    }
}

/// Two copies of a run of identical significant lines in different files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateBlock {
    pub first: Location,
    pub second: Location,
    pub significant_lines: usize,
}

/// Finds maximal runs of at least `window` identical significant lines shared by two
/// files: hash every window of `window` consecutive significant lines, pair up windows
/// with equal hashes in different files, and merge pairs that continue each other.
pub fn duplicate_blocks(files: &[ScannedFile], window: usize) -> Vec<DuplicateBlock> {
    let mut by_hash: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
    for (file_index, file) in files.iter().enumerate() {
        let lines = &file.significant_lines;
        for start in 0..lines.len().saturating_sub(window - 1) {
            let mut hasher = DefaultHasher::new();
            for (line_hash, _) in &lines[start..start + window] {
                hasher.write_u64(*line_hash);
            }
            by_hash
                .entry(hasher.finish())
                .or_default()
                .push((file_index, start));
        }
    }
    // (file a, file b, diagonal offset, start in a) with a < b.
    let mut pairs: Vec<(usize, usize, isize, usize)> = Vec::new();
    for copies in by_hash.values() {
        if copies.len() < 2 || copies.len() > MAX_COPIES_PER_WINDOW {
            continue;
        }
        for (i, &(file_a, start_a)) in copies.iter().enumerate() {
            for &(file_b, start_b) in &copies[i + 1..] {
                if file_a == file_b {
                    continue;
                }
                let ((fa, sa), (fb, sb)) = if file_a < file_b {
                    ((file_a, start_a), (file_b, start_b))
                } else {
                    ((file_b, start_b), (file_a, start_a))
                };
                pairs.push((fa, fb, sb as isize - sa as isize, sa));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();

    let mut blocks = Vec::new();
    let mut index = 0;
    while index < pairs.len() {
        let (file_a, file_b, offset, start_a) = pairs[index];
        let mut end_a = start_a;
        while index + 1 < pairs.len() && pairs[index + 1] == (file_a, file_b, offset, end_a + 1) {
            index += 1;
            end_a += 1;
        }
        index += 1;
        let last_a = end_a + window - 1;
        let start_b = (start_a as isize + offset) as usize;
        let last_b = (last_a as isize + offset) as usize;
        let lines_a = &files[file_a].significant_lines;
        let lines_b = &files[file_b].significant_lines;
        blocks.push(DuplicateBlock {
            first: Location {
                file: files[file_a].path.clone(),
                start_line: lines_a[start_a].1,
                end_line: lines_a[last_a].1,
            },
            second: Location {
                file: files[file_b].path.clone(),
                start_line: lines_b[start_b].1,
                end_line: lines_b[last_b].1,
            },
            significant_lines: last_a - start_a + 1,
        });
    }
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, scan};
    use code_intel::walk::WalkOptions;
    use std::fs;

    fn scan_dir(dir: &std::path::Path) -> Scan {
        scan(
            dir,
            &WalkOptions::default(),
            ScanOptions {
                max_line_chars: 200,
            },
            || false,
        )
    }

    #[test]
    fn finds_every_kind_of_issue() {
        let dir = tempfile::tempdir().unwrap();
        let shared: String = (1..=8)
            .map(|i| format!("    total += step({i});\n"))
            .collect();
        fs::write(
            dir.path().join("a.rs"),
            format!("// FIXME: handle overflow\nfn a() {{\n{shared}}}\n"),
        )
        .unwrap();
        fs::write(
            dir.path().join("b.rs"),
            format!(
                "fn b() {{\n    let x = 1;\n\n{}}}\n",
                shared.replace("    ", "\t")
            ),
        )
        .unwrap();
        let branches: String = (0..16)
            .map(|i| format!("    if x == {i} {{ return {i}; }}\n"))
            .collect();
        fs::write(
            dir.path().join("c.rs"),
            format!(
                "fn branchy(x: u32) -> u32 {{\n{branches}    0\n}}\nconst S: &str = \"{}\";\n",
                "x".repeat(250)
            ),
        )
        .unwrap();
        fs::write(dir.path().join("big.txt"), "line\n".repeat(2001)).unwrap();

        let report = find_issues(&scan_dir(dir.path()), &IssueThresholds::default(), 100);
        assert_eq!(
            report.counts,
            IssueCounts {
                markers: 1,
                complex_functions: 1,
                long_functions: 0,
                long_lines: 1,
                large_files: 1,
                duplicate_blocks: 1,
                duplicated_lines: 8,
            }
        );
        let duplicate = report
            .issues
            .iter()
            .find(|issue| issue.kind == IssueKind::DuplicateBlock)
            .unwrap();
        assert_eq!((duplicate.file.as_str(), duplicate.line), ("a.rs", 3));
        assert_eq!(
            duplicate.duplicate_of,
            Some(Location {
                file: "b.rs".into(),
                start_line: 4,
                end_line: 11
            })
        );
        let complex = report
            .issues
            .iter()
            .find(|i| i.kind == IssueKind::ComplexFunction)
            .unwrap();
        assert!(
            complex
                .message
                .contains("branchy has cyclomatic complexity 17"),
            "{}",
            complex.message
        );

        let limited = find_issues(&scan_dir(dir.path()), &IssueThresholds::default(), 2);
        assert_eq!(limited.issues.len(), 2);
        assert!(limited.truncated);
        assert_eq!(limited.counts, report.counts);
    }

    #[test]
    fn short_or_single_file_repeats_are_not_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let block: String = (1..=6).map(|i| format!("call({i});\n")).collect();
        fs::write(dir.path().join("one.js"), format!("{block}{block}")).unwrap();
        fs::write(dir.path().join("two.js"), "call(1);\ncall(2);\n").unwrap();
        let report = find_issues(&scan_dir(dir.path()), &IssueThresholds::default(), 100);
        assert_eq!(report.counts.duplicate_blocks, 0);
    }
}
