//! The kernels, written once over [`Lanes`] and instantiated per instruction set in
//! [`super::dispatch`].
//!
//! Floating-point addition is not associative, so a plain `sum += a * b` loop cannot be
//! vectorized without changing its result. These kernels instead keep [`LANES`] independent
//! partial sums over chunks of [`LANES`] values and add them up in a fixed pairwise tree,
//! an order that *is* a SIMD computation. Because that order is fixed here, not by the
//! vector width, the fused instruction sets return bit-identical results (see the tolerance
//! note in [`super`] for the unfused one).
//!
//! Every function is `unsafe` and `#[inline(always)]`: it runs `V`'s instructions, so it
//! may only be called from a function compiled for (and reached after detecting) them.

use super::TopK;
use super::simd::{LANES, Lanes};

/// Dot product of two slices of equal length (callers check the lengths).
#[inline(always)]
pub unsafe fn dot<V: Lanes>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let body = a.len() - a.len() % LANES;
    // SAFETY: zero() only needs V's instructions (caller).
    let mut acc = unsafe { V::zero() };
    for start in (0..body).step_by(LANES) {
        // SAFETY: start + LANES <= body <= len of both slices; V's instructions (caller).
        unsafe { V::mul_add(&mut acc, a.as_ptr().add(start), b.as_ptr().add(start)) };
    }
    // SAFETY: V's instructions (caller).
    let mut sum = unsafe { V::reduce(acc) };
    for (x, y) in a[body..].iter().zip(&b[body..]) {
        sum = V::scalar_mul_add(*x, *y, sum);
    }
    sum
}

/// Dot product of `row` with `query` and the squared norm of `row`, in one pass over `row`.
/// Each result is bit-identical to [`dot`] of the same operands.
#[inline(always)]
pub unsafe fn dot_and_sum_squares<V: Lanes>(row: &[f32], query: &[f32]) -> (f32, f32) {
    debug_assert_eq!(row.len(), query.len());
    let body = row.len() - row.len() % LANES;
    // SAFETY: V's instructions (caller).
    let (mut dot_acc, mut sq_acc) = unsafe { (V::zero(), V::zero()) };
    for start in (0..body).step_by(LANES) {
        // SAFETY: start + LANES <= body <= len of both slices; V's instructions (caller).
        unsafe {
            let (r, q) = (row.as_ptr().add(start), query.as_ptr().add(start));
            V::mul_add(&mut dot_acc, r, q);
            V::mul_add(&mut sq_acc, r, r);
        }
    }
    // SAFETY: V's instructions (caller).
    let (mut dot, mut sum_squares) = unsafe { (V::reduce(dot_acc), V::reduce(sq_acc)) };
    for (r, q) in row[body..].iter().zip(&query[body..]) {
        dot = V::scalar_mul_add(*r, *q, dot);
        sum_squares = V::scalar_mul_add(*r, *r, sum_squares);
    }
    (dot, sum_squares)
}

/// [`dot`] of two rows with the same `query`, in one pass: each query chunk is loaded once
/// for both rows, which matters when the rows come from cache. Same bits as two [`dot`]s.
#[inline(always)]
unsafe fn dot_pair<V: Lanes>(rows: [&[f32]; 2], query: &[f32]) -> [f32; 2] {
    let body = query.len() - query.len() % LANES;
    // SAFETY: V's instructions (caller).
    let mut acc = unsafe { [V::zero(), V::zero()] };
    for start in (0..body).step_by(LANES) {
        // SAFETY: start + LANES <= body <= len of every slice; V's instructions (caller).
        unsafe {
            let q = query.as_ptr().add(start);
            V::mul_add(&mut acc[0], rows[0].as_ptr().add(start), q);
            V::mul_add(&mut acc[1], rows[1].as_ptr().add(start), q);
        }
    }
    // SAFETY: V's instructions (caller).
    let mut dots = unsafe { [V::reduce(acc[0]), V::reduce(acc[1])] };
    for (i, q) in query[body..].iter().enumerate() {
        for (dot, row) in dots.iter_mut().zip(rows) {
            *dot = V::scalar_mul_add(row[body + i], *q, *dot);
        }
    }
    dots
}

