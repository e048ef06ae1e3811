//! Vector kernels of the learning store: dot products, L2 norms and top-k cosine search over
//! row-major `f32` matrices.
//!
//! Floating-point addition is not associative, so LLVM never vectorizes a plain `sum += a * b`
//! loop: it must keep the sequential order. These kernels instead keep [`LANES`] independent
//! partial sums (one accumulator array the width of two AVX-512 registers) over
//! `chunks_exact(LANES)`, which LLVM turns into packed SIMD multiply-adds of whatever width the
//! target CPU offers (SSE2 on the generic x86-64 build, AVX-512 on znver4), with no bounds
//! checks in the inner loop. The remainder (`len % LANES`) is handled by a scalar tail.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Independent accumulators per kernel: two 512-bit registers of `f32`, so consecutive
/// multiply-adds do not wait on each other's latency.
pub const LANES: usize = 32;

/// Why a kernel refused its input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error(
        "dimension mismatch: expected vectors of length {expected}, got {found}; pass a query with as many components as the matrix has columns"
    )]
    DimensionMismatch { expected: usize, found: usize },
    #[error(
        "the matrix has {len} values, which is not a whole number of rows of {dim}; pass a row-major matrix of shape (rows, {dim})"
    )]
    RaggedMatrix { len: usize, dim: usize },
    #[error("vectors must have at least one component (dimension 0 given)")]
    ZeroDimension,
}

/// One ranked row: its index in the matrix and its cosine similarity to the query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scored {
    pub index: usize,
    pub score: f32,
}

/// `acc + a * b`, fused into one instruction when the target has FMA. Without hardware FMA,
/// `f32::mul_add` would be a slow libm call, so the generic build multiplies then adds.
#[inline(always)]
fn mul_add(a: f32, b: f32, acc: f32) -> f32 {
    #[cfg(target_feature = "fma")]
    {
        a.mul_add(b, acc)
    }
    #[cfg(not(target_feature = "fma"))]
    {
        acc + a * b
    }
}

/// Sums the lane accumulators pairwise (a tree, like a SIMD horizontal add).
#[inline(always)]
fn reduce(mut lanes: [f32; LANES]) -> f32 {
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
        width /= 2;
    }
    lanes[0]
}

/// Dot product of two slices of equal length (callers check the lengths).
#[inline]
fn dot_same_len(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let a_chunks = a.chunks_exact(LANES);
    let b_chunks = b.chunks_exact(LANES);
    let (a_tail, b_tail) = (a_chunks.remainder(), b_chunks.remainder());
    let mut acc = [0.0f32; LANES];
    for (x, y) in a_chunks.zip(b_chunks) {
        // Fixed-size arrays: the compiler knows every index is in bounds.
        let (x, y): (&[f32; LANES], &[f32; LANES]) = (x.try_into().unwrap(), y.try_into().unwrap());
        for i in 0..LANES {
            acc[i] = mul_add(x[i], y[i], acc[i]);
        }
    }
    let mut sum = reduce(acc);
    for (x, y) in a_tail.iter().zip(b_tail) {
        sum = mul_add(*x, *y, sum);
    }
    sum
}

/// Dot product of `row` with `query` and the squared norm of `row`, in one pass over `row`.
#[inline]
fn dot_and_sum_squares(row: &[f32], query: &[f32]) -> (f32, f32) {
    debug_assert_eq!(row.len(), query.len());
    let r_chunks = row.chunks_exact(LANES);
    let q_chunks = query.chunks_exact(LANES);
    let (r_tail, q_tail) = (r_chunks.remainder(), q_chunks.remainder());
    let mut dot_acc = [0.0f32; LANES];
    let mut sq_acc = [0.0f32; LANES];
    for (r, q) in r_chunks.zip(q_chunks) {
        let (r, q): (&[f32; LANES], &[f32; LANES]) = (r.try_into().unwrap(), q.try_into().unwrap());
        for i in 0..LANES {
            dot_acc[i] = mul_add(r[i], q[i], dot_acc[i]);
            sq_acc[i] = mul_add(r[i], r[i], sq_acc[i]);
        }
    }
    let (mut dot, mut sum_squares) = (reduce(dot_acc), reduce(sq_acc));
    for (r, q) in r_tail.iter().zip(q_tail) {
        dot = mul_add(*r, *q, dot);
        sum_squares = mul_add(*r, *r, sum_squares);
    }
    (dot, sum_squares)
}

