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


# ---- gradients through the constructors and conversions ------------------------------


def coo_with_duplicates(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    row = torch.randint(0, 5, (30,), generator=g)
    col = torch.randint(0, 4, (30,), generator=g)
    row[1], col[1] = row[0], col[0]  # at least one duplicate
    return row, col, leaf(torch.randn(30, dtype=torch.float64, generator=g))


@pytest.mark.parametrize("sum_duplicates", [True, False])
@pytest.mark.parametrize("index_dtype", [torch.int32, torch.int64])
def test_gradients_flow_through_from_coo(sum_duplicates: bool, index_dtype: torch.dtype) -> None:
    row, col, v = coo_with_duplicates(10)
    row, col = row.to(index_dtype), col.to(index_dtype)
    x = leaf(torch.randn(4, 3, dtype=torch.float64))

    def f(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return rs.spmm(rs.CsrMatrix.from_coo(row, col, v, (5, 4), sum_duplicates), x)

    assert gradcheck(f, (v, x))
    # The same values as the kernel's own conversion (which runs without grad).
    with torch.no_grad():
        want = rs.CsrMatrix.from_coo(row, col, v, (5, 4), sum_duplicates)
    got = rs.CsrMatrix.from_coo(row, col, v, (5, 4), sum_duplicates)
    assert got.values.requires_grad and not want.values.requires_grad
    assert torch.equal(got.crow, want.crow) and torch.equal(got.col, want.col)
    torch.testing.assert_close(got.values, want.values)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max"])
def test_spmm_of_a_coo_matrix_is_differentiable_in_its_values(reduce: str) -> None:
    # CooMatrix -> CSR sums duplicates (sum_duplicates=True): each summed entry's gradient
    # goes back to every duplicate.
    row, col, v = coo_with_duplicates(11)
    x = leaf(torch.randn(4, 3, dtype=torch.float64))
    assert gradcheck(lambda v, x: rs.spmm(rs.CooMatrix(row, col, v, (5, 4)), x, reduce), (v, x))
    # Against dense torch: duplicates add up.
    v2 = leaf(v)
    dense = torch.zeros(5, 4, dtype=torch.float64).index_put((row, col), v2, accumulate=True)
    g = torch.randn(5, 3, dtype=torch.float64)
    if reduce == "sum":
        (dense @ x.detach()).backward(g)
        rs.spmm(rs.CooMatrix(row, col, v, (5, 4)), x.detach()).backward(g)
        torch.testing.assert_close(v.grad, v2.grad)


def test_gradients_flow_through_every_conversion() -> None:
    row, col, v = coo_with_duplicates(12)
    shape = (5, 4)
    conversions = {
        "coo.to_dense": lambda v: rs.CooMatrix(row, col, v, shape).to_dense(),
        "coo.to_csr.to_dense": lambda v: rs.CooMatrix(row, col, v, shape).to_csr().to_dense(),
        "coo.to_csc": lambda v: rs.CooMatrix(row, col, v, shape).to_csc().to_dense(),
        "coo.transpose": lambda v: rs.CooMatrix(row, col, v, shape).transpose().to_dense(),
        "csr.transpose": lambda v: rs.CsrMatrix.from_coo(row, col, v, shape).T.to_dense(),
        "csr.to_coo": lambda v: rs.CsrMatrix.from_coo(row, col, v, shape).to_coo().values,
        "csc.to_csr": lambda v: rs.CooMatrix(row, col, v, shape).to_csc().to_csr().values,
        "csc.transpose": lambda v: rs.CooMatrix(row, col, v, shape).to_csc().transpose().values,
        "from_torch(coo)": lambda v: rs.CsrMatrix.from_torch(
            torch.sparse_coo_tensor(torch.stack([row, col]), v, shape)
        ).to_dense(),
        "CooMatrix.from_torch(coo)": lambda v: rs.CooMatrix.from_torch(
            torch.sparse_coo_tensor(torch.stack([row, col]), v, shape)
        ).to_dense(),
        "from_torch(csr)": lambda v: rs.CsrMatrix.from_torch(
            rs.CsrMatrix.from_coo(row, col, v, shape).to_torch()
        ).to_dense(),
        "from_torch(csc)": lambda v: rs.CsrMatrix.from_torch(
            rs.CooMatrix(row, col, v, shape).to_csc().to_torch()
        ).to_dense(),
        "from_edge_index": lambda v: rs.CsrMatrix.from_edge_index(
            torch.stack([col, row % 4]), 4, v
        ).to_dense(),
    }
    for name, f in conversions.items():
        assert f(v).requires_grad, name
        assert gradcheck(f, (v,)), name


def test_dense_from_torch_keeps_the_gradient_at_its_nonzeros() -> None:
    d = leaf(torch.randn(5, 4, dtype=torch.float64))
    x = torch.randn(4, 3, dtype=torch.float64)
    # (gradcheck perturbs every element, so only where none is 0)
    assert gradcheck(lambda d: rs.spmm(rs.CsrMatrix.from_torch(d), x), (d,))
    d = d.detach().clone()
    d[1] = 0.0
    d[:, 2] = 0.0
    d = leaf(d)
    g = torch.randn(5, 3, dtype=torch.float64)
    rs.spmm(rs.CsrMatrix.from_torch(d), x).backward(g)
    # As torch's to_sparse: the gradient at the stored (nonzero) entries, 0 elsewhere.
    torch.testing.assert_close(d.grad, (g @ x.t()) * (d != 0))


def test_what_cannot_carry_a_gradient_refuses_instead_of_dropping_it() -> None:
    row, col, v = coo_with_duplicates(13)
    a = rs.CooMatrix(row, col, v, (5, 4))
    b = rs.CsrMatrix.from_coo(col, row, v.detach(), (4, 5))
    with pytest.raises(RuntimeError, match=r"spgemm is not differentiable, but A\.values"):
        rs.spgemm(a, b)
    with pytest.raises(RuntimeError, match=r"B\.values requires grad"):
        b @ a
    with pytest.raises(RuntimeError, match="SciPy cannot carry it"):
        a.to_scipy()
    # Explicitly without a gradient, both work.
    assert rs.spgemm(a.detach(), b).shape == (5, 5)
    with torch.no_grad():
        assert rs.spgemm(a, b).shape == (5, 5)
        assert a.to_csr().to_dense().grad_fn is None


def test_sparse_softmax_double_backward() -> None:
    # softmax_backward has its own autograd formula, so second derivatives work.
    a = random_csr(7, 5, 18, seed=14)
    v = leaf(a.values)
    assert torch.autograd.gradgradcheck(lambda v: rs.sparse_softmax(a.with_values(v)).values, (v,))
