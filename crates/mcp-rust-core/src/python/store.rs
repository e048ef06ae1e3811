//! `MemoryStore` and `embed_text`: the learning store for Python.

use std::path::PathBuf;

use numpy::{Ix1, PyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use super::SnapshotError;
use super::arrays::{contiguous, non_negative, readonly_array};
use crate::store::{self, Hit, MemoryStore, Record, StoreError};

pub fn store_error(err: StoreError) -> PyErr {
    match err {
        StoreError::Io { .. } => PyOSError::new_err(err.to_string()),
        StoreError::NotASnapshot { .. }
        | StoreError::UnsupportedVersion { .. }
        | StoreError::Truncated { .. }
        | StoreError::Corrupt { .. } => SnapshotError::new_err(err.to_string()),
        StoreError::DimensionMismatch { .. }
        | StoreError::NonFinite { .. }
        | StoreError::ZeroDimension
        | StoreError::DimensionTooLarge { .. }
        | StoreError::IdsExhausted => PyValueError::new_err(err.to_string()),
    }
}

/// A dimension argument: 1 ..= `store::MAX_DIMENSION`.
fn dimension(dim: i64) -> PyResult<usize> {
    usize::try_from(dim)
        .ok()
        .filter(|dim| store::check_dimension(*dim).is_ok())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "dim must be between 1 and {}, got {dim}",
                store::MAX_DIMENSION
            ))
        })
}

/// Embeds text as an L2-normalized float32 vector of `dim` hashed character trigrams.
/// Deterministic across runs and machines; similar strings get similar vectors.
/// `1 <= dim <= 1048576`.
#[pyfunction]
#[pyo3(signature = (text, dim = 256))]
pub fn embed_text<'py>(
    py: Python<'py>,
    text: &str,
    dim: i64,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let dim = dimension(dim)?;
    let embedding = py.detach(|| store::embed_text(text, dim));
    Ok(PyArray1::from_vec(py, embedding))
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
    // invariant: a serde_json::Value (string keys, finite numbers) always serializes.
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
pub struct PyMemoryStore {
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
        let dim = dimension(dim)?;
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

    /// Replaces the embedding of record `id` (float32, shape (dim,)), and its text and
    /// metadata when given (None keeps them); returns whether the record existed. Its cached
    /// norm is recomputed in the same step.
    #[pyo3(signature = (id, embedding, text = None, metadata = None))]
    fn update(
        &self,
        id: u64,
        embedding: &Bound<'_, PyAny>,
        text: Option<String>,
        metadata: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        let embedding = self.embedding_vec(embedding, "embedding")?;
        let metadata = metadata.map(json_from_python).transpose()?;
        self.inner
            .update(id, embedding, text, metadata)
            .map_err(store_error)
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
