"""Gradients through the torch.library ops, checked with torch.autograd.gradcheck in
float64 and against the same computation in dense torch."""

from __future__ import annotations

import pytest
import torch
from _sparse_support import random_csr
from torch.autograd import gradcheck

import rusttorch_sparse as rs


def leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().requires_grad_(True)


@pytest.mark.parametrize("reduce", ["sum", "mean"])
def test_spmm_gradcheck_x_and_values(reduce: str) -> None:
    a = random_csr(8, 6, 20, seed=1)
    values = leaf(a.values)
    x = leaf(torch.randn(6, 3, dtype=torch.float64))
    assert gradcheck(lambda v, x: rs.spmm(a.with_values(v), x, reduce), (values, x))
    xv = leaf(torch.randn(6, dtype=torch.float64))
    assert gradcheck(lambda v, x: rs.spmm(a.with_values(v), x, reduce), (values, xv))


@pytest.mark.parametrize("reduce", ["max", "min"])
def test_spmm_max_min_gradients_match_scatter_reduce(reduce: str) -> None:
    a = random_csr(8, 6, 25, seed=2, sum_duplicates=False)
    values = leaf(a.values)
    x = leaf(torch.randn(6, 3, dtype=torch.float64))
    assert gradcheck(lambda v, x: rs.spmm(a.with_values(v), x, reduce), (values, x))
    # Against torch's own scatter_reduce backward.
    rows = torch.repeat_interleave(torch.arange(8), (a.crow[1:] - a.crow[:-1]))
    v2, x2 = leaf(a.values), leaf(x)
    prod = v2[:, None] * x2[a.col]
    op = "amax" if reduce == "max" else "amin"
    ref = torch.zeros(8, 3, dtype=torch.float64).scatter_reduce(
        0, rows[:, None].expand(-1, 3), prod, op, include_self=False
    )
    g = torch.randn(8, 3, dtype=torch.float64)
    ref.backward(g)
    rs.spmm(a.with_values(values), x, reduce).backward(g)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(values.grad, v2.grad)


def test_unweighted_spmm_gradient() -> None:
    edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
    x = leaf(torch.randn(3, 4, dtype=torch.float64))
    assert gradcheck(lambda x: rs.gather_scatter(x, edge_index[0], edge_index[1], "mean"), (x,))


def test_sddmm_gradcheck() -> None:
    a = random_csr(7, 5, 15, seed=3)
    q = leaf(torch.randn(7, 4, dtype=torch.float64))
    k = leaf(torch.randn(5, 4, dtype=torch.float64))
    assert gradcheck(lambda q, k: rs.sddmm(a, q, k, scale=0.7).values, (q, k))


def test_sparse_softmax_gradcheck() -> None:
    a = random_csr(7, 5, 18, seed=4)
    v = leaf(a.values)
    assert gradcheck(lambda v: rs.sparse_softmax(a.with_values(v)).values, (v,))


def test_sparse_attention_gradcheck_and_dense_gradients() -> None:
    n, m, d, dv = 9, 7, 4, 3
    pattern = random_csr(n, m, 30, seed=5)
    q = leaf(torch.randn(n, d, dtype=torch.float64))
    k = leaf(torch.randn(m, d, dtype=torch.float64))
    v = leaf(torch.randn(m, dv, dtype=torch.float64))
    assert gradcheck(lambda q, k, v: rs.sparse_attention(q, k, v, pattern), (q, k, v))
    mask = pattern.to_dense() != 0
    q2, k2, v2 = leaf(q), leaf(k), leaf(v)
    s = (q2 @ k2.t() / d**0.5).masked_fill(~mask, float("-inf"))
    ref = torch.softmax(s, -1).nan_to_num(0.0) @ v2
    g = torch.randn(n, dv, dtype=torch.float64)
    ref.backward(g)
    rs.sparse_attention(q, k, v, pattern).backward(g)
    for got, want in [(q.grad, q2.grad), (k.grad, k2.grad), (v.grad, v2.grad)]:
        torch.testing.assert_close(got, want)


def test_no_graph_without_requires_grad() -> None:
    a = random_csr(4, 4, 6, seed=6)
    out = rs.spmm(a, torch.randn(4, 2, dtype=torch.float64))
    assert out.grad_fn is None
