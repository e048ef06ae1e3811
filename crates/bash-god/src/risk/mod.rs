//! Risk rules: each simple command (wrappers such as `sudo`, `env`, `xargs` and
//! `find -exec` looked through) and each pipeline is rated safe, caution or dangerous,
//! always with the reason.
//!
//! The rules about commands are data ([`table::COMMAND_RULES`], [`table::REDIRECT_ROWS`]);
//! this module interprets them and adds the rules that follow the shape of the program
//! ([`STRUCTURAL_RULES`]).

use schemars::JsonSchema;
use serde::Serialize;

use crate::parse::{Pipeline, RedirectOp, Script, SimpleCommand, WordInfo, basename};

mod docs;
pub mod rule;
pub mod table;
mod words;

pub use docs::rules_markdown;
use rule::{Check, Cond, Operands, Row, Subject};
use table::{COMMAND_RULES, DOWNLOADERS};
pub use words::effective_argv;
use words::{find_roots, has_flag, operands};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    Safe,
    Caution,
    Dangerous,
}

/// One reason a command is not safe.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, JsonSchema)]
pub struct RiskReason {
    pub level: RiskLevel,
    /// Stable rule identifier, e.g. `recursive-delete-root`.
    pub rule: String,
    /// The command (as normalized by the parser) the rule matched.
    pub command: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Assessment {
    pub level: RiskLevel,
    pub reasons: Vec<RiskReason>,
}

/// A rule that follows the shape of the program rather than a command name.
#[derive(Debug)]
pub struct StructuralRule {
    pub rule: &'static str,
    pub level: RiskLevel,
    pub description: &'static str,
    /// Programs this rule fires on (a test checks each one).
    pub examples: &'static [&'static str],
}

/// The rules [`assess`] applies besides the command table.
pub const STRUCTURAL_RULES: &[StructuralRule] = &[
    StructuralRule {
        rule: "download-and-execute",
        level: RiskLevel::Dangerous,
        description: "a pipeline feeds the output of a downloader (`curl`, `wget`, …) to a shell or an interpreter",
        examples: &[
            "curl -fsSL https://x.example/install.sh | sh",
            "wget -qO- http://x | sudo bash",
            "curl x | python3 -",
        ],
    },
    StructuralRule {
        rule: "fork-bomb",
        level: RiskLevel::Dangerous,
        description: "a function calls itself in a pipeline or in the background, multiplying processes",
        examples: &[":(){ :|:& };:", "bomb() { bomb | bomb & }; bomb"],
    },
    StructuralRule {
        rule: "dynamic-command",
        level: RiskLevel::Caution,
        description: "the command name is only known at run time (`$CMD args`)",
        examples: &["$CMD -x", "\"$(which rm)\" x"],
    },
    StructuralRule {
        rule: "opaque",
        level: RiskLevel::Caution,
        description: "a part of the program cannot be analyzed before running (`eval \"$x\"`, `bash -c \"$cmd\"`)",
        examples: &["eval \"$x\"", "bash -c \"$cmd\""],
    },
];

/// What a row's conditions are evaluated against.
struct Context<'a> {
    /// The command's basename, after wrappers.
    name: &'a str,
    /// Its arguments.
    args: &'a [WordInfo],
    /// The subject's text (`{target}`/`{word}`), if the subject is a word.
    target: Option<&'a str>,
    /// The redirection being rated, for [`Subject::RedirectTarget`].
    redirect: Option<RedirectOp>,
    /// The `find -exec` segment being rated and whether rating its command found danger.
    exec: Option<(&'a [WordInfo], bool)>,
}

impl<'a> Context<'a> {
    /// This context with `target` as the subject.
    fn on(&self, target: &'a str) -> Context<'a> {
        Context {
            target: Some(target),
            ..*self
        }
    }

    fn selected(&self, which: Operands) -> Vec<&'a WordInfo> {
        let ops = operands(self.args);
        match which {
            Operands::All => ops,
            Operands::Last => ops.last().copied().into_iter().collect(),
            Operands::AllButFirst => ops.into_iter().skip(1).collect(),
            Operands::AllButLast => {
                let keep = ops.len().saturating_sub(1);
                ops.into_iter().take(keep).collect()
            }
            Operands::FindRoots => find_roots(self.args),
        }
    }

