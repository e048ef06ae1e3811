//! `code_stats`: lines of code per language, counted by the `tokei` library exactly as
//! the `tokei` command line tool counts them.

use std::collections::BTreeMap;
use std::path::Path;

use code_intel::walk::{WalkOptions, WalkSummary, walk_paths};
use schemars::JsonSchema;
use serde::Serialize;
use tokei::{Config, LanguageType};

/// Line counts of a set of files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LineCounts {
    pub files: usize,
    /// code + comments + blanks.
    pub lines: usize,
    pub code: usize,
    pub comments: usize,
    pub blanks: usize,
}

/// The counts of one language (tokei's row for it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct LanguageStats {
    /// tokei's language name (`Rust`, `Python`, `Markdown`, ...).
    pub language: String,
    #[serde(flatten)]
    pub counts: LineCounts,
    /// Lines of other languages embedded in these files (code blocks in Markdown,
    /// scripts in HTML, doc-test code in Rust comments). They count in the total, as in
    /// tokei's `(Total)` rows.
    pub embedded: Option<LineCounts>,
}

/// The result of `code_stats`.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CodeStats {
    /// Languages by lines of code, largest first.
    pub languages: Vec<LanguageStats>,
    /// Totals including embedded languages (tokei's `Total` row).
    pub total: LineCounts,
    /// Files tokei could not read; their language's counts may be low.
    pub unreadable_files: Vec<String>,
    pub walk: WalkSummary,
}

/// The walk tokei itself does: `.gitignore`, `.ignore` and `.tokeignore`, no hidden files.
pub fn tokei_walk_options(base: &WalkOptions) -> WalkOptions {
    let mut options = base.clone();
    options.include_hidden = false;
    options.custom_ignore_filenames = vec![".tokeignore".to_owned()];
    options
}

/// Counts the lines of every file under `root` whose language tokei recognizes.
pub fn code_stats(
    root: &Path,
    options: &WalkOptions,
    should_stop: impl Fn() -> bool + Sync,
) -> CodeStats {
    let config = Config::default();
    let output = walk_paths(
        root,
        &tokei_walk_options(options),
        should_stop,
        |path, _| {
            let language = LanguageType::from_path(path, &config)?;
            Some((language, language.parse(path.to_path_buf(), &config)))
        },
    );

    let mut by_language: BTreeMap<LanguageType, tokei::Language> = BTreeMap::new();
    let mut unreadable_files = Vec::new();
    for (language_type, parsed) in output.items {
        let language = by_language.entry(language_type).or_default();
        match parsed {
            Ok(report) => language.add_report(report),
            Err((error, path)) => {
                language.mark_inaccurate();
                unreadable_files.push(format!("{}: {error}", path.display()));
            }
        }
    }
    unreadable_files.sort();

    let mut total = LineCounts::default();
    let mut languages = Vec::with_capacity(by_language.len());
    for (language_type, mut language) in by_language {
        language.total();
        let own = LineCounts {
            files: language.reports.len(),
            lines: language.lines(),
            code: language.code,
            comments: language.comments,
            blanks: language.blanks,
        };
        let summary = language.summarise();
        let embedded = LineCounts {
            files: 0,
            lines: summary.lines() - own.lines,
            code: summary.code - own.code,
            comments: summary.comments - own.comments,
            blanks: summary.blanks - own.blanks,
        };
        total.files += own.files;
        total.lines += summary.lines();
        total.code += summary.code;
        total.comments += summary.comments;
        total.blanks += summary.blanks;
        languages.push(LanguageStats {
            language: language_type.name().to_owned(),
            counts: own,
            embedded: (embedded.lines > 0).then_some(embedded),
        });
    }
    languages.sort_by(|a, b| {
        b.counts
            .code
            .cmp(&a.counts.code)
            .then_with(|| a.language.cmp(&b.language))
    });
    CodeStats {
        languages,
        total,
        unreadable_files,
        walk: output.summary,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn never() -> bool {
        false
    }

    #[test]
    fn counts_per_language_like_tokei() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir(root.join(".git")).unwrap();
        fs::write(root.join(".gitignore"), "generated.rs\n").unwrap();
        fs::write(
            root.join("main.rs"),
            "// entry point\nfn main() {\n\n    println!(\"hi\"); /* trailing */\n}\n",
        )
        .unwrap();
        fs::write(root.join("generated.rs"), "fn ignored() {}\n").unwrap();
        fs::write(
            root.join("tool.py"),
            "# comment\nimport os\n\n\nprint(os.name)\n",
        )
        .unwrap();
        fs::write(root.join("data.bin"), b"\x00\x01\x02").unwrap();
        fs::write(
            root.join("README.md"),
            "# Title\n\nText.\n\n```rust\nfn x() {}\n// c\n```\n",
        )
        .unwrap();

        let stats = code_stats(root, &WalkOptions::default(), never);
        let row = |name: &str| {
            stats
                .languages
                .iter()
                .find(|language| language.language == name)
                .unwrap_or_else(|| panic!("{name} missing from {stats:#?}"))
        };
        let rust = row("Rust");
        assert_eq!(
            rust.counts,
            LineCounts {
                files: 1,
                lines: 5,
                code: 3,
                comments: 1,
                blanks: 1
            }
        );
        let python = row("Python");
        assert_eq!(
            python.counts,
            LineCounts {
                files: 1,
                lines: 5,
                code: 2,
                comments: 1,
                blanks: 2
            }
        );
        let markdown = row("Markdown");
        let embedded = markdown.embedded.expect("the rust code block is embedded");
        assert_eq!((embedded.code, embedded.comments), (1, 1));
        assert_eq!(stats.total.files, 3);
        assert_eq!(
            stats.total.lines,
            rust.counts.lines + python.counts.lines + markdown.counts.lines + embedded.lines
        );
        assert!(stats.unreadable_files.is_empty());
        assert!(!stats.walk.is_partial());
    }

    #[test]
    fn empty_directory_has_no_languages() {
        let dir = tempfile::tempdir().unwrap();
        let stats = code_stats(dir.path(), &WalkOptions::default(), never);
        assert!(stats.languages.is_empty());
        assert_eq!(stats.total, LineCounts::default());
    }
}
