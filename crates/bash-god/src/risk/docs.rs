//! The rule table rendered as Markdown: the README's risk rules section is this text (a test
//! keeps them equal), so the documentation is the table the code interprets.

use std::fmt::Write as _;

use super::rule::{Cond, Operands, PathClass, Row, Subject};
use super::table::{COMMAND_RULES, REDIRECT_ROWS};
use super::{RiskLevel, STRUCTURAL_RULES};

/// The Markdown documentation of every rule.
pub fn rules_markdown() -> String {
    let mut out = String::from(
        "Commands are matched by name after wrappers are looked through (`sudo`, `doas`, `env`, \
         `nice`, `ionice`, `nohup`, `time`, `timeout`, `xargs`, `command`, `exec`, `stdbuf`, \
         `setsid`, `watch`, …); the command of each `find -exec` is rated too. Within one check, \
         the rows are tried in order and the first that matches gives the reason.\n\n\
         | Commands | Checked on | When | Level | Rule | Reason | Example |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for entry in COMMAND_RULES {
        let commands = entry
            .commands
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(" ");
        let mut first = true;
        for check in entry.checks {
            for row in check.rows {
                let conditions: Vec<String> = entry
                    .when
                    .iter()
                    .chain(row.when)
                    .map(describe_cond)
                    .collect();
                let label = if first { commands.as_str() } else { "" };
                // The first example using one of this entry's commands (rows can be shared).
                let example = row
                    .examples
                    .iter()
                    .find(|e| e.split_whitespace().any(|word| entry.applies_to(word)))
                    .or(row.examples.first())
                    .copied()
                    .unwrap_or_default();
                push_row(
                    &mut out,
                    label,
                    subject_name(check.subject),
                    &conditions,
                    row,
                    example,
                );
                first = false;
            }
        }
    }
    for row in REDIRECT_ROWS {
        let conditions: Vec<String> = row.when.iter().map(describe_cond).collect();
        let example = row.examples.first().copied().unwrap_or_default();
        push_row(
            &mut out,
            "any",
            subject_name(Subject::RedirectTarget),
            &conditions,
            row,
            example,
        );
    }
    out.push_str(
        "\nRules about the shape of the program:\n\n\
         | Level | Rule | When | Example |\n|---|---|---|---|\n",
    );
    for rule in STRUCTURAL_RULES {
        let example = rule.examples.first().copied().unwrap_or_default();
        // invariant: writing to a String cannot fail.
        writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            level_name(rule.level),
            rule.rule,
            cell(rule.description),
            code(example)
        )
        // invariant: writing to a String cannot fail.
        .expect("write to String");
    }
    out
}

fn push_row(
    out: &mut String,
    commands: &str,
    subject: &str,
    conditions: &[String],
    row: &Row,
    example: &str,
) {
    let when = if conditions.is_empty() {
        "always".to_owned()
    } else {
        conditions.join("; ")
    };
    // invariant: writing to a String cannot fail.
    writeln!(
        out,
        "| {commands} | {subject} | {} | {} | `{}` | {} | {} |",
        cell(&when),
        level_name(row.level),
        row.rule,
        cell(row.reason),
        code(example)
    )
    // invariant: writing to a String cannot fail.
    .expect("write to String");
}

fn level_name(level: RiskLevel) -> &'static str {
    match level {
        RiskLevel::Safe => "safe",
        RiskLevel::Caution => "caution",
        RiskLevel::Dangerous => "dangerous",
    }
}

/// A table cell: `|` would end the cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// An example as inline code, with backticks inside it kept intact.
fn code(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else if text.contains('`') {
        format!("`` {} ``", cell(text))
    } else {
        format!("`{}`", cell(text))
    }
}

