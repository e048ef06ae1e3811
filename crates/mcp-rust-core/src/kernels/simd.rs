//! One group of [`LANES`] `f32` accumulators per instruction set, as explicit vector
//! registers: `2 × __m512` for AVX-512, `4 × __m256` for AVX2, `8 × __m128` for SSE2, and
//! 32 scalars elsewhere. [`super::lanes`] writes every kernel once over the [`Lanes`] trait.
//!
//! (LLVM's SLP vectorizer, given the same algorithm on a `[f32; 32]`, pairs the lanes two by
//! two inside `#[target_feature]` functions; explicit registers make the width certain.)
//!
//! Every implementation performs the same IEEE operations in the same order: lane `i` of a
//! chunk is accumulated into lane `i`, and [`Lanes::reduce`] adds lane `i + w` to lane `i`
//! for `w = 16, 8, 4, 2, 1`. So the implementations that fuse the multiply-add agree bit for
//! bit (NaN payloads aside).
//!
//! The methods are `unsafe`: they dereference raw pointers (the caller guarantees
//! [`LANES`] readable values), and the x86 ones execute instructions the CPU must have
//! (callers are `#[target_feature]` functions reached only after detection). They are
//! `#[inline(always)]` so that the intrinsics inline into those callers.

/// Accumulators per group: two 512-bit registers of `f32`.
pub const LANES: usize = 32;

/// A group of [`LANES`] accumulators in one instruction set's registers.
pub trait Lanes {
    type Acc: Copy;
    /// Whether [`Lanes::mul_add`] rounds `a * b + acc` once.
    const FUSED: bool;

    /// All lanes zero.
    unsafe fn zero() -> Self::Acc;

    /// `acc[i] = a[i] * b[i] + acc[i]` for the [`LANES`] values at `a` and `b`.
    unsafe fn mul_add(acc: &mut Self::Acc, a: *const f32, b: *const f32);

    /// `acc[i] = acc[i] + a[i]` for the [`LANES`] values at `a`.
    unsafe fn add(acc: &mut Self::Acc, a: *const f32);

    /// The pairwise sum of the lanes (`w = 16, 8, 4, 2, 1`).
    unsafe fn reduce(acc: Self::Acc) -> f32;

    /// `a * b + acc` on scalars, rounded like [`Lanes::mul_add`] (the tails).
    #[inline(always)]
    fn scalar_mul_add(a: f32, b: f32, acc: f32) -> f32 {
        if Self::FUSED {
            a.mul_add(b, acc)
        } else {
            acc + a * b
        }
    }
}

/// Plain `f32` lanes for targets without hand-written registers (aarch64 and others);
/// fused where the baseline has a hardware FMA, which every aarch64 CPU does.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
pub struct Scalar;

impl Lanes for Scalar {
    type Acc = [f32; LANES];
    const FUSED: bool = cfg!(any(target_feature = "fma", target_arch = "aarch64"));

    #[inline(always)]
    unsafe fn zero() -> Self::Acc {
        [0.0; LANES]
    }

    #[inline(always)]
    unsafe fn mul_add(acc: &mut Self::Acc, a: *const f32, b: *const f32) {
        for (i, lane) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees LANES readable values at `a` and `b`.
            let (x, y) = unsafe { (*a.add(i), *b.add(i)) };
            *lane = Self::scalar_mul_add(x, y, *lane);
        }
    }

    #[inline(always)]
    unsafe fn add(acc: &mut Self::Acc, a: *const f32) {
        for (i, lane) in acc.iter_mut().enumerate() {
            // SAFETY: the caller guarantees LANES readable values at `a`.
            *lane += unsafe { *a.add(i) };
        }
    }

    #[inline(always)]
    unsafe fn reduce(mut acc: Self::Acc) -> f32 {
        let mut width = LANES / 2;
        while width > 0 {
            for i in 0..width {
                acc[i] += acc[i + width];
            }
            width /= 2;
        }
        acc[0]
    }
}

