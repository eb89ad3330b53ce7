//! `rusttorch_queue.Batcher`: many callers' requests, one `fn(batch)` call per batch.
//!
//! Callers push requests onto a [`BoundedQueue`]; one Rust worker thread takes them in
//! batches ([`next_batch`]), borrows and stacks their tensors, calls `fn` with the GIL,
//! splits the output and resolves each request exactly once. The worker holds its Python
//! thread state for its whole life and releases the GIL whenever it waits.
//!
//! With `timeout_ms`, a request's deadline holds while it is queued, even while the worker
//! is busy inside `fn`: a blocked caller gives up at its deadline, and the expiry thread
//! (see [`Expiry`]) fails a Future at its deadline. Either claims the request first (see
//! `claim.rs`), and the worker skips a request it could not claim.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use super::batch_io::{Borrowed, Grouped, borrow, group, split_output, stack_batch};
use super::errors::full;
use super::request::{Completion, Deferred, Request, Start, Structure, new_future};
use super::wait::wait_released;
use crate::claim::Claim;
use crate::expiry::{Expiry, Watched};
use crate::{
    BatchPolicy, BatchStats, BoundedQueue, Oneshot, PushTimeoutError, TryPushError, next_batch,
};

/// What the caller's threads and the worker share.
struct Shared {
    queue: BoundedQueue<Request>,
    policy: BatchPolicy,
    timeout: Option<Duration>,
    /// The settings as given, for the properties and repr.
    max_wait_ms: f64,
    timeout_ms: Option<f64>,
    func: Py<PyAny>,
    stats: Mutex<BatchStats>,
    /// Set by the worker as its last act.
    finished: Oneshot<()>,
    /// Set in a child process after `fork()`, where the worker thread does not exist.
    forked: AtomicBool,
    /// With a timeout: the deadlines of queued Futures, enforced by the expiry thread.
    expiry: Option<Expiry<Expiring>>,
}

/// A queued Future with a deadline, as the expiry thread needs it. (Dropped without the
/// GIL there when the worker claimed it first: pyo3 then defers the decref.)
struct Expiring {
    future: Py<PyAny>,
    enqueued_at: Instant,
}

/// A queued request with a deadline, as its blocked caller sees it.
struct Deadline {
    enqueued_at: Instant,
    at: Instant,
    claim: Arc<Claim>,
}

/// Every batcher alive, so that interpreter exit can drain and join their workers before
/// Python finalizes (a worker that touched Python after that would crash the process), and
/// so that a forked child can mark them unusable.
static LIVE: Mutex<Vec<Weak<Shared>>> = Mutex::new(Vec::new());

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Collects concurrent requests into batches for one function, on a worker thread.
#[pyclass(module = "rusttorch_queue", frozen, subclass)]
pub struct Batcher {
    shared: Arc<Shared>,
    worker: Mutex<Option<JoinHandle<()>>>,
    worker_id: ThreadId,
    /// The expiry thread, which also runs done-callbacks (of Futures it times out).
    expiry_id: Option<ThreadId>,
}

fn positive(name: &str, value: i64) -> PyResult<usize> {
    usize::try_from(value)
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be at least 1, got {value}")))
}

fn milliseconds(name: &str, value: f64) -> PyResult<Duration> {
    if value.is_nan() || value < 0.0 {
        return Err(PyValueError::new_err(format!(
            "{name} must be a non-negative number of milliseconds, got {value:?}"
        )));
    }
    Duration::try_from_secs_f64(value / 1e3)
        .map_err(|_| PyValueError::new_err(format!("{name}={value:?} is too large")))
}

impl Batcher {
    /// On the worker or the expiry thread: in `fn` or a done-callback, where waiting for
    /// the batcher would wait for the very thread that is running.
    fn on_worker_thread(&self) -> bool {
        let me = std::thread::current().id();
        me == self.worker_id || self.expiry_id == Some(me)
    }

