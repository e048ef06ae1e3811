//! `code_stats`: lines of code per language, counted by the `tokei` library exactly as
//! the `tokei` command line tool counts them.

use std::collections::BTreeMap;
use std::io::Read as _;
use std::os::fd::AsRawFd as _;
use std::path::Path;

use code_intel::walk::{WalkOptions, WalkSummary, walk_paths};
use encoding_rs_io::DecodeReaderBytesBuilder;
use mcp_server_runtime::Opened;
use schemars::JsonSchema;
use serde::Serialize;
use tokei::{Config, LanguageType, Report};

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

/// Counts the lines of every file under `root` (opened by name; see [`code_stats_in`]).
pub fn code_stats(
    root: &Path,
    options: &WalkOptions,
    should_stop: impl Fn() -> bool + Sync,
) -> CodeStats {
    match Opened::open_ambient(root) {
        Ok(root) => code_stats_in(&root, options, should_stop),
        Err(error) => CodeStats {
            languages: Vec::new(),
            total: LineCounts::default(),
            unreadable_files: Vec::new(),
            walk: WalkSummary::unopenable_root(&error),
        },
    }
}

/// Counts the lines of every file under the opened `root` whose language tokei
/// recognizes. The tree is listed by name, but every file is read beneath `root`'s
/// descriptor (a link swapped in mid-walk cannot lead the count outside, a FIFO cannot
/// block it).
pub fn code_stats_in(
    root: &Opened,
    options: &WalkOptions,
    should_stop: impl Fn() -> bool + Sync,
) -> CodeStats {
    let config = Config::default();
    let output = walk_paths(
        root.path(),
        &tokei_walk_options(options),
        should_stop,
        |path, _| parse_walked(root, path, options.max_file_bytes, &config),
    );
    let mut by_language: BTreeMap<LanguageType, tokei::Language> = BTreeMap::new();
    let mut unreadable_files = Vec::new();
    for (language_type, parsed) in output.items {
        let language = by_language.entry(language_type).or_default();
        match parsed {
            Ok(report) => language.add_report(report),
            Err(error) => {
                language.mark_inaccurate();
                unreadable_files.push(error);
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

/// What tokei's `LanguageType::parse(path)` does, with the file opened beneath `root`:
/// the language from the name (else from a shebang line), the contents transcoded from
/// UTF-16 when they start with its byte-order mark, then counted.
fn parse_walked(
    root: &Opened,
    path: &Path,
    limit: u64,
    config: &Config,
) -> Option<(LanguageType, Result<Report, String>)> {
    let name = path.file_name()?;
    // tokei's `from_path` looks at the name, and for a name without an extension falls
    // back to opening the file *by name* for a shebang. Under `/dev/null/`, which cannot
    // exist, that fallback finds nothing; the shebang is read from our descriptor below.
    let by_name = LanguageType::from_path(Path::new("/dev/null").join(name), config);
    if by_name.is_none() && Path::new(name).extension().is_some() {
        return None;
    }
    let file = match root.open_file(path) {
        Ok(file) => file,
        // An unknown name whose file cannot be opened is not counted, as in tokei.
        Err(_) if by_name.is_none() => return None,
        Err(error) => return Some((by_name?, Err(error.to_string()))),
    };
    let language = match by_name {
        Some(language) => language,
        // The open file, through /proc (where it is mounted), never a lookup by name.
        None => LanguageType::from_shebang(format!("/proc/self/fd/{}", file.file().as_raw_fd()))?,
    };
    let read = file.read_capped(limit).and_then(|bytes| {
        let mut text = Vec::with_capacity(bytes.len());
        DecodeReaderBytesBuilder::new()
            .build(bytes.as_slice())
            .read_to_end(&mut text)?;
        Ok(text)
    });
    let parsed = match read {
        Ok(text) => {
            let mut report = Report::new(path.to_path_buf());
            report += language.parse_from_slice(text, config);
            Ok(report)
        }
        Err(error) => Err(format!("{}: {error}", path.display())),
    };
    Some((language, parsed))
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

    #[test]
    fn a_script_without_an_extension_is_counted_by_its_shebang() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(
            dir.path().join("deploy"),
            "#!/usr/bin/env python3\nimport sys\n# done\n",
        )
        .unwrap();
        fs::write(dir.path().join("notes"), "just text\n").unwrap();
        let stats = code_stats(dir.path(), &WalkOptions::default(), never);
        let names: Vec<&str> = stats
            .languages
            .iter()
            .map(|l| l.language.as_str())
            .collect();
        assert_eq!(names, ["Python"], "{stats:#?}");
        // The shebang line counts as a comment, as in tokei.
        assert_eq!(stats.languages[0].counts.code, 1);
        assert_eq!(stats.languages[0].counts.comments, 2);
    }

    #[test]
    fn utf16_files_are_transcoded_as_tokei_does() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = vec![0xFF, 0xFE]; // UTF-16LE byte-order mark
        for unit in "fn main() {}\n// c\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        fs::write(dir.path().join("wide.rs"), bytes).unwrap();
        let stats = code_stats(dir.path(), &WalkOptions::default(), never);
        assert_eq!(stats.languages[0].language, "Rust");
        assert_eq!(
            (
                stats.languages[0].counts.code,
                stats.languages[0].counts.comments
            ),
            (1, 1)
        );
    }
}
