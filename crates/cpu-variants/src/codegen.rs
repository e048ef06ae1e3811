//! Rust source that build scripts write to `OUT_DIR` and `include!`: the run-time check of
//! the features the variants need.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::features::{RequiredFeatures, detection_macro};

/// `pub const VARIANTS: &[VariantSpec]`: every variant of `required` (the target's
/// architecture's, in the table's order) with the features it needs beyond the baseline.
/// `VariantSpec` is [`crate::choice::VariantSpec`], in scope where the code is included.
pub fn variants_const(required: &[RequiredFeatures]) -> String {
    let mut code = String::from(
        "/// Every variant of the workspace for this architecture, with the CPU features it\n\
         /// needs beyond the architecture's baseline, in the table's order.\n\
         pub const VARIANTS: &[VariantSpec] = &[\n",
    );
    for variant in required {
        code.push_str(&format!(
            "    VariantSpec {{ name: {:?}, required_features: {} }},\n",
            variant.variant,
            str_slice(&variant.features)
        ));
    }
    code.push_str("];\n");
    code
}

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
    fn variants_const_lists_each_variant_with_its_features_in_table_order() {
        let required = [
            RequiredFeatures {
                variant: "generic".to_owned(),
                features: Vec::new(),
            },
            RequiredFeatures {
                variant: "znver4".to_owned(),
                features: vec!["avx2".to_owned(), "sse4a".to_owned()],
            },
        ];
        let code = variants_const(&required);
        let generic = code
            .find(r#"VariantSpec { name: "generic", required_features: &[] },"#)
            .expect(&code);
        let znver4 = code
            .find(r#"VariantSpec { name: "znver4", required_features: &["avx2", "sse4a"] },"#)
            .expect(&code);
        assert!(generic < znver4, "{code}");
        assert!(
            code.starts_with("/// Every variant") && code.ends_with("];\n"),
            "{code}"
        );
    }

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