    /// Queues `x` with `completion`; waits for room (GIL released, Ctrl-C honoured) when
    /// `block`, up to the request's deadline. A Future with a deadline is handed to the
    /// expiry thread; a blocked caller gets its deadline back, to enforce it itself.
    fn enqueue(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        completion: Completion,
        block: bool,
    ) -> PyResult<Option<Deadline>> {
        let future = match &completion {
            Completion::Future(future) => Some(future.clone_ref(py)),
            Completion::Waiter(_) => None,
        };
        let Some(deadline) = self.push(py, x, completion, block)? else {
            return Ok(None);
        };
        match (future, &self.shared.expiry) {
            (Some(future), Some(expiry)) => {
                expiry.watch(Watched {
                    deadline: deadline.at,
                    claim: deadline.claim,
                    item: Expiring {
                        future,
                        enqueued_at: deadline.enqueued_at,
                    },
                });
                Ok(None)
            }
            _ => Ok(Some(deadline)),
        }
    }

    /// Pushes the request; returns its deadline, if it has one.
    fn push(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        completion: Completion,
        block: bool,
    ) -> PyResult<Option<Deadline>> {
        if self.shared.forked.load(Ordering::Relaxed) {
            return Err(PyRuntimeError::new_err(
                "this Batcher was created before os.fork(); its worker thread does not exist in \
                 the child process, so create a new Batcher there",
            ));
        }
        let structure = Structure::of(x)?;
        let now = Instant::now();
        let deadline = self.shared.timeout.and_then(|t| now.checked_add(t));
        let claim = deadline.map(|_| Arc::new(Claim::new()));
        let queued = deadline.zip(claim.clone()).map(|(at, claim)| Deadline {
            enqueued_at: now,
            at,
            claim,
        });
        let request = Request::new(
            x.clone().unbind(),
            structure,
            completion,
            now,
            deadline,
            claim,
        );
        let request = match self.shared.queue.try_push(request) {
            Ok(()) => return Ok(queued),
            Err(TryPushError::Closed(request)) => {
                request.abandon();
                return Err(closed_error());
            }
            Err(TryPushError::Full(request)) => request,
        };
        // Waiting for room on the worker thread (from fn or a done-callback) would wait for
        // the worker itself.
        if !block || self.on_worker_thread() {
            request.abandon();
            return Err(full(
                py,
                format!(
                    "the batcher's queue is full (max_queue={})",
                    self.shared.queue.capacity()
                ),
            ));
        }
        let queue = &self.shared.queue;
        let waited = wait_released(py, deadline, request, |request, until| {
            match queue.push_deadline(request, until) {
                Ok(()) => ControlFlow::Break(Ok(())),
                Err(PushTimeoutError::Closed(request)) => ControlFlow::Break(Err(request)),
                Err(PushTimeoutError::Timeout(request)) => ControlFlow::Continue(request),
            }
        })?;
        match waited {
            Ok(Ok(())) => Ok(queued),
            Ok(Err(request)) => {
                request.abandon();
                Err(closed_error())
            }
            Err(request) => {
                request.abandon();
                Err(PyTimeoutError::new_err(format!(
                    "the batcher's queue stayed full (max_queue={}) for timeout_ms={:?}",
                    queue.capacity(),
                    self.shared.timeout_ms.unwrap_or_default()
                )))
            }
        }
    }
}

fn closed_error() -> PyErr {
    PyRuntimeError::new_err("cannot submit to a closed Batcher")
}

/// The error of a request still queued at its deadline, after waiting `waited`.
fn queued_too_long(shared: &Shared, waited: Duration) -> PyErr {
    PyTimeoutError::new_err(format!(
        "the request waited {:.1} ms in the batcher's queue, past its timeout_ms={:?}",
        waited.as_secs_f64() * 1e3,
        shared.timeout_ms.unwrap_or_default()
    ))
}

