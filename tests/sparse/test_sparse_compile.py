"""torch.compile(fullgraph=True) traces through the rusttorch_sparse custom ops, forward
and backward."""

from __future__ import annotations

import shutil

import pytest
import torch
from _sparse_support import random_csr

import rusttorch_sparse as rs


def test_ops_are_registered_under_their_own_namespace() -> None:
    for name in [
        "spmm",
        "sddmm",
        "softmax",
        "softmax_backward",
        "sparse_attention",
        "transpose",
        "expand_rows",
        "coo_to_csr",
    ]:
        assert hasattr(torch.ops.rusttorch_sparse, name)


def opcheck_cases(requires_grad: bool) -> list[tuple[str, tuple[object, ...]]]:
    """Arguments for every registered op; the float operands require grad if asked."""
    g = torch.Generator().manual_seed(1)
    a = random_csr(6, 5, 12, seed=1)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, dtype=torch.float64, generator=g).requires_grad_(requires_grad)

    x, q, k, kv, v = t(5, 3), t(6, 4), t(5, 4), t(5, 4), t(5, 3)
    values, y_grad = t(a.nnz), t(a.nnz)
    y = torch.softmax(torch.randn(a.nnz, dtype=torch.float64, generator=g), 0)
    p = (a.crow, a.col)
    row = torch.tensor([2, 0, 2, 1, 0, 2])
    col = torch.tensor([1, 3, 1, 0, 3, 4])
    return [
        ("spmm", (*p, values, x, 6, 5, "sum")),
        ("spmm", (*p, values, x, 6, 5, "max")),
        ("spmm", (*p, None, x, 6, 5, "mean")),
        ("sddmm", (*p, q, k, 6, 5, 0.5)),
        ("softmax", (*p, values, 6, 5)),
        ("softmax_backward", (*p, y, y_grad, 6, 5)),
        ("sparse_attention", (*p, q, kv, v, 6, 5, 0.5)),
        ("transpose", (*p, 6, 5)),
        ("expand_rows", (*p, 6, 5)),
        ("coo_to_csr", (row, col, 3, 5, False, "coo")),
        ("coo_to_csr", (row.int(), col.int(), 3, 5, False, "gather_scatter")),
    ]


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck_every_op(requires_grad: bool) -> None:
    for name, args in opcheck_cases(requires_grad):
        torch.library.opcheck(getattr(torch.ops.rusttorch_sparse, name).default, args)


def test_coo_to_csr_op_with_summed_duplicates_has_a_data_dependent_size() -> None:
    # The fake kernel cannot know how many entries survive the summing; opcheck's fake
    # and schema checks still hold with its dynamic size.
    row = torch.tensor([2, 0, 2, 1, 0, 2])
    col = torch.tensor([1, 3, 1, 0, 3, 4])
    crow, c, pos = torch.ops.rusttorch_sparse.coo_to_csr(row, col, 3, 5, True, "coo")
    assert c.tolist() == [3, 0, 1, 4] and crow.tolist() == [0, 1, 2, 4]
    assert pos.tolist() == [2, 0, 2, 1, 0, 3]
    torch.library.opcheck(
        torch.ops.rusttorch_sparse.coo_to_csr.default,
        (row, col, 3, 5, True, "coo"),
        test_utils=("test_schema", "test_faketensor"),
    )


