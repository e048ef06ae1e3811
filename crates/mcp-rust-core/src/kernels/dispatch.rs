//! Run-time choice of the kernels' instruction set, inside every build.
//!
//! Each instruction set ([`Isa`]) has a static table of the kernels compiled for it
//! ([`Kernels`]): the [`super::lanes`] code instantiated inside `#[target_feature]`
//! functions, so the generic (x86-64 v1) artifact carries AVX2+FMA and AVX-512 code next to
//! its SSE2 code. A table's address is only ever taken right behind an
//! `is_x86_feature_detected!` check for its features ([`Kernels::for_isa`]), so code that
//! holds a `&Kernels` may call its functions: the reference is the proof that the CPU has
//! them. The choice is made once per process ([`Kernels::active`]) and every public kernel
//! then goes through that one table: one indirect call per kernel call, never per row.
//!
//! `MCP_RUST_CORE_KERNELS=auto|portable|avx2|avx512` overrides the choice (for benchmarks
//! and tests); naming an instruction set this CPU lacks is an error, never a SIGILL.

use std::fmt;
use std::sync::OnceLock;

use super::TopK;
use super::lanes;
use super::simd::Lanes;
#[cfg(not(target_arch = "x86_64"))]
use super::simd::Scalar as Portable;
#[cfg(target_arch = "x86_64")]
use super::simd::Sse2 as Portable;

/// The environment variable that forces an instruction set.
pub const KERNELS_ENV: &str = "MCP_RUST_CORE_KERNELS";

/// An instruction set the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Isa {
    /// The build's own baseline (SSE2 in the generic x86-64 build, the variant's
    /// `target-cpu` in the others, NEON on aarch64).
    Portable,
    /// 256-bit AVX2 with fused multiply-add (x86-64).
    Avx2,
    /// 512-bit AVX-512F (x86-64).
    Avx512,
}

impl Isa {
    /// Every instruction set, worst first.
    pub const ALL: [Isa; 3] = [Isa::Portable, Isa::Avx2, Isa::Avx512];

    /// The name `MCP_RUST_CORE_KERNELS` and `build_info()` use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// The instruction set named `name` (as [`Isa::name`] spells it).
    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// The CPU features the kernels of this instruction set execute, as Rust spells them.
    pub fn required_features(self) -> &'static [&'static str] {
        match self {
            Isa::Portable => &[],
            Isa::Avx2 => &["avx2", "fma"],
            Isa::Avx512 => &["avx512f"],
        }
    }

    /// Whether the kernels round `a * b + c` once; paths that agree here return
    /// bit-identical results. The portable kernels fuse on aarch64, never on x86-64 (SSE2).
    pub fn fused(self) -> bool {
        match self {
            Isa::Portable => <Portable as Lanes>::FUSED,
            Isa::Avx2 | Isa::Avx512 => true,
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an instruction set cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error(
        "{KERNELS_ENV}={requested:?} names no kernel instruction set; use `auto` or one of: portable, avx2, avx512"
    )]
    Unknown { requested: String },
    #[error(
        "the {isa} kernels need CPU features this CPU lacks ({missing}); unset {KERNELS_ENV} (or set it to `auto`) to use the best kernels this CPU supports",
        missing = isa.required_features().join(", ")
    )]
    Unsupported { isa: Isa },
}

/// `cosine_scan(matrix, dim, query, query_norm, row_norms, top)` (see [`lanes::cosine_scan`]).
type CosineScan = unsafe fn(&[f32], usize, &[f32], f32, Option<&[f32]>, &mut TopK);

/// The kernels compiled for one instruction set.
///
/// Only [`Kernels::for_isa`] hands out references, after checking the CPU; the function
/// pointers are `unsafe` because calling them without that check could execute
/// instructions the CPU does not have.
pub struct Kernels {
    isa: Isa,
    dot: unsafe fn(&[f32], &[f32]) -> f32,
    norms_into: unsafe fn(&[f32], usize, &mut [f32]),
    cosine_scan: CosineScan,
    stream_sum: unsafe fn(&[f32]) -> f32,
}

impl fmt::Debug for Kernels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernels").field("isa", &self.isa).finish()
    }
}