#[cfg(target_arch = "x86_64")]
pub use x86::{Avx2, Avx512, Sse2};

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use super::{LANES, Lanes};

    /// `w = 2, 1` of the reduction on lanes 0..4.
    #[inline(always)]
    unsafe fn reduce_128(v4: __m128) -> f32 {
        // SAFETY: SSE/SSE2 are part of the x86-64 baseline.
        unsafe {
            let v2 = _mm_add_ps(v4, _mm_movehl_ps(v4, v4));
            let v1 = _mm_add_ss(v2, _mm_shuffle_ps::<0b01>(v2, v2));
            _mm_cvtss_f32(v1)
        }
    }

    /// `w = 4, 2, 1` of the reduction on lanes 0..8 (AVX, implied by AVX2 and AVX-512F).
    #[inline(always)]
    unsafe fn reduce_256(v8: __m256) -> f32 {
        // SAFETY: callers are compiled with (and reached after detecting) AVX.
        unsafe {
            let v4 = _mm_add_ps(_mm256_castps256_ps128(v8), _mm256_extractf128_ps::<1>(v8));
            reduce_128(v4)
        }
    }

    /// SSE2, the x86-64 baseline: never fused (there is no FMA to assume).
    pub struct Sse2;

    impl Lanes for Sse2 {
        type Acc = [__m128; 8];
        const FUSED: bool = false;

        #[inline(always)]
        unsafe fn zero() -> Self::Acc {
            // SAFETY: SSE is part of the x86-64 baseline.
            unsafe { [_mm_setzero_ps(); 8] }
        }

        #[inline(always)]
        unsafe fn mul_add(acc: &mut Self::Acc, a: *const f32, b: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values at `a` and `b` (caller); SSE is baseline.
                unsafe {
                    let product =
                        _mm_mul_ps(_mm_loadu_ps(a.add(4 * i)), _mm_loadu_ps(b.add(4 * i)));
                    *lane = _mm_add_ps(*lane, product);
                }
            }
        }

        #[inline(always)]
        unsafe fn add(acc: &mut Self::Acc, a: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values at `a` (caller); SSE is baseline.
                unsafe { *lane = _mm_add_ps(*lane, _mm_loadu_ps(a.add(4 * i))) };
            }
        }

        #[inline(always)]
        unsafe fn reduce(acc: Self::Acc) -> f32 {
            // SAFETY: SSE is baseline.
            unsafe {
                let w16: [__m128; 4] = std::array::from_fn(|i| _mm_add_ps(acc[i], acc[i + 4]));
                let w8 = [_mm_add_ps(w16[0], w16[2]), _mm_add_ps(w16[1], w16[3])];
                reduce_128(_mm_add_ps(w8[0], w8[1]))
            }
        }
    }

    /// AVX2 with FMA.
    pub struct Avx2;

    impl Lanes for Avx2 {
        type Acc = [__m256; 4];
        const FUSED: bool = true;

        #[inline(always)]
        unsafe fn zero() -> Self::Acc {
            // SAFETY: reached only inside functions compiled for detected AVX2+FMA.
            unsafe { [_mm256_setzero_ps(); 4] }
        }

        #[inline(always)]
        unsafe fn mul_add(acc: &mut Self::Acc, a: *const f32, b: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values (caller); AVX2+FMA detected (caller).
                unsafe {
                    *lane = _mm256_fmadd_ps(
                        _mm256_loadu_ps(a.add(8 * i)),
                        _mm256_loadu_ps(b.add(8 * i)),
                        *lane,
                    );
                }
            }
        }

        #[inline(always)]
        unsafe fn add(acc: &mut Self::Acc, a: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values (caller); AVX2 detected (caller).
                unsafe { *lane = _mm256_add_ps(*lane, _mm256_loadu_ps(a.add(8 * i))) };
            }
        }

        #[inline(always)]
        unsafe fn reduce(acc: Self::Acc) -> f32 {
            // SAFETY: AVX detected (caller).
            unsafe {
                let w16 = [_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3])];
                reduce_256(_mm256_add_ps(w16[0], w16[1]))
            }
        }
    }

    /// AVX-512F (FMA included).
    pub struct Avx512;

    impl Lanes for Avx512 {
        type Acc = [__m512; 2];
        const FUSED: bool = true;

        #[inline(always)]
        unsafe fn zero() -> Self::Acc {
            // SAFETY: reached only inside functions compiled for detected AVX-512F.
            unsafe { [_mm512_setzero_ps(); 2] }
        }

        #[inline(always)]
        unsafe fn mul_add(acc: &mut Self::Acc, a: *const f32, b: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values (caller); AVX-512F detected (caller).
                unsafe {
                    *lane = _mm512_fmadd_ps(
                        _mm512_loadu_ps(a.add(16 * i)),
                        _mm512_loadu_ps(b.add(16 * i)),
                        *lane,
                    );
                }
            }
        }

        #[inline(always)]
        unsafe fn add(acc: &mut Self::Acc, a: *const f32) {
            for (i, lane) in acc.iter_mut().enumerate() {
                // SAFETY: LANES readable values (caller); AVX-512F detected (caller).
                unsafe { *lane = _mm512_add_ps(*lane, _mm512_loadu_ps(a.add(16 * i))) };
            }
        }

        #[inline(always)]
        unsafe fn reduce(acc: Self::Acc) -> f32 {
            // SAFETY: AVX-512F detected (caller).
            unsafe {
                let w16 = _mm512_add_ps(acc[0], acc[1]);
                // The upper 256 bits through the f64 view: a 32x8 extract needs AVX-512DQ.
                let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(w16)));
                reduce_256(_mm256_add_ps(_mm512_castps512_ps256(w16), high))
            }
        }
    }

    const _: () = assert!(LANES == 32, "the register groups above hold 32 lanes");
}
