"""The torch.library face of rusttorch_sparse: the kernels registered as
``rusttorch_sparse::<name>`` custom ops with fake (meta) kernels, so that
``torch.compile(fullgraph=True)`` traces through them, and with autograd formulas for SpMM
(with respect to the dense operand and the values), SDDMM, sparse softmax and sparse
attention. Backward formulas are built from these same ops, so they trace too.

The namespace is ``rusttorch_sparse`` (not ``rusttorch``) so it can never clash with
rt-simd's ``rusttorch::<name>`` ops. A matrix is passed as ``crow, col, nrows, ncols``
(plus ``values``); the kernels re-validate the pattern in O(nnz) on every call, so a
tensor changed after construction can never make them read out of bounds.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from . import _native

_REDUCES = ("sum", "mean", "max", "min")


def _one_device(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """The fake kernels also serve real calls that mix devices (a meta tensor beside CPU
    ones sends the dispatcher to the Meta key), and their result would be an uninitialized
    CPU tensor; refuse such a call as the kernels do."""
    tensors = [
        t
        for a in (*args, *kwargs.values())
        for t in (a if isinstance(a, (list, tuple)) else (a,))
        if isinstance(t, Tensor)
    ]
    devices = sorted({t.device.type for t in tensors})
    if len(devices) > 1:
        raise ValueError(
            f"{name}: every tensor must be on the same device (the kernels "
            f"run on the CPU), got {', '.join(devices)}"
        )


def _fake_for(op: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``op.register_fake``, with the device check of `_one_device` in front."""

    def register(fake: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fake)
        def checked(*args: Any, **kwargs: Any) -> Any:
            # "namespace::name"; CustomOpDef has no public attribute for it.
            _one_device(getattr(op, "_qualname", str(op)), args, kwargs)
            return fake(*args, **kwargs)

        op.register_fake(checked)
        return fake

    return register


# ---- pattern helpers ---------------------------------------------------------------------


@torch.library.custom_op("rusttorch_sparse::transpose", mutates_args=())
def transpose_op(
    crow: Tensor, col: Tensor, nrows: int, ncols: int
) -> tuple[Tensor, Tensor, Tensor]:
    crow_t, col_t, perm = _native.transpose(crow, col, (nrows, ncols))
    return crow_t, col_t, perm


@_fake_for(transpose_op)
def _(crow: Tensor, col: Tensor, nrows: int, ncols: int) -> tuple[Tensor, Tensor, Tensor]:
    return crow.new_empty(ncols + 1), col.new_empty(col.shape), col.new_empty(col.shape)


@torch.library.custom_op("rusttorch_sparse::expand_rows", mutates_args=())
def expand_rows_op(crow: Tensor, col: Tensor, nrows: int, ncols: int) -> Tensor:
    return _native.expand_rows(crow, col, (nrows, ncols))


@_fake_for(expand_rows_op)
def _(crow: Tensor, col: Tensor, nrows: int, ncols: int) -> Tensor:
    return col.new_empty(col.shape)


@torch.library.custom_op("rusttorch_sparse::coo_to_csr", mutates_args=())
def coo_to_csr_op(
    row: Tensor, col: Tensor, nrows: int, ncols: int, sum_duplicates: bool, source: str
) -> tuple[Tensor, Tensor, Tensor]:
    """``(crow, col, pos)``: the sorted CSR pattern of COO input and, for each input entry,
    the stored entry it lands in (the values are ``zeros(nnz).index_add(0, pos, values)``)."""
    crow, c, pos = _native.coo_to_csr_positions(
        row, col, (nrows, ncols), sum_duplicates, source=source
    )
    return crow, c, pos


@_fake_for(coo_to_csr_op)
def _(
    row: Tensor, col: Tensor, nrows: int, ncols: int, sum_duplicates: bool, source: str
) -> tuple[Tensor, Tensor, Tensor]:
    # Without summing, every entry is stored: the size is exact. Summing duplicates makes
    # it depend on the data.
    nnz = torch.library.get_ctx().new_dynamic_size() if sum_duplicates else row.shape[0]
    return row.new_empty(nrows + 1), row.new_empty(nnz), row.new_empty(row.shape)


def _transposed(crow: Tensor, col: Tensor, nrows: int, ncols: int) -> tuple[Tensor, Tensor, Tensor]:
    return transpose_op(crow, col, nrows, ncols)  # type: ignore[no-any-return]


def _row_counts(crow: Tensor) -> Tensor:
    return (crow[1:] - crow[:-1]).clamp_min(1)


# ---- SpMM --------------------------------------------------------------------------------


@torch.library.custom_op("rusttorch_sparse::spmm", mutates_args=())
def spmm_op(
    crow: Tensor, col: Tensor, values: Tensor | None, x: Tensor, nrows: int, ncols: int, reduce: str
) -> Tensor:
    return _native.spmm(crow, col, values, x, (nrows, ncols), reduce)


