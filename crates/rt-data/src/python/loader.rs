//! The loader's native classes: `_Loader` (one dataset served in epochs) and `_Epoch` (the
//! iterator of one epoch). The public `DataLoader` in `_loader.py` wraps them and owns the
//! argument resolution (sources, ranks, modes) and the `state_dict` layout.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use rt_view::python::{owned_to_torch, run_interruptible};

use super::errors::to_py;
use super::source::PySource;
use super::tensor_source::tensor_source;
use crate::loader::{
    Batch, BatchTensor, Loader, LoaderOptions, LoaderStats, Mode, Pipeline, Pop, Progress, Uneven,
};
use crate::options::OnError;
use crate::transform::Transform;

/// How long the consumer sleeps (without the GIL) between checks for Ctrl-C while it waits
/// for a batch: short enough that an interrupt feels immediate.
const WAIT_SLICE: Duration = Duration::from_millis(5);

/// The consumer's position, shared by the loader and its epoch iterators.
#[derive(Debug, Default)]
struct Shared {
    progress: Progress,
    /// The epoch in `progress` was delivered to its end.
    finished: bool,
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn transform_from_py(item: &Bound<'_, PyAny>) -> PyResult<Transform> {
    let (name, params): (String, Bound<'_, PyDict>) = item
        .extract()
        .map_err(|_| PyTypeError::new_err("a transform must be given as (name, {param: value})"))?;
    let list = |key: &str| -> PyResult<Option<Vec<f64>>> {
        match params.get_item(key)? {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => match v.extract::<f64>() {
                Ok(x) => Ok(Some(vec![x])),
                Err(_) => Ok(Some(v.extract::<Vec<f64>>()?)),
            },
        }
    };
    let scalar = |key: &str| -> PyResult<Option<f64>> {
        match params.get_item(key)? {
            None => Ok(None),
            Some(v) if v.is_none() => Ok(None),
            Some(v) => Ok(Some(v.extract::<f64>()?)),
        }
    };
    let required = |key: &str| -> PyResult<Vec<f64>> {
        list(key)?.ok_or_else(|| PyValueError::new_err(format!("{name}: {key} is required")))
    };
    Ok(match name.as_str() {
        "Standardize" => Transform::Standardize {
            mean: list("mean")?,
            std: list("std")?,
        },
        "MinMaxScale" => {
            let range = list("feature_range")?.unwrap_or_else(|| vec![0.0, 1.0]);
            let [lo, hi] = range.as_slice() else {
                return Err(PyValueError::new_err(
                    "MinMaxScale: feature_range must be two numbers (lo, hi)",
                ));
            };
            Transform::MinMaxScale {
                min: list("min")?,
                max: list("max")?,
                range: (*lo, *hi),
            }
        }
        "Normalize" => Transform::Normalize {
            mean: required("mean")?,
            std: required("std")?,
        },
        "Clip" => Transform::Clip {
            min: scalar("min")?,
            max: scalar("max")?,
        },
        "FillNaN" => Transform::FillNaN {
            value: scalar("value")?.unwrap_or(0.0),
        },
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown transform {other:?}; expected Standardize, MinMaxScale, Normalize, \
                 Clip or FillNaN"
            )));
        }
    })
}

fn transforms_to_py<'py>(py: Python<'py>, list: &[Transform]) -> PyResult<Bound<'py, PyList>> {
    let out = PyList::empty(py);
    for t in list {
        let params = PyDict::new(py);
        for (key, values) in t.params() {
            params.set_item(key, values)?;
        }
        out.append((t.name(), params))?;
    }
    Ok(out)
}

fn tensor_to_torch<'py>(py: Python<'py>, t: BatchTensor) -> PyResult<Bound<'py, PyAny>> {
    match t {
        BatchTensor::F32(t) => owned_to_torch(py, t),
        BatchTensor::F64(t) => owned_to_torch(py, t),
        BatchTensor::I64(t) => owned_to_torch(py, t),
    }
}

/// One dataset served in epochs (see `DataLoader`).
#[pyclass(name = "_Loader", module = "rusttorch_data._native")]
pub struct PyLoader {
    loader: Arc<Loader>,
    shared: Arc<Mutex<Shared>>,
}

