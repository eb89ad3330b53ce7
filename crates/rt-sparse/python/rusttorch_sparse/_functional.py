"""The kernels as functions on matrices and tensors. Each calls the compiled kernel
directly (a few microseconds of overhead) and goes through the ``rusttorch_sparse::``
custom ops only when it must: while ``torch.compile`` traces, or when autograd has to
record the call."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any, cast

import torch
from torch import Tensor

from . import _native, _ops
from ._matrix import (
    CooMatrix,
    CscMatrix,
    CsrMatrix,
    _count,
    _index,
    _num_nodes,
    _same_index_dtype,
    _tracks_grad,
)

_is_compiling = torch.compiler.is_compiling
_REDUCES = ("sum", "mean", "max", "min")


def _needs_op(*tensors: Tensor | None) -> bool:
    if _is_compiling():
        return True
    if not torch.is_grad_enabled():
        return False
    return any(t is not None and t.requires_grad for t in tensors)


def _csr(a: Any) -> CsrMatrix:
    if isinstance(a, CsrMatrix):
        return a
    if isinstance(a, (CscMatrix, CooMatrix)):
        return a.to_csr()
    if isinstance(a, Tensor):
        return CsrMatrix.from_torch(a)
    raise TypeError(
        f"expected a CsrMatrix, CscMatrix, CooMatrix or torch tensor, got {type(a).__name__}"
    )


def _check_reduce(reduce: str) -> None:
    if reduce not in _REDUCES:
        raise ValueError(f"reduce must be one of {', '.join(map(repr, _REDUCES))}, got {reduce!r}")


def spmm(a: CsrMatrix, x: Tensor, reduce: str = "sum") -> Tensor:
    """``A @ X`` with a reduction over each row's entries: ``out[i] = reduce_j A[i, j] * X[j]``.

    ``reduce`` is ``"sum"`` (the matrix product), ``"mean"``, ``"max"`` or ``"min"`` (GNN
    aggregation). Rows without entries give 0 for every reduction, as in torch_scatter and
    PyG. NaN propagates. ``X`` may be 1-D (SpMV). Differentiable with respect to ``X`` and
    to ``a.values``.

    >>> import torch, rusttorch_sparse as rs
    >>> a = rs.CsrMatrix.from_coo(torch.tensor([0, 0, 1]), torch.tensor([0, 1, 1]), None, (3, 2))
    >>> rs.spmm(a, torch.tensor([[1.0], [3.0]]), reduce="mean").flatten().tolist()
    [2.0, 3.0, 0.0]
    """
    a = _csr(a)
    _check_reduce(reduce)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if _needs_op(a.values, x):
        return _ops.spmm_op(a.crow, a.col, a.values, x, a.shape[0], a.shape[1], reduce)  # type: ignore[no-any-return]
    return _native.spmm(a.crow, a.col, a.values.detach(), x.detach(), a.shape, reduce)


def _tensor_arg(op: str, name: str, value: Any) -> None:
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")


def _real_arg(op: str, name: str, value: Any) -> float:
    """``value`` as a float: Python and NumPy numbers and 0-d tensors, not bools or text."""
    problem = TypeError(f"{op}: {name} must be a real number, got {type(value).__name__}")
    if isinstance(value, (bool, str, bytes)):
        raise problem
    try:
        return float(value)
    except (TypeError, ValueError):
        raise problem from None


def spmv(a: CsrMatrix, x: Tensor) -> Tensor:
    """``A @ x`` for a vector ``x``."""
    _tensor_arg("spmv", "x", x)
    if x.dim() != 1:
        raise ValueError(f"spmv: x must be 1-dimensional, got shape {tuple(x.shape)}")
    return spmm(a, x)


def sddmm(pattern: CsrMatrix, q: Tensor, k: Tensor, scale: float = 1.0) -> CsrMatrix:
    """The values of ``scale * Q @ K^T`` at ``pattern``'s stored positions, as a matrix with
    that pattern; the dense product is never formed. Differentiable in ``q`` and ``k``."""
    p = _csr(pattern)
    _tensor_arg("sddmm", "q", q)
    _tensor_arg("sddmm", "k", k)
    scale = _real_arg("sddmm", "scale", scale)
    if _needs_op(q, k):
        v = _ops.sddmm_op(p.crow, p.col, q, k, p.shape[0], p.shape[1], float(scale))
    else:
        v = _native.sddmm(p.crow, p.col, q.detach(), k.detach(), p.shape, float(scale))
    return CsrMatrix._trusted(p.crow, p.col, v, p.shape)


def sparse_softmax(a: CsrMatrix) -> CsrMatrix:
    """Softmax over the stored entries of each row (absent entries count as -inf); empty
    rows stay empty. Differentiable in ``a.values``."""
    a = _csr(a)
    if _needs_op(a.values):
        v = _ops.softmax_op(a.crow, a.col, a.values, a.shape[0], a.shape[1])
    else:
        v = _native.softmax(a.crow, a.col, a.values.detach(), a.shape)
    return CsrMatrix._trusted(a.crow, a.col, v, a.shape)


def spgemm(
    a: CsrMatrix,
    b: CsrMatrix,
    max_nnz: int = _native.DEFAULT_MAX_NNZ,
    *,
    sort_indices: bool = False,
) -> CsrMatrix:
    """``A @ B`` for two sparse matrices (Gustavson, two-phase, parallel over rows).

    ``ValueError`` before allocating when the product would hold more than ``max_nnz``
    entries. Columns within a row come in first-touched order, as SciPy and MKL return
    them; ``sort_indices=True`` sorts them (a sort per row, which can cost more than the
    product on power-law graphs). Not differentiable: ``RuntimeError`` when either
    matrix's values require grad (``.detach()`` them, or run under ``torch.no_grad()``)."""
    a, b = _csr(a), _csr(b)
    max_nnz = _count(max_nnz, "max_nnz")
    for name, m in (("A", a), ("B", b)):
        if _tracks_grad(m.values):
            raise RuntimeError(
                f"spgemm is not differentiable, but {name}.values requires grad; call "
                ".detach() on the matrix (or run under torch.no_grad()) to multiply "
                "without a gradient"
            )
    if a.index_dtype != b.index_dtype:
        a = CsrMatrix._trusted(a.crow.long(), a.col.long(), a.values, a.shape)
        b = CsrMatrix._trusted(b.crow.long(), b.col.long(), b.values, b.shape)
    crow, col, values = _native.spgemm(
        a.crow,
        a.col,
        a.values.detach(),
        a.shape,
        b.crow,
        b.col,
        b.values.detach(),
        b.shape,
        max_nnz,
        sort_indices,
    )
    return CsrMatrix._trusted(crow, col, values, (a.shape[0], b.shape[1]))


