//! Kernel tests, run on every instruction set this CPU supports (the others are skipped
//! loudly), plus the cross-path guarantees stated in the module documentation.

use super::*;

/// Deterministic xorshift generator: reproducible "random" data without a dependency.
struct XorShift(u64);

impl XorShift {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        // 24 random bits mapped to [-1, 1).
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    fn vec(&mut self, len: usize) -> Vec<f32> {
        (0..len).map(|_| self.next_f32()).collect()
    }
}

/// The kernels of every instruction set this CPU can run; what it cannot run is reported on
/// stderr (the test still checks the rest), never silently dropped.
fn runnable() -> Vec<&'static Kernels> {
    Isa::ALL
        .into_iter()
        .filter_map(|isa| match Kernels::for_isa(isa) {
            Ok(kernels) => Some(kernels),
            Err(error) => {
                eprintln!("SKIPPED on this CPU: the {isa} kernels ({error})");
                None
            }
        })
        .collect()
}

fn naive_dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn naive_cosine(a: &[f32], b: &[f32]) -> f64 {
    let denominator = naive_dot(a, a).sqrt() * naive_dot(b, b).sqrt();
    if denominator == 0.0 {
        0.0
    } else {
        naive_dot(a, b) / denominator
    }
}

fn assert_close(actual: f32, expected: f64, scale: f64) {
    let tolerance = 1e-5 * scale.max(1.0);
    assert!(
        (f64::from(actual) - expected).abs() <= tolerance,
        "got {actual}, expected {expected} (tolerance {tolerance})"
    );
}

/// `γ_m · Σ|a_i·b_i|` with `m` the sequential roundings per lane (see the module docs).
fn rounding_bound(a: &[f32], b: &[f32]) -> f64 {
    let n = a.len();
    let m = (n.div_ceil(LANES) + 5 + n % LANES) as f64;
    let u = f64::from(f32::EPSILON) / 2.0;
    let gamma = m * u / (1.0 - m * u);
    gamma
        * a.iter()
            .zip(b)
            .map(|(x, y)| (f64::from(*x) * f64::from(*y)).abs())
            .sum::<f64>()
}

// Lengths around and between multiples of the lane count exercise the scalar tail.
const LENGTHS: [usize; 14] = [1, 3, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 384, 1001];

#[test]
fn every_isa_is_named_and_the_portable_one_always_runs() {
    for isa in Isa::ALL {
        assert_eq!(Isa::from_name(isa.name()), Some(isa));
    }
    assert_eq!(Isa::from_name("sse9"), None);
    assert_eq!(
        Kernels::for_isa(Isa::Portable).unwrap().isa(),
        Isa::Portable
    );
    let supported = Kernels::supported();
    assert_eq!(supported[0], Isa::Portable);
    assert_eq!(Kernels::best().isa(), *supported.last().unwrap());
    eprintln!("kernels this CPU runs: {supported:?}");
}

#[cfg(target_arch = "x86_64")]
#[test]
fn support_follows_the_cpu_features() {
    let has = |feature: &str| match feature {
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        "fma" => std::arch::is_x86_feature_detected!("fma"),
        "avx512f" => std::arch::is_x86_feature_detected!("avx512f"),
        other => panic!("the test does not know {other}"),
    };
    for isa in Isa::ALL {
        let expected = isa.required_features().iter().all(|f| has(f));
        assert_eq!(Kernels::for_isa(isa).is_ok(), expected, "{isa}");
    }
}