#[pymethods]
impl PyLoader {
    #[new]
    #[pyo3(signature = (
        source, *, batch_size, shuffle, seed, drop_last, num_threads, prefetch, prefetch_bytes,
        rank, world_size, uneven, mode, shuffle_buffer, on_error, max_errors,
        feature_shape=None, label_shape=None, transforms=None,
    ))]
    #[allow(clippy::too_many_arguments)] // mirrors DataLoader's keyword arguments
    fn new(
        py: Python<'_>,
        source: &PySource,
        batch_size: usize,
        shuffle: bool,
        seed: u64,
        drop_last: bool,
        num_threads: usize,
        prefetch: usize,
        prefetch_bytes: usize,
        rank: usize,
        world_size: usize,
        uneven: &str,
        mode: &str,
        shuffle_buffer: u64,
        on_error: &str,
        max_errors: Option<u64>,
        feature_shape: Option<Vec<usize>>,
        label_shape: Option<Vec<usize>>,
        transforms: Option<&Bound<'_, PyList>>,
    ) -> PyResult<Self> {
        let mode = match mode {
            "memory" => Mode::Memory,
            "stream" => Mode::Stream,
            other => {
                return Err(PyValueError::new_err(format!(
                    "mode must be \"memory\" or \"stream\" here, got {other:?}"
                )));
            }
        };
        let on_error = match on_error {
            "raise" => OnError::Raise,
            "skip" => OnError::Skip { max_errors },
            other => {
                return Err(PyValueError::new_err(format!(
                    "on_error must be \"raise\" or \"skip\", got {other:?}"
                )));
            }
        };
        let options = LoaderOptions {
            batch_size,
            shuffle,
            seed,
            drop_last,
            num_threads,
            prefetch,
            prefetch_bytes,
            rank,
            world_size,
            uneven: Uneven::from_name(uneven).map_err(to_py)?,
            mode,
            shuffle_buffer,
            on_error,
            feature_shape,
            label_shape,
        };
        let transforms = match transforms {
            Some(list) => list
                .iter()
                .map(|t| transform_from_py(&t))
                .collect::<PyResult<Vec<_>>>()?,
            None => Vec::new(),
        };
        let source = Arc::clone(&source.inner);
        let loader = run_interruptible(py, move |cancel| {
            Loader::new(source, options, transforms, cancel)
        })?
        .map_err(to_py)?;
        Ok(Self {
            loader: Arc::new(loader),
            shared: Arc::default(),
        })
    }

    /// Batches this rank yields per epoch (counts the records once in stream mode).
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        let loader = Arc::clone(&self.loader);
        let shard = run_interruptible(py, move |cancel| loader.shard(cancel))?.map_err(to_py)?;
        Ok(shard.batches as usize)
    }

    /// Samples per epoch across all ranks.
    fn num_samples(&self, py: Python<'_>) -> PyResult<u64> {
        let loader = Arc::clone(&self.loader);
        run_interruptible(py, move |cancel| loader.num_samples(cancel))?.map_err(to_py)
    }

    /// This rank's plan: (start, len, batches, served, dropped, padded).
    fn shard(&self, py: Python<'_>) -> PyResult<(u64, u64, u64, u64, u64, u64)> {
        let loader = Arc::clone(&self.loader);
        let s = run_interruptible(py, move |cancel| loader.shard(cancel))?.map_err(to_py)?;
        Ok((s.start, s.len, s.batches, s.served, s.dropped, s.padded))
    }

    /// `"memory"` or `"stream"`.
    #[getter]
    fn mode(&self) -> &'static str {
        self.loader.options().mode.name()
    }

    /// Starts epoch `epoch` at batch `first_batch`, with `samples` already yielded.
    #[pyo3(signature = (epoch, first_batch=0, samples=0))]
    fn epoch(
        &self,
        py: Python<'_>,
        epoch: u64,
        first_batch: u64,
        samples: u64,
    ) -> PyResult<PyEpoch> {
        // Starting may count every chunk (several ranks, or a resume in stream mode): let
        // Ctrl-C stop it.
        let loader = Arc::clone(&self.loader);
        let pipeline =
            run_interruptible(py, move |cancel| loader.start(epoch, first_batch, cancel))?
                .map_err(to_py)?;
        {
            let mut shared = lock(&self.shared);
            shared.progress = Progress {
                epoch,
                batches: first_batch,
                samples,
            };
            shared.finished = false;
        }
        Ok(PyEpoch {
            pipeline: Some(pipeline),
            pid: std::process::id(),
            shared: Arc::clone(&self.shared),
            stats: Arc::clone(self.loader.stats_handle()),
            superseded: false,
        })
    }

    /// `(epoch, batches, samples, finished)`: where the consumer is.
    fn progress(&self) -> (u64, u64, u64, bool) {
        let s = lock(&self.shared);
        (
            s.progress.epoch,
            s.progress.batches,
            s.progress.samples,
            s.finished,
        )
    }

    /// The data's fingerprint as a dict.
    fn fingerprint<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let f = self.loader.fingerprint();
        let d = PyDict::new(py);
        d.set_item("files", f.files)?;
        d.set_item("chunks", f.chunks)?;
        d.set_item("rows", f.rows)?;
        d.set_item("columns", f.columns)?;
        d.set_item("digest", f.digest)?;
        Ok(d)
    }

    /// The transforms with their (fitted) parameters: `[(name, {param: [values]})]`.
    fn transforms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        transforms_to_py(py, self.loader.transforms())
    }

    /// Replaces the transforms' parameters (from a state_dict).
    fn set_transforms(&mut self, transforms: &Bound<'_, PyList>) -> PyResult<()> {
        let list = transforms
            .iter()
            .map(|t| transform_from_py(&t))
            .collect::<PyResult<Vec<_>>>()?;
        // Only short-lived calls (len, num_samples) share the loader; running epochs hold
        // their own copy of the batch spec and keep the old parameters.
        let loader = Arc::get_mut(&mut self.loader).ok_or_else(|| {
            PyValueError::new_err("cannot change transforms while the loader is in use")
        })?;
        loader.set_transforms(list).map_err(to_py)
    }

    /// The statistics as a dict (times in seconds).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.loader.stats();
        let d = PyDict::new(py);
        d.set_item("rows_read", s.rows_read)?;
        d.set_item("bytes_read", s.bytes_read)?;
        d.set_item("read_time", s.read_time.as_secs_f64())?;
        d.set_item("parse_time", s.parse_time.as_secs_f64())?;
        d.set_item("gather_time", s.gather_time.as_secs_f64())?;
        d.set_item("wait_time", s.wait_time.as_secs_f64())?;
        d.set_item("batches", s.batches)?;
        d.set_item("samples", s.samples)?;
        d.set_item("samples_dropped", s.dropped)?;
        d.set_item("samples_padded", s.padded)?;
        d.set_item("windows", s.windows)?;
        d.set_item("rows_skipped", s.skipped_count)?;
        let skipped = PyList::empty(py);
        for row in &s.skipped {
            skipped.append((row.file.to_string(), row.line, row.reason.clone()))?;
        }
        d.set_item("skipped", skipped)?;
        Ok(d)
    }
}

