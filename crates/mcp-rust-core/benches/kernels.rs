//! Kernel benchmarks per instruction set, side by side with the read bandwidth of the same
//! data: `cargo bench -p mcp-rust-core --bench kernels`.
//!
//! For each matrix size, `stream_sum` (reading every byte once, the memory system's limit)
//! runs next to `cosine_topk` (norms computed per call) and `cosine_topk_with_norms` on every
//! instruction set this CPU supports, so criterion's throughput columns compare directly.
//! 100 000 × 384 f32 (154 MB) is a DRAM-sized scan; 10 000 × 384 (15 MB) fits a large L3
//! and 1 000 × 384 (1.5 MB) a large L2. The end-to-end comparison with numpy is
//! `benches/cosine_topk.py`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mcp_rust_core::kernels::{Isa, Kernels};

const DIM: usize = 384;

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

/// The kernels this CPU runs; the others are named on stderr, not silently left out.
fn runnable() -> Vec<&'static Kernels> {
    Isa::ALL
        .into_iter()
        .filter_map(|isa| {
            Kernels::for_isa(isa)
                .map_err(|e| eprintln!("SKIPPED on this CPU: {isa} kernels ({e})"))
                .ok()
        })
        .collect()
}

fn bench_scan(c: &mut Criterion) {
    let query = random_vec(DIM, 1);
    for rows in [100_000, 10_000, 1_000] {
        let matrix = random_vec(rows * DIM, 2);
        let mut group = c.benchmark_group(format!("scan_{rows}x{DIM}"));
        group.sample_size(if rows >= 100_000 { 20 } else { 50 });
        group.throughput(Throughput::Bytes((matrix.len() * 4) as u64));
        let best = Kernels::best();
        group.bench_function(format!("read/{}", best.isa()), |b| {
            b.iter(|| best.stream_sum(black_box(&matrix)))
        });
        for kernels in runnable() {
            let row_norms = kernels.norms(&matrix, DIM).unwrap();
            group.bench_function(format!("cosine_topk/{}", kernels.isa()), |b| {
                b.iter(|| {
                    kernels
                        .cosine_topk(black_box(&matrix), DIM, black_box(&query), 10)
                        .unwrap()
                })
            });
            group.bench_function(format!("cosine_topk_with_norms/{}", kernels.isa()), |b| {
                b.iter(|| {
                    kernels
                        .cosine_topk_with_norms(
                            black_box(&matrix),
                            DIM,
                            &row_norms,
                            black_box(&query),
                            10,
                        )
                        .unwrap()
                })
            });
        }
        group.finish();
    }
}

fn bench_dot_and_norms(c: &mut Criterion) {
    let matrix = random_vec(10_000 * DIM, 3);
    let (a, b) = (random_vec(4096, 4), random_vec(4096, 5));
    for kernels in runnable() {
        c.bench_function(&format!("dot_4096/{}", kernels.isa()), |bench| {
            bench.iter(|| kernels.dot(black_box(&a), black_box(&b)))
        });
        c.bench_function(&format!("norms_10000x384/{}", kernels.isa()), |bench| {
            bench.iter(|| kernels.norms(black_box(&matrix), DIM).unwrap())
        });
    }
}

criterion_group!(benches, bench_scan, bench_dot_and_norms);
criterion_main!(benches);
