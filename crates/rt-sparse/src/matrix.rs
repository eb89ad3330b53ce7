//! Owned, validated CSR, CSC and COO matrices for Rust users, generic over the index
//! (`i32`, `i64`) and value (`f32`, `f64`) types. Every constructor validates in O(nnz);
//! there is no unchecked constructor.

use crate::convert::{self, CsrParts};
use crate::error::{Result, check_len};
use crate::limits::{try_filled, try_with_capacity};
use crate::pattern::{CSC, CSR, CsrPattern, Order, check_coo};
use crate::scalar::{Index, Scalar};

/// A compressed-sparse-row matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct CsrMatrix<I, V> {
    nrows: usize,
    ncols: usize,
    crow: Vec<I>,
    col: Vec<I>,
    values: Vec<V>,
}

impl<I: Index, V: Scalar> CsrMatrix<I, V> {
    /// Validates and wraps the three arrays of an `nrows x ncols` CSR matrix.
    ///
    /// ```
    /// use rt_sparse::CsrMatrix;
    /// let a = CsrMatrix::try_new(2, 3, vec![0i64, 1, 3], vec![2, 0, 1], vec![1.0f32, 2.0, 3.0]).unwrap();
    /// assert_eq!(a.nnz(), 3);
    /// let bad = CsrMatrix::try_new(2, 3, vec![0i64, 1, 3], vec![2, 0, 3], vec![1.0f32, 2.0, 3.0]);
    /// assert_eq!(bad.unwrap_err().to_string(), "col[2] = 3 is out of range for 3 columns");
    /// ```
    pub fn try_new(
        nrows: usize,
        ncols: usize,
        crow: Vec<I>,
        col: Vec<I>,
        values: Vec<V>,
    ) -> Result<Self> {
        Self::try_new_ordered(nrows, ncols, crow, col, values, Order::Any)
    }

    /// As [`CsrMatrix::try_new`], optionally also requiring sorted, unique columns per row.
    pub fn try_new_ordered(
        nrows: usize,
        ncols: usize,
        crow: Vec<I>,
        col: Vec<I>,
        values: Vec<V>,
        order: Order,
    ) -> Result<Self> {
        CsrPattern::try_new_named(CSR, nrows, ncols, &crow, &col, order)?;
        check_len(
            "values length (one per stored entry)",
            col.len(),
            values.len(),
        )?;
        Ok(CsrMatrix {
            nrows,
            ncols,
            crow,
            col,
            values,
        })
    }

    fn from_parts(nrows: usize, ncols: usize, p: CsrParts<I, V>) -> Self {
        CsrMatrix {
            nrows,
            ncols,
            crow: p.crow,
            col: p.col,
            values: p.values,
        }
    }

