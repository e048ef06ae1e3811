//! Rust source that build scripts write to `OUT_DIR` and `include!`: the run-time check of
//! the features the variants need.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::features::detection_macro;

/// `pub fn cpu_has_feature(feature: &str) -> Option<bool>`: `Some(present)` for each of
/// `detectable` (checked with the target's detection macro), `None` for any other name, so
/// callers can treat an unknown feature as missing. `detectable` must hold only names the
/// macro accepts (see [`crate::features::undetectable`]); on a target without detection
/// every name answers `None`.
pub fn cpu_has_feature_fn(target_arch: &str, detectable: &BTreeSet<String>) -> String {
    let mut code = String::from(
        "/// Whether this CPU has `feature` (`None`: a name this build cannot check).\n\
         pub fn cpu_has_feature(feature: &str) -> Option<bool> {\n",
    );
    match detection_macro(target_arch) {
        Some(detect) if !detectable.is_empty() => {
            code.push_str("    match feature {\n");
            for feature in detectable {
                // invariant: writing to a String cannot fail.
                writeln!(code, "        {feature:?} => Some({detect}!({feature:?})),")
                    .expect("write to String");
            }
            code.push_str("        _ => None,\n    }\n");
        }
        _ => code.push_str("    let _ = feature;\n    None\n"),
    }
    code.push_str("}\n");
    code
}

/// `pub mod choice { … }`: the source of [`crate::choice`], for crates that must not depend
/// on this one at run time (the launcher is std only). A build script writes it to
/// `OUT_DIR` and the crate `include!`s it, so every chooser runs the same code.
pub fn choice_module() -> String {
    format!(
        "// Generated from cpu-variants/src/choice.rs; do not edit.\n\npub mod choice {{\n{}}}\n",
        include_str!("choice.rs")
    )
}

/// A Rust string-slice literal, `&["a", "b"]`.
pub fn str_slice(items: &[String]) -> String {
    format!("&{items:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x86_checks_each_detectable_feature_and_nothing_else() {
        let features: BTreeSet<String> = ["avx2", "sse4a"].map(str::to_owned).into();
        let code = cpu_has_feature_fn("x86_64", &features);
        assert!(code.contains(r#""avx2" => Some(std::arch::is_x86_feature_detected!("avx2")),"#));
        assert!(code.contains(r#""sse4a" =>"#));
        assert!(code.contains("_ => None,"));
    }

    #[test]
    fn without_detection_every_feature_is_unknown() {
        let features: BTreeSet<String> = ["neon"].map(str::to_owned).into();
        for (arch, detectable) in [("aarch64", &features), ("x86_64", &BTreeSet::new())] {
            let code = cpu_has_feature_fn(arch, detectable);
            assert!(
                code.contains("None") && !code.contains("detected"),
                "{code}"
            );
        }
    }

    #[test]
    fn the_choice_module_is_the_choice_source_wrapped_in_a_module() {
        let code = choice_module();
        assert!(
            code.contains("pub mod choice {\n//! The run-time choice"),
            "{code}"
        );
        assert!(code.contains(include_str!("choice.rs")));
        // Self-contained: the emitted code cannot see this crate.
        assert!(!include_str!("choice.rs").contains("crate::choice::"));
        assert!(
            !include_str!("choice.rs")
                .lines()
                .any(|l| l.starts_with("use crate"))
        );
    }

    #[test]
    fn slices_are_rust_literals() {
        assert_eq!(
            str_slice(&["a\"b".to_owned(), "c".to_owned()]),
            r#"&["a\"b", "c"]"#
        );
        assert_eq!(str_slice(&[]), "&[]");
    }
}