    fn holds(&self, cond: &Cond, script: &Script) -> bool {
        match *cond {
            Cond::Flag(short, long) => has_flag(self.args, short, long),
            Cond::Arg(arg) => self.args.iter().any(|w| w.literal == arg),
            Cond::ArgCount(n) => self.args.len() == n,
            Cond::Subcommand(names) => operands(self.args)
                .first()
                .is_some_and(|w| names.contains(&w.literal.as_str())),
            Cond::Is(class) => self.target.is_some_and(|t| class.contains(t)),
            Cond::Any(which, class) => self
                .selected(which)
                .iter()
                .any(|w| class.contains(&w.literal)),
            Cond::WorldWritableMode => operands(self.args)
                .first()
                .is_some_and(|m| words::is_world_writable_mode(&m.literal)),
            Cond::RunsDownload => self.args.iter().any(|w| {
                script.commands[w.nested_commands.clone()]
                    .iter()
                    .any(runs_downloader)
            }),
            Cond::ExecRuns(names) => self.exec.is_some_and(|(segment, _)| {
                segment
                    .first()
                    .is_some_and(|w| names.contains(&basename(&w.literal)))
            }),
            Cond::ExecNotDangerous => self.exec.is_some_and(|(_, dangerous)| !dangerous),
            Cond::Truncates => matches!(
                self.redirect,
                Some(RedirectOp::Write | RedirectOp::Clobber | RedirectOp::OutputAndError)
            ),
        }
    }

    fn render(&self, template: &str) -> String {
        let roots = || {
            find_roots(self.args)
                .iter()
                .map(|w| w.literal.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let mut out = template.replace("{name}", self.name);
        if let Some(target) = self.target {
            out = out.replace("{target}", target).replace("{word}", target);
        }
        if out.contains("{roots}") {
            out = out.replace("{roots}", &roots());
        }
        out
    }
}

/// Whether the command that really runs (after wrappers) is a downloader.
fn runs_downloader(command: &SimpleCommand) -> bool {
    effective_argv(&command.words)
        .first()
        .is_some_and(|w| DOWNLOADERS.contains(&basename(&w.literal)))
}

struct Rater<'s> {
    reasons: Vec<RiskReason>,
    /// The table row behind each reason (`None` for structural rules), for the row tests.
    rows: Vec<Option<&'static Row>>,
    script: &'s Script,
}

impl Rater<'_> {
    fn add(&mut self, level: RiskLevel, rule: &str, command: &SimpleCommand, reason: String) {
        self.reasons.push(RiskReason {
            level,
            rule: rule.to_owned(),
            command: command.text.clone(),
            reason,
        });
        self.rows.push(None);
    }

    /// Tries `rows` in order on one subject; the first whose conditions hold fires.
    fn first_match(&mut self, rows: &'static [Row], context: &Context, command: &SimpleCommand) {
        let script = self.script;
        if let Some(row) = rows
            .iter()
            .find(|row| row.when.iter().all(|c| context.holds(c, script)))
        {
            self.add(row.level, row.rule, command, context.render(row.reason));
            if let Some(last) = self.rows.last_mut() {
                *last = Some(row);
            }
        }
    }

    fn command(&mut self, command: &SimpleCommand) {
        self.wrapper_words(command);
        if let Some(first) = command.words.first()
            && !first.is_static
            && !first.literal.starts_with('~')
        {
            self.add(
                RiskLevel::Caution,
                "dynamic-command",
                command,
                format!(
                    "the command name `{}` is only known at run time",
                    first.literal
                ),
            );
        }
        for r in command.redirects.iter().filter(|r| r.op.writes()) {
            if let Some(target) = &r.target {
                let context = Context {
                    name: command.name().map(basename).unwrap_or_default(),
                    args: command.args(),
                    target: Some(&target.literal),
                    redirect: Some(r.op),
                    exec: None,
                };
                self.first_match(table::REDIRECT_ROWS, &context, command);
            }
        }
        self.argv(command, effective_argv(&command.words));
    }

    /// The checks on the words of the wrapper chain (`sudo env nice …`).
    fn wrapper_words(&mut self, command: &SimpleCommand) {
        for w in &command.words {
            let word = basename(&w.literal);
            for entry in COMMAND_RULES.iter().filter(|e| e.applies_to(word)) {
                for check in entry
                    .checks
                    .iter()
                    .filter(|c| c.subject == Subject::WrapperWord)
                {
                    let context = Context {
                        name: word,
                        args: &[],
                        target: Some(&w.literal),
                        redirect: None,
                        exec: None,
                    };
                    self.first_match(check.rows, &context, command);
                }
            }
            if !table::PRIVILEGE_CHAIN.contains(&word) {
                break;
            }
        }
    }

    /// The table's checks on the command that really runs.
    fn argv(&mut self, command: &SimpleCommand, argv: &[WordInfo]) {
        let Some(first) = argv.first() else {
            return;
        };
        let base = Context {
            name: basename(&first.literal),
            args: &argv[1..],
            target: None,
            redirect: None,
            exec: None,
        };
        let script = self.script;
        for entry in COMMAND_RULES.iter().filter(|e| e.applies_to(base.name)) {
            if !entry.when.iter().all(|c| base.holds(c, script)) {
                continue;
            }
            for check in entry.checks {
                self.check(check, &base, command);
            }
        }
    }