def test_compile_fullgraph_forward_and_backward() -> None:
    torch._dynamo.reset()
    pattern = rs.sliding_window(32, 8)
    a = random_csr(32, 32, 100, seed=2, dtype=torch.float32)

    def layer(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        h = rs.spmm(a, x, "mean")
        att = rs.sparse_attention(q, h, h, pattern)
        scores = rs.sparse_softmax(rs.sddmm(a, att, h))
        return rs.spmm(scores, h).sum()

    compiled = torch.compile(layer, fullgraph=True, backend="aot_eager")
    x = torch.randn(32, 16, requires_grad=True)
    q = torch.randn(32, 16, requires_grad=True)
    out = compiled(x, q)
    out.backward()
    x2, q2 = x.detach().clone().requires_grad_(True), q.detach().clone().requires_grad_(True)
    ref = layer(x2, q2)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, x2.grad)
    torch.testing.assert_close(q.grad, q2.grad)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_gather_scatter_compiles_fullgraph_forward_and_backward(reduce: str) -> None:
    # The edges are grouped by destination with the coo_to_csr op (exact fake kernel: one
    # stored entry per edge), not with a call the tracer cannot see.
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(3)
    src = torch.randint(0, 20, (90,), generator=g)
    dst = torch.randint(0, 25, (90,), generator=g)

    def f(x: torch.Tensor) -> torch.Tensor:
        return rs.gather_scatter(x, src, dst, reduce, num_nodes=25).sin()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    x = torch.randn(20, 8, dtype=torch.float64, generator=g, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    grad = torch.randn(25, 8, dtype=torch.float64, generator=g)
    out = compiled(x)
    out.backward(grad)
    ref = f(x2)
    ref.backward(grad)
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, x2.grad)
    with torch.no_grad():  # the inference path traces too
        torch.testing.assert_close(compiled(x), ref)


@pytest.mark.parametrize("sum_duplicates", [False, True])
def test_from_coo_and_conversions_compile_fullgraph(sum_duplicates: bool) -> None:
    # Summing duplicates, the stored entries' count is data-dependent (an unbacked size).
    torch._dynamo.reset()
    g = torch.Generator().manual_seed(4)
    row = torch.randint(0, 6, (30,), generator=g)
    col = torch.randint(0, 5, (30,), generator=g)

    def f(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        a = rs.CsrMatrix.from_coo(row, col, v, (6, 5), sum_duplicates=sum_duplicates)
        return rs.spmm(a.T, rs.spmm(a, x)) + a.to_coo().to_dense().sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    v = torch.randn(30, dtype=torch.float64, generator=g, requires_grad=True)
    x = torch.randn(5, 3, dtype=torch.float64, generator=g)
    v2 = v.detach().clone().requires_grad_(True)
    out = compiled(v, x)
    out.sum().backward()
    ref = f(v2, x)
    ref.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(v.grad, v2.grad)


def _have_cxx() -> bool:
    return any(shutil.which(c) for c in ("c++", "g++", "clang++"))


@pytest.mark.skipif(not _have_cxx(), reason="inductor compiles C++ on CPU: no C++ compiler")
def test_compile_inductor_fullgraph_forward_and_backward() -> None:
    # About 8 s on a 2-core VM, nearly all of it inductor's own start-up (compiling
    # `x.sin().sum()` costs the same): one such test for the whole suite.
    torch._dynamo.reset()
    pattern = rs.sliding_window(16, 4)
    a = random_csr(16, 16, 50, seed=5, dtype=torch.float32)
    g = torch.Generator().manual_seed(6)
    src = torch.randint(0, 16, (40,), generator=g)
    dst = torch.randint(0, 16, (40,), generator=g)

    def layer(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        # Few torch ops around the custom ops: each fused group is a C++ kernel to build.
        h = torch.relu(rs.spmm(a, x, "mean"))
        h = rs.gather_scatter(h, src, dst, "max")
        att = rs.sparse_attention(q, h, h, pattern)
        return rs.sparse_softmax(rs.sddmm(a, att, h)).values.sum()

    compiled = torch.compile(layer, fullgraph=True, backend="inductor")
    x = torch.randn(16, 8, generator=g, requires_grad=True)
    q = torch.randn(16, 8, generator=g, requires_grad=True)
    x2, q2 = (t.detach().clone().requires_grad_(True) for t in (x, q))
    out = compiled(x, q)
    out.backward()
    ref = layer(x2, q2)
    ref.backward()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(x.grad, x2.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(q.grad, q2.grad, rtol=1e-4, atol=1e-5)
