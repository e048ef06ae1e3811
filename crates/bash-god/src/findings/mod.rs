//! Shellcheck-style findings, and the rewrites `optimize_command` applies.
//!
//! A finding carries a [`Fix`] only when the rewrite keeps the command's meaning and the
//! affected text maps back onto the original exactly; otherwise it only suggests.

use std::ops::Range;

use schemars::JsonSchema;
use serde::Serialize;

use crate::parse::{self, ParseError, RedirectOp, Script, SimpleCommand, basename};

mod splitting;

/// One finding, shellcheck style.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Finding {
    /// The matching shellcheck code, e.g. `SC2002`.
    pub code: String,
    pub message: String,
    /// The command the finding is about (normalized by the parser).
    pub command: String,
    /// A suggested rewrite, when one exists.
    pub suggestion: Option<String>,
    /// Whether `optimize_command` applies the rewrite automatically.
    pub auto_fix: bool,
    #[serde(skip)]
    #[schemars(skip)]
    pub fix: Option<Fix>,
}

/// Text replacements (byte ranges of the analyzed text) applied together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub edits: Vec<(Range<usize>, String)>,
}

impl Fix {
    fn overlaps(&self, other: &Fix) -> bool {
        self.edits.iter().any(|(a, _)| {
            other
                .edits
                .iter()
                .any(|(b, _)| a.start < b.end && b.start < a.end || a.start == b.start)
        })
    }
}

fn finding(
    code: &str,
    message: String,
    command: &SimpleCommand,
    suggestion: Option<String>,
    fix: Option<Fix>,
) -> Finding {
    Finding {
        code: code.to_owned(),
        message,
        command: command.text.clone(),
        suggestion,
        auto_fix: fix.is_some(),
        fix,
    }
}

/// All findings for a parsed program, in source order where known.
pub fn lint(text: &str, script: &Script) -> Vec<Finding> {
    let mut out = Vec::new();
    pipelines(text, script, &mut out);
    for_loops(script, &mut out);
    unquoted(text, script, &mut out);
    backticks(text, script, &mut out);
    out
}

fn is_simple_operand(word: &parse::WordInfo) -> bool {
    !word.literal.starts_with('-') && !word.raw.is_empty()
}

fn reads_stdin_elsewhere(command: &SimpleCommand) -> bool {
    command.redirects.iter().any(|r| {
        matches!(
            r.op,
            RedirectOp::Read
                | RedirectOp::HereDocument
                | RedirectOp::HereString
                | RedirectOp::ReadWrite
        ) && r.fd.is_none_or(|fd| fd == 0)
    })
}

fn pipelines(text: &str, script: &Script, out: &mut Vec<Finding>) {
    for pipeline in &script.pipelines {
        for pair in pipeline.stages.windows(2) {
            let (Some(a), Some(b)) = (pair[0], pair[1]) else {
                continue;
            };
            let (left, right) = (&script.commands[a], &script.commands[b]);
            let (Some(lname), Some(rname)) =
                (left.name().map(basename), right.name().map(basename))
            else {
                continue;
            };
            match (lname, rname) {
                ("cat", _) if left.stage == 0 && left.args().len() == 1 && is_simple_operand(&left.args()[0]) && left.redirects.is_empty() => {
                    let file = &left.args()[0].raw;
                    let fix = match (&left.span, &right.span) {
                        (Some(l), Some(r)) if !reads_stdin_elsewhere(right) && text.get(l.end..r.start).is_some_and(|gap| gap.trim() == "|") => Some(Fix {
                            edits: vec![(l.start..r.start, String::new()), (r.end..r.end, format!(" < {file}"))],
                        }),
                        _ => None,
                    };
                    out.push(finding(
                        "SC2002",
                        format!("useless use of cat: `{rname}` can read `{file}` itself"),
                        right,
                        Some(format!("{} < {file}", right.text)),
                        fix,
                    ));
                }
                ("ls", "grep" | "egrep" | "fgrep") => out.push(finding(
                    "SC2010",
                    "don't parse `ls` output: file names may contain newlines and special characters".into(),
                    left,
                    Some("use a glob (`for f in *pattern*`) or `find . -maxdepth 1 -name 'pattern'`".into()),
                    None,
                )),
                ("ps", "grep") => out.push(finding(
                    "SC2009",
                    "`ps | grep` also matches the grep process itself".into(),
                    left,
                    Some("use `pgrep -a PATTERN`".into()),
                    None,
                )),
                ("grep" | "egrep" | "fgrep", "wc") if right.args().len() == 1 && right.args()[0].literal == "-l" => {
                    let fix = grep_count_fix(text, left, right);
                    let mut suggested = left.words.iter().map(|w| w.raw.as_str()).collect::<Vec<_>>();
                    suggested.insert(1, "-c");
                    out.push(finding(
                        "SC2126",
                        "`grep | wc -l` counts matching lines; `grep -c` does it without a second process".into(),
                        left,
                        Some(suggested.join(" ")),
                        fix,
                    ));
                }
                _ => {}
            }
        }
    }
}