    /// The validated pattern, for the kernels.
    pub fn pattern(&self) -> CsrPattern<'_, I> {
        // Validated at construction and immutable since; re-checking keeps this total. No
        // cancel token: under a cancelled ambient one this must still succeed (the kernel
        // that follows returns `Cancelled`).
        let never = crate::parallel::Cancel::default();
        match CsrPattern::validate(
            CSR,
            self.nrows,
            self.ncols,
            &self.crow,
            &self.col,
            Order::Any,
            &never,
        ) {
            Ok(p) => p,
            Err(_) => unreachable_pattern(),
        }
    }

    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.col.len()
    }

    /// Row pointers.
    pub fn crow(&self) -> &[I] {
        &self.crow
    }

    /// Column indices.
    pub fn col(&self) -> &[I] {
        &self.col
    }

    /// Values.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// The transpose, as a CSR matrix (columns sorted within rows).
    pub fn transpose(&self) -> Result<CsrMatrix<I, V>> {
        self.transpose_named("the row pointers of the transpose (ncols + 1)")
    }

    /// The transpose, naming its pointer array `what` in a limit error.
    fn transpose_named(&self, what: &'static str) -> Result<CsrMatrix<I, V>> {
        let (crow, col, perm) = convert::transpose_named(&self.pattern(), what)?;
        let mut values = try_with_capacity("the values of the transpose", perm.len())?;
        values.extend(perm.iter().map(|&p| {
            p.to_usize()
                .and_then(|p| self.values.get(p))
                .copied()
                .unwrap_or(V::ZERO)
        }));
        Ok(CsrMatrix {
            nrows: self.ncols,
            ncols: self.nrows,
            crow,
            col,
            values,
        })
    }

    /// The same matrix in CSC layout.
    pub fn to_csc(&self) -> Result<CscMatrix<I, V>> {
        let t = self.transpose_named("the column pointers of the CSC matrix (ncols + 1)")?;
        Ok(CscMatrix {
            nrows: self.nrows,
            ncols: self.ncols,
            ccol: t.crow,
            row: t.col,
            values: t.values,
        })
    }

    /// The same matrix in COO layout (row-major order).
    pub fn to_coo(&self) -> Result<CooMatrix<I, V>> {
        Ok(CooMatrix {
            nrows: self.nrows,
            ncols: self.ncols,
            row: convert::expand_rows(&self.pattern())?,
            col: self.col.clone(),
            values: self.values.clone(),
        })
    }

    /// The dense matrix, row-major; refused above `max_elements` elements.
    pub fn to_dense(&self, max_elements: usize) -> Result<Vec<V>> {
        let n = convert::check_dense_size(self.nrows, self.ncols, max_elements)?;
        let mut out = try_filled("the dense matrix", n, V::ZERO)?;
        convert::to_dense(&self.pattern(), &self.values, &mut out)?;
        Ok(out)
    }
}

#[cold]
fn unreachable_pattern() -> ! {
    // Only reachable if a validated, immutable matrix changed: a bug in this crate.
    panic!("rt-sparse: a validated matrix failed re-validation")
}

/// A compressed-sparse-column matrix: `ccol` has `ncols + 1` entries, `row` holds the row
/// index of each stored entry.
#[derive(Clone, Debug, PartialEq)]
pub struct CscMatrix<I, V> {
    nrows: usize,
    ncols: usize,
    ccol: Vec<I>,
    row: Vec<I>,
    values: Vec<V>,
}

impl<I: Index, V: Scalar> CscMatrix<I, V> {
    /// Validates and wraps the arrays of an `nrows x ncols` CSC matrix.
    pub fn try_new(
        nrows: usize,
        ncols: usize,
        ccol: Vec<I>,
        row: Vec<I>,
        values: Vec<V>,
    ) -> Result<Self> {
        CsrPattern::try_new_named(CSC, ncols, nrows, &ccol, &row, Order::Any)?;
        check_len(
            "values length (one per stored entry)",
            row.len(),
            values.len(),
        )?;
        Ok(CscMatrix {
            nrows,
            ncols,
            ccol,
            row,
            values,
        })
    }

    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.row.len()
    }

    /// Column pointers.
    pub fn ccol(&self) -> &[I] {
        &self.ccol
    }

    /// Row indices.
    pub fn row(&self) -> &[I] {
        &self.row
    }

    /// Values.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// The same matrix in CSR layout.
    pub fn to_csr(&self) -> Result<CsrMatrix<I, V>> {
        // A CSC matrix is the CSR matrix of its transpose.
        let t = CsrMatrix {
            nrows: self.ncols,
            ncols: self.nrows,
            crow: self.ccol.clone(),
            col: self.row.clone(),
            values: self.values.clone(),
        };
        t.transpose_named("the row pointers of the CSR matrix (nrows + 1)")
    }
}

/// A coordinate-format matrix: one `(row, col, value)` per stored entry, in any order,
/// duplicates allowed.
#[derive(Clone, Debug, PartialEq)]
pub struct CooMatrix<I, V> {
    nrows: usize,
    ncols: usize,
    row: Vec<I>,
    col: Vec<I>,
    values: Vec<V>,
}

