//! When quoting an unquoted `$NAME` provably changes nothing, so SC2086's rewrite may be
//! applied automatically.
//!
//! `cc $CFLAGS main.c` and `cc "$CFLAGS" main.c` differ whenever `CFLAGS` holds a space (and
//! that splitting is usually what the author wants), when it is empty (one argument less
//! unquoted) or holds a glob character. The two forms pass the same single argument only
//! when the value at that point is known to be a non-empty literal without such
//! characters. This module proves that for the simplest programs, and answers `None`
//! (the finding stays advice) whenever anything could make the value differ.

use crate::parse::{Script, SimpleCommand, WordInfo, basename};
use crate::risk::effective_argv;

/// Commands that can assign a variable whose name they compute, or run code that could.
const VARIABLE_WRITERS: &[&str] = &[
    "read",
    "declare",
    "typeset",
    "local",
    "export",
    "readonly",
    "mapfile",
    "readarray",
    "getopts",
    "unset",
    "let",
    "eval",
    "source",
    ".",
    "alias",
    "enable",
    "builtin",
    "command",
    "exec",
];

/// Variables bash sets by itself, whose value can change without an assignment.
const SHELL_SET: &[&str] = &[
    "_",
    "PWD",
    "OLDPWD",
    "RANDOM",
    "SRANDOM",
    "SECONDS",
    "LINENO",
    "BASHPID",
    "EPOCHSECONDS",
    "EPOCHREALTIME",
    "HISTCMD",
    "COLUMNS",
    "LINES",
    "PPID",
    "SHLVL",
    "REPLY",
    "OPTARG",
    "OPTIND",
    "PIPESTATUS",
    "FUNCNAME",
    "GROUPS",
    "DIRSTACK",
    "IFS",
    "UID",
    "EUID",
];

/// The literal value `$NAME` (the whole word `word`, unquoted, an argument of `user`) is
/// known to have, when quoting it provably changes nothing: `NAME` is assigned exactly once,
/// by a plain top-level `NAME=VALUE` command that always runs before `user`; VALUE is a
/// non-empty literal of characters that neither split nor glob; nothing else mentions
/// `NAME`; and the program holds nothing that could assign a variable by a computed name
/// or change word splitting (see [`VARIABLE_WRITERS`], arithmetic, `${…}` subscripts and
/// indirection, `IFS`, opaque constructs).
pub fn provable_value<'s>(
    text: &str,
    script: &'s Script,
    user: &SimpleCommand,
    word: &WordInfo,
) -> Option<&'s str> {
    let name = parameter_name(&word.raw)?;
    if SHELL_SET.contains(&name) || name.starts_with("BASH") || !script.opaque.is_empty() {
        return None;
    }
    if !simple_program(text, script) {
        return None;
    }
    let mut definitions = script.commands.iter().filter(|c| {
        c.assignments
            .iter()
            .any(|a| a.name.as_deref() == Some(name))
    });
    let definition = definitions.next()?;
    if definitions.next().is_some() || !unconditional_top_level(script, definition) {
        return None;
    }
    let [assignment] = definition.assignments.as_slice() else {
        return None;
    };
    let value = assignment.value.as_deref().filter(|_| !assignment.append)?;
    if definition.pipeline >= user.pipeline || !splits_to_itself(value) {
        return None;
    }
    // Every mention of NAME must be the definition or a plain `$NAME`/`${NAME}`.
    let uses = script
        .commands
        .iter()
        .flat_map(|c| &c.words)
        .filter(|w| parameter_name(&w.raw) == Some(name))
        .count();
    (identifier_count(text, name) == uses + 1).then_some(value)
}

/// `$NAME` or `${NAME}`.
fn parameter_name(raw: &str) -> Option<&str> {
    let name = raw.strip_prefix('$')?;
    let name = match name.strip_prefix('{') {
        Some(braced) => braced.strip_suffix('}')?,
        None => name,
    };
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(name)
}

/// Nothing in the program can assign variables by computed names or change splitting.
fn simple_program(text: &str, script: &Script) -> bool {
    let writes = script.commands.iter().any(|c| {
        let dynamic = c.words.first().is_some_and(|w| !w.is_static);
        let writer = c
            .words
            .iter()
            .chain(effective_argv(&c.words).first())
            .any(|w| VARIABLE_WRITERS.contains(&basename(&w.literal)));
        // `printf -v NAME` assigns.
        let printf_v = c.name().map(basename) == Some("printf")
            && c.args().iter().any(|a| a.literal.starts_with("-v"));
        dynamic || writer || printf_v
    });
    let arithmetic = text.contains("((") || text.contains("$[");
    // `${a[i=1]}` evaluates arithmetic, `${!p}`/`${x:=y}` read or assign other variables.
    let parameter_tricks = text.match_indices("${").any(|(at, _)| {
        let inner = &text[at + 2..];
        let inner = &inner[..inner.find('}').unwrap_or(inner.len())];
        inner.starts_with('!') || inner.contains(['[', '='])
    });
    !writes && !arithmetic && !parameter_tricks && identifier_count(text, "IFS") == 0
}

