//! Parsing examples: what the walker finds in each construct.

use super::*;

fn names(script: &Script) -> Vec<String> {
    script
        .commands
        .iter()
        .map(|c| c.name().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn finds_commands_in_every_construct() {
    let src = r#"a | b && c || d; e
f() { g | h & }
if i; then j; elif k; then l; else m; fi
while n; do o; done
for x in $(p); do q; done
case "$x" in y) r ;; esac
( s ) ; { t; }
u "$(v `w`)" <(x1) > >(x2)
[[ -n $(x3) ]]
echo $(( $(x4) + 1 )) ${z:-$(x5)}
"#;
    let script = parse(src).unwrap();
    let mut found = names(&script);
    found.sort();
    let mut expected: Vec<String> = [
        "a", "b", "c", "d", "e", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q", "r", "s",
        "t", "u", "v", "w", "x1", "x2", "x3", "echo", "x4", "x5",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    expected.sort();
    assert_eq!(found, expected);
    assert!(script.opaque.is_empty(), "{:?}", script.opaque);
}

#[test]
fn nesting_is_recorded() {
    let script = parse("echo \"$(ls `pwd`)\"").unwrap();
    let ls = script
        .commands
        .iter()
        .find(|c| c.name() == Some("ls"))
        .unwrap();
    assert_eq!(ls.nesting, vec![Nesting::CommandSubstitution]);
    let pwd = script
        .commands
        .iter()
        .find(|c| c.name() == Some("pwd"))
        .unwrap();
    assert_eq!(
        pwd.nesting,
        vec![Nesting::CommandSubstitution, Nesting::Backticks]
    );
}

#[test]
fn literal_values_drop_quotes() {
    let script = parse(r#"rm -rf "/" '~' \/etc"#).unwrap();
    let lits: Vec<_> = script.commands[0]
        .words
        .iter()
        .map(|w| w.literal.as_str())
        .collect();
    assert_eq!(lits, ["rm", "-rf", "/", "~", "/etc"]);
    assert!(script.commands[0].words.iter().all(|w| w.is_static));
}

#[test]
fn spans_map_back_to_the_text_including_nested_programs() {
    let src = "echo $(cat  'a b' | grep x) é `ls  -l`";
    let script = parse(src).unwrap();
    for command in &script.commands {
        for w in &command.words {
            let span = w.span.clone().expect("span maps back");
            assert_eq!(&src[span], w.raw);
        }
    }
    assert_eq!(script.backticks.len(), 1);
    assert_eq!(&src[script.backticks[0].clone()], "`ls  -l`");
}

#[test]
fn unquoted_expansions_are_flagged() {
    let script = parse(r#"rm $f "$g" ${h} "x$i" $?"#).unwrap();
    let w = &script.commands[0].words;
    assert!(w[1].unquoted_expansion && w[1].lone_parameter);
    assert!(!w[2].unquoted_expansion);
    assert!(w[3].lone_parameter);
    assert!(!w[4].unquoted_expansion);
    assert!(!w[5].lone_parameter);
}

#[test]
fn shell_strings_are_parsed() {
    let script = parse(r#"bash -c 'rm -rf /tmp/x'; eval "ls | wc -l""#).unwrap();
    let nested: Vec<_> = script
        .commands
        .iter()
        .filter(|c| c.nesting == [Nesting::ShellString])
        .map(|c| c.name().unwrap())
        .collect();
    assert_eq!(nested, ["rm", "ls", "wc"]);
}

#[test]
fn dynamic_shell_strings_are_opaque() {
    let script = parse(r#"eval "$cmd""#).unwrap();
    assert_eq!(script.opaque.len(), 1);
}

#[test]
fn functions_and_pipelines_are_recorded() {
    let script = parse(":(){ :|:& };:").unwrap();
    assert_eq!(script.functions.len(), 1);
    assert_eq!(script.functions[0].name, ":");
    let body = &script.functions[0];
    assert_eq!(body.commands.len(), 2);
    assert!(script.pipelines[body.pipelines.start].background);
}

#[test]
fn errors_are_reported() {
    assert!(matches!(parse("  "), Err(ParseError::Empty)));
    assert!(matches!(
        parse("echo \"unterminated"),
        Err(ParseError::Syntax(_))
    ));
    assert!(matches!(parse("if true; then"), Err(ParseError::Syntax(_))));
    let long = "x".repeat(MAX_COMMAND_BYTES + 1);
    assert!(matches!(parse(&long), Err(ParseError::TooLong { .. })));
}

#[test]
fn nested_programs_are_bounded_in_depth_and_in_size() {
    // Each `eval` level is parsed again: the total is capped long before 128 levels.
    let evals = format!("{}x", "eval ".repeat(2_000));
    assert!(matches!(
        parse(&evals),
        Err(ParseError::TooMuchNested { .. })
    ));
    // A string run by `bash -c` nests inside its command.
    let deep = format!("bash -c '{}x'", "( ".repeat(depth::MAX_NESTING));
    assert!(matches!(
        parse(&deep),
        Err(ParseError::TooDeep { at: None, .. })
    ));
    let ok = format!("bash -c '{}x{}'", "( ".repeat(10), " )".repeat(10));
    assert!(parse(&ok).is_ok());
    // Deep but within the limit: parsed on the big stack.
    let nested = format!("{}x{}", "$(".repeat(100), ")".repeat(100));
    let script = parse(&nested).unwrap();
    let x = script
        .commands
        .iter()
        .find(|c| c.name() == Some("x"))
        .unwrap();
    assert_eq!(x.nesting, vec![Nesting::CommandSubstitution; 100]);
}

#[test]
fn scripts_round_trip_through_json() {
    let script = parse("echo $(ls `pwd`) > out; f() { x | y & }").unwrap();
    let json = serde_json::to_string(&script).unwrap();
    let back: Script = serde_json::from_str(&json).unwrap();
    assert_eq!(format!("{back:?}"), format!("{script:?}"));
}