#[test]
fn requests_parse_like_the_environment_variable() {
    assert_eq!(
        Kernels::from_request("").unwrap().isa(),
        Kernels::best().isa()
    );
    assert_eq!(
        Kernels::from_request(" AUTO ").unwrap().isa(),
        Kernels::best().isa()
    );
    assert_eq!(
        Kernels::from_request("Portable").unwrap().isa(),
        Isa::Portable
    );
    let unknown = Kernels::from_request("sse9").unwrap_err();
    assert_eq!(
        unknown,
        SelectError::Unknown {
            requested: "sse9".into()
        }
    );
    assert!(unknown.to_string().contains("portable, avx2, avx512"));
    for isa in Isa::ALL {
        if let Err(error) = Kernels::from_request(isa.name()) {
            assert_eq!(error, SelectError::Unsupported { isa });
            let message = error.to_string();
            assert!(message.contains(isa.required_features()[0]), "{message}");
            assert!(message.contains(KERNELS_ENV), "{message}");
        }
    }
}

#[test]
fn dot_matches_naive_reference_for_every_tail_length() {
    for kernels in runnable() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for len in LENGTHS {
            let (a, b) = (rng.vec(len), rng.vec(len));
            let got = kernels.dot(&a, &b).unwrap();
            let error = (f64::from(got) - naive_dot(&a, &b)).abs();
            assert!(
                error <= rounding_bound(&a, &b) + f64::from(f32::MIN_POSITIVE),
                "{:?} len {len}: error {error}",
                kernels.isa()
            );
        }
    }
}

#[test]
fn dot_of_empty_vectors_is_zero_and_mismatch_is_an_error() {
    for kernels in runnable() {
        assert_eq!(kernels.dot(&[], &[]).unwrap(), 0.0);
        assert_eq!(
            kernels.dot(&[1.0, 2.0], &[1.0]),
            Err(KernelError::DimensionMismatch {
                expected: 2,
                found: 1
            })
        );
    }
}

#[test]
fn fused_paths_are_bit_identical_and_the_unfused_one_is_within_the_bound() {
    let paths = runnable();
    let reference = paths
        .iter()
        .copied()
        .find(|k| k.isa().fused())
        .unwrap_or(paths[0]);
    let mut rng = XorShift(11);
    for len in LENGTHS.into_iter().chain([4096, 4099]) {
        // Magnitudes spread over several binades make rounding differences likely.
        let a: Vec<f32> = rng.vec(len).iter().map(|x| x * 1e3_f32.powf(*x)).collect();
        let b = rng.vec(len);
        let expected = reference.dot(&a, &b).unwrap();
        for kernels in &paths {
            let got = kernels.dot(&a, &b).unwrap();
            if kernels.isa().fused() == reference.isa().fused() {
                assert_eq!(
                    got.to_bits(),
                    expected.to_bits(),
                    "{:?} vs {:?}, len {len}",
                    kernels.isa(),
                    reference.isa()
                );
            } else {
                let difference = f64::from(got - expected).abs();
                assert!(
                    difference <= 2.0 * rounding_bound(&a, &b),
                    "{:?} vs {:?}, len {len}: {difference}",
                    kernels.isa(),
                    reference.isa()
                );
            }
        }
    }
}

#[test]
fn cosine_scores_agree_across_paths() {
    let paths = runnable();
    let mut rng = XorShift(12);
    for dim in LENGTHS {
        let rows = 64;
        let matrix = rng.vec(rows * dim);
        let query = rng.vec(dim);
        let reference = paths[paths.len() - 1]
            .cosine_topk(&matrix, dim, &query, rows)
            .unwrap();
        for kernels in &paths {
            let got = kernels.cosine_topk(&matrix, dim, &query, rows).unwrap();
            let same_rounding = kernels.isa().fused() == paths[paths.len() - 1].isa().fused();
            let m = (dim.div_ceil(LANES) + 5 + dim % LANES) as f64;
            let u = f64::from(f32::EPSILON) / 2.0;
            let tolerance = 4.0 * (m * u / (1.0 - m * u)) + 6.0 * u;
            for hit in &got {
                let other = reference.iter().find(|h| h.index == hit.index).unwrap();
                if same_rounding {
                    assert_eq!(hit.score.to_bits(), other.score.to_bits(), "dim {dim}");
                } else {
                    assert!(
                        f64::from(hit.score - other.score).abs() <= tolerance,
                        "dim {dim}: {} vs {}",
                        hit.score,
                        other.score
                    );
                }
            }
        }
    }
}