fn subject_name(subject: Subject) -> &'static str {
    match subject {
        Subject::Command => "the command",
        Subject::Each(Operands::All) => "each operand",
        Subject::Each(Operands::Last) => "the last operand",
        Subject::Each(Operands::AllButFirst) => "each operand but the first",
        Subject::Each(Operands::AllButLast) => "each operand but the last",
        Subject::Each(Operands::FindRoots) => "each starting point",
        Subject::ValueOf(_) => "the `of=` value",
        Subject::ExecSegment => "each `-exec … ;`",
        Subject::WrapperWord => "each word of the wrapper chain",
        Subject::RedirectTarget => "the target of a writing redirection",
    }
}

fn operands_name(which: Operands) -> &'static str {
    match which {
        Operands::All => "an operand",
        Operands::Last => "the last operand",
        Operands::AllButFirst => "an operand after the first",
        Operands::AllButLast => "an operand before the last",
        Operands::FindRoots => "a starting point",
    }
}

fn class_name(class: PathClass) -> &'static str {
    match class {
        PathClass::Critical => "`/`, `/*`, `~`, `$HOME`, `.`, `..`, `*` or a system directory",
        PathClass::System => "under a system directory (`/etc`, `/usr`, `/dev`, …)",
        PathClass::SystemFile => "under a system directory, not `/dev/…` or `/proc/self/…`",
        PathClass::BlockDevice => {
            "a block device or raw memory (`/dev/sd*`, `/dev/nvme*`, `/dev/mem`, …)"
        }
        PathClass::UnguardedVariable => "`$VAR/…` without a `${VAR:?}` guard",
        PathClass::DevNull => "`/dev/null`",
        PathClass::NotDevice => "not under `/dev/`",
        PathClass::CriticalOrSystem => "critical (`/`, `~`, …) or under a system directory",
        PathClass::DeviceOrSystem => "a block device or under a system directory",
    }
}