#[pymethods]
impl Batcher {
    #[new]
    #[pyo3(signature = (r#fn, max_batch_size = 32, max_wait_ms = 2.0, max_queue = 1024, timeout_ms = None))]
    fn new(
        r#fn: &Bound<'_, PyAny>,
        max_batch_size: i64,
        max_wait_ms: f64,
        max_queue: i64,
        timeout_ms: Option<f64>,
    ) -> PyResult<Self> {
        if !r#fn.is_callable() {
            return Err(PyTypeError::new_err(format!(
                "fn must be callable, got {}",
                r#fn.get_type().name()?
            )));
        }
        let max_batch_size = positive("max_batch_size", max_batch_size)?;
        let max_queue = positive("max_queue", max_queue)?;
        let max_wait = milliseconds("max_wait_ms", max_wait_ms)?;
        let timeout = match timeout_ms {
            None => None,
            Some(ms) => {
                let timeout = milliseconds("timeout_ms", ms)?;
                // A request alone in the queue waits max_wait for company; a shorter
                // timeout would fail every such request.
                if timeout <= max_wait {
                    return Err(PyValueError::new_err(format!(
                        "timeout_ms ({ms:?}) must be greater than max_wait_ms ({max_wait_ms:?}): a \
                         request alone in the queue waits max_wait_ms for others to batch with"
                    )));
                }
                Some(timeout)
            }
        };
        let shared = Arc::new(Shared {
            queue: BoundedQueue::new(max_queue)?,
            policy: BatchPolicy::new(max_batch_size, max_wait)?,
            timeout,
            max_wait_ms,
            timeout_ms,
            func: r#fn.clone().unbind(),
            stats: Mutex::new(BatchStats::new()),
            finished: Oneshot::new(),
            forked: AtomicBool::new(false),
            expiry: timeout.map(|_| Expiry::new()),
        });
        let expiry = match shared.expiry {
            Some(_) => {
                let expiry_shared = Arc::clone(&shared);
                let spawned = std::thread::Builder::new()
                    .name("rusttorch-batcher-expiry".to_owned())
                    .spawn(move || expiry_main(&expiry_shared));
                Some(spawned.map_err(|e| {
                    PyRuntimeError::new_err(format!(
                        "could not start the batcher's expiry thread: {e}"
                    ))
                })?)
            }
            None => None,
        };
        let expiry_id = expiry.as_ref().map(|e| e.thread().id());
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("rusttorch-batcher".to_owned())
            .spawn(move || worker_main(worker_shared, expiry))
            .map_err(|e| {
                // The expiry thread (if any) went with the closure; it ends once stopped.
                if let Some(expiry) = &shared.expiry {
                    expiry.stop();
                }
                PyRuntimeError::new_err(format!("could not start the batcher's worker thread: {e}"))
            })?;
        {
            let mut live = lock(&LIVE);
            live.retain(|w| w.strong_count() > 0);
            live.push(Arc::downgrade(&shared));
        }
        Ok(Batcher {
            worker_id: worker.thread().id(),
            expiry_id,
            worker: Mutex::new(Some(worker)),
            shared,
        })
    }

    #[pyo3(signature = (x, *, block = true))]
    fn submit<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        block: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let future = new_future(py)?;
        self.enqueue(py, x, Completion::Future(future.clone().unbind()), block)?;
        Ok(future)
    }

    fn __call__(&self, py: Python<'_>, x: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        if self.on_worker_thread() {
            return Err(PyRuntimeError::new_err(
                "calling a Batcher from its own fn (or a done-callback) would wait forever for \
                 itself; use submit() there",
            ));
        }
        let slot = Arc::new(Oneshot::new());
        let deadline = self.enqueue(py, x, Completion::Waiter(Arc::clone(&slot)), true)?;
        let wait_for_result = |until: Option<Instant>| {
            wait_released(py, until, (), |(), until| {
                if slot.wait_deadline(until) {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            })
        };
        if let Some(deadline) = deadline {
            // Queued past its deadline, the request is this caller's to fail, even while the
            // worker is busy in fn; unless the worker claimed it first, by starting it.
            if wait_for_result(Some(deadline.at))?.is_err() && deadline.claim.take() {
                lock(&self.shared.stats).timed_out += 1;
                return Err(queued_too_long(
                    &self.shared,
                    deadline.enqueued_at.elapsed(),
                ));
            }
        }
        wait_for_result(None)?
            .map_err(|()| PyRuntimeError::new_err("waiting for a batcher result ended early"))?;
        slot.take().unwrap_or_else(|| {
            Err(PyRuntimeError::new_err(
                "the batcher resolved this request without a result (internal error)",
            ))
        })
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if self.shared.forked.load(Ordering::Relaxed) {
            return Ok(());
        }
        self.shared.queue.close();
        if self.on_worker_thread() {
            // Called from fn or a callback: the worker drains the queue after this batch,
            // and waiting for it here would wait for this very thread.
            return Ok(());
        }
        let finished = &self.shared.finished;
        wait_released(py, None, (), |(), until| {
            if finished.wait_deadline(until) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?
        .map_err(|()| PyRuntimeError::new_err("waiting for the batcher's worker ended early"))?;
        let handle = lock(&self.worker).take();
        if let Some(handle) = handle {
            // It has finished; joining only reaps the thread.
            py.detach(|| handle.join())
                .map_err(|_| PyRuntimeError::new_err("the batcher's worker thread panicked"))?;
        }
        Ok(())
    }

    fn __enter__(slf: Bound<'_, Self>) -> Bound<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_exc_info))]
    fn __exit__(&self, py: Python<'_>, _exc_info: &Bound<'_, PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    #[getter]
    fn closed(&self) -> bool {
        self.shared.queue.is_closed()
    }

    #[getter]
    fn max_batch_size(&self) -> usize {
        self.shared.policy.max_batch_size()
    }

    #[getter]
    fn max_wait_ms(&self) -> f64 {
        self.shared.max_wait_ms
    }

    #[getter]
    fn max_queue(&self) -> usize {
        self.shared.queue.capacity()
    }

    #[getter]
    fn timeout_ms(&self) -> Option<f64> {
        self.shared.timeout_ms
    }

    #[getter]
    fn stats(&self) -> BatcherStats {
        BatcherStats::from(&*lock(&self.shared.stats))
    }

    fn reset_stats(&self) {
        *lock(&self.shared.stats) = BatchStats::new();
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let func = self
            .shared
            .func
            .bind(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        format!(
            "Batcher({func}, max_batch_size={}, max_wait_ms={:?}, max_queue={}, timeout_ms={}{})",
            self.max_batch_size(),
            self.max_wait_ms(),
            self.max_queue(),
            self.timeout_ms()
                .map_or_else(|| "None".to_owned(), |t| format!("{t:?}")),
            if self.closed() { ", closed" } else { "" }
        )
    }
}

impl Drop for Batcher {
    /// A batcher dropped without `close()` stops taking requests; the worker finishes
    /// what is queued and exits on its own (waiting for it here could deadlock, since the
    /// last reference may go away on any thread, holding the GIL).
    fn drop(&mut self) {
        if !self.shared.forked.load(Ordering::Relaxed) {
            self.shared.queue.close();
        }
    }
}

fn worker_main(shared: Arc<Shared>, expiry: Option<JoinHandle<()>>) {
    let finished = Arc::clone(&shared);
    let ran = Python::try_attach(move |py| {
        let mut batch = Vec::with_capacity(shared.policy.max_batch_size());
        let mut deferred = Deferred::default();
        while py
            .detach(|| {
                deferred.deliver();
                next_batch(&shared.queue, &shared.policy, &mut batch)
            })
            .is_ok()
        {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_batch(py, &shared, &mut batch, &mut deferred);
            }));
            // After a panic (a bug), the requests still in `batch` fail through
            // `Request::drop`; the worker carries on.
            drop(outcome);
            batch.clear();
        }
        deferred.deliver();
        // Drop our reference (and maybe `fn`) while attached.
        drop(shared);
    });
    if ran.is_none() {
        // The interpreter is shutting down: nothing can be run or resolved any more.
        finished.queue.close();
    }
    // Every request is resolved: the expiry thread has nothing left to do. Joined before
    // `finished` is set, so that it too is gone before the interpreter finalizes.
    if let Some(expiry) = &finished.expiry {
        expiry.stop();
    }
    if let Some(expiry) = expiry {
        let _ = expiry.join();
    }
    let _ = finished.finished.set(());
}

/// The expiry thread: fails each queued Future at its deadline (see [`Expiry`]).
fn expiry_main(shared: &Shared) {
    let Some(expiry) = &shared.expiry else {
        return;
    };
    expiry.run(|due| {
        // Claimed without the GIL, so that only requests this thread resolves need it.
        let won: Vec<Watched<Expiring>> = due.into_iter().filter(|w| w.claim.take()).collect();
        if won.is_empty() {
            return;
        }
        // Not attached only while the interpreter finalizes, after every waiter is gone.
        let _ = Python::try_attach(|py| {
            let mut expired = Vec::with_capacity(won.len());
            let mut cancelled = 0u64;
            for Watched { item, .. } in won {
                let future = item.future.into_bound(py);
                let running = future
                    .call_method0(intern!(py, "set_running_or_notify_cancel"))
                    .and_then(|r| r.is_truthy())
                    .unwrap_or(false);
                if running {
                    expired.push((future, item.enqueued_at));
                } else {
                    cancelled += 1;
                }
            }
            {
                let mut stats = lock(&shared.stats);
                stats.timed_out += expired.len() as u64;
                stats.cancelled += cancelled;
            }
            for (future, enqueued_at) in expired {
                let err = queued_too_long(shared, enqueued_at.elapsed()).into_value(py);
                // Fails only for a Future resolved by someone else, who answered it.
                drop(future.call_method1(intern!(py, "set_exception"), (err,)));
            }
        });
    });
}

/// Runs one batch and resolves every request in it. The statistics are updated first, so
/// that a caller holding a result sees its batch counted.
fn run_batch(py: Python<'_>, shared: &Shared, batch: &mut Vec<Request>, deferred: &mut Deferred) {
    let taken_at = Instant::now();
    // The queue wait of the requests taken into this batch; those cancelled, expired or
    // timed out never were, and their waits (up to a deadline) would swamp the percentiles.
    let mut arrivals: Vec<Instant> = Vec::with_capacity(batch.len());
    let (mut timed_out, mut cancelled, mut rejected) = (0u64, 0u64, 0u64);
    let mut refused: Vec<(Request, PyErr)> = Vec::new();
    let mut borrowed = Vec::with_capacity(batch.len());
    for mut request in batch.drain(..) {
        match request.start(py) {
            Start::Run => {}
            Start::Cancelled => {
                cancelled += 1;
                continue;
            }
            // Resolved (and counted) by whoever enforced its deadline.
            Start::Expired => continue,
        }
        if request.deadline.is_some_and(|d| taken_at > d) {
            timed_out += 1;
            let waited = taken_at.saturating_duration_since(request.enqueued_at);
            refused.push((request, queued_too_long(shared, waited)));
            continue;
        }
        arrivals.push(request.enqueued_at);
        match borrow(py, &request) {
            Ok(leaves) => borrowed.push(Borrowed::new(request, leaves)),
            Err(err) => {
                rejected += 1;
                refused.push((request, err));
            }
        }
    }
    let Grouped {
        layout,
        accepted,
        rejected: mismatched,
    } = group(borrowed);
    rejected += mismatched.len() as u64;
    refused.extend(mismatched);
    let n = accepted.len();
    let outcome = match layout.as_ref() {
        Some(layout) if n > 0 => stack_batch(py, layout, &accepted)
            .and_then(|batch| shared.func.bind(py).call1((batch,)))
            .and_then(|output| split_output(&output, n)),
        _ => Ok(Vec::new()),
    };
    {
        let end = Instant::now();
        let mut stats = lock(&shared.stats);
        for arrived in arrivals {
            stats.record_dequeued(arrived, taken_at);
        }
        if n > 0 {
            stats.record_batch(n, end);
        }
        stats.timed_out += timed_out;
        stats.cancelled += cancelled;
        stats.rejected += rejected;
        if outcome.is_err() {
            stats.failed += n as u64;
        }
    }
    for (request, err) in refused {
        request.resolve(py, Err(err), deferred);
    }
    match outcome {
        Ok(results) => {
            for (a, result) in accepted.into_iter().zip(results) {
                a.request.resolve(py, Ok(result), deferred);
            }
        }
        Err(err) => {
            for a in accepted {
                a.request.resolve(py, Err(err.clone_ref(py)), deferred);
            }
        }
    }
}

/// Closes every live batcher and waits for its worker to drain and exit; registered with
/// `atexit`, which runs before the interpreter finalizes.
#[pyfunction]
pub(crate) fn _shutdown_all(py: Python<'_>) -> PyResult<()> {
    let live: Vec<Arc<Shared>> = lock(&LIVE).iter().filter_map(Weak::upgrade).collect();
    for shared in &live {
        if !shared.forked.load(Ordering::Relaxed) {
            shared.queue.close();
        }
    }
    for shared in live {
        if shared.forked.load(Ordering::Relaxed) {
            continue;
        }
        let finished = &shared.finished;
        wait_released(py, None, (), |(), until| {
            if finished.wait_deadline(until) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })?
        .ok();
    }
    Ok(())
}

/// Registered with `os.register_at_fork`: in the child, no worker thread exists.
#[pyfunction]
pub(crate) fn _after_fork_in_child() {
    // try_lock: a thread of the parent may have held the lock at fork time.
    if let Ok(live) = LIVE.try_lock() {
        for shared in live.iter().filter_map(Weak::upgrade) {
            shared.forked.store(true, Ordering::Relaxed);
        }
    }
}

/// What a batcher has done since it started (or since `reset_stats()`).
#[pyclass(module = "rusttorch_queue", frozen)]
pub struct BatcherStats {
    #[pyo3(get)]
    requests: u64,
    #[pyo3(get)]
    batches: u64,
    #[pyo3(get)]
    timed_out: u64,
    #[pyo3(get)]
    rejected: u64,
    #[pyo3(get)]
    failed: u64,
    #[pyo3(get)]
    cancelled: u64,
    #[pyo3(get)]
    mean_batch_size: Option<f64>,
    #[pyo3(get)]
    queue_wait_p50_ms: Option<f64>,
    #[pyo3(get)]
    queue_wait_p99_ms: Option<f64>,
    #[pyo3(get)]
    throughput: Option<f64>,
    histogram: Vec<(usize, u64)>,
}

impl From<&BatchStats> for BatcherStats {
    fn from(s: &BatchStats) -> Self {
        let ms = |q: f64| s.queue_wait().quantile(q).map(|d| d.as_secs_f64() * 1e3);
        BatcherStats {
            requests: s.requests,
            batches: s.batches,
            timed_out: s.timed_out,
            rejected: s.rejected,
            failed: s.failed,
            cancelled: s.cancelled,
            mean_batch_size: s.mean_batch_size(),
            queue_wait_p50_ms: ms(0.5),
            queue_wait_p99_ms: ms(0.99),
            throughput: s.throughput(),
            histogram: s.batch_size_histogram().collect(),
        }
    }
}

#[pymethods]
impl BatcherStats {
    #[getter]
    fn batch_size_histogram<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for &(size, count) in &self.histogram {
            d.set_item(size, count)?;
        }
        Ok(d)
    }

    fn as_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("requests", self.requests)?;
        d.set_item("batches", self.batches)?;
        d.set_item("timed_out", self.timed_out)?;
        d.set_item("rejected", self.rejected)?;
        d.set_item("failed", self.failed)?;
        d.set_item("cancelled", self.cancelled)?;
        d.set_item("mean_batch_size", self.mean_batch_size)?;
        d.set_item("batch_size_histogram", self.batch_size_histogram(py)?)?;
        d.set_item("queue_wait_p50_ms", self.queue_wait_p50_ms)?;
        d.set_item("queue_wait_p99_ms", self.queue_wait_p99_ms)?;
        d.set_item("throughput", self.throughput)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let opt = |v: Option<f64>, digits: usize| {
            v.map_or_else(|| "None".to_owned(), |v| format!("{v:.digits$}"))
        };
        format!(
            "BatcherStats(requests={}, batches={}, mean_batch_size={}, queue_wait_p50_ms={}, \
             queue_wait_p99_ms={}, throughput={}, timed_out={}, rejected={}, failed={}, \
             cancelled={})",
            self.requests,
            self.batches,
            opt(self.mean_batch_size, 2),
            opt(self.queue_wait_p50_ms, 3),
            opt(self.queue_wait_p99_ms, 3),
            opt(self.throughput, 1),
            self.timed_out,
            self.rejected,
            self.failed,
            self.cancelled
        )
    }
}