/// `grep PAT [FILE] | wc -l` → `grep -c PAT [FILE]`, only when both print the same number.
fn grep_count_fix(text: &str, grep: &SimpleCommand, wc: &SimpleCommand) -> Option<Fix> {
    let args = grep.args();
    let changes_count = args.iter().any(|w| {
        let a = w.literal.as_str();
        a.starts_with("--")
            && !matches!(
                a,
                "--ignore-case"
                    | "--invert-match"
                    | "--fixed-strings"
                    | "--extended-regexp"
                    | "--word-regexp"
                    | "--line-regexp"
            )
            || a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().any(|c| !"iFEwxvP".contains(c))
    });
    // Several files make `grep -c` print one count per file.
    let operands = args.iter().filter(|w| !w.literal.starts_with('-')).count();
    let no_output_redirect = grep
        .redirects
        .iter()
        .all(|r| !(r.op.writes() || r.op == RedirectOp::DuplicateOutput) || r.fd == Some(2))
        && wc.redirects.is_empty();
    let (g, w, name) = (
        grep.span.as_ref()?,
        wc.span.as_ref()?,
        grep.words.first()?.span.as_ref()?,
    );
    let gap_is_pipe = text
        .get(g.end..w.start)
        .is_some_and(|gap| gap.trim() == "|");
    (!changes_count && operands <= 2 && no_output_redirect && gap_is_pipe).then(|| Fix {
        edits: vec![
            (name.end..name.end, " -c".to_owned()),
            (g.end..w.end, String::new()),
        ],
    })
}

fn for_loops(script: &Script, out: &mut Vec<Finding>) {
    for lp in &script.for_loops {
        for value in &lp.values {
            let inner = value
                .raw
                .strip_prefix("$(")
                .and_then(|r| r.strip_suffix(')'))
                .or_else(|| {
                    value
                        .raw
                        .strip_prefix('`')
                        .and_then(|r| r.strip_suffix('`'))
                });
            let Some(inner) = inner else { continue };
            let mut words = inner.split_whitespace();
            if words.next() != Some("ls") {
                continue;
            }
            let rest: Vec<&str> = words.collect();
            let fix = (rest.is_empty())
                .then(|| {
                    value.span.clone().map(|span| Fix {
                        edits: vec![(span, "*".to_owned())],
                    })
                })
                .flatten();
            let command = SimpleCommand::synthetic(format!("for {} in {}", lp.variable, value.raw));
            out.push(finding(
                "SC2045",
                format!(
                    "iterating over `{}` breaks on file names with spaces or newlines",
                    value.raw
                ),
                &command,
                Some(if rest.is_empty() {
                    "for f in *".to_owned()
                } else {
                    format!("for f in {}/*", rest.join(" "))
                }),
                fix,
            ));
        }
    }
}

fn unquoted(text: &str, script: &Script, out: &mut Vec<Finding>) {
    for command in &script.commands {
        // `[[`/`((` are not simple commands; assignments never split; `$(...)` splitting is
        // often intended (`kill $(pgrep x)`), so it is reported without an automatic fix.
        for word in command.args().iter().filter(|w| w.unquoted_expansion) {
            if word.lone_parameter {
                let quoted = format!("\"{}\"", word.raw);
                let all_arguments = word.raw.contains('@') || word.raw.contains('*');
                // Quoting changes what the command gets unless the value is provably one
                // plain field (`cc $CFLAGS` relies on the splitting): only then is it a fix.
                let fix = if all_arguments {
                    None
                } else {
                    splitting::provable_value(text, script, command, word)
                        .and(word.span.clone())
                        .map(|span| Fix {
                            edits: vec![(span, quoted.clone())],
                        })
                };
                let (code, message) = if all_arguments {
                    (
                        "SC2068",
                        format!(
                            "`{}` is unquoted: each argument is split again on spaces and glob-expanded; `\"{}\"` keeps them as they are",
                            word.raw,
                            word.raw.replace('*', "@")
                        ),
                    )
                } else if fix.is_some() {
                    (
                        "SC2086",
                        format!(
                            "`{}` is unquoted; its value here is a single plain word, so quoting it changes nothing and keeps it safe if the value changes",
                            word.raw
                        ),
                    )
                } else {
                    (
                        "SC2086",
                        format!(
                            "`{}` is unquoted: its value is split on spaces and glob-expanded (and vanishes when empty); quote it unless that splitting is intended, as for a list of flags like `$CFLAGS`",
                            word.raw
                        ),
                    )
                };
                out.push(finding(code, message, command, Some(quoted), fix));
            } else if word.raw.starts_with("$(") || word.raw.starts_with('`') {
                out.push(finding(
                    "SC2046",
                    format!(
                        "`{}` is unquoted: its output is split on spaces and glob-expanded",
                        word.raw
                    ),
                    command,
                    Some(format!(
                        "\"{}\" (or read it into an array with mapfile)",
                        word.raw
                    )),
                    None,
                ));
            }
        }
    }
}