/// Dot product of two vectors of the same length.
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, KernelError> {
    if a.len() != b.len() {
        return Err(KernelError::DimensionMismatch {
            expected: a.len(),
            found: b.len(),
        });
    }
    Ok(dot_same_len(a, b))
}

/// Euclidean (L2) norm of one vector.
pub fn norm(v: &[f32]) -> f32 {
    dot_same_len(v, v).sqrt()
}

/// Checks that `matrix` holds whole rows of `dim` values and returns the row count.
fn row_count(matrix: &[f32], dim: usize) -> Result<usize, KernelError> {
    if dim == 0 {
        return Err(KernelError::ZeroDimension);
    }
    if !matrix.len().is_multiple_of(dim) {
        return Err(KernelError::RaggedMatrix {
            len: matrix.len(),
            dim,
        });
    }
    Ok(matrix.len() / dim)
}

/// L2 norm of every row of a row-major matrix with `dim` columns.
pub fn norms(matrix: &[f32], dim: usize) -> Result<Vec<f32>, KernelError> {
    row_count(matrix, dim)?;
    Ok(matrix.chunks_exact(dim).map(norm).collect())
}

/// Cosine similarity from a dot product and the two norms. A zero vector has no direction,
/// so its similarity to anything is defined as 0 rather than NaN.
#[inline]
pub fn cosine_from_parts(dot: f32, norm_a: f32, norm_b: f32) -> f32 {
    let denominator = norm_a * norm_b;
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

/// The `k` rows of a row-major matrix (`dim` columns) most cosine-similar to `query`, best
/// first; ties go to the lower row index. Returns `min(k, rows)` results. Rows containing NaN
/// score NaN and rank below every real score.
///
/// Selection keeps a bounded heap of `k` entries, so the cost is O(rows · log k), not a sort of
/// all rows.
pub fn cosine_topk(
    matrix: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
) -> Result<Vec<Scored>, KernelError> {
    let rows = row_count(matrix, dim)?;
    if query.len() != dim {
        return Err(KernelError::DimensionMismatch {
            expected: dim,
            found: query.len(),
        });
    }
    let query_norm = norm(query);
    let mut top = TopK::new(k.min(rows));
    for (index, row) in matrix.chunks_exact(dim).enumerate() {
        let (dot, sum_squares) = dot_and_sum_squares(row, query);
        top.push(
            index,
            cosine_from_parts(dot, sum_squares.sqrt(), query_norm),
        );
    }
    Ok(top.into_sorted_vec())
}

/// Heap entry ordered so that "greater" means "ranks better": higher score, then lower index.
#[derive(Debug, Clone, Copy)]
struct Ranked {
    /// The score used for ordering: NaN mapped to -inf so it never outranks a real score.
    key: f32,
    scored: Scored,
}

impl Ranked {
    fn new(index: usize, score: f32) -> Self {
        let key = if score.is_nan() {
            f32::NEG_INFINITY
        } else {
            score
        };
        Ranked {
            key,
            scored: Scored { index, score },
        }
    }
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key
            .total_cmp(&other.key)
            .then_with(|| other.scored.index.cmp(&self.scored.index))
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Ranked {}

/// Keeps the `k` best-scored items seen so far in a bounded min-heap (the worst kept item on
/// top), so a stream of any length is ranked in O(n · log k) time and O(k) memory.
#[derive(Debug)]
pub struct TopK {
    k: usize,
    heap: BinaryHeap<Reverse<Ranked>>,
}

impl TopK {
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k),
        }
    }

    /// Offers an item; it is kept if it ranks among the best `k` so far.
    #[inline]
    pub fn push(&mut self, index: usize, score: f32) {
        if self.k == 0 {
            return;
        }
        let candidate = Ranked::new(index, score);
        if self.heap.len() < self.k {
            self.heap.push(Reverse(candidate));
        } else if let Some(mut worst) = self.heap.peek_mut()
            && candidate > worst.0
        {
            *worst = Reverse(candidate);
        }
    }

    /// The kept items, best first.
    pub fn into_sorted_vec(self) -> Vec<Scored> {
        // Ascending order of `Reverse<Ranked>` is best-ranked first.
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|Reverse(r)| r.scored)
            .collect()
    }
}

