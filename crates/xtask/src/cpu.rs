//! Which CPU features a `target-cpu` implies and whether this machine has them, asked of
//! rustc itself so the names always match the compiler's.

use std::collections::BTreeSet;
use std::process::Command;

use anyhow::Result;

use crate::process;

/// The `target_feature`s rustc enables for `target_cpu` on `target` (`native` = this CPU).
pub fn target_features(target: &str, target_cpu: &str) -> Result<BTreeSet<String>> {
    let cfg = process::output(
        Command::new("rustc")
            .args(["--print", "cfg", "--target", target])
            .arg(format!("-Ctarget-cpu={target_cpu}")),
    )?;
    Ok(parse_target_features(&cfg))
}

/// `target_feature="avx2"` lines of `rustc --print cfg`.
pub fn parse_target_features(cfg: &str) -> BTreeSet<String> {
    cfg.lines()
        .filter_map(|line| line.strip_prefix("target_feature=\""))
        .filter_map(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .collect()
}

/// Features `target_cpu` needs beyond the baseline that this machine lacks (empty: runnable).
pub fn missing_on_this_machine(target: &str, target_cpu: &str) -> Result<Vec<String>> {
    let wanted = target_features(target, target_cpu)?;
    let baseline = target_features(target, "generic")?;
    let native = target_features(target, "native")?;
    Ok(missing(&wanted, &baseline, &native))
}

/// `wanted - baseline - available`, sorted.
pub fn missing(
    wanted: &BTreeSet<String>,
    baseline: &BTreeSet<String>,
    available: &BTreeSet<String>,
) -> Vec<String> {
    wanted
        .iter()
        .filter(|feature| !baseline.contains(*feature) && !available.contains(*feature))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_rustc_cfg_output() {
        let cfg = "debug_assertions\ntarget_arch=\"x86_64\"\ntarget_feature=\"avx512f\"\ntarget_feature=\"sse2\"\n";
        assert_eq!(parse_target_features(cfg), set(&["avx512f", "sse2"]));
    }

    #[test]
    fn missing_ignores_the_baseline() {
        let wanted = set(&["sse2", "avx2", "avx512f", "sse4a"]);
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
}
