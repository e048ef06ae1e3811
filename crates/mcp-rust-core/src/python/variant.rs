//! Which build variant `import mcp_rust_core` loads: the same rule as mcp-launcher, from
//! the same table (the workspace's variants, derived by `cpu-variants` in build.rs).
//!
//! The package's own module (the generic build in the wheel, loadable on any CPU of the
//! architecture) answers `_select_variant()`, and `__init__.py` then loads the chosen
//! variant's module by path. Nothing in Python names a variant.

use pyo3::exceptions::PyImportError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

// cpu-variants' choice code (written to OUT_DIR by build.rs, as for mcp-launcher), then the
// generated table and feature check, which name `VariantSpec`.
#[allow(dead_code)] // `choose` (one variant) is the launcher's; Python tries every candidate.
mod shared {
    include!(concat!(env!("OUT_DIR"), "/choice.rs"));
}
use shared::choice::{self, VariantRequest, VariantSpec, missing_features};
include!(concat!(env!("OUT_DIR"), "/variants.rs"));

/// The environment variable that forces a variant (`auto`, empty or unset: the best one).
pub const VARIANT_ENV: &str = "MCP_RUST_CORE_VARIANT";

/// The variants to try for `request` (the value of [`VARIANT_ENV`]), best first, or the
/// message of the `ImportError`, which names the variable when a variant was forced.
fn choose(
    request: &str,
    variants: &[VariantSpec],
    has_feature: &impl Fn(&str) -> Option<bool>,
) -> Result<Vec<&'static str>, String> {
    let parsed = choice::parse_request(Some(request));
    match choice::candidates(&parsed, variants, has_feature) {
        Ok(candidates) => Ok(candidates.into_iter().map(|v| v.name).collect()),
        Err(error) => Err(match parsed {
            VariantRequest::Auto => error.to_string(),
            VariantRequest::Named(_) => format!("{VARIANT_ENV}={error}"),
        }),
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
    let forced = matches!(
        choice::parse_request(Some(&request)),
        VariantRequest::Named(_)
    );
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
