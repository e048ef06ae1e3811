//! The run-time choice of a variant: which build this CPU runs best, or whether a forced one
//! runs at all. One implementation for every chooser (mcp-launcher, `import mcp_rust_core`).
//!
//! This file uses `std` only and names nothing outside itself, because choosers that must
//! stay free of run-time dependencies (the launcher) compile it from the source that
//! `cpu_variants::codegen::choice_module` writes to their `OUT_DIR`; others may use
//! `cpu_variants::choice` directly. The variants come from the workspace table through the
//! generated `VARIANTS` constant, so nothing here names a variant.
//!
//! The order of preference follows from the feature sets alone: a variant whose features
//! include another's is better, so among the variants this CPU fully supports the one
//! needing the most features wins; variants needing equally many keep the table's order.
//! With the nested sets of the table (generic ⊂ x86-64-v3 ⊂ x86-64-v4 ⊂ znver4) that is
//! znver4 > x86-64-v4 > x86-64-v3 > generic.

use std::fmt;

/// A CPU variant and the target features (beyond the architecture's baseline) it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    pub required_features: &'static [&'static str],
}

/// What the user asked for (usually through an environment variable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VariantRequest {
    /// The best variant this CPU runs.
    Auto,
    /// This variant or an error.
    Named(String),
}

/// Why no variant was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChoiceError {
    UnknownVariant {
        requested: String,
        known: Vec<&'static str>,
    },
    CpuLacksFeatures {
        variant: &'static str,
        missing: Vec<&'static str>,
    },
    NoRunnableVariant {
        missing_per_variant: Vec<(&'static str, Vec<&'static str>)>,
    },
}

impl fmt::Display for ChoiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownVariant { requested, known } => write!(
                f,
                "{requested:?} names no variant of this build; use `auto` or one of: {}",
                known.join(", ")
            ),
            Self::CpuLacksFeatures { variant, missing } => write!(
                f,
                "{variant} needs CPU features this CPU lacks: {}; ask for `auto` to use the \
                 best build this CPU supports",
                missing.join(", ")
            ),
            Self::NoRunnableVariant {
                missing_per_variant,
            } => {
                write!(f, "this CPU can run none of the variants:")?;
                for (variant, missing) in missing_per_variant {
                    write!(f, " {variant} lacks {};", missing.join(", "))?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ChoiceError {}

/// The request in an environment variable's value: unset, empty or `auto` (any case, spaces
/// trimmed) is [`VariantRequest::Auto`], anything else names a variant.
pub fn parse_request(value: Option<&str>) -> VariantRequest {
    match value.map(str::trim) {
        None => VariantRequest::Auto,
        Some(v) if v.is_empty() || v.eq_ignore_ascii_case("auto") => VariantRequest::Auto,
        Some(v) => VariantRequest::Named(v.to_owned()),
    }
}

/// The features of `variant` that `has_feature` does not confirm (`None`, a feature this
/// build cannot check, counts as missing: a guess could be a SIGILL).
pub fn missing_features(
    variant: &VariantSpec,
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Vec<&'static str> {
    variant
        .required_features
        .iter()
        .copied()
        .filter(|feature| has_feature(feature) != Some(true))
        .collect()
}

/// Every variant this CPU fully supports, best first (see the module docs); the baseline,
/// which needs nothing, comes last.
pub fn runnable_best_first(
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Vec<VariantSpec> {
    let mut runnable: Vec<VariantSpec> = variants
        .iter()
        .filter(|v| missing_features(v, has_feature).is_empty())
        .copied()
        .collect();
    // A strict superset has more features, so counting orders inclusion; the sort is
    // stable, so equal counts keep the table's order.
    runnable.sort_by_key(|v| std::cmp::Reverse(v.required_features.len()));
    runnable
}

/// The variants to try, best first: for `Auto` every variant this CPU runs (an error when
/// there is none), for a name that variant alone (an error when it is unknown or this CPU
/// lacks any of its features).
pub fn candidates(
    request: &VariantRequest,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<Vec<VariantSpec>, ChoiceError> {
    match request {
        VariantRequest::Named(name) => {
            let variant = variants.iter().find(|v| v.name == name).ok_or_else(|| {
                ChoiceError::UnknownVariant {
                    requested: name.clone(),
                    known: variants.iter().map(|v| v.name).collect(),
                }
            })?;
            let missing = missing_features(variant, has_feature);
            if missing.is_empty() {
                Ok(vec![*variant])
            } else {
                Err(ChoiceError::CpuLacksFeatures {
                    variant: variant.name,
                    missing,
                })
            }
        }
        VariantRequest::Auto => {
            let runnable = runnable_best_first(variants, has_feature);
            if runnable.is_empty() {
                Err(ChoiceError::NoRunnableVariant {
                    missing_per_variant: variants
                        .iter()
                        .map(|v| (v.name, missing_features(v, has_feature)))
                        .collect(),
                })
            } else {
                Ok(runnable)
            }
        }
    }
}

/// The one variant to run: the first of [`candidates`].
pub fn choose(
    request: &VariantRequest,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<VariantSpec, ChoiceError> {
    let best = candidates(request, variants, has_feature)?
        .into_iter()
        .next();
    // invariant: `candidates` never returns an empty list (it errs instead).
    best.ok_or_else(|| ChoiceError::NoRunnableVariant {
        missing_per_variant: Vec::new(),
    })
}