fn backticks(text: &str, script: &Script, out: &mut Vec<Finding>) {
    for span in &script.backticks {
        let raw = &text[span.clone()];
        let inner = &raw[1..raw.len() - 1];
        // Backslashes mean something else inside backticks; leave those alone.
        let fix = (!inner.contains('\\') && !inner.contains('`')).then(|| Fix {
            edits: vec![(span.clone(), format!("$({inner})"))],
        });
        let command = script.commands.iter().find(|c| {
            c.span
                .as_ref()
                .is_some_and(|s| s.start <= span.start && span.end <= s.end)
        });
        let placeholder;
        let command = match command {
            Some(c) => c,
            None => {
                placeholder = SimpleCommand::synthetic(raw.to_owned());
                &placeholder
            }
        };
        out.push(finding(
            "SC2006",
            "legacy backticks: `$(…)` nests and quotes predictably".into(),
            command,
            Some(format!("$({inner})")),
            fix,
        ));
    }
}

/// One rewrite `optimize_command` made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Change {
    pub code: String,
    pub description: String,
    /// The command before and after this change.
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Optimized {
    pub original: String,
    pub optimized: String,
    pub changes: Vec<Change>,
    /// Findings that have no automatic rewrite (their meaning could change); fix by hand.
    pub remaining: Vec<Finding>,
}

fn apply(text: &str, fixes: &[&Fix]) -> String {
    let mut edits: Vec<&(Range<usize>, String)> =
        fixes.iter().flat_map(|f| f.edits.iter()).collect();
    edits.sort_by_key(|(r, _)| std::cmp::Reverse((r.start, r.end)));
    let mut out = text.to_owned();
    for (range, replacement) in edits {
        out.replace_range(range.clone(), replacement);
    }
    out
}

