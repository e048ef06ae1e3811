//! The `mcp_rust_core` Python extension module (cargo feature `python`).
//!
//! Arrays are read zero-copy from numpy (float32, C-contiguous) and every heavy call runs with
//! the GIL released, so Python threads calling into it run in parallel. Bad input raises
//! `TypeError`/`ValueError` with a message that says how to fix the call; a Rust panic raises
//! `PanicException` (PyO3's boundary) instead of aborting the interpreter.

use std::path::PathBuf;

use numpy::prelude::*;
use numpy::{Element, Ix1, Ix2, PyArray, PyArray1, PyReadonlyArray, PyUntypedArray, dtype};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::panic::PanicException;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::kernels::{self, KernelError};
use crate::store::{self, Hit, MemoryStore, Record, StoreError};
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

fn kernel_error(err: KernelError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

fn store_error(err: StoreError) -> PyErr {
    match err {
        StoreError::Io { .. } => PyOSError::new_err(err.to_string()),
        StoreError::NotASnapshot { .. }
        | StoreError::UnsupportedVersion { .. }
        | StoreError::Truncated { .. }
        | StoreError::Corrupt { .. } => SnapshotError::new_err(err.to_string()),
        StoreError::DimensionMismatch { .. }
        | StoreError::NonFinite { .. }
        | StoreError::ZeroDimension => PyValueError::new_err(err.to_string()),
    }
}

fn confine_error(err: ConfineError) -> PyErr {
    ConfinementError::new_err(err.to_string())
}

/// Borrows `obj` as a read-only numpy array of `T` with `D` dimensions, explaining exactly
/// which requirement a wrong argument misses.
fn readonly_array<'py, T: Element, D: numpy::ndarray::Dimension>(
    obj: &Bound<'py, PyAny>,
    name: &str,
    shape_hint: &str,
) -> PyResult<PyReadonlyArray<'py, T, D>> {
    let py = obj.py();
    let untyped = obj.cast::<PyUntypedArray>().map_err(|_| {
        let type_name = obj
            .get_type()
            .name()
            .map_or_else(|_| "?".to_string(), |n| n.to_string());
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of dtype float32 {shape_hint}, got {type_name}; \
             wrap it with numpy.asarray(..., dtype=numpy.float32)"
        ))
    })?;
    let wanted = dtype::<T>(py);
    if !untyped.dtype().is_equiv_to(&wanted) {
        return Err(PyTypeError::new_err(format!(
            "{name} must have dtype {wanted}, got {}; convert it with .astype(numpy.{wanted})",
            untyped.dtype()
        )));
    }
    if untyped.ndim() != D::NDIM.unwrap_or(untyped.ndim()) {
        return Err(PyValueError::new_err(format!(
            "{name} must be {shape_hint}, got an array of shape {:?}",
            untyped.shape()
        )));
    }
    Ok(obj.cast::<PyArray<T, D>>()?.try_readonly()?)
}

/// The row-major data of a borrowed array. `as_slice` alone also accepts Fortran-ordered
/// (e.g. transposed) arrays, whose memory is column-major, so C order is checked first.
fn contiguous<'a, T: Element, D: numpy::ndarray::Dimension>(
    array: &'a PyReadonlyArray<'_, T, D>,
    name: &str,
) -> PyResult<&'a [T]> {
    let not_c_order = || {
        PyValueError::new_err(format!(
            "{name} is not C-contiguous (a transposed or strided view?); \
             pass numpy.ascontiguousarray({name})"
        ))
    };
    if !array.is_c_contiguous() {
        return Err(not_c_order());
    }
    array.as_slice().map_err(|_| not_c_order())
}

/// `k` as a count: negative values are a `ValueError`, not an `OverflowError`.
fn non_negative(k: i64, name: &str) -> PyResult<usize> {
    usize::try_from(k).map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {k}")))
}

/// `(indices, scores)` as returned to Python: int64 row indices and float32 similarities.
type RankedArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>);

