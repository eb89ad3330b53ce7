//! From requests to one batch, and from the batch's output back to the requests.
//!
//! In: each request's tensors are borrowed in place (rt-view's bridge: no copy, checked
//! dtype, device and bounds); the requests are grouped by layout (structure, dict keys, and
//! each field's dtype and shape), the batch runs the layout most of them share, and each
//! field is stacked into one new tensor with [`crate::stack`] (the GIL released when the
//! copy is large enough to pay for it). Out: `fn`'s output is split along dim 0 with
//! `unbind`, so each caller gets a view of its row of the output, not a copy.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use rt_view::python::{Access, PyTensor, is_torch_tensor, owned_to_torch, run_released};
use rt_view::{DType, TensorView, dispatch_dtype};

use super::request::{Request, Structure};
use crate::stack;

/// What every request of a batch must look like: the layout most of its requests share.
pub(crate) struct Layout<'py> {
    structure: Structure,
    /// For dicts, the keys in the order of the first request with this layout (the batch
    /// dict's order).
    keys: Vec<Bound<'py, PyString>>,
    /// dtype and shape of each field.
    fields: Vec<(DType, Vec<usize>)>,
}

/// A request whose tensors are borrowed and match the batch's layout, in its field order.
pub(crate) struct Accepted<'py> {
    pub(crate) request: Request,
    pub(crate) leaves: Vec<PyTensor<'py>>,
}

/// A request whose tensors are borrowed, in its own field order (for a dict, the order of
/// its own keys).
pub(crate) struct Borrowed<'py> {
    request: Request,
    keys: Vec<Bound<'py, PyString>>,
    leaves: Vec<PyTensor<'py>>,
}

impl<'py> Borrowed<'py> {
    pub(crate) fn new(request: Request, (keys, leaves): Leaves<'py>) -> Self {
        Borrowed {
            request,
            keys,
            leaves,
        }
    }
}

/// A request's dict keys (empty for a tensor or tuple) and its borrowed tensors.
pub(crate) type Leaves<'py> = (Vec<Bound<'py, PyString>>, Vec<PyTensor<'py>>);

/// Borrows the tensors of `request`; an error (a tensor the bridge refuses) rejects this
/// request alone.
pub(crate) fn borrow<'py>(py: Python<'py>, request: &Request) -> PyResult<Leaves<'py>> {
    let payload = request.payload.bind(py);
    let (keys, objects): (Vec<Bound<'py, PyString>>, Vec<Bound<'py, PyAny>>) =
        match request.structure {
            Structure::Tensor => (Vec::new(), vec![payload.clone()]),
            Structure::Tuple(_) => (Vec::new(), payload.cast::<PyTuple>()?.iter().collect()),
            Structure::Dict(_) => {
                let mut keys = Vec::new();
                let mut objects = Vec::new();
                for (key, value) in payload.cast::<PyDict>()?.iter() {
                    keys.push(key.cast_into::<PyString>()?);
                    objects.push(value);
                }
                (keys, objects)
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
        leaves.push(leaf);
    }
    Ok((keys, leaves))
}

/// The requests of one batch, split into those that run and those rejected alone.
pub(crate) struct Grouped<'py> {
    /// `None` when no request is left to run.
    pub(crate) layout: Option<Layout<'py>>,
    pub(crate) accepted: Vec<Accepted<'py>>,
    pub(crate) rejected: Vec<(Request, PyErr)>,
}

/// Groups the borrowed requests of a batch by layout; the batch runs the layout shared by
/// the most requests (on a tie, the one whose first request arrived first), and every
/// request of another layout is rejected alone with an error naming both. Deciding by the
/// first request instead would let one odd request fail all the others.
///
/// Requests keep their arrival order among the accepted. A batch holds at most
/// `max_batch_size` requests and almost always one layout, so comparing each request with
/// one representative per layout seen is cheap.
pub(crate) fn group<'py>(borrowed: Vec<Borrowed<'py>>) -> Grouped<'py> {
    // (index of the layout's first request, how many requests have it)
    let mut layouts: Vec<(usize, usize)> = Vec::new();
    // Per request: which layout it has, and where each of the layout's fields is among
    // the request's own (dict keys may come in any order).
    let mut placed: Vec<(usize, Vec<usize>)> = Vec::with_capacity(borrowed.len());
    for (i, candidate) in borrowed.iter().enumerate() {
        let found = layouts
            .iter_mut()
            .enumerate()
            .find_map(|(l, (first, count))| {
                let order = borrowed
                    .get(*first)
                    .and_then(|first| order_like(first, candidate))?;
                *count += 1;
                Some((l, order))
            });
        placed.push(found.unwrap_or_else(|| {
            layouts.push((i, 1));
            (layouts.len() - 1, (0..candidate.leaves.len()).collect())
        }));
    }
    // The most shared layout; `>` keeps the earliest on a tie.
    let mut winner = 0;
    for (l, &(_, count)) in layouts.iter().enumerate() {
        if layouts.get(winner).is_some_and(|&(_, best)| count > best) {
            winner = l;
        }
    }
    let Some(&(first, count)) = layouts.get(winner) else {
        return Grouped {
            layout: None,
            accepted: Vec::new(),
            rejected: Vec::new(),
        };
    };
    let rejections: Vec<Option<PyErr>> = borrowed
        .iter()
        .zip(&placed)
        .map(|(candidate, &(l, _))| {
            if l == winner {
                return None;
            }
            Some(match borrowed.get(first) {
                Some(reference) => mismatch(candidate, reference, count),
                None => PyValueError::new_err("a batch lost its layout (internal error)"),
            })
        })
        .collect();
    let mut layout = None;
    let mut accepted = Vec::with_capacity(count);
    let mut rejected = Vec::new();
    for ((candidate, (_, order)), rejection) in borrowed.into_iter().zip(placed).zip(rejections) {
        if let Some(err) = rejection {
            rejected.push((candidate.request, err));
            continue;
        }
        let mut own: Vec<Option<PyTensor<'py>>> = candidate.leaves.into_iter().map(Some).collect();
        let leaves: Option<Vec<PyTensor<'py>>> = order
            .iter()
            .map(|&k| own.get_mut(k).and_then(Option::take))
            .collect();
        let Some(leaves) = leaves else {
            let err = PyValueError::new_err("a request lost a field (internal error)");
            rejected.push((candidate.request, err));
            continue;
        };
        if layout.is_none() {
            // The first accepted request is the layout's first: its key order is the batch's.
            layout = Some(Layout {
                structure: candidate.request.structure,
                keys: candidate.keys,
                fields: leaves
                    .iter()
                    .map(|l| (l.dtype(), l.shape().to_vec()))
                    .collect(),
            });
        }
        accepted.push(Accepted {
            request: candidate.request,
            leaves,
        });
    }
    Grouped {
        layout,
        accepted,
        rejected,
    }
}

