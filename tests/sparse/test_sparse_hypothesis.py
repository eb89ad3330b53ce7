"""Property tests with hypothesis: random shapes and densities, empty rows and columns,
duplicates, both index and value dtypes, against torch dense and SciPy references."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import torch
from _sparse_support import dense_reduce
from hypothesis import given, settings

import rusttorch_sparse as rs

SETTINGS = settings(max_examples=60, deadline=None)


@st.composite
def coo(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[int, int]]:
    nrows = draw(st.integers(0, 12))
    ncols = draw(st.integers(0, 12))
    nnz = 0 if nrows == 0 or ncols == 0 else draw(st.integers(0, 3 * nrows * ncols))
    index_dtype = draw(st.sampled_from([torch.int32, torch.int64]))
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    row = torch.randint(0, max(nrows, 1), (nnz,), generator=g).to(index_dtype)
    col = torch.randint(0, max(ncols, 1), (nnz,), generator=g).to(index_dtype)
    val = torch.randn(nnz, generator=g, dtype=torch.float64).to(dtype)
    return row, col, val, (nrows, ncols)


def dense(
    row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    return torch.zeros(shape, dtype=torch.float64).index_put_(
        (row.long(), col.long()), val.double(), accumulate=True
    )


@SETTINGS
@given(coo(), st.booleans())
def test_from_coo_and_conversions_match_dense(m: tuple, sum_duplicates: bool) -> None:  # type: ignore[type-arg]
    row, col, val, shape = m
    a = rs.CsrMatrix.from_coo(row, col, val, shape, sum_duplicates=sum_duplicates)
    want = dense(row, col, val, shape)
    torch.testing.assert_close(a.to_dense().double(), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.to_csc().to_dense().double(), want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.transpose().to_dense().double(), want.t(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.to_coo().to_csr().to_dense().double(), want, rtol=1e-5, atol=1e-5)
    rs.CsrMatrix(a.crow, a.col, a.values, a.shape, sorted=sum_duplicates)


@SETTINGS
@given(coo(), st.integers(1, 20), st.sampled_from(["sum", "mean", "max", "min"]))
def test_spmm_matches_torch(m: tuple, d: int, reduce: str) -> None:  # type: ignore[type-arg]
    row, col, val, shape = m
    a = rs.CsrMatrix.from_coo(row, col, val, shape, sum_duplicates=False)
    x = torch.randn(shape[1], d, dtype=val.dtype)
    tol = {"rtol": 1e-4, "atol": 1e-4} if val.dtype == torch.float32 else {}
    torch.testing.assert_close(rs.spmm(a, x, reduce), dense_reduce(a, x, reduce), **tol)


@SETTINGS
@given(coo(), coo())
def test_spgemm_matches_scipy(m1: tuple, m2: tuple) -> None:  # type: ignore[type-arg]
    sp = pytest.importorskip("scipy.sparse")
    r1, c1, v1, s1 = m1
    r2, c2, v2, s2 = m2
    a = rs.CsrMatrix.from_coo(r1, c1, v1.double(), s1)
    # Chain the shapes: B gets A's column count as its row count.
    nb = s1[1]
    b_rows = r2 % nb if nb and r2.numel() else r2[:0]
    b = rs.CsrMatrix.from_coo(
        b_rows, c2[: b_rows.numel()], v2[: b_rows.numel()].double(), (nb, s2[1])
    )
    c = rs.spgemm(a, b)
    ref = (a.to_scipy() @ b.to_scipy()).toarray()
    torch.testing.assert_close(c.to_dense(), torch.from_numpy(ref).reshape(c.shape))
    assert isinstance(sp.csr_matrix(ref), sp.csr_matrix)


@SETTINGS
@given(coo(), st.integers(1, 9))
def test_sddmm_softmax_attention_match_dense(m: tuple, d: int) -> None:  # type: ignore[type-arg]
    row, col, val, shape = m
    a = rs.CsrMatrix.from_coo(row, col, val.double(), shape)
    q = torch.randn(shape[0], d, dtype=torch.float64)
    k = torch.randn(shape[1], d, dtype=torch.float64)
    v = torch.randn(shape[1], 3, dtype=torch.float64)
    # Stored positions (an entry whose duplicates summed to 0 is still stored).
    mask = torch.zeros(shape, dtype=torch.bool).index_put_(
        (a.to_coo().row.long(), a.col.long()), torch.tensor(True)
    )
    s = q @ k.t()
    torch.testing.assert_close(rs.sddmm(a, q, k).to_dense(), torch.where(mask, s, 0.0))
    masked = s.masked_fill(~mask, float("-inf"))
    p = torch.softmax(masked, -1).nan_to_num(0.0)
    torch.testing.assert_close(rs.sparse_softmax(rs.sddmm(a, q, k)).to_dense(), p)
    torch.testing.assert_close(rs.sparse_attention(q, k, v, a, scale=1.0), p @ v)