#[cfg(test)]
mod tests {
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

    // Lengths around and between multiples of the lane count exercise the scalar tail.
    const LENGTHS: [usize; 12] = [1, 3, 15, 16, 17, 31, 32, 33, 64, 100, 384, 1001];

    #[test]
    fn dot_matches_naive_reference_for_every_tail_length() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for len in LENGTHS {
            let (a, b) = (rng.vec(len), rng.vec(len));
            assert_close(dot(&a, &b).unwrap(), naive_dot(&a, &b), len as f64);
        }
    }

    #[test]
    fn dot_of_empty_vectors_is_zero() {
        assert_eq!(dot(&[], &[]).unwrap(), 0.0);
    }

    #[test]
    fn dot_rejects_length_mismatch() {
        assert_eq!(
            dot(&[1.0, 2.0], &[1.0]),
            Err(KernelError::DimensionMismatch {
                expected: 2,
                found: 1
            })
        );
    }

    #[test]
    fn norms_match_naive_reference() {
        let mut rng = XorShift(42);
        for dim in LENGTHS {
            let matrix = rng.vec(dim * 5);
            let got = norms(&matrix, dim).unwrap();
            assert_eq!(got.len(), 5);
            for (row, n) in matrix.chunks(dim).zip(&got) {
                assert_close(*n, naive_dot(row, row).sqrt(), dim as f64);
            }
        }
        assert_eq!(norms(&[0.0; 6], 3).unwrap(), vec![0.0, 0.0]);
        assert_eq!(norm(&[3.0, 4.0]), 5.0);
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
            let got = cosine_topk(&matrix, dim, &query, 10).unwrap();
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

    #[test]
    fn cosine_topk_with_k_above_row_count_returns_every_row() {
        let matrix = [1.0, 0.0, 0.0, 1.0, 1.0, 1.0];
        let got = cosine_topk(&matrix, 2, &[1.0, 0.0], 10).unwrap();
        let indices: Vec<usize> = got.iter().map(|s| s.index).collect();
        assert_eq!(indices, vec![0, 2, 1]);
        assert_close(got[1].score, std::f64::consts::FRAC_1_SQRT_2, 1.0);
        assert_eq!(got[2].score, 0.0);
    }

    #[test]
    fn cosine_topk_handles_zero_vectors_without_nan() {
        let matrix = [0.0, 0.0, 2.0, 0.0];
        let got = cosine_topk(&matrix, 2, &[1.0, 0.0], 2).unwrap();
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
        let zero_query = cosine_topk(&matrix, 2, &[0.0, 0.0], 2).unwrap();
        assert!(zero_query.iter().all(|s| s.score == 0.0));
        assert_eq!(zero_query[0].index, 0, "ties go to the lower index");
    }

    #[test]
    fn cosine_topk_ranks_nan_rows_last() {
        let matrix = [f32::NAN, 1.0, 1.0, 0.0, -1.0, 0.0];
        let got = cosine_topk(&matrix, 2, &[1.0, 0.0], 3).unwrap();
        assert_eq!(got[0].index, 1);
        assert_eq!(got[1].index, 2);
        assert_eq!(got[2].index, 0);
        assert!(got[2].score.is_nan());
        let top1 = cosine_topk(&matrix, 2, &[1.0, 0.0], 1).unwrap();
        assert_eq!(
            top1,
            vec![Scored {
                index: 1,
                score: 1.0
            }]
        );
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
    fn top_k_keeps_best_and_breaks_ties_by_lower_index() {
        let mut top = TopK::new(3);
        for (index, score) in [0.1, 0.9, 0.5, 0.9, -1.0, 0.7].into_iter().enumerate() {
            top.push(index, score);
        }
        let got: Vec<(usize, f32)> = top
            .into_sorted_vec()
            .iter()
            .map(|s| (s.index, s.score))
            .collect();
        assert_eq!(got, vec![(1, 0.9), (3, 0.9), (5, 0.7)]);
    }
}