/// Where each of `reference`'s fields is among `candidate`'s, if the two have the same
/// layout: the same structure, the same dict keys (in any order), and the same dtype and
/// shape field by field.
fn order_like(reference: &Borrowed<'_>, candidate: &Borrowed<'_>) -> Option<Vec<usize>> {
    if reference.request.structure != candidate.request.structure {
        return None;
    }
    let order: Vec<usize> = match reference.request.structure {
        Structure::Dict(_) => reference
            .keys
            .iter()
            .map(|key| candidate.keys.iter().position(|k| same_key(key, k)))
            .collect::<Option<_>>()?,
        _ => (0..reference.leaves.len()).collect(),
    };
    let same_fields = reference.leaves.iter().zip(&order).all(|(leaf, &k)| {
        candidate
            .leaves
            .get(k)
            .is_some_and(|other| other.dtype() == leaf.dtype() && other.shape() == leaf.shape())
    });
    same_fields.then_some(order)
}

/// Whether two dict keys are equal, as a dict lookup would find them (`str` keys compare
/// by value; the Python comparison is the fallback for strings that are not valid UTF-8).
fn same_key(a: &Bound<'_, PyString>, b: &Bound<'_, PyString>) -> bool {
    match (a.to_str(), b.to_str()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a.as_any().eq(b).unwrap_or(false),
    }
}

/// Why `candidate` is not in the batch whose `count` requests share `reference`'s layout.
fn mismatch(candidate: &Borrowed<'_>, reference: &Borrowed<'_>, count: usize) -> PyErr {
    let others = if count == 1 {
        "the one request its batch runs".to_owned()
    } else {
        format!("each of the {count} requests its batch runs")
    };
    const RULE: &str = "every request in a batch must have the same structure, keys, shapes and \
                        dtypes, and a batch runs those most of its requests share";
    let (mine, theirs) = (candidate.request.structure, reference.request.structure);
    if mine != theirs {
        return PyValueError::new_err(format!(
            "this request is {}, but {others} is {}; {RULE}",
            mine.describe(),
            theirs.describe()
        ));
    }
    if let Structure::Dict(_) = mine
        && !reference
            .keys
            .iter()
            .all(|key| candidate.keys.iter().any(|k| same_key(key, k)))
    {
        return PyValueError::new_err(format!(
            "this request has keys {}, but {others} has keys {}; {RULE}",
            key_list(&candidate.keys),
            key_list(&reference.keys)
        ));
    }
    for (index, leaf) in reference.leaves.iter().enumerate() {
        let other = match mine {
            Structure::Dict(_) => reference.keys.get(index).and_then(|key| {
                let k = candidate.keys.iter().position(|k| same_key(key, k))?;
                candidate.leaves.get(k)
            }),
            _ => candidate.leaves.get(index),
        };
        if let Some(other) = other
            && (other.dtype() != leaf.dtype() || other.shape() != leaf.shape())
        {
            return PyValueError::new_err(format!(
                "{} has shape {} and dtype {}, but in {others} it has shape {} and dtype {}; \
                     {RULE}",
                field_name(mine, &reference.keys, index),
                py_shape(other.shape()),
                other.dtype(),
                py_shape(leaf.shape()),
                leaf.dtype()
            ));
        }
    }
    PyValueError::new_err(format!(
        "this request does not match {others} (internal error: no field differs); {RULE}"
    ))
}

/// `'x', 'y'`: the keys as Python prints them.
fn key_list(keys: &[Bound<'_, PyString>]) -> String {
    keys.iter()
        .map(|k| k.repr().map(|r| r.to_string()).unwrap_or_default())
        .collect::<Vec<_>>()
        .join(", ")
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