/// Top-k cosine similarity of `query` against every row of `matrix`.
///
/// `matrix` is a C-contiguous float32 array of shape (rows, dim), `query` a float32 array of
/// shape (dim,), `1 <= k <= rows`. Returns `(indices, scores)`: int64 row indices and float32
/// cosine similarities, best first (ties: lower index first). Zero rows score 0.
#[pyfunction]
#[pyo3(signature = (matrix, query, k))]
fn cosine_topk<'py>(
    py: Python<'py>,
    matrix: &Bound<'py, PyAny>,
    query: &Bound<'py, PyAny>,
    k: i64,
) -> PyResult<RankedArrays<'py>> {
    let matrix_array = readonly_array::<f32, Ix2>(matrix, "matrix", "of shape (rows, dim)")?;
    let query_array = readonly_array::<f32, Ix1>(query, "query", "of shape (dim,)")?;
    let (rows, dim) = (matrix_array.shape()[0], matrix_array.shape()[1]);
    if rows == 0 || dim == 0 {
        return Err(PyValueError::new_err(format!(
            "matrix is empty (shape ({rows}, {dim})); it needs at least one row and one column"
        )));
    }
    let k = non_negative(k, "k")?;
    if k == 0 || k > rows {
        return Err(PyValueError::new_err(format!(
            "k must be between 1 and the number of rows ({rows}), got {k}"
        )));
    }
    let matrix_data = contiguous(&matrix_array, "matrix")?;
    let query_data = contiguous(&query_array, "query")?;
    let ranked = py
        .detach(|| kernels::cosine_topk(matrix_data, dim, query_data, k))
        .map_err(kernel_error)?;
    let indices: Vec<i64> = ranked.iter().map(|s| s.index as i64).collect();
    let scores: Vec<f32> = ranked.iter().map(|s| s.score).collect();
    Ok((
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, scores),
    ))
}

/// Dot product of two float32 vectors of the same length.
#[pyfunction]
fn dot(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
    let a_array = readonly_array::<f32, Ix1>(a, "a", "of shape (n,)")?;
    let b_array = readonly_array::<f32, Ix1>(b, "b", "of shape (n,)")?;
    let (a_data, b_data) = (contiguous(&a_array, "a")?, contiguous(&b_array, "b")?);
    py.detach(|| kernels::dot(a_data, b_data))
        .map_err(kernel_error)
}

/// L2 norm of every row of a float32 matrix of shape (rows, dim); returns shape (rows,).
#[pyfunction]
fn norms<'py>(py: Python<'py>, matrix: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let matrix_array = readonly_array::<f32, Ix2>(matrix, "matrix", "of shape (rows, dim)")?;
    let dim = matrix_array.shape()[1];
    if dim == 0 {
        return Err(PyValueError::new_err(
            "matrix has 0 columns; rows need at least one value",
        ));
    }
    let data = contiguous(&matrix_array, "matrix")?;
    let result = py
        .detach(|| kernels::norms(data, dim))
        .map_err(kernel_error)?;
    Ok(PyArray1::from_vec(py, result))
}

/// Embeds text as an L2-normalized float32 vector of `dim` hashed character trigrams.
/// Deterministic across runs and machines; similar strings get similar vectors.
#[pyfunction]
#[pyo3(signature = (text, dim = 256))]
fn embed_text<'py>(py: Python<'py>, text: &str, dim: i64) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let dim = non_negative(dim, "dim")?;
    if dim == 0 {
        return Err(PyValueError::new_err("dim must be at least 1"));
    }
    let embedding = py.detach(|| store::embed_text(text, dim));
    Ok(PyArray1::from_vec(py, embedding))
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
/// features, rustc version, git commit and cargo profile.
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

fn json_from_python(value: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    if value.is_none() {
        return Ok(serde_json::Value::Null);
    }
    let json = value.py().import("json")?;
    let kwargs = PyDict::new(value.py());
    kwargs.set_item("allow_nan", false)?;
    let text: String = json
        .call_method("dumps", (value,), Some(&kwargs))?
        .extract()?;
    serde_json::from_str(&text)
        .map_err(|e| PyValueError::new_err(format!("metadata is not representable as JSON: {e}")))
}

fn json_to_python<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    if value.is_null() {
        return Ok(py.None().into_bound(py));
    }
    let text = serde_json::to_string(value).expect("a serde_json::Value always serializes");
    py.import("json")?.call_method1("loads", (text,))
}

fn hit_dict<'py>(py: Python<'py>, hit: &Hit) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("id", hit.id)?;
    dict.set_item("score", hit.score)?;
    dict.set_item("text", &hit.text)?;
    dict.set_item("metadata", json_to_python(py, &hit.metadata)?)?;
    Ok(dict)
}

fn record_dict<'py>(py: Python<'py>, record: &Record) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("id", record.id)?;
    dict.set_item("text", &record.text)?;
    dict.set_item("embedding", PyArray1::from_slice(py, &record.embedding))?;
    dict.set_item("metadata", json_to_python(py, &record.metadata)?)?;
    Ok(dict)
}

/// Thread-safe store of text records with float32 embeddings, searched by cosine similarity.
///
/// `MemoryStore(dim)` creates an empty store of `dim`-dimensional embeddings. Records carry a
/// text, an embedding and JSON-serializable metadata; ids start at 1 and are never reused.
/// `save(path)` writes an atomic snapshot (a crash mid-write keeps the previous file);
/// `MemoryStore.load(path)` reads one and raises `SnapshotError` if it is truncated or corrupt.
#[pyclass(name = "MemoryStore", module = "mcp_rust_core", frozen)]
struct PyMemoryStore {
    inner: MemoryStore,
}