/// [`dot_and_sum_squares`] of two rows with the same `query`, sharing the query loads.
#[inline(always)]
unsafe fn dot_and_sum_squares_pair<V: Lanes>(rows: [&[f32]; 2], query: &[f32]) -> [(f32, f32); 2] {
    let body = query.len() - query.len() % LANES;
    // SAFETY: V's instructions (caller).
    let mut dot_acc = unsafe { [V::zero(), V::zero()] };
    // SAFETY: V's instructions (caller).
    let mut sq_acc = unsafe { [V::zero(), V::zero()] };
    for start in (0..body).step_by(LANES) {
        // SAFETY: start + LANES <= body <= len of every slice; V's instructions (caller).
        unsafe {
            let q = query.as_ptr().add(start);
            for j in 0..2 {
                let r = rows[j].as_ptr().add(start);
                V::mul_add(&mut dot_acc[j], r, q);
                V::mul_add(&mut sq_acc[j], r, r);
            }
        }
    }
    let mut out = [(0.0, 0.0); 2];
    for j in 0..2 {
        // SAFETY: V's instructions (caller).
        let (mut dot, mut sum_squares) = unsafe { (V::reduce(dot_acc[j]), V::reduce(sq_acc[j])) };
        for (r, q) in rows[j][body..].iter().zip(&query[body..]) {
            dot = V::scalar_mul_add(*r, *q, dot);
            sum_squares = V::scalar_mul_add(*r, *r, sum_squares);
        }
        out[j] = (dot, sum_squares);
    }
    out
}

/// Cosine similarity from a dot product and the two norms. A zero vector has no direction,
/// so its similarity to anything is defined as 0 rather than NaN.
#[inline(always)]
pub fn cosine_from_parts(dot: f32, norm_a: f32, norm_b: f32) -> f32 {
    let denominator = norm_a * norm_b;
    if denominator == 0.0 {
        0.0
    } else {
        dot / denominator
    }
}

/// Writes the L2 norm of each `dim`-wide row of `matrix` to `out` (one value per row).
#[inline(always)]
pub unsafe fn norms_into<V: Lanes>(matrix: &[f32], dim: usize, out: &mut [f32]) {
    for (row, norm) in matrix.chunks_exact(dim).zip(out) {
        // SAFETY: V's instructions (caller).
        *norm = unsafe { dot::<V>(row, row) }.sqrt();
    }
}

/// The largest matrix [`cosine_scan`] scans two rows at a time (see there).
pub const PAIRED_MAX_BYTES: usize = 4 << 20;

/// Offers every row of `matrix` to `top`, scored by cosine similarity to `query` (whose
/// norm is `query_norm`). With `row_norms`, the rows' norms are taken from it instead of
/// being computed, which halves the arithmetic per row; the scores are the same bits.
///
/// Two orders, the same bits per row: a matrix of up to [`PAIRED_MAX_BYTES`] (cache-sized)
/// is scanned in pairs of rows, sharing each query load between two rows; a larger one
/// (streamed from DRAM) one row at a time, first value to last, so that the loads walk the
/// matrix in address order. The pairs interleave two address streams a row apart, which
/// the hardware prefetchers follow badly: on Zen 4 they reached ~40 % of the single-thread
/// read bandwidth at DRAM sizes against ~85 % for the row order, while in cache the pairs
/// are ~10 points of the read bandwidth faster (BENCHMARKS.md). The threshold lies between
/// the sizes measured there (1.5 MB: pairs faster; 15 MB: rows faster).
#[inline(always)]
pub unsafe fn cosine_scan<V: Lanes>(
    matrix: &[f32],
    dim: usize,
    query: &[f32],
    query_norm: f32,
    row_norms: Option<&[f32]>,
    top: &mut TopK,
) {
    let scoring = Scoring {
        query,
        query_norm,
        row_norms,
    };
    let rows = matrix.len() / dim;
    // The pairs' odd last row, and every row of a large matrix, go one at a time.
    let paired_rows = if size_of_val(matrix) <= PAIRED_MAX_BYTES {
        rows - rows % 2
    } else {
        0
    };
    let (paired, single) = matrix.split_at(paired_rows * dim);
    // SAFETY: V's instructions (caller).
    unsafe {
        cosine_scan_pairs::<V>(paired, dim, &scoring, top);
        cosine_scan_rows::<V>(single, dim, paired_rows, &scoring, top);
    }
}

