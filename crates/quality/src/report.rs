//! `quality_report`: line counts, complexity and issues combined into a score and the
//! files that most need attention.

use std::collections::BTreeMap;

use code_intel::walk::WalkSummary;
use mcp_server_runtime::round2;
use schemars::JsonSchema;
use serde::Serialize;

use crate::complexity::{FunctionEntry, all_functions, average, hotness_order};
use crate::issues::{IssueCounts, IssueKind, IssueThresholds, find_issues};
use crate::scan::Scan;
use crate::stats::{CodeStats, LanguageStats, LineCounts};

const TOP_HOTSPOTS: usize = 10;
const TOP_FUNCTIONS: usize = 10;
const TOP_LANGUAGES: usize = 8;

/// Points taken off the score of 100, by cause. Each cause is capped so that one problem
/// cannot hide the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, JsonSchema)]
pub struct Penalties {
    /// Share of functions over the complexity threshold × 150, at most 30.
    pub complex_functions: f64,
    /// (average complexity − 3) × 3, at most 15.
    pub average_complexity: f64,
    /// Duplicated lines / code lines × 250, at most 25.
    pub duplication: f64,
    /// Markers per 1000 code lines × 2, at most 10.
    pub markers: f64,
    /// Long lines per 1000 code lines, at most 10.
    pub long_lines: f64,
    /// Share of files that are too large × 100, at most 10.
    pub large_files: f64,
}

impl Penalties {
    fn total(&self) -> f64 {
        self.complex_functions
            + self.average_complexity
            + self.duplication
            + self.markers
            + self.long_lines
            + self.large_files
    }
}

/// A file that needs attention, and why.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Hotspot {
    pub file: String,
    /// Higher needs attention sooner: complexity above the threshold plus weighted issues.
    pub score: f64,
    pub max_complexity: u32,
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct QualitySummary {
    pub lines: LineCounts,
    pub functions: usize,
    pub average_complexity: f64,
    pub max_complexity: u32,
    pub issues: IssueCounts,
}

/// The result of `quality_report`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct QualityReport {
    /// 0 (worst) to 100 (best): 100 minus the penalties.
    pub score: u32,
    /// A (>= 90), B (>= 80), C (>= 70), D (>= 60) or F.
    pub grade: char,
    pub penalties: Penalties,
    pub summary: QualitySummary,
    /// The largest languages by lines of code.
    pub languages: Vec<LanguageStats>,
    /// Files most in need of attention, worst first.
    pub hotspots: Vec<Hotspot>,
    /// The most complex functions.
    pub most_complex_functions: Vec<FunctionEntry>,
    pub thresholds: IssueThresholds,
    /// True when a cap or cancellation left files out: the score covers what was read.
    pub partial: bool,
    pub walk: WalkSummary,
}

pub fn quality_report(
    stats: &CodeStats,
    scan: &Scan,
    thresholds: &IssueThresholds,
) -> QualityReport {
    let issues = find_issues(scan, thresholds, usize::MAX);
    let mut functions = all_functions(scan);
    let complexity_sum: u64 = functions
        .iter()
        .map(|f| u64::from(f.metrics.cyclomatic_complexity))
        .sum();
    let average_complexity = average(complexity_sum, functions.len());
    let max_complexity = functions
        .iter()
        .map(|f| f.metrics.cyclomatic_complexity)
        .max()
        .unwrap_or(0);

    let counts = issues.counts;
    let code_lines = stats.total.code.max(1) as f64;
    let per_kloc = |count: usize| count as f64 * 1000.0 / code_lines;
    let share = |count: usize, of: usize| {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    };
    let penalties = Penalties {
        complex_functions: round2(
            (share(counts.complex_functions, functions.len()) * 150.0).min(30.0),
        ),
        average_complexity: round2(((average_complexity - 3.0).max(0.0) * 3.0).min(15.0)),
        duplication: round2((counts.duplicated_lines as f64 / code_lines * 250.0).min(25.0)),
        markers: round2((per_kloc(counts.markers) * 2.0).min(10.0)),
        long_lines: round2(per_kloc(counts.long_lines).min(10.0)),
        large_files: round2((share(counts.large_files, scan.files.len()) * 100.0).min(10.0)),
    };
    let score = (100.0 - penalties.total()).clamp(0.0, 100.0).round() as u32;

    let mut per_file: BTreeMap<&str, Hotspot> = BTreeMap::new();
    for function in &functions {
        let complexity = function.metrics.cyclomatic_complexity;
        let hotspot = hotspot_entry(&mut per_file, &function.file);
        hotspot.max_complexity = hotspot.max_complexity.max(complexity);
        if complexity > thresholds.max_complexity {
            hotspot.score += f64::from(complexity - thresholds.max_complexity) + 2.0;
            hotspot.reasons.push(format!(
                "{} (line {}) has complexity {complexity}",
                function.metrics.qualified_name, function.metrics.start_line
            ));
        }
    }
    for issue in &issues.issues {
        let weight = match issue.kind {
            IssueKind::ComplexFunction => continue,
            IssueKind::LongFunction => 2.0,
            IssueKind::DuplicateBlock => 2.0,
            IssueKind::LargeFile => 3.0,
            IssueKind::Marker => 0.5,
            IssueKind::LongLine => 0.25,
        };
        let hotspot = hotspot_entry(&mut per_file, &issue.file);
        hotspot.score += weight;
        if issue.kind != IssueKind::LongLine && issue.kind != IssueKind::Marker {
            hotspot
                .reasons
                .push(format!("line {}: {}", issue.line, issue.message));
        }
    }
    for file in &scan.files {
        let markers = file.markers.len();
        let long_lines = file
            .long_lines
            .iter()
            .filter(|(_, chars)| *chars > thresholds.max_line_length)
            .count();
        if let Some(hotspot) = per_file.get_mut(file.path.as_str()) {
            if markers > 0 {
                hotspot
                    .reasons
                    .push(format!("{markers} TODO/FIXME/HACK markers"));
            }
            if long_lines > 0 {
                hotspot.reasons.push(format!(
                    "{long_lines} lines over {} characters",
                    thresholds.max_line_length
                ));
            }
        }
    }
    let mut hotspots: Vec<Hotspot> = per_file
        .into_values()
        .filter(|hotspot| hotspot.score > 0.0)
        .collect();
    hotspots.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.file.cmp(&b.file))
    });
    hotspots.truncate(TOP_HOTSPOTS);
    for hotspot in &mut hotspots {
        hotspot.score = round2(hotspot.score);
    }

    functions.sort_by(hotness_order);
    functions.truncate(TOP_FUNCTIONS);

    QualityReport {
        score,
        grade: grade(score),
        penalties,
        summary: QualitySummary {
            lines: stats.total,
            functions: complexity_count(scan),
            average_complexity,
            max_complexity,
            issues: counts,
        },
        languages: stats
            .languages
            .iter()
            .take(TOP_LANGUAGES)
            .cloned()
            .collect(),
        hotspots,
        most_complex_functions: functions,
        thresholds: *thresholds,
        partial: stats.walk.is_partial() || scan.walk.is_partial(),
        walk: scan.walk.clone(),
    }
}

