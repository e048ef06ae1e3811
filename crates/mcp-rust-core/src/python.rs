//! The `mcp_rust_core` Python extension module (cargo feature `python`).
//!
//! Arrays are read zero-copy from numpy (float32, C-contiguous) and every heavy call runs with
//! the GIL released, so Python threads calling into it run in parallel. Bad input raises
//! `TypeError`/`ValueError` with a message that says how to fix the call; a Rust panic raises
//! `PanicException` (PyO3's boundary) instead of aborting the interpreter.
//!
//! - [`arrays`]: numpy arrays as slices. [`kernels`]: `cosine_topk`, `dot`, `norms` and
//!   `_Kernels` (one instruction set, for benchmarks and tests). [`store`]: `MemoryStore`,
//!   `embed_text`. [`variant`]: which build variant `__init__.py` loads.
//! - On import the kernels' instruction set is chosen (`MCP_RUST_CORE_KERNELS`); a value
//!   this CPU cannot run is an `ImportError`.

mod arrays;
mod kernels;
mod store;
mod variant;

use std::path::PathBuf;

use pyo3::exceptions::{PyImportError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::kernels::{Isa, Kernels};
use build_info::BUILD_INFO;
use confined_fs::{self as confine, ConfineError, Roots};

pyo3::create_exception!(
    mcp_rust_core,
    ConfinementError,
    PyValueError,
    "A path is outside the allowed roots, does not exist, or a root is invalid."
);
pyo3::create_exception!(
    mcp_rust_core,
    SnapshotError,
    PyValueError,
    "A learning-store snapshot is truncated, corrupt, or not a snapshot at all."
);

fn confine_error(err: ConfineError) -> PyErr {
    ConfinementError::new_err(err.to_string())
}

/// Resolves `path` inside one of `roots` and returns its canonical absolute path.
///
/// Relative paths resolve against the first root. Raises `ConfinementError` (a `ValueError`)
/// if the path escapes the roots (`..`, symlinks leading outside, sibling-prefix tricks),
/// contains a NUL byte, does not exist, or a root is not an existing directory.
#[pyfunction]
fn confine_path(py: Python<'_>, path: &str, roots: Vec<PathBuf>) -> PyResult<String> {
    let confined = py.detach(|| {
        let roots = Roots::new(roots)?;
        confine::confine_path(path, &roots)
    });
    let confined = confined.map_err(confine_error)?;
    confined
        .into_os_string()
        .into_string()
        .map_err(|raw| PyValueError::new_err(format!("confined path {raw:?} is not valid UTF-8")))
}

/// Which build of the module this is: crate version, CPU variant, target-cpu, enabled target
/// features, rustc version, git commit, cargo profile, and the kernels' instruction set
/// (`kernels`, chosen at import) among those this CPU runs (`kernels_supported`).
#[pyfunction(name = "build_info")]
fn py_build_info(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let info = PyDict::new(py);
    info.set_item("crate_version", env!("CARGO_PKG_VERSION"))?;
    info.set_item("variant", BUILD_INFO.variant)?;
    info.set_item("target_cpu", BUILD_INFO.target_cpu)?;
    info.set_item(
        "target_features",
        PyList::new(py, BUILD_INFO.target_features)?,
    )?;
    info.set_item("rustc_version", BUILD_INFO.rustc_version)?;
    info.set_item("git_commit", BUILD_INFO.git_commit)?;
    info.set_item("profile", BUILD_INFO.profile)?;
    info.set_item("kernels", Kernels::active().isa().name())?;
    let supported: Vec<&str> = Kernels::supported().into_iter().map(Isa::name).collect();
    info.set_item("kernels_supported", supported)?;
    Ok(info)
}

/// Panics inside Rust, on a thread that released the GIL, with `message`.
///
/// It exists so the shipped artifact's panic boundary can be verified: the call must raise
/// `PanicException` and leave the interpreter running.
#[pyfunction]
fn _raise_rust_panic(py: Python<'_>, message: String) {
    py.detach(move || panic!("{message}"))
}

/// Rust-accelerated kernels, learning store and path confinement of mcp-foundry.
#[pymodule]
#[pyo3(name = "mcp_rust_core")]
fn mcp_rust_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    Kernels::init_from_env().map_err(|e| PyImportError::new_err(format!("mcp_rust_core: {e}")))?;
    m.add_function(wrap_pyfunction!(kernels::cosine_topk, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::dot, m)?)?;
    m.add_function(wrap_pyfunction!(kernels::norms, m)?)?;
    m.add_function(wrap_pyfunction!(store::embed_text, m)?)?;
    m.add_function(wrap_pyfunction!(confine_path, m)?)?;
    m.add_function(wrap_pyfunction!(py_build_info, m)?)?;
    m.add_function(wrap_pyfunction!(_raise_rust_panic, m)?)?;
    m.add_function(wrap_pyfunction!(variant::_select_variant, m)?)?;
    m.add_class::<store::PyMemoryStore>()?;
    m.add_class::<kernels::PyKernels>()?;
    m.add("ConfinementError", py.get_type::<ConfinementError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("PanicException", py.get_type::<PanicException>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
