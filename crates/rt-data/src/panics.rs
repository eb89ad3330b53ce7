//! Catching panics of decoding libraries quietly.
//!
//! arrow-ipc and parquet trust some offsets of a damaged file and panic on them; the readers
//! catch those panics and report a `Corrupt` error naming the file. The panic hook would still
//! print "thread '...' panicked at ..." (and a backtrace hint) to stderr first, noise beside a
//! clean Python exception. [`catch_quietly`] silences the hook for panics on the calling
//! thread while it runs; every other panic (a bug in this crate, on any thread) still goes to
//! the previous hook. Each Python extension links its own copy of std, so the hook installed
//! here only ever sees this extension's panics.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// How many [`catch_quietly`] calls are running on this thread.
    static QUIET_DEPTH: Cell<u32> = const { Cell::new(0) };
}

static INSTALL: Once = Once::new();

/// Wraps the current panic hook, once, in one that skips panics on quiet threads.
fn install_hook() {
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| {
            // `try_with`: a panic while the thread-locals are being torn down still reports.
            if QUIET_DEPTH.try_with(Cell::get).unwrap_or(0) == 0 {
                previous(info);
            }
        }));
    });
}

/// Restores the depth when the scope ends, also when the closure panics.
struct QuietScope;

impl QuietScope {
    fn enter() -> Self {
        QUIET_DEPTH.with(|d| d.set(d.get() + 1));
        QuietScope
    }
}

impl Drop for QuietScope {
    fn drop(&mut self) {
        QUIET_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

/// `std::panic::catch_unwind(f)`, without the panic hook's message for a panic on this thread
/// (a panic on another thread that `f` waits for, a rayon worker's, still prints).
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    install_hook();
    let _scope = QuietScope::enter();
    std::panic::catch_unwind(AssertUnwindSafe(f))
}

/// The text of a caught panic's payload (`panic!` with a message gives `&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catches_with_the_message_and_restores_the_depth() {
        let caught = catch_quietly(|| -> u32 { panic!("bad offset {}", 7) });
        let payload = caught.expect_err("the panic is caught");
        assert_eq!(panic_message(&*payload), "bad offset 7");
        assert_eq!(QUIET_DEPTH.with(Cell::get), 0);
        assert_eq!(catch_quietly(|| 5).ok(), Some(5));
        // Nested scopes unwind to the right depth.
        let outer = catch_quietly(|| {
            let inner = catch_quietly(|| panic!("inner"));
            assert!(inner.is_err());
            QUIET_DEPTH.with(Cell::get)
        });
        assert_eq!(outer.ok(), Some(1));
        assert_eq!(QUIET_DEPTH.with(Cell::get), 0);
    }
}