@_fake_for(spmm_op)
def _(
    crow: Tensor, col: Tensor, values: Tensor | None, x: Tensor, nrows: int, ncols: int, reduce: str
) -> Tensor:
    if x.dim() == 1:
        return x.new_empty(nrows)
    return x.new_empty(nrows, x.shape[1])


def _spmm_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    crow, col, values, x, nrows, ncols, reduce = inputs
    ctx.save_for_backward(crow, col, values, x, output)
    ctx.dims = (nrows, ncols, reduce)


def _spmm_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    crow, col, values, x, out = ctx.saved_tensors
    nrows, ncols, reduce = ctx.dims
    need_values = values is not None and ctx.needs_input_grad[2]
    need_x = ctx.needs_input_grad[3]
    vector = x.dim() == 1
    g = grad.unsqueeze(1) if vector else grad
    xm = x.unsqueeze(1) if vector else x
    grad_values = grad_x = None
    if reduce in ("sum", "mean"):
        if reduce == "mean":
            g = g / _row_counts(crow).unsqueeze(1).to(g.dtype)
        if need_x:
            crow_t, col_t, perm = _transposed(crow, col, nrows, ncols)
            vals_t = None if values is None else values[perm]
            grad_x = spmm_op(crow_t, col_t, vals_t, g.contiguous(), ncols, nrows, "sum")
        if need_values:
            grad_values = sddmm_op(crow, col, g.contiguous(), xm.contiguous(), nrows, ncols, 1.0)
    else:
        # max/min: the gradient goes to the entries that attain the extremum, shared evenly
        # between ties (as torch.scatter_reduce's amax/amin backward does).
        rows = expand_rows_op(crow, col, nrows, ncols)
        o = out.unsqueeze(1) if vector else out
        xs = xm[col]
        w = values.unsqueeze(1) if values is not None else None
        prod = xs * w if w is not None else xs
        hit = (prod == o[rows]).to(g.dtype)
        ties = torch.zeros_like(o).index_add_(0, rows, hit)
        share = hit / ties[rows].clamp_min(1) * g[rows]
        if need_x:
            contrib = share * w if w is not None else share
            grad_x = torch.zeros_like(xm).index_add_(0, col, contrib)
        if need_values:
            grad_values = (share * xs).sum(1)
    if grad_x is not None and vector:
        grad_x = grad_x.squeeze(1)
    return None, None, grad_values, grad_x, None, None, None


spmm_op.register_autograd(_spmm_backward, setup_context=_spmm_setup)


# ---- SDDMM -------------------------------------------------------------------------------


@torch.library.custom_op("rusttorch_sparse::sddmm", mutates_args=())
def sddmm_op(
    crow: Tensor, col: Tensor, q: Tensor, k: Tensor, nrows: int, ncols: int, scale: float
) -> Tensor:
    return _native.sddmm(crow, col, q, k, (nrows, ncols), scale)


@_fake_for(sddmm_op)
def _(
    crow: Tensor, col: Tensor, q: Tensor, k: Tensor, nrows: int, ncols: int, scale: float
) -> Tensor:
    return q.new_empty(col.shape)


def _sddmm_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    crow, col, q, k, nrows, ncols, scale = inputs
    ctx.save_for_backward(crow, col, q, k)
    ctx.dims = (nrows, ncols, scale)


def _sddmm_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    crow, col, q, k = ctx.saved_tensors
    nrows, ncols, scale = ctx.dims
    grad = grad.contiguous()
    grad_q = grad_k = None
    if ctx.needs_input_grad[2]:
        grad_q = spmm_op(crow, col, grad, k, nrows, ncols, "sum") * scale
    if ctx.needs_input_grad[3]:
        crow_t, col_t, perm = _transposed(crow, col, nrows, ncols)
        grad_k = spmm_op(crow_t, col_t, grad[perm], q, ncols, nrows, "sum") * scale
    return None, None, grad_q, grad_k, None, None, None


sddmm_op.register_autograd(_sddmm_backward, setup_context=_sddmm_setup)


# ---- sparse softmax ----------------------------------------------------------------------


@torch.library.custom_op("rusttorch_sparse::softmax", mutates_args=())
def softmax_op(crow: Tensor, col: Tensor, values: Tensor, nrows: int, ncols: int) -> Tensor:
    return _native.softmax(crow, col, values, (nrows, ncols))


@_fake_for(softmax_op)
def _(crow: Tensor, col: Tensor, values: Tensor, nrows: int, ncols: int) -> Tensor:
    return values.new_empty(values.shape)


