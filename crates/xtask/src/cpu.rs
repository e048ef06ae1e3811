//! Which CPU features a `target-cpu` implies and whether this machine has them, asked of
//! rustc itself so the names always match the compiler's. Every step that runs variant code
//! (FFI tests, image smoke tests, benchmarks) asks [`support`] first and skips loudly what
//! this CPU cannot run, instead of dying with SIGILL. Asking rustc and subtracting the
//! baseline is `cpu_variants::features`' job (shared with the build scripts); this module adds
//! the question "and does this machine have them?".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use anyhow::{Context, Result};
use cpu_variants::features::{Rustc, beyond_baseline};

/// The `target_feature`s rustc enables for `target_cpu` on `target` (`native` = this CPU).
pub fn target_features(target: &str, target_cpu: &str) -> Result<BTreeSet<String>> {
    // The same questions are asked for every artifact of a run; rustc takes ~50 ms each.
    static CACHE: Mutex<BTreeMap<(String, String), BTreeSet<String>>> = Mutex::new(BTreeMap::new());
    let key = (target.to_owned(), target_cpu.to_owned());
    if let Some(features) = CACHE.lock().ok().and_then(|cache| cache.get(&key).cloned()) {
        return Ok(features);
    }
    let features = Rustc::new("rustc", target)
        .target_features(&[format!("-Ctarget-cpu={target_cpu}")])
        .with_context(|| format!("asking rustc what target-cpu={target_cpu} enables"))?;
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key, features.clone());
    }
    Ok(features)
}

/// Features `target_cpu` needs beyond the baseline that this machine lacks (empty: runnable).
pub fn missing_on_this_machine(target: &str, target_cpu: &str) -> Result<Vec<String>> {
    // Code for another architecture never runs natively here.
    let arch = target.split('-').next().unwrap_or_default();
    if arch != std::env::consts::ARCH {
        return Ok(vec![format!("the {arch} architecture")]);
    }
    let wanted = target_features(target, target_cpu)?;
    let baseline = target_features(target, "generic")?;
    let native = target_features(target, "native")?;
    Ok(missing(&wanted, &baseline, &native))
}

/// `wanted - baseline - available` (and never a linking property such as `crt-static`), sorted.
pub fn missing(
    wanted: &BTreeSet<String>,
    baseline: &BTreeSet<String>,
    available: &BTreeSet<String>,
) -> Vec<String> {
    beyond_baseline(wanted, baseline)
        .into_iter()
        .filter(|feature| !available.contains(feature))
        .collect()
}

/// Whether this machine can run code built for `target_cpu` on `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Support {
    Runs,
    /// The CPU lacks these features (or the architecture differs).
    Lacks(Vec<String>),
}

impl Support {
    pub fn runs(&self) -> bool {
        *self == Support::Runs
    }

    /// The loud line a step prints when it does not run `what` (e.g. "FFI tests of
    /// variant znver4"): what is skipped and why, framed so it stands out in a CI log.
    pub fn skip_notice(&self, what: &str) -> Option<String> {
        match self {
            Support::Runs => None,
            Support::Lacks(features) => Some(format!(
                "!!! SKIPPED on this CPU: {what} (lacks {}; {}) !!!",
                features.join(", "),
                this_cpu()
            )),
        }
    }
}

/// The shared check: can code built for `target_cpu` on `target` run here?
pub fn support(target: &str, target_cpu: &str) -> Result<Support> {
    let lacking = missing_on_this_machine(target, target_cpu)?;
    Ok(if lacking.is_empty() {
        Support::Runs
    } else {
        Support::Lacks(lacking)
    })
}

/// This machine's CPU model, for messages and benchmark tables.
pub fn this_cpu() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| cpu_model(&text))
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// `model name` of the first processor in `/proc/cpuinfo`, with its family and model
/// numbers when present ("AMD EPYC (family 25, model 17)"): a model name alone can be as
/// vague as "AMD EPYC".
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    let field = |name: &str| {
        cpuinfo.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_owned())
        })
    };
    let name = field("model name")?;
    Some(match (field("cpu family"), field("model")) {
        (Some(family), Some(model)) => format!("{name} (family {family}, model {model})"),
        _ => name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn missing_ignores_the_baseline() {
        let wanted = set(&["sse2", "avx2", "avx512f", "sse4a", "crt-static"]);
        let baseline = set(&["sse2"]);
        let intel = set(&["sse2", "avx2", "avx512f"]);
        assert_eq!(missing(&wanted, &baseline, &intel), ["sse4a"]);
        assert!(missing(&wanted, &baseline, &wanted).is_empty());
    }

    #[test]
    fn rustc_knows_znver4_has_avx512() {
        let features = target_features("x86_64-unknown-linux-gnu", "znver4").unwrap();
        assert!(features.contains("avx512f"), "{features:?}");
        assert!(
            !target_features("x86_64-unknown-linux-gnu", "generic")
                .unwrap()
                .contains("avx2")
        );
    }

    #[test]
    fn the_baseline_always_runs_and_a_foreign_architecture_never() {
        let arch = std::env::consts::ARCH;
        let native = format!("{arch}-unknown-linux-gnu");
        assert_eq!(support(&native, "generic").unwrap(), Support::Runs);
        let foreign = if arch == "x86_64" {
            "aarch64-unknown-linux-musl"
        } else {
            "x86_64-unknown-linux-musl"
        };
        let lacks = support(foreign, "generic").unwrap();
        assert!(!lacks.runs());
        let notice = lacks.skip_notice("the thing").unwrap();
        assert!(
            notice.contains("SKIPPED")
                && notice.contains("the thing")
                && notice.contains("architecture"),
            "{notice}"
        );
        assert_eq!(Support::Runs.skip_notice("x"), None);
    }

    #[test]
    fn cpu_model_comes_from_cpuinfo() {
        let cpuinfo = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 9R14"));
        let full = "processor\t: 0\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC\n";
        assert_eq!(
            cpu_model(full).as_deref(),
            Some("AMD EPYC (family 25, model 17)")
        );
        assert_eq!(cpu_model(""), None);
    }
}