impl PyMemoryStore {
    fn embedding_vec(&self, embedding: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<f32>> {
        let array = readonly_array::<f32, Ix1>(embedding, name, "of shape (dim,)")?;
        Ok(contiguous(&array, name)?.to_vec())
    }

    fn hits<'py>(&self, py: Python<'py>, query: Vec<f32>, k: i64) -> PyResult<Bound<'py, PyList>> {
        let k = non_negative(k, "k")?;
        let hits = py
            .detach(|| self.inner.query(&query, k))
            .map_err(store_error)?;
        let dicts = hits
            .iter()
            .map(|hit| hit_dict(py, hit))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, dicts)
    }
}

#[pymethods]
impl PyMemoryStore {
    #[new]
    fn new(dim: i64) -> PyResult<Self> {
        let dim = non_negative(dim, "dim")?;
        Ok(PyMemoryStore {
            inner: MemoryStore::new(dim).map_err(store_error)?,
        })
    }

    /// Dimension of the embeddings this store holds.
    #[getter]
    fn dim(&self) -> usize {
        self.inner.dim()
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "MemoryStore(dim={}, records={})",
            self.inner.dim(),
            self.inner.len()
        )
    }

    /// Adds a record with a float32 embedding of shape (dim,); returns its id.
    #[pyo3(signature = (text, embedding, metadata = None))]
    fn add(
        &self,
        text: String,
        embedding: &Bound<'_, PyAny>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let embedding = self.embedding_vec(embedding, "embedding")?;
        let metadata = metadata.map_or(Ok(serde_json::Value::Null), json_from_python)?;
        self.inner
            .add(text, embedding, metadata)
            .map_err(store_error)
    }

    /// Adds a record embedded with `embed_text(text, self.dim)`; returns its id.
    #[pyo3(signature = (text, metadata = None))]
    fn add_text(
        &self,
        py: Python<'_>,
        text: String,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<u64> {
        let metadata = metadata.map_or(Ok(serde_json::Value::Null), json_from_python)?;
        let embedding = py.detach(|| store::embed_text(&text, self.inner.dim()));
        self.inner
            .add(text, embedding, metadata)
            .map_err(store_error)
    }

    /// The `k` records most similar to a float32 query embedding, best first, as dicts with
    /// keys id, score, text, metadata. Fewer than `k` when the store holds fewer records.
    #[pyo3(signature = (embedding, k = 5))]
    fn query<'py>(
        &self,
        py: Python<'py>,
        embedding: &Bound<'py, PyAny>,
        k: i64,
    ) -> PyResult<Bound<'py, PyList>> {
        let query = self.embedding_vec(embedding, "embedding")?;
        self.hits(py, query, k)
    }

    /// Like `query`, with the query embedded by `embed_text(text, self.dim)`.
    #[pyo3(signature = (text, k = 5))]
    fn query_text<'py>(&self, py: Python<'py>, text: &str, k: i64) -> PyResult<Bound<'py, PyList>> {
        let query = py.detach(|| store::embed_text(text, self.inner.dim()));
        self.hits(py, query, k)
    }

    /// The record with this id as a dict (id, text, embedding, metadata), or None.
    fn get<'py>(&self, py: Python<'py>, id: u64) -> PyResult<Option<Bound<'py, PyDict>>> {
        self.inner
            .get(id)
            .map(|record| record_dict(py, &record))
            .transpose()
    }

    /// Removes the record with this id; returns whether it existed.
    fn remove(&self, id: u64) -> bool {
        self.inner.remove(id)
    }

    /// Writes an atomic snapshot to `path` (temporary file in the same directory, fsync, rename).
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| self.inner.save(&path)).map_err(store_error)
    }

    /// Reads a snapshot written by `save`.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let inner = py
            .detach(|| MemoryStore::load(&path))
            .map_err(store_error)?;
        Ok(PyMemoryStore { inner })
    }
}

/// Rust-accelerated kernels, learning store and path confinement of mcp-foundry.
#[pymodule]
#[pyo3(name = "mcp_rust_core")]
fn mcp_rust_core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_function(wrap_pyfunction!(cosine_topk, m)?)?;
    m.add_function(wrap_pyfunction!(dot, m)?)?;
    m.add_function(wrap_pyfunction!(norms, m)?)?;
    m.add_function(wrap_pyfunction!(embed_text, m)?)?;
    m.add_function(wrap_pyfunction!(confine_path, m)?)?;
    m.add_function(wrap_pyfunction!(py_build_info, m)?)?;
    m.add_function(wrap_pyfunction!(_raise_rust_panic, m)?)?;
    m.add_class::<PyMemoryStore>()?;
    m.add("ConfinementError", py.get_type::<ConfinementError>())?;
    m.add("SnapshotError", py.get_type::<SnapshotError>())?;
    m.add("PanicException", py.get_type::<PanicException>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