def sparse_attention(
    q: Tensor, k: Tensor, v: Tensor, pattern: CsrMatrix, scale: float | None = None
) -> Tensor:
    """``softmax(scale * Q K^T at pattern) @ V``, fused: scores exist one row at a time, never
    as an ``n x n`` matrix. ``q`` is ``[n, d]`` (or ``[..., n, d]``, looped over leading
    dimensions), ``k`` ``[m, d]``, ``v`` ``[m, dv]``; ``pattern`` is ``n x m`` (its values
    are ignored). ``scale`` defaults to ``1/sqrt(d)``. Rows without entries give 0.
    Differentiable in ``q``, ``k`` and ``v``."""
    p = _csr(pattern)
    for name, t in (("q", q), ("k", k), ("v", v)):
        _tensor_arg("sparse_attention", name, t)
    if scale is not None:
        scale = _real_arg("sparse_attention", "scale", scale)
    if scale is None:
        # d = 0 gives all-zero scores whatever the scale.
        scale = 1.0 / math.sqrt(q.shape[-1]) if q.shape[-1] > 0 else 1.0
    if q.dim() > 2:
        if k.dim() != q.dim() or v.dim() != q.dim():
            raise ValueError("q, k and v must have the same number of dimensions")
        lead = q.shape[:-2]
        if k.shape[:-2] != lead or v.shape[:-2] != lead:
            # Pairing the flattened batches would silently mix up differently shaped ones.
            raise ValueError(
                "sparse_attention: q, k and v must have the same leading (batch) dimensions, "
                f"got {list(lead)}, {list(k.shape[:-2])} and {list(v.shape[:-2])}"
            )
        if lead.numel() == 0:
            return _empty_batch_attention(q, k, v, p)
        qf, kf, vf = (t.reshape(-1, *t.shape[-2:]) for t in (q, k, v))
        outs = [
            sparse_attention(qi, ki, vi, p, scale) for qi, ki, vi in zip(qf, kf, vf, strict=True)
        ]
        return torch.stack(outs).reshape(*lead, p.shape[0], v.shape[-1])
    if _needs_op(q, k, v):
        out: Tensor = _ops.sparse_attention_op(
            p.crow, p.col, q, k, v, p.shape[0], p.shape[1], float(scale)
        )
        return out
    return _native.sparse_attention(
        p.crow, p.col, q.detach(), k.detach(), v.detach(), p.shape, float(scale)
    )