/// Applies every automatic rewrite until none is left (rewrites may nest, e.g. a useless
/// `cat` inside backticks), checking after each round that the result still parses.
pub fn optimize(text: &str) -> Result<Optimized, ParseError> {
    const MAX_ROUNDS: usize = 8;
    let mut current = text.to_owned();
    let mut changes = Vec::new();
    let mut script = parse::parse(&current)?;
    for _ in 0..MAX_ROUNDS {
        let findings = lint(&current, &script);
        let mut chosen: Vec<&Finding> = Vec::new();
        for f in findings.iter().filter(|f| f.fix.is_some()) {
            if chosen.iter().all(|c| {
                !c.fix
                    .as_ref()
                    .unwrap_or_else(|| unreachable!())
                    .overlaps(f.fix.as_ref().unwrap_or_else(|| unreachable!()))
            }) {
                chosen.push(f);
            }
        }
        let mut applied_any = false;
        // Apply one at a time so each change is verified and reported precisely.
        for f in chosen {
            let fix = f.fix.as_ref().unwrap_or_else(|| unreachable!());
            let candidate = apply(&current, &[fix]);
            match parse::parse(&candidate) {
                Ok(next) => {
                    changes.push(Change {
                        code: f.code.clone(),
                        description: f.message.clone(),
                        before: current.clone(),
                        after: candidate.clone(),
                    });
                    current = candidate;
                    script = next;
                    applied_any = true;
                    // Spans of the remaining fixes refer to the old text: lint again.
                    break;
                }
                Err(_) => continue,
            }
        }
        if !applied_any {
            break;
        }
    }
    let remaining = lint(&current, &script)
        .into_iter()
        .filter(|f| f.fix.is_none())
        .collect();
    Ok(Optimized {
        original: text.to_owned(),
        optimized: current,
        changes,
        remaining,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(src: &str) -> Vec<String> {
        lint(src, &parse::parse(src).unwrap())
            .into_iter()
            .map(|f| f.code)
            .collect()
    }

    fn optimized(src: &str) -> String {
        optimize(src).unwrap().optimized
    }

    #[test]
    fn findings() {
        assert_eq!(codes("cat file.txt | grep foo"), ["SC2002"]);
        assert_eq!(codes("ls | grep foo"), ["SC2010"]);
        assert_eq!(codes("ps aux | grep nginx"), ["SC2009"]);
        assert_eq!(codes("grep foo f | wc -l"), ["SC2126"]);
        assert_eq!(codes("for f in $(ls); do echo \"$f\"; done"), ["SC2045"]);
        assert_eq!(codes("rm $file"), ["SC2086"]);
        assert_eq!(codes("cmd $@"), ["SC2068"]);
        assert_eq!(codes("kill $(pgrep x)"), ["SC2046"]);
        assert_eq!(codes("echo \"`date`\""), ["SC2006"]);
        assert!(codes("grep -c foo f; echo \"$x\" $? ; x=$y").is_empty());
    }

    #[test]
    fn rewrites() {
        assert_eq!(optimized("cat file.txt | grep foo"), "grep foo < file.txt");
        assert_eq!(
            optimized("cat 'my file' | sort -u > out"),
            "sort -u > out < 'my file'"
        );
        assert_eq!(
            optimized("grep -i foo log.txt | wc -l"),
            "grep -c -i foo log.txt"
        );
        assert_eq!(
            optimized("for f in $(ls); do echo \"$f\"; done"),
            "for f in *; do echo \"$f\"; done"
        );
        // Quoting is a rewrite only where the value is provably one plain word.
        assert_eq!(
            optimized("file=a.txt; other=b; rm $file ${other}"),
            "file=a.txt; other=b; rm \"$file\" \"${other}\""
        );
        assert_eq!(optimized("echo \"`date`\""), "echo \"$(date)\"");
        assert_eq!(
            optimized("x=`cat a | grep b | wc -l`"),
            "x=$(grep -c b < a)"
        );
    }

    #[test]
    fn unsafe_rewrites_are_not_applied() {
        // Several files: `grep -c` prints one count per file.
        assert_eq!(optimized("grep foo a b | wc -l"), "grep foo a b | wc -l");
        // `-o` counts matches, not lines.
        assert_eq!(optimized("grep -o foo a | wc -l"), "grep -o foo a | wc -l");
        // A here-string already feeds stdin.
        assert_eq!(optimized("cat a | grep x <<< y"), "cat a | grep x <<< y");
        assert_eq!(optimized("kill $(pgrep x)"), "kill $(pgrep x)");
        let report = optimize("ls | grep foo").unwrap();
        assert!(report.changes.is_empty());
        assert_eq!(report.remaining[0].code, "SC2010");
    }

    #[test]
    fn quoting_that_could_change_the_arguments_is_advice_only() {
        // Word splitting is intended here: `cc "$CFLAGS"` would pass `-O2 -g` as one word.
        for src in [
            "cc $CFLAGS main.c",
            "CFLAGS='-O2 -g'; cc $CFLAGS main.c",
            "rm $file ${other}",
            "f=; touch $f x",
            "cmd $@",
        ] {
            let report = optimize(src).unwrap();
            assert_eq!(report.optimized, src, "{src}");
            assert!(report.changes.is_empty(), "{src}");
            let advice: Vec<_> = report
                .remaining
                .iter()
                .filter(|f| f.code == "SC2086" || f.code == "SC2068")
                .collect();
            assert!(!advice.is_empty(), "{src}");
            for finding in advice {
                assert!(
                    !finding.auto_fix && finding.suggestion.is_some(),
                    "{finding:?}"
                );
            }
        }
        let cflags = lint(
            "cc $CFLAGS main.c",
            &parse::parse("cc $CFLAGS main.c").unwrap(),
        );
        assert!(
            cflags[0]
                .message
                .contains("unless that splitting is intended")
        );
        // Where it is provable, the finding says so and is an automatic fix.
        let src = "out=build; mkdir -p $out";
        let fixed = lint(src, &parse::parse(src).unwrap());
        assert!(fixed[0].auto_fix && fixed[0].message.contains("changes nothing"));
    }

    #[test]
    fn changes_are_listed() {
        let report = optimize("cat f | grep x | wc -l").unwrap();
        let codes: Vec<_> = report.changes.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["SC2002", "SC2126"]);
        assert_eq!(report.optimized, "grep -c x < f");
    }
}
