"""Property tests with hypothesis: random shapes and densities, empty rows and columns
(forced in some cases, not only by chance), duplicates, both index and value dtypes,
against torch dense and SciPy references.

Every random tensor comes from a ``torch.Generator`` seeded with a drawn seed, so a
failing example replays exactly from hypothesis' report.
"""

from __future__ import annotations

from dataclasses import dataclass

import hypothesis.strategies as st
import pytest
import torch
from _sparse_support import dense_reduce
from hypothesis import given, settings

import rusttorch_sparse as rs

SETTINGS = settings(max_examples=60, deadline=None)


@dataclass
class Coo:
    row: torch.Tensor
    col: torch.Tensor
    val: torch.Tensor
    shape: tuple[int, int]
    empty_rows: list[int]
    empty_cols: list[int]

    @property
    def dtype(self) -> torch.dtype:
        return self.val.dtype


def _pick(allowed: list[int], n: int, g: torch.Generator) -> torch.Tensor:
    """``n`` draws from ``allowed`` (with repeats)."""
    return torch.tensor(allowed, dtype=torch.int64)[
        torch.randint(0, len(allowed), (n,), generator=g)
    ]


@st.composite
def coo(draw: st.DrawFn, dtype: torch.dtype | None = None) -> Coo:
    nrows = draw(st.integers(0, 12))
    ncols = draw(st.integers(0, 12))
    # Rows and columns kept empty on purpose (some examples), beyond those left by chance.
    empty_rows = sorted(draw(st.sets(st.integers(0, max(nrows - 1, 0)), max_size=nrows)))
    empty_cols = sorted(draw(st.sets(st.integers(0, max(ncols - 1, 0)), max_size=ncols)))
    rows = [r for r in range(nrows) if r not in empty_rows]
    cols = [c for c in range(ncols) if c not in empty_cols]
    nnz = 0 if not rows or not cols else draw(st.integers(0, 3 * nrows * ncols))
    index_dtype = draw(st.sampled_from([torch.int32, torch.int64]))
    dtype = dtype or draw(st.sampled_from([torch.float32, torch.float64]))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**63 - 1)))
    row = _pick(rows, nnz, g) if nnz else torch.zeros(0, dtype=torch.int64)
    col = _pick(cols, nnz, g) if nnz else torch.zeros(0, dtype=torch.int64)
    if nnz and draw(st.booleans()):
        # Duplicates for certain: repeat a prefix of the entries.
        k = draw(st.integers(1, nnz))
        row, col = torch.cat([row, row[:k]]), torch.cat([col, col[:k]])
    val = torch.randn(row.shape[0], generator=g, dtype=torch.float64).to(dtype)
    return Coo(
        row.to(index_dtype),
        col.to(index_dtype),
        val,
        (nrows, ncols),
        [r for r in empty_rows if r < nrows],
        [c for c in empty_cols if c < ncols],
    )


def dense(m: Coo) -> torch.Tensor:
    return torch.zeros(m.shape, dtype=torch.float64).index_put_(
        (m.row.long(), m.col.long()), m.val.double(), accumulate=True
    )


def tolerance(dtype: torch.dtype) -> dict[str, float]:
    return {"rtol": 1e-4, "atol": 1e-4} if dtype == torch.float32 else {}


@SETTINGS
@given(coo(), st.booleans())
def test_from_coo_and_conversions_match_dense(m: Coo, sum_duplicates: bool) -> None:
    a = rs.CsrMatrix.from_coo(m.row, m.col, m.val, m.shape, sum_duplicates=sum_duplicates)
    want = dense(m)
    close = {"rtol": 1e-5, "atol": 1e-5}
    torch.testing.assert_close(a.to_dense().double(), want, **close)
    torch.testing.assert_close(a.to_csc().to_dense().double(), want, **close)
    torch.testing.assert_close(a.transpose().to_dense().double(), want.t(), **close)
    torch.testing.assert_close(a.to_coo().to_csr().to_dense().double(), want, **close)
    rs.CsrMatrix(a.crow, a.col, a.values, a.shape, sorted=sum_duplicates)
    counts = a.crow[1:] - a.crow[:-1]
    assert (counts[m.empty_rows] == 0).all()
    assert not torch.isin(a.col, torch.tensor(m.empty_cols, dtype=a.col.dtype)).any()
    if not sum_duplicates:
        assert a.nnz == m.row.shape[0]


@SETTINGS
@given(
    coo(),
    st.integers(1, 20),
    st.sampled_from(["sum", "mean", "max", "min"]),
    st.integers(0, 2**63 - 1),
)
def test_spmm_matches_torch(m: Coo, d: int, reduce: str, seed: int) -> None:
    a = rs.CsrMatrix.from_coo(m.row, m.col, m.val, m.shape, sum_duplicates=False)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m.shape[1], d, dtype=m.dtype, generator=g)
    got = rs.spmm(a, x, reduce)
    torch.testing.assert_close(got, dense_reduce(a, x, reduce), **tolerance(m.dtype))
    assert (got[m.empty_rows] == 0).all()  # empty rows give 0 for every reduction
    if reduce == "sum":
        torch.testing.assert_close(got.double(), dense(m) @ x.double(), **tolerance(m.dtype))


