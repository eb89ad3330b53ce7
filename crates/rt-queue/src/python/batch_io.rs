//! From requests to one batch, and from the batch's output back to the requests.
//!
//! In: each request's tensors are borrowed in place (rt-view's bridge: no copy, checked
//! dtype, device and bounds), checked against the batch's first request, and stacked per
//! field into one new tensor with [`crate::stack`] (the GIL released when the copy is large
//! enough to pay for it). Out: `fn`'s output is split along dim 0 with `unbind`, so each
//! caller gets a view of its row of the output, not a copy.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rt_view::python::{Access, PyTensor, is_torch_tensor, owned_to_torch, run_released};
use rt_view::{DType, TensorView, dispatch_dtype};

use super::request::{Request, Structure};
use crate::stack;

/// What every request of a batch must look like: set by the batch's first valid request.
pub(crate) struct Layout<'py> {
    structure: Structure,
    /// For dicts, the keys in the first request's order (the batch dict's order).
    keys: Vec<Bound<'py, PyString>>,
    /// dtype and shape of each field.
    fields: Vec<(DType, Vec<usize>)>,
}

/// A request whose tensors are borrowed and match the batch's layout.
pub(crate) struct Accepted<'py> {
    pub(crate) request: Request,
    pub(crate) leaves: Vec<PyTensor<'py>>,
}

/// Borrows the tensors of `request` and checks them against `layout`, or makes this
/// request set the layout when it is the first. An error rejects this request alone.
pub(crate) fn accept<'py>(
    py: Python<'py>,
    request: &Request,
    layout: &mut Option<Layout<'py>>,
) -> PyResult<Vec<PyTensor<'py>>> {
    let payload = request.payload.bind(py);
    if let Some(expected) = layout.as_ref() {
        if request.structure != expected.structure {
            return Err(PyValueError::new_err(format!(
                "this request is {}, but the first request of its batch is {}; every request \
                 in a batch must have the same structure",
                request.structure.describe(),
                expected.structure.describe()
            )));
        }
    }
    let keys = match (request.structure, layout.as_ref()) {
        (Structure::Dict(_), Some(expected)) => expected.keys.clone(),
        (Structure::Dict(_), None) => payload
            .cast::<PyDict>()?
            .keys()
            .iter()
            .map(|k| k.cast_into::<PyString>().map_err(PyErr::from))
            .collect::<PyResult<Vec<_>>>()?,
        _ => Vec::new(),
    };
    let objects: Vec<Bound<'py, PyAny>> = match request.structure {
        Structure::Tensor => vec![payload.clone()],
        Structure::Tuple(_) => payload.cast::<PyTuple>()?.iter().collect(),
        Structure::Dict(_) => {
            let dict = payload.cast::<PyDict>()?;
            keys.iter()
                .map(|key| {
                    dict.get_item(key)?.ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "this request has no key {}, which the first request of its batch has; \
                             every request in a batch must have the same keys",
                            key.repr().map(|r| r.to_string()).unwrap_or_default()
                        ))
                    })
                })
                .collect::<PyResult<_>>()?
        }
    };
    let mut leaves = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        let leaf = PyTensor::extract(object, Access::Read)
            .map_err(|e| in_field(py, e, request.structure, &keys, index))?;
        // Catches storage resized under the tensor, and memory torch marked misaligned.
        leaf.byte_range()
            .map_err(|e| in_field(py, e, request.structure, &keys, index))?;
        if !leaf.is_aligned() {
            return Err(PyValueError::new_err(format!(
                "{}: the tensor's data is not aligned to its {} elements; pass .clone() of it",
                field_name(request.structure, &keys, index),
                leaf.dtype()
            )));
        }
        if let Some(expected) = layout.as_ref() {
            if let Some((dtype, shape)) = expected.fields.get(index) {
                if leaf.dtype() != *dtype || leaf.shape() != shape.as_slice() {
                    return Err(PyValueError::new_err(format!(
                        "{} has shape {} and dtype {}, but the first request of its batch has \
                         shape {} and dtype {}; every request in a batch must have the same \
                         shapes and dtypes",
                        field_name(request.structure, &keys, index),
                        py_shape(leaf.shape()),
                        leaf.dtype(),
                        py_shape(shape),
                        dtype
                    )));
                }
            }
        }
        leaves.push(leaf);
    }
    if layout.is_none() {
        *layout = Some(Layout {
            structure: request.structure,
            keys,
            fields: leaves
                .iter()
                .map(|l| (l.dtype(), l.shape().to_vec()))
                .collect(),
        });
    }
    Ok(leaves)
}

