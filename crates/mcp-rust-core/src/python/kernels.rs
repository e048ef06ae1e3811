//! The kernel functions (`cosine_topk`, `dot`, `norms`) and `_Kernels`, the same functions
//! on one chosen instruction set (for benchmarks and tests of the dispatched paths).

use numpy::prelude::*;
use numpy::{Ix1, Ix2, IxDyn, PyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::arrays::{contiguous, non_negative, readonly_array};
use crate::kernels::{Isa, KernelError, Kernels};

fn kernel_error(err: KernelError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

/// `(indices, scores)` as returned to Python: int64 row indices and float32 similarities.
type RankedArrays<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>);

fn cosine_topk_on<'py>(
    kernels: &Kernels,
    py: Python<'py>,
    matrix: &Bound<'py, PyAny>,
    query: &Bound<'py, PyAny>,
    k: i64,
    row_norms: Option<&Bound<'py, PyAny>>,
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
    let norms_array = row_norms
        .map(|norms| readonly_array::<f32, Ix1>(norms, "row_norms", "of shape (rows,)"))
        .transpose()?;
    let matrix_data = contiguous(&matrix_array, "matrix")?;
    let query_data = contiguous(&query_array, "query")?;
    let norms_data = norms_array
        .as_ref()
        .map(|norms| contiguous(norms, "row_norms"))
        .transpose()?;
    let ranked = py
        .detach(|| match norms_data {
            Some(norms) => kernels.cosine_topk_with_norms(matrix_data, dim, norms, query_data, k),
            None => kernels.cosine_topk(matrix_data, dim, query_data, k),
        })
        .map_err(kernel_error)?;
    let indices: Vec<i64> = ranked.iter().map(|s| s.index as i64).collect();
    let scores: Vec<f32> = ranked.iter().map(|s| s.score).collect();
    Ok((
        PyArray1::from_vec(py, indices),
        PyArray1::from_vec(py, scores),
    ))
}

fn dot_on(
    kernels: &Kernels,
    py: Python<'_>,
    a: &Bound<'_, PyAny>,
    b: &Bound<'_, PyAny>,
) -> PyResult<f32> {
    let a_array = readonly_array::<f32, Ix1>(a, "a", "of shape (n,)")?;
    let b_array = readonly_array::<f32, Ix1>(b, "b", "of shape (n,)")?;
    let (a_data, b_data) = (contiguous(&a_array, "a")?, contiguous(&b_array, "b")?);
    py.detach(|| kernels.dot(a_data, b_data))
        .map_err(kernel_error)
}

fn norms_on<'py>(
    kernels: &Kernels,
    py: Python<'py>,
    matrix: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    let matrix_array = readonly_array::<f32, Ix2>(matrix, "matrix", "of shape (rows, dim)")?;
    let dim = matrix_array.shape()[1];
    if dim == 0 {
        return Err(PyValueError::new_err(
            "matrix has 0 columns; rows need at least one value",
        ));
    }
    let data = contiguous(&matrix_array, "matrix")?;
    let result = py
        .detach(|| kernels.norms(data, dim))
        .map_err(kernel_error)?;
    Ok(PyArray1::from_vec(py, result))
}

/// Top-k cosine similarity of `query` against every row of `matrix`.
///
/// `matrix` is a C-contiguous float32 array of shape (rows, dim), `query` a float32 array of
/// shape (dim,), `1 <= k <= rows`. Returns `(indices, scores)`: int64 row indices and float32
/// cosine similarities, best first (ties: lower index first). Zero rows score 0.
/// `row_norms`, if given, must be `norms(matrix)` (float32, shape (rows,)): a matrix searched
/// many times then has its norms computed once; the scores are the same bits.
#[pyfunction]
#[pyo3(signature = (matrix, query, k, row_norms = None))]
pub fn cosine_topk<'py>(
    py: Python<'py>,
    matrix: &Bound<'py, PyAny>,
    query: &Bound<'py, PyAny>,
    k: i64,
    row_norms: Option<&Bound<'py, PyAny>>,
) -> PyResult<RankedArrays<'py>> {
    cosine_topk_on(Kernels::active(), py, matrix, query, k, row_norms)
}

/// Dot product of two float32 vectors of the same length.
#[pyfunction]
pub fn dot(py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
    dot_on(Kernels::active(), py, a, b)
}

/// L2 norm of every row of a float32 matrix of shape (rows, dim); returns shape (rows,).
#[pyfunction]
pub fn norms<'py>(
    py: Python<'py>,
    matrix: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<f32>>> {
    norms_on(Kernels::active(), py, matrix)
}

/// The kernels of one instruction set: `_Kernels("avx2")`, or `_Kernels("auto")` for the
/// best this CPU runs. Raises `ValueError` for a name this build does not know or this CPU
/// cannot run. The module's own functions use the set `build_info()["kernels"]` names.
/// Meant for benchmarks and tests; its methods are the module's functions.
#[pyclass(name = "_Kernels", module = "mcp_rust_core", frozen)]
pub struct PyKernels {
    kernels: &'static Kernels,
}

#[pymethods]
impl PyKernels {
    #[new]
    fn new(isa: &str) -> PyResult<Self> {
        let kernels =
            Kernels::from_request(isa).map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(PyKernels { kernels })
    }

    /// The instruction sets this CPU can run, worst first.
    #[staticmethod]
    fn supported() -> Vec<&'static str> {
        Kernels::supported().into_iter().map(Isa::name).collect()
    }

    /// The instruction sets this build knows, worst first.
    #[staticmethod]
    fn known() -> Vec<&'static str> {
        Isa::ALL.into_iter().map(Isa::name).collect()
    }

    #[getter]
    fn isa(&self) -> &'static str {
        self.kernels.isa().name()
    }

    fn __repr__(&self) -> String {
        format!("_Kernels({:?})", self.kernels.isa().name())
    }

    #[pyo3(signature = (matrix, query, k, row_norms = None))]
    fn cosine_topk<'py>(
        &self,
        py: Python<'py>,
        matrix: &Bound<'py, PyAny>,
        query: &Bound<'py, PyAny>,
        k: i64,
        row_norms: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<RankedArrays<'py>> {
        cosine_topk_on(self.kernels, py, matrix, query, k, row_norms)
    }

    fn dot(&self, py: Python<'_>, a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<f32> {
        dot_on(self.kernels, py, a, b)
    }

    fn norms<'py>(
        &self,
        py: Python<'py>,
        matrix: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        norms_on(self.kernels, py, matrix)
    }

    /// The sum of a C-contiguous float32 array of any shape, computed so that reading it is
    /// all the work: the read bandwidth of wherever the data lives (the benchmark's
    /// yardstick). The GIL is released.
    fn stream_sum(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<f32> {
        let array = readonly_array::<f32, IxDyn>(data, "data", "of any shape")?;
        let values = contiguous(&array, "data")?;
        Ok(py.detach(|| self.kernels.stream_sum(values)))
    }
}
