//! Kernel benchmarks: `cargo bench -p mcp-rust-core --bench kernels`.
//!
//! The headline case is the one the Python benchmark (`benches/cosine_topk.py`) also times:
//! `cosine_topk` over 100 000 x 384 f32 rows, k = 10. It is memory-bound on most machines
//! (153 MB per scan), so a cache-resident 10 000 x 384 case shows the compute side.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_rust_core::kernels;

/// Reproducible pseudo-random data in [-1, 1) without a dependency.
fn random_vec(len: usize, mut seed: u64) -> Vec<f32> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn bench_cosine_topk(c: &mut Criterion) {
    const DIM: usize = 384;
    let query = random_vec(DIM, 1);
    let mut group = c.benchmark_group("cosine_topk");
    group.sample_size(20);
    for rows in [10_000, 100_000] {
        let matrix = random_vec(rows * DIM, 2);
        group.throughput(Throughput::Bytes((matrix.len() * 4) as u64));
        group.bench_function(format!("{rows}x{DIM}_k10"), |b| {
            b.iter(|| kernels::cosine_topk(black_box(&matrix), DIM, black_box(&query), 10).unwrap())
        });
    }
    group.finish();
}

fn bench_dot_and_norms(c: &mut Criterion) {
    const DIM: usize = 384;
    let matrix = random_vec(10_000 * DIM, 3);
    let (a, b) = (random_vec(4096, 4), random_vec(4096, 5));
    c.bench_function("dot_4096", |bench| {
        bench.iter(|| kernels::dot(black_box(&a), black_box(&b)))
    });
    c.bench_function("norms_10000x384", |bench| {
        bench.iter(|| kernels::norms(black_box(&matrix), DIM).unwrap())
    });
}

criterion_group!(benches, bench_cosine_topk, bench_dot_and_norms);
criterion_main!(benches);