/// A command of assignments only, run unconditionally at the top level: no block,
/// substitution, pipeline, background, or `&&`/`||` before it.
fn unconditional_top_level(script: &Script, command: &SimpleCommand) -> bool {
    let Some(pipeline) = script.pipelines.get(command.pipeline) else {
        return false;
    };
    command.words.is_empty()
        && command.redirects.is_empty()
        && command.nesting.is_empty()
        && pipeline.stages.len() == 1
        && !pipeline.background
        && !pipeline.conditional
}

/// A value that word splitting and pathname expansion leave as one unchanged field.
fn splits_to_itself(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._/:,=%+@^-".contains(c))
}

/// How often `name` occurs in `text` as a whole identifier.
fn identifier_count(text: &str, name: &str) -> usize {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(name)
        .filter(|(at, _)| {
            let before = text[..*at].chars().next_back();
            let after = text[at + name.len()..].chars().next();
            !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse;

    /// The provable value of the first `$…` argument in `text`.
    fn value(text: &str) -> Option<String> {
        let script = parse(text).unwrap();
        let (user, word) = script
            .commands
            .iter()
            .find_map(|c| c.args().iter().find(|w| w.lone_parameter).map(|w| (c, w)))?;
        provable_value(text, &script, user, word).map(str::to_owned)
    }

    #[test]
    fn a_single_literal_assignment_before_the_use_is_provable() {
        assert_eq!(value("f=build; rm -r $f").as_deref(), Some("build"));
        assert_eq!(
            value("d=/tmp/x-1.2\nls ${d}").as_deref(),
            Some("/tmp/x-1.2")
        );
        assert_eq!(value("f=a && rm $f").as_deref(), Some("a"));
        assert_eq!(value("f='a.txt'; rm $f").as_deref(), Some("a.txt"));
    }

    #[test]
    fn anything_that_could_change_the_value_or_the_splitting_is_not() {
        for text in [
            "rm $f",                                // unknown (environment)
            "cc $CFLAGS main.c",                    // unknown, and splitting intended
            "CFLAGS='-O2 -g'; cc $CFLAGS x.c",      // splits
            "f='*.o'; rm $f",                       // globs
            "f=; rm $f",                            // empty: unquoted, the argument vanishes
            "f=a; f=b; rm $f",                      // two assignments
            "f=a; read f; rm $f",                   // read
            "f=a; g() { f='x y'; }; g; rm $f",      // a function assigns it
            "false && f=a; rm $f",                  // conditional
            "( f=a ); rm $f",                       // in a subshell
            "f=a & rm $f",                          // in the background
            "f=a rm $f",                            // a prefix assignment is for rm only
            "rm $f; f=a",                           // after the use
            "f=$(pwd); rm $f",                      // not a literal
            "f+=a; rm $f",                          // appends to an unknown value
            "f=a; declare -n r=$n; r='x y'; rm $f", // nameref by computed name
            "f=a; eval \"$g\"; rm $f",              // opaque
            "f=a; IFS=a; rm $f",                    // splitting changed
            "f=a; x=${!p}; rm $f",                  // indirection
            "f=a; : $((n=1)); rm $f",               // arithmetic
            "f=a; $cmd; rm $f",                     // a computed command could be `read`
            "PWD=a; cd /; ls $PWD",                 // bash changes it
            "f=a; echo f; rm $f",                   // the name is mentioned otherwise
            "f=a; printf -v \"$n\" 'x y'; rm $f",   // printf -v by computed name
        ] {
            assert_eq!(value(text), None, "{text}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(parameter_name("$x"), Some("x"));
        assert_eq!(parameter_name("${x_1}"), Some("x_1"));
        assert_eq!(parameter_name("$1"), None);
        assert_eq!(parameter_name("${x:-y}"), None);
        assert_eq!(identifier_count("f=a; rm $f ${f} xf f_", "f"), 3);
        assert!(splits_to_itself("a/b-1.2:c"));
        assert!(!splits_to_itself("a b") && !splits_to_itself("a*") && !splits_to_itself(""));
    }
}