impl<I: Index, V: Scalar> CooMatrix<I, V> {
    /// Validates and wraps the arrays of an `nrows x ncols` COO matrix.
    pub fn try_new(
        nrows: usize,
        ncols: usize,
        row: Vec<I>,
        col: Vec<I>,
        values: Vec<V>,
    ) -> Result<Self> {
        check_coo(nrows, ncols, &row, &col, Some(values.len()))?;
        Ok(CooMatrix {
            nrows,
            ncols,
            row,
            col,
            values,
        })
    }

    /// `(nrows, ncols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.nrows, self.ncols)
    }

    /// Stored entries.
    pub fn nnz(&self) -> usize {
        self.row.len()
    }

    /// Row indices.
    pub fn row(&self) -> &[I] {
        &self.row
    }

    /// Column indices.
    pub fn col(&self) -> &[I] {
        &self.col
    }

    /// Values.
    pub fn values(&self) -> &[V] {
        &self.values
    }

    /// The same matrix in CSR layout, sorted; with `sum_duplicates` equal positions add up.
    pub fn to_csr(&self, sum_duplicates: bool) -> Result<CsrMatrix<I, V>> {
        let parts = convert::coo_to_csr(
            self.nrows,
            self.ncols,
            &self.row,
            &self.col,
            Some(&self.values),
            sum_duplicates,
        )?;
        Ok(CsrMatrix::from_parts(self.nrows, self.ncols, parts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip() {
        let coo = CooMatrix::try_new(
            3,
            4,
            vec![2i32, 0, 2, 0],
            vec![1, 3, 1, 0],
            vec![1.0f64, 2.0, 3.0, 4.0],
        )
        .unwrap();
        let csr = coo.to_csr(true).unwrap();
        assert_eq!(csr.crow(), &[0, 2, 2, 3]);
        assert_eq!(csr.values(), &[4.0, 2.0, 4.0]);
        let csc = csr.to_csc().unwrap();
        assert_eq!(csc.ccol(), &[0, 1, 2, 2, 3]);
        assert_eq!(csc.to_csr().unwrap(), csr);
        assert_eq!(csr.transpose().unwrap().transpose().unwrap(), csr);
        let back = csr.to_coo().unwrap();
        assert_eq!(back.row(), &[0, 0, 2]);
        let dense = csr.to_dense(100).unwrap();
        assert_eq!(dense[3], 2.0);
        assert!(csr.to_dense(11).is_err());
        assert!(CscMatrix::try_new(3, 2, vec![0i64, 1, 1], vec![3], vec![1.0f32]).is_err());
        assert!(CooMatrix::try_new(3, 2, vec![0i64], vec![0, 1], vec![1.0f32]).is_err());
    }

    #[test]
    fn conversions_of_huge_shapes_are_errors_naming_the_dimension() {
        let big = 1usize << 40;
        let limited = |r: Result<()>| match r {
            Err(crate::SparseError::LimitExceeded { what, .. }) => what,
            other => panic!("expected LimitExceeded, got {other:?}"),
        };
        let wide = CsrMatrix::try_new(1, big, vec![0i64, 0], vec![], vec![0.0f32]).unwrap_err();
        assert!(wide.to_string().contains("values length"));
        let wide = CsrMatrix::try_new(1, big, vec![0i64, 1], vec![7], vec![1.0f32]).unwrap();
        assert_eq!(
            limited(wide.transpose().map(|_| ())),
            "the row pointers of the transpose (ncols + 1)"
        );
        assert_eq!(
            limited(wide.to_csc().map(|_| ())),
            "the column pointers of the CSC matrix (ncols + 1)"
        );
        assert_eq!(wide.to_coo().unwrap().nnz(), 1);
        let tall = CscMatrix::try_new(big, 1, vec![0i64, 1], vec![9], vec![1.0f64]).unwrap();
        assert_eq!(
            limited(tall.to_csr().map(|_| ())),
            "the row pointers of the CSR matrix (nrows + 1)"
        );
        let coo = CooMatrix::try_new(big, big, vec![3i64], vec![4], vec![1.0f32]).unwrap();
        assert_eq!(
            limited(coo.to_csr(true).map(|_| ())),
            "the row pointers of the CSR matrix (nrows + 1)"
        );
    }
}
