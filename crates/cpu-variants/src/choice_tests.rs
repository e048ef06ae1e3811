//! Tests of [`crate::choice`] with the shapes of table that matter: nested feature sets,
//! sets that do not include each other, features the build cannot check.

use crate::choice::*;

const GENERIC: VariantSpec = VariantSpec {
    name: "generic",
    required_features: &[],
};
const LEVEL3: VariantSpec = VariantSpec {
    name: "level3",
    required_features: &["avx2", "fma"],
};
const LEVEL4: VariantSpec = VariantSpec {
    name: "level4",
    required_features: &["avx2", "fma", "avx512f"],
};
const VENDOR: VariantSpec = VariantSpec {
    name: "vendor",
    required_features: &["avx2", "fma", "avx512f", "sse4a"],
};
/// Table order deliberately unlike preference order.
const NESTED: &[VariantSpec] = &[GENERIC, VENDOR, LEVEL3, LEVEL4];

fn cpu_with(features: &'static [&'static str]) -> impl Fn(&str) -> Option<bool> {
    move |f: &str| Some(features.contains(&f))
}

fn names(variants: &[VariantSpec]) -> Vec<&'static str> {
    variants.iter().map(|v| v.name).collect()
}

#[test]
fn nested_sets_are_preferred_most_specialized_first() {
    let cases: [(&'static [&'static str], &str); 5] = [
        (&["avx2", "fma", "avx512f", "sse4a"], "vendor"),
        (&["avx2", "fma", "avx512f"], "level4"),
        // AVX-512 without AVX2 support reported: level 4 needs both.
        (&["fma", "avx512f", "sse4a"], "generic"),
        (&["avx2", "fma", "sse4a"], "level3"),
        (&[], "generic"),
    ];
    for (features, expected) in cases {
        let chosen = choose(&VariantRequest::Auto, NESTED, &cpu_with(features)).unwrap();
        assert_eq!(chosen.name, expected, "CPU with {features:?}");
    }
    let all = cpu_with(&["avx2", "fma", "avx512f", "sse4a"]);
    assert_eq!(
        names(&runnable_best_first(NESTED, &all)),
        ["vendor", "level4", "level3", "generic"]
    );
}

#[test]
fn sets_that_do_not_include_each_other_go_by_count_then_table_order() {
    let left = VariantSpec {
        name: "left",
        required_features: &["a", "b"],
    };
    let right = VariantSpec {
        name: "right",
        required_features: &["c", "d"],
    };
    let wide = VariantSpec {
        name: "wide",
        required_features: &["a", "c", "e"],
    };
    let cpu = cpu_with(&["a", "b", "c", "d", "e"]);
    assert_eq!(
        names(&runnable_best_first(&[GENERIC, right, left, wide], &cpu)),
        ["wide", "right", "left", "generic"]
    );
    assert_eq!(
        names(&runnable_best_first(&[left, right, GENERIC], &cpu)),
        ["left", "right", "generic"]
    );
}

#[test]
fn a_feature_the_build_cannot_check_counts_as_missing() {
    let unknown = |_: &str| None;
    assert_eq!(missing_features(&LEVEL3, &unknown), ["avx2", "fma"]);
    assert_eq!(
        choose(&VariantRequest::Auto, NESTED, &unknown).unwrap(),
        GENERIC
    );
}

#[test]
fn forcing_a_variant_this_cpu_cannot_run_names_what_it_lacks() {
    let error = choose(
        &VariantRequest::Named("vendor".into()),
        NESTED,
        &cpu_with(&["avx2", "fma"]),
    )
    .unwrap_err();
    assert_eq!(
        error,
        ChoiceError::CpuLacksFeatures {
            variant: "vendor",
            missing: vec!["avx512f", "sse4a"]
        }
    );
    assert!(error.to_string().contains("avx512f, sse4a"), "{error}");
}

#[test]
fn forcing_a_lesser_variant_gives_exactly_that_one() {
    let all = cpu_with(&["avx2", "fma", "avx512f", "sse4a"]);
    let forced = candidates(&VariantRequest::Named("level3".into()), NESTED, &all).unwrap();
    assert_eq!(forced, [LEVEL3]);
}

#[test]
fn an_unknown_name_lists_every_variant() {
    let error = choose(
        &VariantRequest::Named("znver9".into()),
        NESTED,
        &cpu_with(&[]),
    )
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("\"znver9\" names no variant")
            && message.contains("generic, vendor, level3, level4"),
        "{message}"
    );
}

#[test]
fn no_runnable_variant_reports_what_each_lacks() {
    let error = choose(&VariantRequest::Auto, &[LEVEL3], &cpu_with(&["fma"])).unwrap_err();
    assert_eq!(
        error,
        ChoiceError::NoRunnableVariant {
            missing_per_variant: vec![("level3", vec!["avx2"])]
        }
    );
    assert!(error.to_string().contains("level3 lacks avx2"), "{error}");
}

#[test]
fn requests_parse_like_the_environment_variables_are_documented() {
    assert_eq!(parse_request(None), VariantRequest::Auto);
    for auto in ["", "  ", "auto", "AUTO", " Auto "] {
        assert_eq!(parse_request(Some(auto)), VariantRequest::Auto, "{auto:?}");
    }
    assert_eq!(
        parse_request(Some(" znver4 ")),
        VariantRequest::Named("znver4".into())
    );
}
