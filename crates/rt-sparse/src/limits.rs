//! Explicit limits on memory that grows with a dimension rather than with the data, and
//! fallible allocation.
//!
//! A matrix's stored entries are bounded by the arrays the caller already holds, but a
//! shape is only two integers: `CsrMatrix([0, 0], [], [], (1, 2**40)).transpose()` would
//! need a pointer array of 2^40 + 1 entries although the matrix is empty. Every buffer
//! sized by a dimension (not by the entries) is checked against
//! [`dim_buffer_limit`] before it is allocated, and allocated with `try_reserve`, so that
//! an absurd or unlucky size is a [`SparseError`], never a capacity-overflow panic or an
//! allocation-failure abort.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Result, SparseError};

/// Default cap on the entries of a buffer sized by a dimension (pointer arrays such as
/// the row pointers of a COO -> CSR conversion or the column pointers of a transpose):
/// 2^31, enough for every dimension an int32 index can address (16 GiB of int64 pointers).
pub const DEFAULT_MAX_DIM_BUFFER: usize = 1 << 31;

static MAX_DIM_BUFFER: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_DIM_BUFFER);

/// The knob named in the error when the limit is hit.
const KNOB: &str = "set_dim_buffer_limit";

/// The current cap on the entries of a buffer sized by a dimension (process-wide).
pub fn dim_buffer_limit() -> usize {
    MAX_DIM_BUFFER.load(Ordering::Relaxed)
}

/// Sets the process-wide cap on the entries of a buffer sized by a dimension; it applies
/// to calls that start afterwards. Raise it for matrices with more than 2^31 - 1 rows or
/// columns (int64 indices); memory is still allocated fallibly above the cap.
pub fn set_dim_buffer_limit(entries: usize) {
    MAX_DIM_BUFFER.store(entries, Ordering::Relaxed);
}

/// `LimitExceeded` when a buffer of `entries` entries, sized by a dimension, would pass
/// the limit. `what` names the buffer and the dimension, e.g.
/// `"the row pointers of the CSR matrix (nrows + 1)"`.
pub(crate) fn check_dim_buffer(what: &'static str, entries: u128) -> Result<()> {
    check_against(what, entries, dim_buffer_limit())
}

fn check_against(what: &'static str, entries: u128, limit: usize) -> Result<()> {
    check_limit(what, entries, limit as u128, "entries", KNOB)
}

/// `LimitExceeded` when `requested` units of `what` pass `limit`; `knob` names what the
/// caller can change. The one place every explicit limit of the crate is enforced.
pub(crate) fn check_limit(
    what: &'static str,
    requested: u128,
    limit: u128,
    unit: &'static str,
    knob: &'static str,
) -> Result<()> {
    if requested > limit {
        return Err(SparseError::LimitExceeded {
            what,
            requested,
            limit,
            unit,
            knob,
        });
    }
    Ok(())
}

/// `dim + 1` entries (a pointer array over `dim`), checked against the limit.
pub(crate) fn check_pointer_buffer(what: &'static str, dim: usize) -> Result<usize> {
    let entries = dim as u128 + 1;
    check_dim_buffer(what, entries)?;
    usize::try_from(entries).map_err(|_| out_of_memory::<usize>(what, entries))
}

fn out_of_memory<T>(what: &'static str, entries: u128) -> SparseError {
    SparseError::OutOfMemory {
        what,
        bytes: entries.saturating_mul(std::mem::size_of::<T>() as u128),
    }
}

/// An empty vector with room for `n` entries, or `OutOfMemory` (instead of an abort) when
/// the allocator refuses.
pub(crate) fn try_with_capacity<T>(what: &'static str, n: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| out_of_memory::<T>(what, n as u128))?;
    Ok(v)
}

/// `n` copies of `value`, or `OutOfMemory` when the allocator refuses.
pub(crate) fn try_filled<T: Clone>(what: &'static str, n: usize, value: T) -> Result<Vec<T>> {
    let mut v = try_with_capacity(what, n)?;
    v.resize(n, value);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_names_the_buffer_and_the_knob() {
        let e = check_pointer_buffer("the row pointers (nrows + 1)", 1 << 40).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the row pointers (nrows + 1) would need 1099511627777 entries, over the limit of \
             2147483648; raise the limit (set_dim_buffer_limit) if this is intended"
        );
        assert_eq!(check_pointer_buffer("x", (1 << 31) - 1).unwrap(), 1 << 31);
        assert!(check_pointer_buffer("x", usize::MAX).is_err());
        // The process-wide value is left alone here: tests run in parallel threads.
        assert!(check_against("x", 11, 10).is_err());
        assert!(check_against("x", 10, 10).is_ok());
        assert_eq!(dim_buffer_limit(), DEFAULT_MAX_DIM_BUFFER);
    }

    #[test]
    fn refused_allocations_are_errors() {
        // More than the address space: refused by try_reserve, not a panic or an abort.
        let e = try_filled::<u64>("the test buffer", usize::MAX / 4, 0).unwrap_err();
        assert!(matches!(
            e,
            SparseError::OutOfMemory {
                what: "the test buffer",
                ..
            }
        ));
        assert!(e.to_string().starts_with("could not allocate"));
        assert_eq!(try_filled("x", 3, 7u8).unwrap(), vec![7, 7, 7]);
    }
}
