//! Vector kernels of the learning store: dot products, L2 norms and top-k cosine search over
//! row-major `f32` matrices, with the instruction set chosen at run time.
//!
//! - [`lanes`]: the arithmetic, written once (32 independent lanes, a fixed reduction tree)
//!   over [`simd`], the lanes as explicit registers of each instruction set.
//! - [`dispatch`]: the same code compiled for the build's baseline, AVX2+FMA and AVX-512,
//!   and the one-time choice among them ([`Kernels::active`], `MCP_RUST_CORE_KERNELS`).
//! - [`topk`]: bounded top-k selection.
//!
//! The free functions ([`dot`], [`norms`], [`cosine_topk`], …) use [`Kernels::active`];
//! the same methods on a [`Kernels`] from [`Kernels::for_isa`] run one instruction set.
//!
//! # Results across instruction sets
//!
//! Every path performs the same operations in the same order (lane `i` accumulates
//! elements `i, i + 32, i + 64, …`; the lanes are added in a fixed pairwise tree; the tail
//! is added in order), so the only difference between paths is whether `a * b + acc` is
//! rounded once (fused) or twice:
//!
//! - The fused paths are **bit-identical**: AVX2+FMA, AVX-512 (and the portable kernels on
//!   aarch64), in every build variant. NaN and infinities propagate identically (NaN
//!   payloads aside).
//! - The portable kernels on x86-64 (explicit SSE2, in every variant) round each product.
//!   For a dot product of length `n` over `m = ⌈n/32⌉ + 5 + n mod 32` sequential roundings
//!   per lane, both results lie within `γ_m · Σ|a_i·b_i|` of the exact value
//!   (`γ_m = m·u/(1 − m·u)`, `u = 2⁻²⁴`), so they differ by at most twice that; a cosine
//!   score (|dot| ≤ ‖a‖·‖b‖, and the norms' sums of squares have the same bound) by at
//!   most `4·γ_m + 6u` absolute. Non-finite results match in kind (NaN for NaN, ±∞ for ±∞),
//!   except where a single product overflows `f32` and the fused sum brings it back into
//!   range. `tests.rs` checks both statements on every path this CPU can run.

pub mod dispatch;
mod lanes;
mod simd;
mod topk;

pub use dispatch::{Isa, KERNELS_ENV, Kernels, SelectError};
pub use lanes::cosine_from_parts;
pub use simd::LANES;
pub use topk::{Scored, TopK};

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
    #[error(
        "row_norms has {found} values but the matrix has {rows} rows; pass norms(matrix) of the same matrix"
    )]
    NormsMismatch { rows: usize, found: usize },
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

impl Kernels {
    /// Dot product of two vectors of the same length.
    pub fn dot(&self, a: &[f32], b: &[f32]) -> Result<f32, KernelError> {
        if a.len() != b.len() {
            return Err(KernelError::DimensionMismatch {
                expected: a.len(),
                found: b.len(),
            });
        }
        Ok(self.dot_same_len(a, b))
    }

    /// Euclidean (L2) norm of one vector.
    pub fn norm(&self, v: &[f32]) -> f32 {
        self.dot_same_len(v, v).sqrt()
    }

    /// L2 norm of every row of a row-major matrix with `dim` columns.
    pub fn norms(&self, matrix: &[f32], dim: usize) -> Result<Vec<f32>, KernelError> {
        let mut out = vec![0.0; row_count(matrix, dim)?];
        self.norms_into(matrix, dim, &mut out);
        Ok(out)
    }

    /// The `k` rows of a row-major matrix (`dim` columns) most cosine-similar to `query`,
    /// best first; ties go to the lower row index. Returns `min(k, rows)` results. Rows
    /// containing NaN score NaN and rank below every real score; zero rows score 0.
    ///
    /// Selection keeps a bounded heap of `k` entries, so the cost is O(rows · log k), not a
    /// sort of all rows.
    pub fn cosine_topk(
        &self,
        matrix: &[f32],
        dim: usize,
        query: &[f32],
        k: usize,
    ) -> Result<Vec<Scored>, KernelError> {
        self.ranked(matrix, dim, query, None, k)
    }

    /// [`Kernels::cosine_topk`] with the rows' norms given (from [`Kernels::norms`] of the
    /// same matrix), so a matrix searched many times has its norms computed once. The
    /// scores are bit-identical to those of `cosine_topk` on the same instruction set.
    pub fn cosine_topk_with_norms(
        &self,
        matrix: &[f32],
        dim: usize,
        row_norms: &[f32],
        query: &[f32],
        k: usize,
    ) -> Result<Vec<Scored>, KernelError> {
        self.ranked(matrix, dim, query, Some(row_norms), k)
    }

    fn ranked(
        &self,
        matrix: &[f32],
        dim: usize,
        query: &[f32],
        row_norms: Option<&[f32]>,
        k: usize,
    ) -> Result<Vec<Scored>, KernelError> {
        let rows = row_count(matrix, dim)?;
        if query.len() != dim {
            return Err(KernelError::DimensionMismatch {
                expected: dim,
                found: query.len(),
            });
        }
        if let Some(norms) = row_norms
            && norms.len() != rows
        {
            return Err(KernelError::NormsMismatch {
                rows,
                found: norms.len(),
            });
        }
        let mut top = TopK::new(k.min(rows));
        self.cosine_scan(matrix, dim, query, self.norm(query), row_norms, &mut top);
        Ok(top.into_sorted_vec())
    }
}

/// Dot product of two vectors of the same length ([`Kernels::active`]).
pub fn dot(a: &[f32], b: &[f32]) -> Result<f32, KernelError> {
    Kernels::active().dot(a, b)
}

/// Euclidean (L2) norm of one vector ([`Kernels::active`]).
pub fn norm(v: &[f32]) -> f32 {
    Kernels::active().norm(v)
}

/// L2 norm of every row of a row-major matrix with `dim` columns ([`Kernels::active`]).
pub fn norms(matrix: &[f32], dim: usize) -> Result<Vec<f32>, KernelError> {
    Kernels::active().norms(matrix, dim)
}

/// See [`Kernels::cosine_topk`] ([`Kernels::active`]).
pub fn cosine_topk(
    matrix: &[f32],
    dim: usize,
    query: &[f32],
    k: usize,
) -> Result<Vec<Scored>, KernelError> {
    Kernels::active().cosine_topk(matrix, dim, query, k)
}

/// See [`Kernels::cosine_topk_with_norms`] ([`Kernels::active`]).
pub fn cosine_topk_with_norms(
    matrix: &[f32],
    dim: usize,
    row_norms: &[f32],
    query: &[f32],
    k: usize,
) -> Result<Vec<Scored>, KernelError> {
    Kernels::active().cosine_topk_with_norms(matrix, dim, row_norms, query, k)
}

#[cfg(test)]
mod tests;