@SETTINGS
@given(coo(), st.integers(1, 9), st.integers(0, 2**63 - 1))
def test_spmm_sum_matches_scipy(m: Coo, d: int, seed: int) -> None:
    sp = pytest.importorskip("scipy.sparse")
    # SciPy sums the duplicates of a COO matrix just as A @ X does.
    ref = sp.coo_matrix((m.val.numpy(), (m.row.numpy(), m.col.numpy())), shape=m.shape).tocsr()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m.shape[1], d, dtype=m.dtype, generator=g)
    want = torch.from_numpy(ref @ x.numpy()).reshape(m.shape[0], d)
    for sum_duplicates in (True, False):
        a = rs.CsrMatrix.from_coo(m.row, m.col, m.val, m.shape, sum_duplicates=sum_duplicates)
        torch.testing.assert_close(rs.spmm(a, x), want.to(m.dtype), **tolerance(m.dtype))
    torch.testing.assert_close(
        rs.spmm(rs.CsrMatrix.from_scipy(ref), x), want.to(m.dtype), **tolerance(m.dtype)
    )


@SETTINGS
@given(coo(torch.float64), coo(torch.float64), st.booleans())
def test_spgemm_matches_scipy(m1: Coo, m2: Coo, sort_indices: bool) -> None:
    pytest.importorskip("scipy.sparse")
    a = rs.CsrMatrix.from_coo(m1.row, m1.col, m1.val, m1.shape)
    # Chain the shapes: B gets A's column count as its row count.
    nb = m1.shape[1]
    keep = m2.row.numel() if nb else 0
    b = rs.CsrMatrix.from_coo(
        m2.row[:keep] % max(nb, 1), m2.col[:keep], m2.val[:keep], (nb, m2.shape[1])
    )
    c = rs.spgemm(a, b, sort_indices=sort_indices)
    ref = a.to_scipy() @ b.to_scipy()
    assert c.shape == ref.shape
    torch.testing.assert_close(c.to_dense(), torch.from_numpy(ref.toarray()).reshape(c.shape))
    # The same stored pattern as SciPy's, row by row (SciPy keeps explicit zeros too).
    ref = ref.tocsr()
    ref.sort_indices()
    assert c.crow.tolist() == ref.indptr.tolist()
    cols = [sorted(c.col[c.crow[r] : c.crow[r + 1]].tolist()) for r in range(c.shape[0])]
    assert cols == [
        ref.indices[ref.indptr[r] : ref.indptr[r + 1]].tolist() for r in range(c.shape[0])
    ]
    if sort_indices:
        assert c.col.tolist() == ref.indices.tolist()
        torch.testing.assert_close(c.values, torch.from_numpy(ref.data))


@SETTINGS
@given(coo(torch.float64), st.integers(1, 9), st.integers(0, 2**63 - 1))
def test_sddmm_softmax_attention_match_dense(m: Coo, d: int, seed: int) -> None:
    a = rs.CsrMatrix.from_coo(m.row, m.col, m.val, m.shape)
    shape = m.shape
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(shape[0], d, dtype=torch.float64, generator=g)
    k = torch.randn(shape[1], d, dtype=torch.float64, generator=g)
    v = torch.randn(shape[1], 3, dtype=torch.float64, generator=g)
    # Stored positions (an entry whose duplicates summed to 0 is still stored).
    mask = torch.zeros(shape, dtype=torch.bool).index_put_(
        (a.to_coo().row.long(), a.col.long()), torch.tensor(True)
    )
    assert not mask[m.empty_rows].any() and not mask[:, m.empty_cols].any()
    s = q @ k.t()
    torch.testing.assert_close(rs.sddmm(a, q, k).to_dense(), torch.where(mask, s, 0.0))
    masked = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(masked, -1).nan_to_num(0.0)
    torch.testing.assert_close(rs.sparse_softmax(rs.sddmm(a, q, k)).to_dense(), p)
    out = rs.sparse_attention(q, k, v, a, scale=1.0)
    torch.testing.assert_close(out, p @ v)
    assert (out[m.empty_rows] == 0).all()


@SETTINGS
@given(coo(torch.float64), st.booleans(), st.integers(0, 2**63 - 1))
def test_gradients_through_from_coo_reach_every_duplicate(
    m: Coo, sum_duplicates: bool, seed: int
) -> None:
    # d/dval sum(A * W) = W[row, col] for every input entry, duplicates included.
    w = torch.randn(m.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    val = m.val.clone().requires_grad_(True)
    a = rs.CooMatrix(m.row, m.col, val, m.shape).to_csr(sum_duplicates)
    (a.to_dense() * w).sum().backward()
    assert val.grad is not None
    torch.testing.assert_close(val.grad, w[m.row.long(), m.col.long()])