/// "the request tensor", "element 1 of the request", "request['x']".
fn field_name(structure: Structure, keys: &[Bound<'_, PyString>], index: usize) -> String {
    match structure {
        Structure::Tensor => "the request tensor".to_owned(),
        Structure::Tuple(_) => format!("element {index} of the request"),
        Structure::Dict(_) => format!(
            "request[{}]",
            keys.get(index)
                .and_then(|k| k.repr().ok())
                .map(|r| r.to_string())
                .unwrap_or_default()
        ),
    }
}

/// The same exception type, with the field named in front of the message.
fn in_field(
    py: Python<'_>,
    err: PyErr,
    structure: Structure,
    keys: &[Bound<'_, PyString>],
    index: usize,
) -> PyErr {
    let message = format!("{}: {}", field_name(structure, keys, index), err.value(py));
    let typed = if err.is_instance_of::<PyTypeError>(py) {
        PyTypeError::new_err(message)
    } else {
        PyValueError::new_err(message)
    };
    typed.set_cause(py, Some(err));
    typed
}

/// `(2, 3)`, `(4,)`, `()`, as Python prints shapes.
fn py_shape(shape: &[usize]) -> String {
    match shape {
        [n] => format!("({n},)"),
        _ => format!(
            "({})",
            shape
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Stacks the accepted requests field by field into the batch `fn` receives: a tensor,
/// tuple or dict, like each request.
pub(crate) fn stack_batch<'py>(
    py: Python<'py>,
    layout: &Layout<'py>,
    accepted: &[Accepted<'py>],
) -> PyResult<Bound<'py, PyAny>> {
    let mut fields = Vec::with_capacity(layout.fields.len());
    for (index, (dtype, _)) in layout.fields.iter().enumerate() {
        let field = dispatch_dtype!(*dtype, T => {
            let views = accepted
                .iter()
                .map(|a| match a.leaves.get(index) {
                    Some(leaf) => leaf.view::<T>(),
                    None => Err(PyValueError::new_err("a request lost a field (internal error)")),
                })
                .collect::<PyResult<Vec<TensorView<'_, T>>>>()?;
            let elements: usize = views.iter().map(TensorView::numel).sum();
            let stacked = run_released(py, elements, || stack(&views))?;
            owned_to_torch(py, stacked)?
        });
        fields.push(field);
    }
    match layout.structure {
        Structure::Tensor => fields
            .into_iter()
            .next()
            .ok_or_else(|| PyValueError::new_err("a batch without fields (internal error)")),
        Structure::Tuple(_) => Ok(PyTuple::new(py, fields)?.into_any()),
        Structure::Dict(_) => {
            let dict = PyDict::new(py);
            for (key, field) in layout.keys.iter().zip(fields) {
                dict.set_item(key, field)?;
            }
            Ok(dict.into_any())
        }
    }
}

/// Splits `fn`'s output into one result per request: a tensor into its rows along dim 0,
/// a tuple, list or dict of tensors into tuples, lists or dicts of rows.
pub(crate) fn split_output(output: &Bound<'_, PyAny>, n: usize) -> PyResult<Vec<Py<PyAny>>> {
    let py = output.py();
    if is_torch_tensor(output)? {
        return Ok(rows(output, n, "")?
            .into_iter()
            .map(Bound::unbind)
            .collect());
    }
    if let Ok(tuple) = output.cast::<PyTuple>() {
        let columns = tuple
            .iter()
            .enumerate()
            .map(|(i, t)| rows(&t, n, &format!(" (element {i} of its tuple)")))
            .collect::<PyResult<Vec<_>>>()?;
        return transpose(columns, n)
            .into_iter()
            .map(|row| Ok(PyTuple::new(py, row)?.into_any().unbind()))
            .collect();
    }
    if let Ok(list) = output.cast::<PyList>() {
        let columns = list
            .iter()
            .enumerate()
            .map(|(i, t)| rows(&t, n, &format!(" (element {i} of its list)")))
            .collect::<PyResult<Vec<_>>>()?;
        return transpose(columns, n)
            .into_iter()
            .map(|row| Ok(PyList::new(py, row)?.into_any().unbind()))
            .collect();
    }
    if let Ok(dict) = output.cast::<PyDict>() {
        let mut keys = Vec::with_capacity(dict.len());
        let mut columns = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            let what = format!(" (key {} of its dict)", key.repr()?);
            columns.push(rows(&value, n, &what)?);
            keys.push(key);
        }
        return transpose(columns, n)
            .into_iter()
            .map(|row| {
                let out = PyDict::new(py);
                for (key, value) in keys.iter().zip(row) {
                    out.set_item(key, value)?;
                }
                Ok(out.into_any().unbind())
            })
            .collect();
    }
    Err(PyTypeError::new_err(format!(
        "fn must return a tensor, or a tuple, list or dict of tensors, with one row per \
         request along dim 0; it returned {}",
        output.get_type().name()?
    )))
}

/// Columns (one per output field, each `n` rows long) to `n` rows of fields.
fn transpose<T>(columns: Vec<Vec<T>>, n: usize) -> Vec<Vec<T>> {
    let mut rows: Vec<Vec<T>> = (0..n).map(|_| Vec::with_capacity(columns.len())).collect();
    for column in columns {
        for (row, item) in rows.iter_mut().zip(column) {
            row.push(item);
        }
    }
    rows
}

/// The `n` rows of a tensor along dim 0, as views (`unbind(0)`).
fn rows<'py>(tensor: &Bound<'py, PyAny>, n: usize, what: &str) -> PyResult<Vec<Bound<'py, PyAny>>> {
    let py = tensor.py();
    if !is_torch_tensor(tensor)? {
        return Err(PyTypeError::new_err(format!(
            "fn must return tensors with one row per request along dim 0; it returned a {}{what}",
            tensor.get_type().name()?
        )));
    }
    let ndim: usize = tensor.getattr(intern!(py, "ndim"))?.extract()?;
    if ndim == 0 {
        return Err(PyValueError::new_err(format!(
            "fn returned a 0-d tensor{what} for a batch of {n} requests; it must return one row \
             per request along dim 0"
        )));
    }
    let len: usize = tensor.call_method1(intern!(py, "size"), (0,))?.extract()?;
    if len != n {
        return Err(PyValueError::new_err(format!(
            "fn returned {len} rows along dim 0{what} for a batch of {n} requests; it must \
             return exactly one row per request"
        )));
    }
    let unbound = tensor.call_method1(intern!(py, "unbind"), (0,))?;
    let rows: Vec<Bound<'py, PyAny>> = unbound.try_iter()?.collect::<PyResult<_>>()?;
    if rows.len() != n {
        return Err(PyValueError::new_err(format!(
            "unbind(0) gave {} rows for {n} requests",
            rows.len()
        )));
    }
    Ok(rows)
}
