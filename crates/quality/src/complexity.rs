//! `complexity`: per-function cyclomatic complexity and length, most complex first.

use std::collections::BTreeMap;

use code_intel::walk::WalkSummary;
use code_intel::{FunctionMetrics, Language};
use schemars::JsonSchema;
use serde::Serialize;

use crate::scan::Scan;

/// A function and the file it is in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct FunctionEntry {
    /// Path relative to the analyzed root.
    pub file: String,
    pub language: Language,
    #[serde(flatten)]
    pub metrics: FunctionMetrics,
}

/// Per-language function statistics.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct LanguageComplexity {
    pub language: Language,
    pub files: usize,
    pub functions: usize,
    pub average_complexity: f64,
    pub max_complexity: u32,
}

/// The result of `complexity`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct ComplexityReport {
    /// Functions with complexity >= threshold, most complex first (ties: longest first),
    /// at most `limit` of them.
    pub functions: Vec<FunctionEntry>,
    pub threshold: u32,
    /// Functions with complexity >= threshold, including those cut by `limit`.
    pub functions_at_or_over_threshold: usize,
    /// True when `limit` cut the list.
    pub truncated: bool,
    pub files_analyzed: usize,
    pub functions_analyzed: usize,
    pub average_complexity: f64,
    pub max_complexity: u32,
    pub by_language: Vec<LanguageComplexity>,
    /// Files with syntax errors: tree-sitter recovered, their numbers may be off.
    pub files_with_syntax_errors: Vec<String>,
    pub walk: WalkSummary,
}

/// Orders functions most complex first, then longest, then by location.
pub fn hotness_order(a: &FunctionEntry, b: &FunctionEntry) -> std::cmp::Ordering {
    b.metrics
        .cyclomatic_complexity
        .cmp(&a.metrics.cyclomatic_complexity)
        .then_with(|| b.metrics.nloc.cmp(&a.metrics.nloc))
        .then_with(|| a.file.cmp(&b.file))
        .then_with(|| a.metrics.start_line.cmp(&b.metrics.start_line))
}

/// All functions of a scan, unsorted.
pub fn all_functions(scan: &Scan) -> Vec<FunctionEntry> {
    scan.files
        .iter()
        .filter_map(|file| file.language.map(|language| (file, language)))
        .flat_map(|(file, language)| {
            file.functions.iter().map(move |metrics| FunctionEntry {
                file: file.path.clone(),
                language,
                metrics: metrics.clone(),
            })
        })
        .collect()
}

pub fn complexity_report(scan: &Scan, threshold: u32, limit: usize) -> ComplexityReport {
    let mut functions = all_functions(scan);
    let functions_analyzed = functions.len();
    let total: u64 = functions
        .iter()
        .map(|f| u64::from(f.metrics.cyclomatic_complexity))
        .sum();
    let max_complexity = functions
        .iter()
        .map(|f| f.metrics.cyclomatic_complexity)
        .max()
        .unwrap_or(0);

    let mut by_language: BTreeMap<Language, (usize, usize, u64, u32)> = BTreeMap::new();
    for file in &scan.files {
        if let Some(language) = file.language {
            let entry = by_language.entry(language).or_default();
            entry.0 += 1;
            for function in &file.functions {
                entry.1 += 1;
                entry.2 += u64::from(function.cyclomatic_complexity);
                entry.3 = entry.3.max(function.cyclomatic_complexity);
            }
        }
    }

    functions.retain(|f| f.metrics.cyclomatic_complexity >= threshold);
    functions.sort_by(hotness_order);
    let functions_at_or_over_threshold = functions.len();
    let truncated = functions.len() > limit;
    functions.truncate(limit);

    ComplexityReport {
        functions,
        threshold,
        functions_at_or_over_threshold,
        truncated,
        files_analyzed: by_language.values().map(|entry| entry.0).sum(),
        functions_analyzed,
        average_complexity: average(total, functions_analyzed),
        max_complexity,
        by_language: by_language
            .into_iter()
            .map(|(language, (files, count, sum, max))| LanguageComplexity {
                language,
                files,
                functions: count,
                average_complexity: average(sum, count),
                max_complexity: max,
            })
            .collect(),
        files_with_syntax_errors: scan
            .files
            .iter()
            .filter(|file| file.has_syntax_errors)
            .map(|file| file.path.clone())
            .collect(),
        walk: scan.walk.clone(),
    }
}

/// Mean rounded to two decimals (0 for no items), for readable JSON.
pub fn average(sum: u64, count: usize) -> f64 {
    if count == 0 {
        return 0.0;
    }
    (sum as f64 / count as f64 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scan::{ScanOptions, scan};
    use code_intel::walk::WalkOptions;
    use std::fs;

    #[test]
    fn sorts_filters_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("a.py"),
            "def simple():\n    return 1\n\ndef branchy(x):\n    if x:\n        return 1\n    elif x > 2 and x < 5:\n        return 2\n    return 3\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("b.go"),
            "package b\n\nfunc Pick(a int) int {\n\tif a > 1 {\n\t\treturn 1\n\t}\n\treturn 0\n}\n",
        )
        .unwrap();
        fs::write(dir.path().join("broken.rs"), "fn ok() {}\nfn broken( {\n").unwrap();
        let scan = scan(
            dir.path(),
            &WalkOptions::default(),
            ScanOptions {
                max_line_chars: 200,
            },
            || false,
        );

        let report = complexity_report(&scan, 2, 1);
        assert_eq!(report.functions.len(), 1);
        assert_eq!(report.functions[0].file, "a.py");
        assert_eq!(report.functions[0].metrics.name, "branchy");
        assert_eq!(report.functions[0].metrics.cyclomatic_complexity, 4);
        assert_eq!(report.functions[0].metrics.start_line, 4);
        assert_eq!(report.functions_at_or_over_threshold, 2);
        assert!(report.truncated);
        assert_eq!(report.files_analyzed, 3);
        assert_eq!(report.max_complexity, 4);
        assert_eq!(
            report.files_with_syntax_errors,
            vec!["broken.rs".to_owned()]
        );
        let python = &report
            .by_language
            .iter()
            .find(|l| l.language == Language::Python)
            .unwrap();
        assert_eq!((python.functions, python.average_complexity), (2, 2.5));

        let everything = complexity_report(&scan, 1, 100);
        assert!(!everything.truncated);
        assert_eq!(everything.functions.len(), everything.functions_analyzed);
    }
}
