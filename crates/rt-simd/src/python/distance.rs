//! Python entry point of `cdist`.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use rt_view::DType;
use rt_view::python::{Access, PyTensor};

use super::convert::{CDIST_DTYPES, Output, check_dtype, contiguous};
use crate::distance::{self, Metric};
use crate::real::Real;

/// Above this many multiply-adds, `cdist` runs interruptibly (Ctrl-C stops it between
/// bands of rows); below, a helper thread would cost more than it saves.
const INTERRUPTIBLE_WORK: usize = 1 << 30;

fn cdist_typed<'py, T: Real>(
    py: Python<'py>,
    a: &PyTensor<'py>,
    b: &PyTensor<'py>,
    metric: Metric,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let (sa, sb) = (a.shape(), b.shape());
    let nd = sa.len();
    let (batch, n, m, d) = (
        sa[..nd - 2].iter().product::<usize>(),
        sa[nd - 2],
        sb[nd - 2],
        sa[nd - 1],
    );
    let mut shape = sa[..nd - 2].to_vec();
    shape.extend([n, m]);
    let (va, vb) = (a.view::<T>()?, b.view::<T>()?);
    let (x, y) = (contiguous(py, &va)?, contiguous(py, &vb)?);
    let mut output = Output::<T>::new(py, out, &shape, &[a, b])?;
    let (x, y) = (x.as_slice(), y.as_slice());
    let work = batch.saturating_mul(n).saturating_mul(m).saturating_mul(d);
    let kernel = move |o: &mut [T], token: Option<&rt_view::cancel::CancelToken>| {
        for bi in 0..batch {
            let xs = &x[bi * n * d..(bi + 1) * n * d];
            let ys = &y[bi * m * d..(bi + 1) * m * d];
            let os = &mut o[bi * n * m..(bi + 1) * n * m];
            distance::cdist_cancellable(xs, ys, d, metric, os, token)?;
        }
        Ok(())
    };
    if work >= INTERRUPTIBLE_WORK {
        output.fill_interruptible(py, kernel)?;
    } else {
        output.fill(py, work, |o| kernel(o, None))?;
    }
    output.finish(py)
}

#[pyfunction]
#[pyo3(signature = (x, y, metric = "l2", *, out = None))]
pub(crate) fn cdist<'py>(
    py: Python<'py>,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    metric: &str,
    out: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    const OP: &str = "cdist";
    let metric = Metric::from_name(metric).ok_or_else(|| {
        PyValueError::new_err(format!(
            "{OP}: metric must be 'l2', 'sqeuclidean', 'cosine' or 'dot', got {metric:?}"
        ))
    })?;
    let a = PyTensor::extract(x, Access::Read)?;
    let b = PyTensor::extract(y, Access::Read)?;
    let dtype = check_dtype(OP, &a, CDIST_DTYPES)?;
    if b.dtype() != dtype {
        return Err(PyTypeError::new_err(format!(
            "{OP}: y has dtype {}, expected {dtype} like x",
            b.dtype()
        )));
    }
    let (sa, sb) = (a.shape(), b.shape());
    let ok = sa.len() >= 2
        && sa.len() == sb.len()
        && sa[sa.len() - 1] == sb[sb.len() - 1]
        && sa[..sa.len() - 2] == sb[..sb.len() - 2];
    if !ok {
        return Err(PyValueError::new_err(format!(
            "{OP}: x and y must be [..., n, d] and [..., m, d] with equal batch dimensions \
             and d; got {sa:?} and {sb:?}"
        )));
    }
    match dtype {
        DType::Float32 => cdist_typed::<f32>(py, &a, &b, metric, out),
        _ => cdist_typed::<f64>(py, &a, &b, metric, out),
    }
}
