"""Constructors, properties and conversions between CSR, CSC, COO, torch and SciPy."""

from __future__ import annotations

import pytest
import torch
from _sparse_support import random_coo, random_csr

import rusttorch_sparse as rs


def dense_of_coo(
    row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    return torch.zeros(shape, dtype=val.dtype).index_put_(
        (row.long(), col.long()), val, accumulate=True
    )


@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_from_coo_sorts_and_sums_duplicates(index_dtype: torch.dtype, dtype: torch.dtype) -> None:
    row, col, val = random_coo(7, 5, 40, seed=1, dtype=dtype, index_dtype=index_dtype)
    a = rs.CsrMatrix.from_coo(row, col, val, (7, 5))
    assert a.shape == (7, 5) and a.dtype == dtype and a.index_dtype == index_dtype
    torch.testing.assert_close(a.to_dense(), dense_of_coo(row, col, val, (7, 5)))
    ref = torch.sparse_coo_tensor(torch.stack([row.long(), col.long()]), val, (7, 5)).coalesce()
    assert a.nnz == ref._nnz()
    for r in range(7):
        cols = a.col[a.crow[r] : a.crow[r + 1]]
        assert torch.all(cols[1:] > cols[:-1])
    kept = rs.CsrMatrix.from_coo(row, col, val, (7, 5), sum_duplicates=False)
    assert kept.nnz == 40
    torch.testing.assert_close(kept.to_dense(), a.to_dense())


def test_constructor_keeps_the_given_tensors() -> None:
    crow, col, val = (
        torch.tensor([0, 2, 2, 3]),
        torch.tensor([1, 0, 2]),
        torch.tensor([1.0, 2.0, 3.0]),
    )
    a = rs.CsrMatrix(crow, col, val, (3, 3))
    assert a.crow is crow and a.col is col and a.values is val
    assert a.nnz == 3
    assert "nnz=3" in repr(a)
    ones = rs.CsrMatrix(crow, col, shape=(3, 3))
    assert ones.values.tolist() == [1.0, 1.0, 1.0]
    assert rs.CsrMatrix([0, 1], [0], [2.0], (1, 1)).to_dense().tolist() == [[2.0]]


def test_from_edge_index_aggregates_sources_into_targets() -> None:
    edge_index = torch.tensor([[0, 1, 2, 2, 2], [1, 2, 0, 1, 1]])
    a = rs.CsrMatrix.from_edge_index(edge_index, num_nodes=3)
    assert a.nnz == 5  # the parallel edge 2 -> 1 stays two entries
    dense = a.to_dense()
    assert dense[1].tolist() == [1.0, 0.0, 2.0]
    w = rs.CsrMatrix.from_edge_index(edge_index, 3, values=torch.arange(1.0, 6.0))
    assert w.to_dense()[1].tolist() == [1.0, 0.0, 9.0]


@pytest.mark.parametrize("layout", ["csr", "csc", "coo", "dense"])
def test_from_torch_and_back(layout: str) -> None:
    a = random_csr(6, 9, 20, seed=2)
    dense = a.to_dense()
    t = {
        "csr": dense.to_sparse_csr(),
        "csc": dense.to_sparse_csc(),
        "coo": dense.to_sparse_coo(),
        "dense": dense,
    }[layout]
    b = rs.CsrMatrix.from_torch(t)
    torch.testing.assert_close(b.to_dense(), dense)
    torch.testing.assert_close(b.to_torch().to_dense(), dense)
    torch.testing.assert_close(rs.CscMatrix.from_torch(t).to_dense(), dense)
    torch.testing.assert_close(rs.CooMatrix.from_torch(t).to_dense(), dense)


def test_layout_round_trips() -> None:
    a = random_csr(8, 5, 25, seed=3)
    dense = a.to_dense()
    csc = a.to_csc()
    assert isinstance(csc, rs.CscMatrix) and csc.nnz == a.nnz
    torch.testing.assert_close(csc.to_dense(), dense)
    torch.testing.assert_close(csc.to_torch().to_dense(), dense)
    torch.testing.assert_close(csc.to_csr().to_dense(), dense)
    coo = a.to_coo()
    torch.testing.assert_close(coo.to_dense(), dense)
    torch.testing.assert_close(coo.to_torch().to_dense(), dense)
    torch.testing.assert_close(coo.to_csc().to_dense(), dense)
    torch.testing.assert_close(a.transpose().to_dense(), dense.t())
    torch.testing.assert_close(a.T.T.to_dense(), dense)
    torch.testing.assert_close(csc.transpose().to_dense(), dense.t())
    torch.testing.assert_close(coo.transpose().to_dense(), dense.t())
    direct = rs.CscMatrix(csc.ccol, csc.row, csc.values, csc.shape)
    torch.testing.assert_close(direct.to_dense(), dense)
    assert rs.CooMatrix(coo.row, coo.col, coo.values, coo.shape).nnz == a.nnz


def test_empty_matrices() -> None:
    for shape in [(0, 0), (0, 4), (4, 0), (3, 3)]:
        a = rs.CsrMatrix(
            torch.zeros(shape[0] + 1, dtype=torch.int64),
            torch.zeros(0, dtype=torch.int64),
            torch.zeros(0),
            shape,
        )
        assert a.nnz == 0
        assert a.to_dense().shape == shape
        assert a.transpose().shape == (shape[1], shape[0])
        assert (a @ torch.ones(shape[1], 2)).shape == (shape[0], 2)


def test_scipy_round_trips() -> None:
    scipy_sparse = pytest.importorskip("scipy.sparse")
    a = random_csr(7, 4, 15, seed=4)
    m = a.to_scipy()
    assert isinstance(m, scipy_sparse.csr_matrix)
    torch.testing.assert_close(torch.from_numpy(m.toarray()), a.to_dense())
    for fmt in ["csr", "csc", "coo", "lil"]:
        b = rs.CsrMatrix.from_scipy(m.asformat(fmt))
        torch.testing.assert_close(b.to_dense(), a.to_dense())
    torch.testing.assert_close(torch.from_numpy(a.to_csc().to_scipy().toarray()), a.to_dense())
    torch.testing.assert_close(torch.from_numpy(a.to_coo().to_scipy().toarray()), a.to_dense())
    torch.testing.assert_close(rs.CscMatrix.from_scipy(m.tocsc()).to_dense(), a.to_dense())
    torch.testing.assert_close(rs.CooMatrix.from_scipy(m).to_dense(), a.to_dense())


def test_with_values_and_sorted_check() -> None:
    a = rs.CsrMatrix(
        torch.tensor([0, 2]), torch.tensor([0, 2]), torch.tensor([1.0, 2.0]), (1, 3), sorted=True
    )
    b = a.with_values(torch.tensor([5.0, 6.0]))
    assert b.to_dense().tolist() == [[5.0, 0.0, 6.0]]
    with pytest.raises(ValueError, match="nnz = 2"):
        a.with_values(torch.tensor([1.0]))