def _empty_batch_attention(q: Tensor, k: Tensor, v: Tensor, p: CsrMatrix) -> Tensor:
    """The ``[..., n, dv]`` result of a batch with no items, after the shape checks one
    item would get; tied to the inputs' graph (with zero gradients) when they require grad."""
    n, m = p.shape
    if q.shape[-2] != n or k.shape[-2] != m or v.shape[-2] != m or q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"sparse_attention: a {n} x {m} pattern needs q [..., {n}, d], k [..., {m}, d] and "
            f"v [..., {m}, dv], got {list(q.shape)}, {list(k.shape)} and {list(v.shape)}"
        )
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(
            f"sparse_attention: q, k and v must share a dtype, got {q.dtype}, {k.dtype} and "
            f"{v.dtype}"
        )
    out = v.new_zeros(*q.shape[:-2], n, v.shape[-1])
    if _needs_op(q, k, v):
        out = out + (q.sum() + k.sum() + v.sum()) * 0
    return out


def gather_scatter(
    x: Tensor, src: Tensor, dst: Tensor, reduce: str = "sum", num_nodes: int | None = None
) -> Tensor:
    """Message passing: ``out[n] = reduce over edges e with dst[e] == n of x[src[e]]``.

    ``num_nodes`` defaults to ``x.shape[0]``. Nodes without incoming edges get 0 for every
    reduction (torch_scatter/PyG semantics, not -inf/+inf); NaN propagates. Equal to
    ``torch.zeros(num_nodes, d).index_add_(0, dst, x[src])`` for ``"sum"`` and to
    ``scatter_reduce(..., include_self=False)`` for the others, without materializing
    ``x[src]``. Differentiable in ``x``.
    """
    _check_reduce(reduce)
    if not isinstance(x, Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    n = x.shape[0] if num_nodes is None else _num_nodes(num_nodes)
    if _needs_op(x):
        # Group the edges by destination (the CSR pattern of A[dst, src]) with the custom
        # op, which torch.compile traces (its fake kernel is exact: one stored entry per
        # edge), then the differentiable SpMM.
        if x.dim() != 2:
            raise ValueError(f"gather_scatter: x must be 2-dimensional, got {x.dim()}")
        s = _index(src, "src")
        d = _index(dst, "dst")
        s, d = _same_index_dtype(s, d)
        if _is_compiling():
            crow, col, _ = _ops.coo_to_csr_op(d, s, n, x.shape[0], False, "gather_scatter")
        else:
            crow, col, _ = _native.coo_to_csr_positions(
                d, s, (n, x.shape[0]), False, source="gather_scatter"
            )
        return _ops.spmm_op(crow, col, None, x, n, x.shape[0], reduce)  # type: ignore[no-any-return]
    return _native.gather_scatter(x.detach(), src, dst, reduce, n)


def _pattern(crow: Tensor, col: Tensor, n: int) -> CsrMatrix:
    return CsrMatrix._trusted(crow, col, torch.ones(col.shape[0], dtype=torch.float32), (n, n))


def sliding_window(n: int, window: int) -> CsrMatrix:
    """Attention pattern: query ``i`` sees keys ``j`` with ``|i - j| <= window // 2``."""
    n, window = _count(n, "n"), _count(window, "window")
    crow, col = _native.sliding_window(n, window)
    return _pattern(crow, col, n)


def longformer(n: int, window: int, global_tokens: int | Sequence[int] = ()) -> CsrMatrix:
    """Sliding window plus global tokens (an int ``g`` means tokens ``0..g``): global tokens
    see every key and every query sees them."""
    n, window = _count(n, "n"), _count(window, "window")
    is_count = (
        not isinstance(global_tokens, (Sequence, Tensor))
        and getattr(global_tokens, "ndim", 0) == 0  # NumPy integer scalars, not arrays
        and hasattr(global_tokens, "__index__")
    )
    if is_count:
        # Passed as a count, so that a huge one is refused before 0..g is listed.
        leading = _count(global_tokens, "global_tokens")
        crow, col = _native.longformer(n, window, [], num_leading=leading)
    else:
        # Not a count: a sequence (or tensor, or array) of token indices; the test above is
        # one mypy cannot narrow on.
        tokens = cast(Iterable[int], global_tokens)
        crow, col = _native.longformer(n, window, list(tokens))
    return _pattern(crow, col, n)


def bigbird(n: int, block: int, num_random: int, num_global: int, seed: int = 0) -> CsrMatrix:
    """BigBird block pattern: each block of ``block`` queries sees its own and neighbouring
    blocks, the first ``num_global`` blocks (which see everything) and ``num_random`` other
    blocks drawn from ``seed``; the same arguments always give the same pattern."""
    n, block = _count(n, "n"), _count(block, "block")
    num_random, num_global = _count(num_random, "num_random"), _count(num_global, "num_global")
    crow, col = _native.bigbird(n, block, num_random, num_global, _count(seed, "seed"))
    return _pattern(crow, col, n)