#[test]
fn nan_and_infinity_propagate_the_same_way_on_every_path() {
    let cases: [(&[f32], &[f32]); 6] = [
        (&[f32::NAN, 1.0, 2.0], &[1.0, 1.0, 1.0]),
        (&[f32::INFINITY, 1.0], &[1.0, 1.0]),
        (&[f32::INFINITY, 1.0], &[-1.0, 1.0]),
        (&[f32::INFINITY, f32::NEG_INFINITY], &[1.0, 1.0]),
        (&[f32::INFINITY, 0.0], &[0.0, 1.0]),
        (&[1e30; 40], &[1e10; 40]),
    ];
    let paths = runnable();
    for (a, b) in cases {
        // In every lane position and in the tail.
        for shift in [0, 31, 40] {
            let mut a_long = vec![0.5f32; shift];
            let mut b_long = vec![0.25f32; shift];
            a_long.extend_from_slice(a);
            b_long.extend_from_slice(b);
            let results: Vec<f32> = paths
                .iter()
                .map(|k| k.dot(&a_long, &b_long).unwrap())
                .collect();
            let kind = |x: f32| (x.is_nan(), x.is_infinite().then_some(x.is_sign_positive()));
            for (kernels, result) in paths.iter().zip(&results) {
                assert_eq!(
                    kind(*result),
                    kind(results[0]),
                    "{:?}: {a:?}·{b:?} shifted {shift}: {results:?}",
                    kernels.isa()
                );
            }
        }
    }
}

#[test]
fn norms_match_naive_reference() {
    for kernels in runnable() {
        let mut rng = XorShift(42);
        for dim in LENGTHS {
            let matrix = rng.vec(dim * 5);
            let got = kernels.norms(&matrix, dim).unwrap();
            assert_eq!(got.len(), 5);
            for (row, n) in matrix.chunks(dim).zip(&got) {
                assert_close(*n, naive_dot(row, row).sqrt(), dim as f64);
                assert_eq!(n.to_bits(), kernels.norm(row).to_bits());
            }
        }
        assert_eq!(kernels.norms(&[0.0; 6], 3).unwrap(), vec![0.0, 0.0]);
        assert_eq!(kernels.norm(&[3.0, 4.0]), 5.0);
    }
}

#[test]
fn norms_reject_ragged_matrix_and_zero_dimension() {
    assert_eq!(
        norms(&[1.0; 7], 3),
        Err(KernelError::RaggedMatrix { len: 7, dim: 3 })
    );
    assert_eq!(norms(&[], 0), Err(KernelError::ZeroDimension));
    assert_eq!(norms(&[], 4).unwrap(), Vec::<f32>::new());
}

#[test]
fn cosine_topk_matches_full_sort_of_naive_scores() {
    for kernels in runnable() {
        let mut rng = XorShift(7);
        for dim in LENGTHS {
            let rows = 200;
            let matrix = rng.vec(rows * dim);
            let query = rng.vec(dim);
            let mut expected: Vec<(usize, f64)> = matrix
                .chunks(dim)
                .map(|row| naive_cosine(row, &query))
                .enumerate()
                .collect();
            expected.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let got = kernels.cosine_topk(&matrix, dim, &query, 10).unwrap();
            assert_eq!(got.len(), 10);
            for (hit, (index, score)) in got.iter().zip(&expected) {
                assert_close(hit.score, *score, 1.0);
                // Near-ties may swap under rounding; the score at each rank must still match.
                if hit.index != *index {
                    assert_close(
                        hit.score,
                        naive_cosine(&matrix[hit.index * dim..][..dim], &query),
                        1.0,
                    );
                }
            }
            assert!(
                got.windows(2).all(|w| w[0].score >= w[1].score),
                "not sorted best first"
            );
        }
    }
}

