//! `search_code` against the `rg` command line tool on the same large tree.
//!
//! The tree is `$DEV_BENCH_TREE`, default `~/.cargo/registry/src` (tens of thousands of
//! real source files). `rg` is taken from `$RG` or `PATH`; without it only our side runs.
//! Both sides count matching lines per file (`count_only` vs `rg -c`), so the work and
//! the output are the same; each uses all cores.
//!
//!     cargo bench -p development --bench search

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use development::search::{SearchParams, search_code};
use mcp_server_runtime::{CancelFlag, Roots};

const PATTERNS: [(&str, &str); 2] = [("literal", "unsafe"), ("regex", r"fn\s+[a-z_]+_test\b")];

fn tree() -> PathBuf {
    std::env::var_os("DEV_BENCH_TREE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_default();
            home.join(".cargo/registry/src")
        })
}

fn rg() -> Option<PathBuf> {
    let candidate = std::env::var_os("RG").map_or_else(|| PathBuf::from("rg"), PathBuf::from);
    Command::new(&candidate)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .ok()
        .filter(|status| status.success())
        .map(|_| candidate)
}

fn params(pattern: &str) -> SearchParams {
    SearchParams {
        pattern: pattern.to_owned(),
        path: None,
        glob: None,
        case_insensitive: false,
        fixed_strings: false,
        max_results: Some(10_000),
        count_only: true,
        context_lines: None,
        include_hidden: false,
    }
}

fn bench(c: &mut Criterion) {
    let tree = tree();
    let roots = Roots::new([tree.clone()]).expect("benchmark tree exists; set DEV_BENCH_TREE");
    let rg = rg();
    if rg.is_none() {
        eprintln!("rg not found (set RG=/path/to/rg): benchmarking search_code alone");
    }
    let mut group = c.benchmark_group("search_tree");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    for (label, pattern) in PATTERNS {
        let ours = search_code(&params(pattern), &roots, &CancelFlag::new()).unwrap();
        eprintln!(
            "{label}: search_code counted {} lines in {} files ({} files walked)",
            ours.total_matches, ours.files_with_matches, ours.walk.files_visited
        );
        group.bench_function(format!("search_code/{label}"), |b| {
            b.iter(|| search_code(&params(pattern), &roots, &CancelFlag::new()).unwrap())
        });
        if let Some(rg) = &rg {
            let run = || {
                let output = Command::new(rg)
                    .args(["-c", "--no-config", pattern])
                    .arg(&tree)
                    .output()
                    .expect("rg runs");
                // rg exits 1 when nothing matched; 2 is an error.
                assert!(
                    output.status.code().is_some_and(|code| code < 2),
                    "rg failed"
                );
                output.stdout.len()
            };
            let lines: u64 = String::from_utf8_lossy(
                &Command::new(rg)
                    .args(["-c", "--no-config", pattern])
                    .arg(&tree)
                    .output()
                    .unwrap()
                    .stdout,
            )
            .lines()
            .filter_map(|line| line.rsplit(':').next()?.parse::<u64>().ok())
            .sum();
            eprintln!("{label}: rg -c counted {lines} lines");
            group.bench_function(format!("rg/{label}"), |b| b.iter(run));
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
