//! Which build variant `import mcp_rust_core` loads: the same rule as mcp-launcher, from
//! the same table (the workspace's variants, derived by `cpu-variants` in build.rs).
//!
//! The package's own module (the generic build in the wheel, loadable on any CPU of the
//! architecture) answers `_select_variant()`, and `__init__.py` then loads the chosen
//! variant's module by path. Nothing in Python names a variant.
//!
//! TODO(cpu-variants): `choose` repeats mcp-launcher's `choose_variant` rule; use the shared
//! one once cpu-variants offers it in a form without run-time dependencies.

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// A CPU variant and the target features (beyond the architecture's baseline) it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariantSpec {
    pub name: &'static str,
    pub required_features: &'static [&'static str],
}

include!(concat!(env!("OUT_DIR"), "/variants.rs"));

/// The environment variable that forces a variant (`auto`, empty or unset: the best one).
pub const VARIANT_ENV: &str = "MCP_RUST_CORE_VARIANT";

/// The features of `variant` that `has_feature` does not confirm.
fn missing_features(
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

/// The variants to try, best first: for `auto`, every variant this CPU runs, the one
/// needing the most features first (so the baseline, which needs none, comes last); for a
/// variant name, that variant alone, or an error saying what this CPU lacks.
fn choose(
    request: &str,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<Vec<&'static str>, String> {
    let request = request.trim();
    if request.is_empty() || request.eq_ignore_ascii_case("auto") {
        let mut runnable: Vec<&VariantSpec> = variants
            .iter()
            .filter(|v| missing_features(v, has_feature).is_empty())
            .collect();
        // Stable: equally specialized variants keep the table's order.
        runnable.sort_by_key(|v| std::cmp::Reverse(v.required_features.len()));
        return Ok(runnable.into_iter().map(|v| v.name).collect());
    }
    let Some(variant) = variants.iter().find(|v| v.name == request) else {
        let known: Vec<&str> = variants.iter().map(|v| v.name).collect();
        return Err(format!(
            "{VARIANT_ENV}={request:?} names no variant of this build; use `auto` or one of: {}",
            known.join(", ")
        ));
    };
    let missing = missing_features(variant, has_feature);
    if missing.is_empty() {
        Ok(vec![variant.name])
    } else {
        Err(format!(
            "{VARIANT_ENV}={request} needs CPU features this CPU lacks: {}; unset {VARIANT_ENV} \
             (or set it to `auto`) to load the best build this CPU supports",
            missing.join(", ")
        ))
    }
}

/// Which variant to load: `{"request", "forced", "candidates", "variants"}`.
///
/// `request` defaults to `$MCP_RUST_CORE_VARIANT`. `candidates` lists the variants to try,
/// best first (one entry when a variant is forced); `variants` describes every variant of
/// this architecture (`name`, `required_features`, `missing_features` on this CPU). Raises
/// `ImportError` for an unknown variant or one this CPU cannot run.
#[pyfunction]
#[pyo3(signature = (request = None))]
pub fn _select_variant(py: Python<'_>, request: Option<String>) -> PyResult<Bound<'_, PyDict>> {
    let request = request
        .or_else(|| std::env::var(VARIANT_ENV).ok())
        .unwrap_or_default();
    let candidates = choose(&request, VARIANTS, &cpu_has_feature)
        .map_err(|message| PyImportError::new_err(format!("mcp_rust_core: {message}")))?;
    let forced = !(request.trim().is_empty() || request.trim().eq_ignore_ascii_case("auto"));
    let variants = PyList::empty(py);
    for variant in VARIANTS {
        let entry = PyDict::new(py);
        entry.set_item("name", variant.name)?;
        entry.set_item("required_features", variant.required_features)?;
        entry.set_item(
            "missing_features",
            missing_features(variant, &cpu_has_feature),
        )?;
        variants.append(entry)?;
    }
    let plan = PyDict::new(py);
    plan.set_item("request", if forced { request.trim() } else { "auto" })?;
    plan.set_item("forced", forced)?;
    plan.set_item("candidates", candidates)?;
    plan.set_item("variants", variants)?;
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENERIC: VariantSpec = VariantSpec {
        name: "generic",
        required_features: &[],
    };
    const V3: VariantSpec = VariantSpec {
        name: "v3",
        required_features: &["avx2", "fma"],
    };
    const V4: VariantSpec = VariantSpec {
        name: "v4",
        required_features: &["avx2", "fma", "avx512f"],
    };
    const ALL: &[VariantSpec] = &[GENERIC, V4, V3];

    fn cpu_with(features: &'static [&'static str]) -> impl Fn(&str) -> Option<bool> {
        move |f: &str| Some(features.contains(&f))
    }

    #[test]
    fn auto_lists_every_runnable_variant_most_specialized_first() {
        let full = cpu_with(&["avx2", "fma", "avx512f"]);
        assert_eq!(choose("auto", ALL, &full).unwrap(), ["v4", "v3", "generic"]);
        assert_eq!(choose("", ALL, &full).unwrap(), ["v4", "v3", "generic"]);
        let avx2 = cpu_with(&["avx2", "fma"]);
        assert_eq!(choose(" AUTO ", ALL, &avx2).unwrap(), ["v3", "generic"]);
        assert_eq!(
            choose("auto", ALL, &cpu_with(&["avx2"])).unwrap(),
            ["generic"]
        );
        // A feature the build cannot check counts as missing.
        assert_eq!(choose("auto", ALL, &|_: &str| None).unwrap(), ["generic"]);
    }

    #[test]
    fn a_forced_variant_is_the_only_candidate_or_an_error_naming_what_is_missing() {
        let avx2 = cpu_with(&["avx2", "fma"]);
        assert_eq!(choose("v3", ALL, &avx2).unwrap(), ["v3"]);
        assert_eq!(choose("generic", ALL, &avx2).unwrap(), ["generic"]);
        let error = choose("v4", ALL, &avx2).unwrap_err();
        assert!(
            error.contains("avx512f") && !error.contains("avx2,"),
            "{error}"
        );
        assert!(error.contains(VARIANT_ENV), "{error}");
        let unknown = choose("znver9", ALL, &avx2).unwrap_err();
        assert!(unknown.contains("generic, v4, v3"), "{unknown}");
    }

    #[test]
    fn the_generated_table_follows_the_workspace_table() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
        let expected: Vec<String> = cpu_variants::from_manifest(&root)
            .unwrap()
            .into_iter()
            .filter(|v| v.supports(std::env::consts::ARCH))
            .map(|v| v.name)
            .collect();
        let generated: Vec<&str> = VARIANTS.iter().map(|v| v.name).collect();
        assert_eq!(generated, expected);
        assert!(
            VARIANTS.iter().any(|v| v.required_features.is_empty()),
            "no baseline variant: {VARIANTS:?}"
        );
        for variant in VARIANTS {
            for feature in variant.required_features {
                assert!(
                    cpu_has_feature(feature).is_some(),
                    "{feature} is not checked"
                );
            }
        }
        // This CPU's own choice, for the test log.
        eprintln!(
            "this CPU: {:?}",
            choose("auto", VARIANTS, &cpu_has_feature).unwrap()
        );
    }
}
