//! The depth scan on ordinary scripts (measured shallow) and on attacks (measured deep).

use super::*;

#[test]
fn constructs_add_their_levels() {
    for (text, depth) in [
        ("ls -la", 0),
        ("echo 'a(((b' \"((\" \\(", 0),
        ("( a )", 1),
        ("( ( a ) ); ( b )", 2),
        ("echo $(a $(b))", 2),
        ("echo \"$(a \"$(b)\")\"", 2),
        ("echo ${x:-${y:-z}}", 2),
        ("echo $(( (1 + 2) * 3 ))", 3),
        ("(( (x) ))", 3),
        ("if a; then while b; do c; done; fi", 2),
        ("f() { case $x in a) { b; } ;; esac; }", 3),
        ("[[ a && ( b || ! c ) ]]", 5),
        ("for f in a b; do if x; then y; fi; done", 2),
        ("cat <(sort a) >(wc)", 1),
        ("echo @(a|b(c))", 2),
    ] {
        assert_eq!(measure(text), depth, "{text}");
    }
}

#[test]
fn sequences_do_not_accumulate() {
    let many = "if a; then b; fi\n".repeat(500)
        + &"( x ); { y; }; $(z); ${v}; [[ a ]]; case x in y) z;; esac\n".repeat(200);
    assert!(measure(&many) <= 2, "{}", measure(&many));
    let loops = "for i in 1 2; do echo $i; done; while read l; do :; done < f\n".repeat(300);
    assert_eq!(measure(&loops), 1);
}

#[test]
fn closing_words_that_are_arguments_do_not_close() {
    // `fi`, `done` and `}` after a command name are arguments, not closers.
    let text = "if a; then echo fi done } esac; ".repeat(10);
    assert_eq!(measure(&text), 10);
    let procsub = "if a; then cat <(x) fi; ".repeat(10);
    assert_eq!(
        measure(&procsub),
        11,
        "ten ifs, and the last process substitution"
    );
}

#[test]
fn quoted_and_commented_text_does_not_nest() {
    for text in [
        "echo '((((((((((((((((((((((('",
        "echo \"(((((((((((((((((((((((\"",
        "# ((((((((((((((((((((((((((\nls",
        "echo a # $($($($($($($($(\nls",
        "echo $'\\' (((((((((((((((('",
        "cat <<'EOF'\n$($($($($($($($($($(\nEOF\nls",
        "echo `echo ((((((((((((((((((`",
    ] {
        assert!(measure(text) <= 1, "{text}: {}", measure(text));
    }
}

#[test]
fn here_document_bodies_are_read_like_the_tokenizer() {
    // An apostrophe in a body does not start a quote that would hide what follows it.
    let hidden = format!(
        "cat <<EOF\ndon't\nEOF\n{}x{}",
        "$(".repeat(200),
        ")".repeat(200)
    );
    assert!(measure(&hidden) >= 200);
    // A body that expands counts its substitutions; `<<-` strips tabs before the tag.
    let body = format!("cat <<-EOF\n\t{}\n\tEOF\nls", "$(".repeat(50));
    assert!(measure(&body) >= 50);
    // `<<` inside arithmetic is a shift, not a here-document.
    let shift = format!("(( x << 2 ))\n{}", "( ".repeat(50));
    assert!(measure(&shift) >= 50);
}

#[test]
fn deep_nesting_of_every_kind_is_refused_before_parsing() {
    let deep = MAX_NESTING + 1;
    for text in [
        "(".repeat(65_536),
        "{ ".repeat(32_768),
        "$(".repeat(32_768),
        "$((".repeat(21_845),
        "${a:-".repeat(13_107),
        "\"$(".repeat(21_845),
        "if a; then ".repeat(deep),
        "while a; do ".repeat(deep),
        "for x in y; do ".repeat(deep),
        "case x in y) ".repeat(deep),
        "f() { ".repeat(deep),
        "coproc ".repeat(deep),
        format!("[[ {} ]]", "! ".repeat(deep)),
        format!("[[ a{} ]]", " && a".repeat(deep)),
        format!("[[ {}a", "( ".repeat(deep)),
        format!("echo @{}", "(".repeat(deep)),
        format!("{}cat <<E\nx\nE\n", "( ".repeat(deep)),
        format!("cat <<E\n{}\nE\n", "$(".repeat(deep)),
    ] {
        let err = check(&text, 0).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::TooDeep {
                    max: MAX_NESTING,
                    at: Some(_)
                }
            ),
            "{}: {err}",
            &text[..40.min(text.len())]
        );
    }
    // The nesting a string sits in counts: `bash -c` of a string one level too deep.
    let inner = "( ".repeat(MAX_NESTING);
    assert!(check(&inner, 0).is_ok());
    assert!(matches!(
        check(&inner, 1),
        Err(ParseError::TooDeep { at: None, .. })
    ));
}

#[test]
fn assignments_and_coproc_names() {
    assert!(is_assignment(b"a=1") && is_assignment(b"a_b+=x") && is_assignment(b"a[1]=2"));
    assert!(!is_assignment(b"=x") && !is_assignment(b"1a=2") && !is_assignment(b"ls"));
    // `coproc NAME { … }`: the brace opens a group.
    assert_eq!(measure("coproc NAME { a; }"), 2);
    assert_eq!(measure("coproc ls -l"), 1);
}