/// Instantiates the [`lanes`] kernels over the register type `$lanes`, in a module whose
/// functions are compiled for `$features` (none: the build's baseline), with their table.
macro_rules! kernel_table {
    ($module:ident, $isa:expr, $lanes:ty $(, $features:literal)?) => {
        mod $module {
            use super::{Kernels, TopK, lanes};

            $(#[target_feature(enable = $features)])?
            unsafe fn dot(a: &[f32], b: &[f32]) -> f32 {
                // SAFETY: this function is compiled for `$lanes`' instructions.
                unsafe { lanes::dot::<$lanes>(a, b) }
            }

            $(#[target_feature(enable = $features)])?
            unsafe fn norms_into(matrix: &[f32], dim: usize, out: &mut [f32]) {
                // SAFETY: as in `dot`.
                unsafe { lanes::norms_into::<$lanes>(matrix, dim, out) }
            }

            $(#[target_feature(enable = $features)])?
            unsafe fn cosine_scan(
                matrix: &[f32],
                dim: usize,
                query: &[f32],
                query_norm: f32,
                row_norms: Option<&[f32]>,
                top: &mut TopK,
            ) {
                // SAFETY: as in `dot`.
                unsafe {
                    lanes::cosine_scan::<$lanes>(matrix, dim, query, query_norm, row_norms, top)
                }
            }

            $(#[target_feature(enable = $features)])?
            unsafe fn stream_sum(data: &[f32]) -> f32 {
                // SAFETY: as in `dot`.
                unsafe { lanes::stream_sum::<$lanes>(data) }
            }

            pub(super) static KERNELS: Kernels = Kernels {
                isa: $isa,
                dot,
                norms_into,
                cosine_scan,
                stream_sum,
            };
        }
    };
}

kernel_table!(portable, super::Isa::Portable, super::Portable);
#[cfg(target_arch = "x86_64")]
kernel_table!(avx2, super::Isa::Avx2, super::super::simd::Avx2, "avx2,fma");
#[cfg(target_arch = "x86_64")]
kernel_table!(
    avx512,
    super::Isa::Avx512,
    super::super::simd::Avx512,
    "avx512f"
);

/// The kernels chosen for this process (see [`Kernels::active`]).
static ACTIVE: OnceLock<&'static Kernels> = OnceLock::new();

impl Kernels {
    /// The kernels for `isa`, if this CPU can run them. This is the only place a table's
    /// address is taken, each behind the detection of exactly its features.
    #[inline(never)]
    pub fn for_isa(isa: Isa) -> Result<&'static Kernels, SelectError> {
        let table: Option<&'static Kernels> = match isa {
            Isa::Portable => Some(&portable::KERNELS),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    Some(&avx2::KERNELS)
                } else {
                    None
                }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    Some(&avx512::KERNELS)
                } else {
                    None
                }
            }
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => None,
        };
        table.ok_or(SelectError::Unsupported { isa })
    }

    /// The instruction sets this CPU can run, worst first.
    pub fn supported() -> Vec<Isa> {
        Isa::ALL
            .into_iter()
            .filter(|isa| Kernels::for_isa(*isa).is_ok())
            .collect()
    }

    /// The best kernels this CPU can run.
    pub fn best() -> &'static Kernels {
        Isa::ALL
            .into_iter()
            .rev()
            .find_map(|isa| Kernels::for_isa(isa).ok())
            .unwrap_or(&portable::KERNELS)
    }

    /// The kernels `MCP_RUST_CORE_KERNELS` asks for: the best ones when it is unset, empty
    /// or `auto`; an error when it names an unknown instruction set or one this CPU lacks.
    pub fn from_env() -> Result<&'static Kernels, SelectError> {
        match std::env::var(KERNELS_ENV) {
            Err(_) => Ok(Kernels::best()),
            Ok(value) => Kernels::from_request(&value),
        }
    }

    /// The kernels a `MCP_RUST_CORE_KERNELS` value asks for (see [`Kernels::from_env`]).
    pub fn from_request(value: &str) -> Result<&'static Kernels, SelectError> {
        let value = value.trim();
        if value.is_empty() || value.eq_ignore_ascii_case("auto") {
            return Ok(Kernels::best());
        }
        let isa =
            Isa::from_name(&value.to_ascii_lowercase()).ok_or_else(|| SelectError::Unknown {
                requested: value.to_owned(),
            })?;
        Kernels::for_isa(isa)
    }

    /// The kernels every public function of [`super`] uses, chosen on first use from
    /// `MCP_RUST_CORE_KERNELS` (see [`Kernels::from_env`]). A bad value there falls back to
    /// the best kernels with a warning on stderr; call [`Kernels::init_from_env`] first to
    /// turn it into an error instead.
    pub fn active() -> &'static Kernels {
        ACTIVE.get_or_init(|| {
            Kernels::from_env().unwrap_or_else(|error| {
                eprintln!("mcp-rust-core: {error}; using the best kernels this CPU supports");
                Kernels::best()
            })
        })
    }

    /// Makes the choice of [`Kernels::active`] now, failing on a bad `MCP_RUST_CORE_KERNELS`.
    /// The Python module calls it on import, so a bad value is an `ImportError`.
    pub fn init_from_env() -> Result<&'static Kernels, SelectError> {
        let chosen = Kernels::from_env()?;
        Ok(*ACTIVE.get_or_init(|| chosen))
    }

    /// The instruction set these kernels are compiled for.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Dot product; `a` and `b` must have the same length (checked by the callers).
    #[inline]
    pub(super) fn dot_same_len(&self, a: &[f32], b: &[f32]) -> f32 {
        debug_assert_eq!(a.len(), b.len());
        // SAFETY: `self` came from `for_isa`, which checked the CPU for this table's features.
        unsafe { (self.dot)(a, b) }
    }

    /// Norm of each `dim`-wide row of `matrix` into `out`.
    #[inline]
    pub(super) fn norms_into(&self, matrix: &[f32], dim: usize, out: &mut [f32]) {
        // SAFETY: as in `dot_same_len`.
        unsafe { (self.norms_into)(matrix, dim, out) }
    }

    #[inline]
    pub(super) fn cosine_scan(
        &self,
        matrix: &[f32],
        dim: usize,
        query: &[f32],
        query_norm: f32,
        row_norms: Option<&[f32]>,
        top: &mut TopK,
    ) {
        // SAFETY: as in `dot_same_len`.
        unsafe { (self.cosine_scan)(matrix, dim, query, query_norm, row_norms, top) }
    }

    /// The sum of all values, computed so that reading `data` is all the work: its speed is
    /// the read bandwidth of wherever `data` lives (the benchmarks' yardstick).
    pub fn stream_sum(&self, data: &[f32]) -> f32 {
        // SAFETY: as in `dot_same_len`.
        unsafe { (self.stream_sum)(data) }
    }
}
