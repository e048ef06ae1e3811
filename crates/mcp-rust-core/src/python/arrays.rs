//! Borrowing numpy arrays as Rust slices, with errors that say how to fix the call.

use numpy::prelude::*;
use numpy::{Element, PyArray, PyReadonlyArray, PyUntypedArray, dtype};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// Borrows `obj` as a read-only numpy array of `T` with `D` dimensions, explaining exactly
/// which requirement a wrong argument misses.
pub fn readonly_array<'py, T: Element, D: numpy::ndarray::Dimension>(
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
pub fn contiguous<'a, T: Element, D: numpy::ndarray::Dimension>(
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

/// A count argument: negative values are a `ValueError`, not an `OverflowError`.
pub fn non_negative(value: i64, name: &str) -> PyResult<usize> {
    usize::try_from(value)
        .map_err(|_| PyValueError::new_err(format!("{name} must be >= 0, got {value}")))
}