/// What [`cosine_scan`] scores every row against.
#[derive(Clone, Copy)]
struct Scoring<'a> {
    query: &'a [f32],
    query_norm: f32,
    /// The norms of all the matrix's rows, if given.
    row_norms: Option<&'a [f32]>,
}

/// [`cosine_scan`] one row at a time, in address order; `rows` starts at row `first`.
#[inline(always)]
unsafe fn cosine_scan_rows<V: Lanes>(
    rows: &[f32],
    dim: usize,
    first: usize,
    scoring: &Scoring<'_>,
    top: &mut TopK,
) {
    let (query, query_norm) = (scoring.query, scoring.query_norm);
    for (index, row) in (first..).zip(rows.chunks_exact(dim)) {
        let score = match scoring.row_norms {
            Some(norms) => {
                // SAFETY: V's instructions (caller).
                let dot = unsafe { dot::<V>(row, query) };
                cosine_from_parts(dot, norms[index], query_norm)
            }
            None => {
                // SAFETY: V's instructions (caller).
                let (dot, sum_squares) = unsafe { dot_and_sum_squares::<V>(row, query) };
                cosine_from_parts(dot, sum_squares.sqrt(), query_norm)
            }
        };
        top.push(index, score);
    }
}

/// [`cosine_scan`] two rows at a time, from row 0 (`rows` holds an even number of rows).
#[inline(always)]
unsafe fn cosine_scan_pairs<V: Lanes>(
    rows: &[f32],
    dim: usize,
    scoring: &Scoring<'_>,
    top: &mut TopK,
) {
    let (query, query_norm) = (scoring.query, scoring.query_norm);
    for (pair, rows) in rows.chunks_exact(2 * dim).enumerate() {
        let (first, second) = rows.split_at(dim);
        let scores = match scoring.row_norms {
            Some(norms) => {
                // SAFETY: V's instructions (caller).
                let dots = unsafe { dot_pair::<V>([first, second], query) };
                [0, 1].map(|j| cosine_from_parts(dots[j], norms[2 * pair + j], query_norm))
            }
            None => {
                // SAFETY: V's instructions (caller).
                let parts = unsafe { dot_and_sum_squares_pair::<V>([first, second], query) };
                parts.map(|(dot, sum_squares)| {
                    cosine_from_parts(dot, sum_squares.sqrt(), query_norm)
                })
            }
        };
        for (j, score) in scores.into_iter().enumerate() {
            top.push(2 * pair + j, score);
        }
    }
}

/// Sum of every value: reads `data` once with one add per load, so its speed is the memory
/// system's read bandwidth (the benchmarks' yardstick). Two groups of accumulators keep
/// enough additions in flight for the loads, not the adds, to set the pace.
#[inline(always)]
pub unsafe fn stream_sum<V: Lanes>(data: &[f32]) -> f32 {
    let body = data.len() - data.len() % (2 * LANES);
    // SAFETY: V's instructions (caller).
    let (mut even, mut odd) = unsafe { (V::zero(), V::zero()) };
    for start in (0..body).step_by(2 * LANES) {
        // SAFETY: start + 2 * LANES <= body <= data.len(); V's instructions (caller).
        unsafe {
            V::add(&mut even, data.as_ptr().add(start));
            V::add(&mut odd, data.as_ptr().add(start + LANES));
        }
    }
    // SAFETY: V's instructions (caller).
    let sum = unsafe { V::reduce(even) + V::reduce(odd) };
    data[body..].iter().fold(sum, |sum, value| sum + value)
}
