//! Waiting with the GIL released, without deafening Python to Ctrl-C.
//!
//! Ctrl-C only sets a flag that the interpreter checks while it runs Python code, so a
//! thread parked in Rust would never see it. Every blocking call here waits in slices of at
//! most `SIGNAL_POLL_INTERVAL` (50 ms) and runs Python's signal handlers between them; a
//! handler that raises (`KeyboardInterrupt`) ends the wait with that exception. A slice that
//! ends early because the wait succeeded costs nothing extra, so the interval only bounds
//! how long Ctrl-C can take to land.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use pyo3::prelude::*;
use rt_view::python::SIGNAL_POLL_INTERVAL;

/// Runs `step(state, until)` with the GIL released until it breaks with a result, each
/// time with an `until` at most `SIGNAL_POLL_INTERVAL` away and never past `deadline`.
///
/// `step` gets the state back and forth so that a push can hand its item in and get it
/// back when its slice times out. Returns `Ok(Ok(result))` when `step` broke, `Ok(Err(state))`
/// when `deadline` passed first, and `Err` when a signal handler raised (the state is
/// dropped, with the GIL held).
pub(crate) fn wait_released<S, R, F>(
    py: Python<'_>,
    deadline: Option<Instant>,
    mut state: S,
    mut step: F,
) -> PyResult<Result<R, S>>
where
    S: Send,
    R: Send,
    F: FnMut(S, Instant) -> ControlFlow<R, S> + Send,
{
    loop {
        let now = Instant::now();
        let poll = now.checked_add(SIGNAL_POLL_INTERVAL).unwrap_or(now);
        let until = deadline.map_or(poll, |d| d.min(poll));
        match py.detach(|| step(state, until)) {
            ControlFlow::Break(result) => return Ok(Ok(result)),
            ControlFlow::Continue(back) => state = back,
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(Err(state));
        }
        py.check_signals()?;
    }
}

/// The deadline `timeout` seconds from now: `None` for no timeout or one too long to
/// represent (both wait forever). Negative or NaN timeouts are refused as `queue.Queue`
/// refuses them.
pub(crate) fn deadline_after(timeout: Option<f64>) -> PyResult<Option<Instant>> {
    let Some(seconds) = timeout else {
        return Ok(None);
    };
    if seconds.is_nan() || seconds < 0.0 {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "'timeout' must be a non-negative number",
        ));
    }
    Ok(Duration::try_from_secs_f64(seconds)
        .ok()
        .and_then(|d| Instant::now().checked_add(d)))
}
