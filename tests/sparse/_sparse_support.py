"""Shared helpers for the rusttorch_sparse tests: random matrices and dense references."""

from __future__ import annotations

import torch
from torch import Tensor

import rusttorch_sparse as rs


def random_coo(
    nrows: int,
    ncols: int,
    nnz: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    index_dtype: torch.dtype = torch.int64,
) -> tuple[Tensor, Tensor, Tensor]:
    """Random coordinates (duplicates possible) and values."""
    g = torch.Generator().manual_seed(seed)
    if nrows == 0 or ncols == 0:
        nnz = 0
    row = torch.randint(0, max(nrows, 1), (nnz,), generator=g).to(index_dtype)
    col = torch.randint(0, max(ncols, 1), (nnz,), generator=g).to(index_dtype)
    val = (torch.rand(nnz, generator=g, dtype=torch.float64) * 2 - 1).to(dtype)
    return row, col, val


def random_csr(
    nrows: int,
    ncols: int,
    nnz: int,
    *,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    index_dtype: torch.dtype = torch.int64,
    sum_duplicates: bool = True,
) -> rs.CsrMatrix:
    row, col, val = random_coo(nrows, ncols, nnz, seed=seed, dtype=dtype, index_dtype=index_dtype)
    return rs.CsrMatrix.from_coo(row, col, val, (nrows, ncols), sum_duplicates=sum_duplicates)


def rows_of(a: rs.CsrMatrix) -> Tensor:
    """The row index of every stored entry, computed in torch (independent of the kernels)."""
    counts = (a.crow[1:] - a.crow[:-1]).long()
    return torch.repeat_interleave(torch.arange(a.shape[0]), counts)


def dense_reduce(a: rs.CsrMatrix, x: Tensor, reduce: str) -> Tensor:
    """``reduce_j A[i, j] * X[j]`` over stored entries via torch's scatter_reduce; empty
    rows give 0."""
    rows = rows_of(a)
    prod = a.values.unsqueeze(1) * x[a.col.long()]
    n, d = a.shape[0], x.shape[1]
    if reduce == "sum":
        return torch.zeros(n, d, dtype=x.dtype).index_add_(0, rows, prod)
    op = {"mean": "mean", "max": "amax", "min": "amin"}[reduce]
    idx = rows.unsqueeze(1).expand(-1, d)
    return torch.zeros(n, d, dtype=x.dtype).scatter_reduce_(0, idx, prod, op, include_self=False)