#[test]
fn given_norms_give_the_same_bits_as_computed_ones() {
    for kernels in runnable() {
        let mut rng = XorShift(8);
        for dim in LENGTHS {
            let rows = 51; // odd: the last row goes through the single-row path
            let mut matrix = rng.vec(rows * dim);
            matrix[..dim].fill(0.0); // a zero row
            let query = rng.vec(dim);
            let row_norms = kernels.norms(&matrix, dim).unwrap();
            let computed = kernels.cosine_topk(&matrix, dim, &query, rows).unwrap();
            let given = kernels
                .cosine_topk_with_norms(&matrix, dim, &row_norms, &query, rows)
                .unwrap();
            let bits = |hits: &[Scored]| -> Vec<(usize, u32)> {
                hits.iter().map(|h| (h.index, h.score.to_bits())).collect()
            };
            assert_eq!(
                bits(&computed),
                bits(&given),
                "{:?} dim {dim}",
                kernels.isa()
            );
        }
        assert_eq!(
            kernels.cosine_topk_with_norms(&[1.0, 2.0], 1, &[1.0], &[1.0], 1),
            Err(KernelError::NormsMismatch { rows: 2, found: 1 })
        );
    }
}

/// Matrices past [`lanes::PAIRED_MAX_BYTES`] are scanned one row at a time instead of in
/// pairs: the same bits for every row (checked against the paired scan of small windows of
/// the same rows) and the same ranking rules (zero rows score 0, NaN rows rank last), for
/// odd row counts and dimensions with a tail.
#[test]
fn large_matrices_scanned_row_by_row_give_the_paired_bits_and_ranking() {
    const WINDOW: usize = 64;
    for kernels in runnable() {
        let mut rng = XorShift(9);
        for dim in [33, 384] {
            let rows = (lanes::PAIRED_MAX_BYTES / (4 * dim) + 3) | 1;
            assert!(rows * dim * 4 > lanes::PAIRED_MAX_BYTES);
            let mut matrix = rng.vec(rows * dim);
            matrix[dim..2 * dim].fill(0.0);
            matrix[2 * dim + 5] = f32::NAN;
            let query = rng.vec(dim);
            let row_norms = kernels.norms(&matrix, dim).unwrap();
            // Per-row scores from the paired scan, window by window (windows are small).
            let mut paired = vec![0u32; rows];
            for (window, chunk) in matrix.chunks(WINDOW * dim).enumerate() {
                for hit in kernels.cosine_topk(chunk, dim, &query, WINDOW).unwrap() {
                    paired[window * WINDOW + hit.index] = hit.score.to_bits();
                }
            }
            let mut expected: Vec<(usize, f32)> = paired
                .iter()
                .map(|bits| f32::from_bits(*bits))
                .enumerate()
                .collect();
            let key = |score: f32| {
                if score.is_nan() {
                    f32::NEG_INFINITY
                } else {
                    score
                }
            };
            expected.sort_by(|a, b| key(b.1).total_cmp(&key(a.1)).then(a.0.cmp(&b.0)));
            let expected: Vec<(usize, u32)> = expected
                .into_iter()
                .map(|(i, s)| (i, s.to_bits()))
                .collect();
            let streamed = kernels.cosine_topk(&matrix, dim, &query, rows).unwrap();
            let given = kernels
                .cosine_topk_with_norms(&matrix, dim, &row_norms, &query, rows)
                .unwrap();
            for hits in [streamed, given] {
                let got: Vec<(usize, u32)> =
                    hits.iter().map(|h| (h.index, h.score.to_bits())).collect();
                assert_eq!(got.len(), rows);
                assert!(
                    got == expected,
                    "{:?} dim {dim}: ranking differs",
                    kernels.isa()
                );
            }
            assert_eq!(f32::from_bits(paired[1]), 0.0, "the zero row scores 0");
            assert!(f32::from_bits(paired[2]).is_nan());
            let top = kernels.cosine_topk(&matrix, dim, &query, 5).unwrap();
            assert_eq!(top.len(), 5);
            assert_eq!(
                top.iter().map(|h| h.index).collect::<Vec<_>>(),
                expected[..5].iter().map(|e| e.0).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn cosine_topk_with_k_above_row_count_returns_every_row() {
    let matrix = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
    let got = cosine_topk(&matrix, 2, &[1.0, 0.0], 1 << 40).unwrap();
    let indices: Vec<usize> = got.iter().map(|s| s.index).collect();
    assert_eq!(indices, vec![0, 2, 1]);
    assert_close(got[1].score, std::f64::consts::FRAC_1_SQRT_2, 1.0);
    assert_eq!(got[2].score, 0.0);
}

#[test]
fn cosine_topk_handles_zero_vectors_without_nan() {
    for kernels in runnable() {
        let matrix = [0.0, 0.0, 2.0, 0.0];
        let got = kernels.cosine_topk(&matrix, 2, &[1.0, 0.0], 2).unwrap();
        assert_eq!(
            got,
            vec![
                Scored {
                    index: 1,
                    score: 1.0
                },
                Scored {
                    index: 0,
                    score: 0.0
                }
            ]
        );
        let zero_query = kernels.cosine_topk(&matrix, 2, &[0.0, 0.0], 2).unwrap();
        assert!(zero_query.iter().all(|s| s.score == 0.0));
        assert_eq!(zero_query[0].index, 0, "ties go to the lower index");
    }
}

#[test]
fn cosine_topk_ranks_nan_rows_last() {
    for kernels in runnable() {
        let matrix = [f32::NAN, 1.0, 1.0, 0.0, -1.0, 0.0];
        let got = kernels.cosine_topk(&matrix, 2, &[1.0, 0.0], 3).unwrap();
        assert_eq!(got[0].index, 1);
        assert_eq!(got[1].index, 2);
        assert_eq!(got[2].index, 0);
        assert!(got[2].score.is_nan());
        let top1 = kernels.cosine_topk(&matrix, 2, &[1.0, 0.0], 1).unwrap();
        assert_eq!(
            top1,
            vec![Scored {
                index: 1,
                score: 1.0
            }]
        );
    }
}

#[test]
fn cosine_topk_edge_cases() {
    assert_eq!(cosine_topk(&[], 3, &[1.0, 2.0, 3.0], 5).unwrap(), vec![]);
    assert_eq!(cosine_topk(&[1.0, 2.0], 2, &[1.0, 2.0], 0).unwrap(), vec![]);
    assert_eq!(
        cosine_topk(&[1.0, 2.0], 2, &[1.0], 1),
        Err(KernelError::DimensionMismatch {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(
        cosine_topk(&[1.0, 2.0, 3.0], 2, &[1.0, 2.0], 1),
        Err(KernelError::RaggedMatrix { len: 3, dim: 2 })
    );
    assert_eq!(cosine_topk(&[], 0, &[], 1), Err(KernelError::ZeroDimension));
}

#[test]
fn stream_sum_adds_every_value_on_every_path() {
    for kernels in runnable() {
        for len in LENGTHS.into_iter().chain([0, 127, 128, 129]) {
            let data: Vec<f32> = (0..len).map(|i| (i % 7) as f32).collect();
            let exact: f32 = (0..len).map(|i| (i % 7) as f32).sum();
            // Small integers: every partial sum is exact, whatever the order.
            assert_eq!(
                kernels.stream_sum(&data),
                exact,
                "{:?} len {len}",
                kernels.isa()
            );
        }
    }
}

#[test]
fn the_active_kernels_are_chosen_once() {
    let first = Kernels::active();
    assert!(std::ptr::eq(first, Kernels::active()));
    assert!(Kernels::supported().contains(&first.isa()));
}