/// The iterator of one epoch. Dropping or closing it stops and joins its threads.
#[pyclass(name = "_Epoch", module = "rusttorch_data._native", weakref)]
pub struct PyEpoch {
    pipeline: Option<Pipeline>,
    /// The process that started the epoch: after `os.fork()` the child has a copy of the
    /// pipeline but none of its threads, and a lock may have been held by one of them.
    pid: u32,
    shared: Arc<Mutex<Shared>>,
    stats: Arc<LoaderStats>,
    /// Closed because a newer `iter(loader)` started: the loader runs one epoch at a time,
    /// and a consumer still reading this one must hear of it rather than see its epoch end
    /// early as if complete.
    superseded: bool,
}

/// The error for a second thread advancing (or closing) an iterator while another thread is
/// inside `__next__`, instead of PyO3's bare "Already mutably borrowed".
fn busy_error() -> PyErr {
    PyRuntimeError::new_err(
        "this DataLoader iterator is in use by another thread: an iterator serves one \
         consumer at a time (hand its batches to other threads through a queue, e.g. \
         rusttorch_queue.Queue)",
    )
}

impl PyEpoch {
    /// True in a child process forked after the epoch started.
    fn forked(&self) -> bool {
        self.pid != std::process::id()
    }

    /// In a forked child, the pipeline is leaked instead of stopped: stopping would signal
    /// and join threads that do not exist here (a hang or a panic), and may wait on a lock
    /// that one of them held at fork time.
    fn forget_if_forked(&mut self) -> bool {
        if self.forked() {
            std::mem::forget(self.pipeline.take());
            return true;
        }
        false
    }