    fn check(&mut self, check: &'static Check, base: &Context<'_>, command: &SimpleCommand) {
        match check.subject {
            Subject::Command => self.first_match(check.rows, base, command),
            Subject::Each(which) => {
                for operand in base.selected(which) {
                    self.first_match(check.rows, &base.on(&operand.literal), command);
                }
            }
            Subject::ValueOf(prefix) => {
                if let Some(value) = base
                    .args
                    .iter()
                    .find_map(|w| w.literal.strip_prefix(prefix))
                {
                    self.first_match(check.rows, &base.on(value), command);
                }
            }
            Subject::ExecSegment => {
                for segment in exec_segments(base.args) {
                    let before = self.reasons.len();
                    self.argv(command, effective_argv(segment));
                    let dangerous = self.reasons[before..]
                        .iter()
                        .any(|r| r.level == RiskLevel::Dangerous);
                    let context = Context {
                        exec: Some((segment, dangerous)),
                        ..*base
                    };
                    self.first_match(check.rows, &context, command);
                }
            }
            // Rated on the raw words by `wrapper_words`, and on redirections by `command`.
            Subject::WrapperWord | Subject::RedirectTarget => {}
        }
    }

    fn pipelines(&mut self) {
        let script = self.script;
        for pipeline in &script.pipelines {
            self.download_into_interpreter(pipeline);
        }
        for function in &script.functions {
            let recursive_fanout = script.pipelines[function.pipelines.clone()]
                .iter()
                .any(|p| {
                    let calls_self = p
                        .stages
                        .iter()
                        .flatten()
                        .any(|&i| script.commands[i].name() == Some(function.name.as_str()));
                    calls_self && (p.stages.len() > 1 || p.background)
                });
            if recursive_fanout && let Some(first) = script.commands.get(function.commands.start) {
                let reason = format!(
                    "fork bomb: `{}` calls itself in a pipeline or in the background, multiplying processes until the machine stalls",
                    function.name
                );
                self.add(RiskLevel::Dangerous, "fork-bomb", first, reason);
            }
        }
    }

    fn download_into_interpreter(&mut self, pipeline: &Pipeline) {
        let script = self.script;
        let stages: Vec<Option<&SimpleCommand>> = pipeline
            .stages
            .iter()
            .map(|s| s.map(|i| &script.commands[i]))
            .collect();
        let Some(download) = stages.iter().position(|s| s.is_some_and(runs_downloader)) else {
            return;
        };
        for c in stages[download + 1..].iter().flatten() {
            let runs = effective_argv(&c.words)
                .first()
                .map(|w| basename(&w.literal));
            if let Some(n) = runs.filter(|n| {
                table::SHELLS.contains(n) || table::INTERPRETERS.iter().any(|i| n.starts_with(i))
            }) {
                let n = n.to_owned();
                self.add(RiskLevel::Dangerous, "download-and-execute", c, format!("pipes a download straight into `{n}`: runs unverified code from the network"));
            }
        }
    }
}

/// The arguments of each `-exec`/`-execdir`/`-ok`/`-okdir … ;|+` segment of `find`.
fn exec_segments(args: &[WordInfo]) -> Vec<&[WordInfo]> {
    let mut segments = Vec::new();
    let mut i = 0;
    while i < args.len() {
        if matches!(
            args[i].literal.as_str(),
            "-exec" | "-execdir" | "-ok" | "-okdir"
        ) {
            let end = args[i + 1..]
                .iter()
                .position(|w| w.literal == ";" || w.literal == "+")
                .map_or(args.len(), |p| i + 1 + p);
            segments.push(&args[i + 1..end]);
            i = end;
        }
        i += 1;
    }
    segments
}

/// Rates a parsed program.
pub fn assess(script: &Script) -> Assessment {
    rate(script).0
}

/// The assessment and, in the same order as its reasons before deduplication, the table row
/// behind each reason.
fn rate(script: &Script) -> (Assessment, Vec<(RiskReason, Option<&'static Row>)>) {
    let mut rater = Rater {
        reasons: Vec::new(),
        rows: Vec::new(),
        script,
    };
    for command in &script.commands {
        rater.command(command);
    }
    rater.pipelines();
    let fired: Vec<_> = rater.reasons.iter().cloned().zip(rater.rows).collect();
    let mut reasons = rater.reasons;
    for opaque in &script.opaque {
        reasons.push(RiskReason {
            level: RiskLevel::Caution,
            rule: "opaque".to_owned(),
            command: String::new(),
            reason: opaque.clone(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    reasons.sort_by_key(|r| std::cmp::Reverse(r.level));
    let assessment = Assessment {
        level: reasons
            .iter()
            .map(|r| r.level)
            .max()
            .unwrap_or(RiskLevel::Safe),
        reasons,
    };
    (assessment, fired)
}

#[cfg(test)]
mod tests;
