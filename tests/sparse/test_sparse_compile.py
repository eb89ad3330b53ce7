"""torch.compile(fullgraph=True) traces through the rusttorch_sparse custom ops, forward
and backward."""

from __future__ import annotations

import torch
from _sparse_support import random_csr

import rusttorch_sparse as rs


def test_ops_are_registered_under_their_own_namespace() -> None:
    for name in ["spmm", "sddmm", "softmax", "sparse_attention", "transpose"]:
        assert hasattr(torch.ops.rusttorch_sparse, name)


def test_opcheck() -> None:
    a = random_csr(6, 5, 12, seed=1)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    args = (a.crow, a.col, a.values, x, 6, 5, "sum")
    torch.library.opcheck(torch.ops.rusttorch_sparse.spmm.default, args)
    q = torch.randn(6, 4, dtype=torch.float64, requires_grad=True)
    k = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    torch.library.opcheck(
        torch.ops.rusttorch_sparse.sddmm.default, (a.crow, a.col, q, k, 6, 5, 0.5)
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