    fn stop(&mut self, py: Python<'_>) {
        if self.forget_if_forked() {
            return;
        }
        if let Some(mut pipeline) = self.pipeline.take() {
            // Joining may wait for a decode in progress; other Python threads run meanwhile.
            py.detach(move || pipeline.stop());
        }
    }

    /// `__next__`'s work, once this thread holds the iterator.
    fn next<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if self.forked() && self.pipeline.is_some() {
            self.forget_if_forked();
            return Err(PyRuntimeError::new_err(
                "this DataLoader iterator was created before os.fork(); its worker threads do \
                 not exist in this process: create a new one with iter(loader) in the child",
            ));
        }
        loop {
            let Some(pipeline) = self.pipeline.as_ref() else {
                if self.superseded {
                    return Err(PyRuntimeError::new_err(
                        "this DataLoader iterator was closed by a newer iter(loader) before \
                         its epoch ended: a DataLoader runs one epoch at a time, so finish \
                         (or close) one iterator before starting the next",
                    ));
                }
                return Ok(None);
            };
            // Wait without the GIL, in slices, running signal handlers in between.
            match py.detach(|| pipeline.next_timeout(WAIT_SLICE)) {
                Pop::Item(Ok(batch)) => return self.deliver(py, batch).map(Some),
                Pop::Item(Err(error)) | Pop::Failed(error) => {
                    self.stop(py);
                    return Err(to_py(error));
                }
                Pop::Finished => {
                    self.stop(py);
                    lock(&self.shared).finished = true;
                    return Ok(None);
                }
                Pop::Pending => {
                    if let Err(signal) = py.check_signals() {
                        self.stop(py);
                        return Err(signal);
                    }
                }
            }
        }
    }

    fn deliver<'py>(&mut self, py: Python<'py>, batch: Batch) -> PyResult<Bound<'py, PyAny>> {
        let rows = batch.rows;
        let features = tensor_to_torch(py, batch.features)?;
        let out = match batch.labels {
            Some(labels) => PyTuple::new(py, [features, tensor_to_torch(py, labels)?])?.into_any(),
            None => features,
        };
        self.stats.add_batch(rows);
        {
            let mut shared = lock(&self.shared);
            shared.progress.batches = batch.index + 1;
            shared.progress.samples += rows as u64;
        }
        Ok(out)
    }
}

#[pymethods]
impl PyEpoch {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(slf: &Bound<'py, Self>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let py = slf.py();
        slf.try_borrow_mut().map_err(|_| busy_error())?.next(py)
    }

    /// Stops the epoch early and joins its threads. `superseded=True` (from a newer
    /// `iter(loader)`) makes a later `next()` raise instead of ending the epoch quietly.
    #[pyo3(signature = (superseded=false))]
    fn close(slf: &Bound<'_, Self>, superseded: bool) -> PyResult<()> {
        let mut this = slf.try_borrow_mut().map_err(|_| busy_error())?;
        // Once every batch was delivered the consumer has the whole epoch, whether or not
        // it has asked for the end yet: ending quietly is right then.
        let unfinished = this
            .pipeline
            .as_ref()
            .is_some_and(|p| !this.forked() && lock(&this.shared).progress.batches < p.batches);
        if superseded && unfinished {
            this.superseded = true;
        }
        this.stop(slf.py());
        Ok(())
    }

    /// Batches built and waiting for the consumer.
    #[getter]
    fn buffered(&self) -> usize {
        if self.forked() {
            return 0;
        }
        self.pipeline.as_ref().map_or(0, Pipeline::buffered)
    }

    /// Batches in the epoch (`None` when not known: stream mode, one rank).
    #[getter]
    fn batches(&self) -> Option<u64> {
        self.pipeline
            .as_ref()
            .map(|p| p.batches)
            .filter(|&b| b != u64::MAX)
    }
}

impl Drop for PyEpoch {
    fn drop(&mut self) {
        if self.forget_if_forked() {
            return;
        }
        if let Some(mut pipeline) = self.pipeline.take() {
            Python::attach(|py| py.detach(move || pipeline.stop()));
        }
    }
}

/// Adds the loader's classes to the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyLoader>()?;
    m.add_class::<PyEpoch>()?;
    m.add_function(wrap_pyfunction!(tensor_source, m)?)?;
    Ok(())
}