fn describe_cond(cond: &Cond) -> String {
    match *cond {
        Cond::Flag(short, long) => {
            let options: Vec<String> = short
                .chars()
                .map(|c| format!("`-{c}`"))
                .chain(long.iter().map(|l| format!("`{l}`")))
                .collect();
            format!("option {}", options.join(" or "))
        }
        Cond::Arg(arg) => format!("argument `{arg}`"),
        Cond::ArgCount(1) => "no other argument".to_owned(),
        Cond::ArgCount(n) => format!("exactly {n} arguments"),
        Cond::Subcommand(names) => {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("first operand {}", names.join(" or "))
        }
        Cond::Is(class) => format!("it is {}", class_name(class)),
        Cond::Any(which, class) => format!("{} is {}", operands_name(which), class_name(class)),
        Cond::WorldWritableMode => {
            "the mode makes files writable by everyone (`777`, `666`, `a+w`, `o+w`, `+rwx`)"
                .to_owned()
        }
        Cond::RunsDownload => {
            "an argument runs a downloader (`$(curl …)`, `<(wget …)`, backticks)".to_owned()
        }
        Cond::ExecRuns(names) => {
            let names: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
            format!("it runs {}", names.join(" or "))
        }
        Cond::ExecNotDangerous => "that command was not already rated dangerous".to_owned(),
        Cond::Truncates => "it truncates (`>`, `>|`, `&>`)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::rule::Entry;
    use super::super::{effective_argv, rate};
    use super::*;
    use crate::parse::{basename, parse};

    /// Whether `reason` is `template` with its placeholders filled in.
    fn renders(template: &str, reason: &str) -> bool {
        let mut marked = template.to_owned();
        for placeholder in ["{name}", "{word}", "{target}", "{roots}"] {
            marked = marked.replace(placeholder, "\0");
        }
        let pieces: Vec<&str> = marked.split('\0').collect();
        let (first, rest_pieces) = pieces.split_first().unwrap_or((&"", &[]));
        let Some(mut rest) = reason.strip_prefix(first) else {
            return false;
        };
        for piece in rest_pieces {
            match rest.find(piece) {
                Some(at) => rest = &rest[at + piece.len()..],
                None => return false,
            }
        }
        rest.is_empty() || rest_pieces.last().is_some_and(|last| last.is_empty())
    }

    fn fires(row: &Row, example: &str) -> bool {
        let script = parse(example).unwrap_or_else(|e| panic!("{example}: {e}"));
        let (assessment, fired) = rate(&script);
        fired.iter().any(|(reason, fired_row)| {
            fired_row.is_some_and(|r| {
                r.rule == row.rule
                    && r.level == row.level
                    && r.when == row.when
                    && r.reason == row.reason
            }) && renders(row.reason, &reason.reason)
                && assessment.reasons.contains(reason)
        })
    }

    /// Whether `example` holds a command `entry` is about.
    fn concerns(entry: &Entry, example: &str) -> bool {
        parse(example).unwrap().commands.iter().any(|c| {
            let effective = effective_argv(&c.words)
                .first()
                .is_some_and(|w| entry.applies_to(basename(&w.literal)));
            effective
                || c.words
                    .iter()
                    .any(|w| entry.applies_to(basename(&w.literal)))
        })
    }

    #[test]
    fn every_row_fires_on_each_of_its_examples() {
        for entry in COMMAND_RULES {
            for check in entry.checks {
                for row in check.rows {
                    assert!(
                        row.examples.iter().any(|e| concerns(entry, e)),
                        "row `{}` of {:?} has no example using those commands",
                        row.rule,
                        entry.commands
                    );
                    for example in row.examples {
                        assert!(
                            fires(row, example),
                            "row `{}` ({:?}) of {:?} does not fire on `{example}`",
                            row.rule,
                            row.level,
                            entry.commands
                        );
                    }
                }
            }
        }
        for row in REDIRECT_ROWS {
            for example in row.examples {
                assert!(
                    fires(row, example),
                    "redirect row `{}` on `{example}`",
                    row.rule
                );
            }
        }
    }

    #[test]
    fn every_structural_rule_fires_on_its_examples() {
        for rule in STRUCTURAL_RULES {
            assert!(!rule.examples.is_empty(), "{}", rule.rule);
            for example in rule.examples {
                let (assessment, _) = rate(&parse(example).unwrap());
                assert!(
                    assessment
                        .reasons
                        .iter()
                        .any(|r| r.rule == rule.rule && r.level == rule.level),
                    "`{}` does not fire on `{example}`: {:?}",
                    rule.rule,
                    assessment.reasons
                );
            }
        }
    }

    #[test]
    fn reasons_render_their_placeholders() {
        assert!(renders("deletes `{target}`", "deletes `/etc/x`"));
        assert!(!renders("deletes `{target}`", "removes `/etc/x`"));
        assert!(renders(
            "`{name} -R` changes a whole tree",
            "`chmod -R` changes a whole tree"
        ));
        assert!(renders("no placeholder", "no placeholder"));
        assert!(!renders("no placeholder", "no placeholder at all"));
    }

    /// The README's risk rules section is `rules_markdown()`; run with
    /// `UPDATE_README=1` to rewrite it after changing the table.
    #[test]
    fn the_readme_documents_the_table() {
        const BEGIN: &str = "<!-- risk-rules:begin (generated from src/risk/table.rs) -->\n";
        const END: &str = "<!-- risk-rules:end -->";
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
        let readme = std::fs::read_to_string(&path).unwrap();
        let start = readme
            .find(BEGIN)
            .expect("README has the risk-rules begin marker")
            + BEGIN.len();
        let end = readme
            .find(END)
            .expect("README has the risk-rules end marker");
        let expected = rules_markdown();
        if readme[start..end] != expected {
            if std::env::var_os("UPDATE_README").is_some() {
                let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
                std::fs::write(&path, updated).unwrap();
            } else {
                panic!(
                    "the README's risk rules differ from the table; rerun this test with \
                     UPDATE_README=1 to regenerate them"
                );
            }
        }
    }
}