@torch.library.custom_op("rusttorch_sparse::softmax_backward", mutates_args=())
def softmax_backward_op(
    crow: Tensor, col: Tensor, y: Tensor, grad: Tensor, nrows: int, ncols: int
) -> Tensor:
    return _native.softmax_backward(crow, col, y, grad, (nrows, ncols))


@_fake_for(softmax_backward_op)
def _(crow: Tensor, col: Tensor, y: Tensor, grad: Tensor, nrows: int, ncols: int) -> Tensor:
    return y.new_empty(y.shape)


def _softmax_backward_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    crow, col, y, grad, nrows, ncols = inputs
    ctx.save_for_backward(crow, col, y, grad)
    ctx.dims = (nrows, ncols)


def _softmax_backward_backward(ctx: Any, u: Tensor) -> tuple[Any, ...]:
    # dx = y * (g - s) with s = rowsum(y * g), so (t = rowsum(u * y)):
    # d/dg = y * (u - t) = softmax_backward(y, u), d/dy = u * (g - s) - g * t.
    crow, col, y, g = ctx.saved_tensors
    nrows, ncols = ctx.dims
    u = u.contiguous()
    grad_y = grad_g = None
    if ctx.needs_input_grad[3]:
        grad_g = softmax_backward_op(crow, col, y, u, nrows, ncols)
    if ctx.needs_input_grad[2]:
        rows = expand_rows_op(crow, col, nrows, ncols)
        s = y.new_zeros(nrows).index_add(0, rows, y * g)[rows]
        t = y.new_zeros(nrows).index_add(0, rows, u * y)[rows]
        grad_y = u * (g - s) - g * t
    return None, None, grad_y, grad_g, None, None


softmax_backward_op.register_autograd(
    _softmax_backward_backward, setup_context=_softmax_backward_setup
)


def _softmax_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    crow, col, _values, nrows, ncols = inputs
    ctx.save_for_backward(crow, col, output)
    ctx.dims = (nrows, ncols)


def _softmax_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    crow, col, y = ctx.saved_tensors
    nrows, ncols = ctx.dims
    dx = softmax_backward_op(crow, col, y, grad.contiguous(), nrows, ncols)
    return None, None, dx, None, None


softmax_op.register_autograd(_softmax_backward, setup_context=_softmax_setup)


# ---- sparse attention --------------------------------------------------------------------


@torch.library.custom_op("rusttorch_sparse::sparse_attention", mutates_args=())
def sparse_attention_op(
    crow: Tensor, col: Tensor, q: Tensor, k: Tensor, v: Tensor, nrows: int, ncols: int, scale: float
) -> Tensor:
    return _native.sparse_attention(crow, col, q, k, v, (nrows, ncols), scale)


@_fake_for(sparse_attention_op)
def _(
    crow: Tensor, col: Tensor, q: Tensor, k: Tensor, v: Tensor, nrows: int, ncols: int, scale: float
) -> Tensor:
    return v.new_empty(nrows, v.shape[1])


def _attention_setup(ctx: Any, inputs: tuple[Any, ...], output: Tensor) -> None:
    crow, col, q, k, v, nrows, ncols, scale = inputs
    ctx.save_for_backward(crow, col, q, k, v, output)
    ctx.dims = (nrows, ncols, scale)


def _attention_backward(ctx: Any, grad: Tensor) -> tuple[Any, ...]:
    # Recomputes the probabilities at the pattern (O(nnz), never n x n), then
    # dV = P^T dO, dP = dO V^T at the pattern, dS = softmax'(dP), dQ = s dS K, dK = s dS^T Q.
    crow, col, q, k, v, _out = ctx.saved_tensors
    nrows, ncols, scale = ctx.dims
    grad = grad.contiguous()
    p = softmax_op(crow, col, sddmm_op(crow, col, q, k, nrows, ncols, scale), nrows, ncols)
    crow_t, col_t, perm = _transposed(crow, col, nrows, ncols)
    grad_q = grad_k = grad_v = None
    if ctx.needs_input_grad[4]:
        grad_v = spmm_op(crow_t, col_t, p[perm], grad, ncols, nrows, "sum")
    if ctx.needs_input_grad[2] or ctx.needs_input_grad[3]:
        dp = sddmm_op(crow, col, grad, v, nrows, ncols, 1.0)
        ds = softmax_backward_op(crow, col, p, dp, nrows, ncols)
        if ctx.needs_input_grad[2]:
            grad_q = spmm_op(crow, col, ds, k, nrows, ncols, "sum") * scale
        if ctx.needs_input_grad[3]:
            grad_k = spmm_op(crow_t, col_t, ds[perm], q, ncols, nrows, "sum") * scale
    return None, None, grad_q, grad_k, grad_v, None, None, None


sparse_attention_op.register_autograd(_attention_backward, setup_context=_attention_setup)