fn complexity_count(scan: &Scan) -> usize {
    scan.files.iter().map(|file| file.functions.len()).sum()
}

fn hotspot_entry<'m, 'a>(
    per_file: &'m mut BTreeMap<&'a str, Hotspot>,
    file: &'a str,
) -> &'m mut Hotspot {
    per_file.entry(file).or_insert_with(|| Hotspot {
        file: file.to_owned(),
        score: 0.0,
        max_complexity: 0,
        reasons: Vec::new(),
    })
}

fn grade(score: u32) -> char {
    match score {
        90.. => 'A',
        80..=89 => 'B',
        70..=79 => 'C',
        60..=69 => 'D',
        _ => 'F',
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, scan};
    use crate::stats::code_stats;
    use code_intel::walk::WalkOptions;
    use std::fs;

    fn report_for(dir: &std::path::Path) -> QualityReport {
        let options = WalkOptions::default();
        let stats = code_stats(dir, &options, || false);
        let scan = scan(
            dir,
            &options,
            ScanOptions {
                max_line_chars: 200,
            },
            || false,
        );
        quality_report(&stats, &scan, &IssueThresholds::default())
    }

    #[test]
    fn clean_code_scores_full_marks() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("lib.rs"),
            "pub fn add(a: u8, b: u8) -> u8 {\n    a + b\n}\n",
        )
        .unwrap();
        let report = report_for(dir.path());
        assert_eq!((report.score, report.grade), (100, 'A'));
        assert!(report.hotspots.is_empty());
        assert_eq!(report.summary.functions, 1);
        assert_eq!(report.summary.lines.code, 3);
        assert!(!report.partial);
    }

    #[test]
    fn problems_lower_the_score_and_name_the_hotspot() {
        let dir = tempfile::tempdir().unwrap();
        let branches: String = (0..30)
            .map(|i| format!("    if x == {i} {{ return {i}; }} // TODO\n"))
            .collect();
        fs::write(
            dir.path().join("bad.rs"),
            format!("fn tangled(x: u32) -> u32 {{\n{branches}    0\n}}\n"),
        )
        .unwrap();
        fs::write(dir.path().join("good.rs"), "fn fine() {}\n").unwrap();
        let report = report_for(dir.path());
        assert!(report.score < 60, "{report:#?}");
        assert_eq!(report.grade, 'F');
        assert_eq!(report.hotspots.len(), 1);
        assert_eq!(report.hotspots[0].file, "bad.rs");
        assert_eq!(report.hotspots[0].max_complexity, 31);
        assert!(
            report.hotspots[0]
                .reasons
                .iter()
                .any(|r| r.contains("tangled"))
        );
        assert_eq!(report.most_complex_functions[0].metrics.name, "tangled");
        assert_eq!(report.penalties.complex_functions, 30.0);
    }

    #[test]
    fn empty_tree_is_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let report = report_for(dir.path());
        assert_eq!(report.score, 100);
        assert_eq!(report.summary.functions, 0);
    }
}
