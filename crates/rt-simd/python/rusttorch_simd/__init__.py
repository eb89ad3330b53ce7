"""Runtime-dispatched SIMD kernels for torch tensors: activations, fused elementwise chains,
column statistics and scalers, row normalization, softmax and distances, each in one pass
over memory with the GIL released.

>>> import torch, rusttorch_simd as rs
>>> x = torch.randn(4, 3)
>>> y = rs.gelu(x)                                  # torch.nn.functional.gelu
>>> y, mean, std = rs.standardize(x)                # (x - x.mean(0)) / x.std(0), one call
>>> rs.simd_level()                                 # doctest: +SKIP
'avx512'

Every op is also ``torch.ops.rusttorch.<name>`` (so ``torch.compile(fullgraph=True)`` traces
through it), and the activations, normalizations, ``mean_var``, ``standardize`` and the
distances support autograd.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from . import _native, _ops
from ._native import (
    cached_output_bytes,
    get_num_threads,
    release_cached_outputs,
    set_num_threads,
    set_simd_level,
    simd_level,
    supported_simd_levels,
)

__version__: str = _native.__version__

__all__ = [
    "__version__",
    "affine",
    "cached_output_bytes",
    "cdist",
    "clamp",
    "cosine_similarity",
    "exp",
    "fused_mad_normalize",
    "gelu",
    "get_num_threads",
    "l2_normalize",
    "layer_norm",
    "leaky_relu",
    "log_softmax",
    "mean_var",
    "minmax_scale",
    "normalize",
    "release_cached_outputs",
    "relu",
    "rms_norm",
    "robust_scale",
    "set_num_threads",
    "set_simd_level",
    "sigmoid",
    "silu",
    "simd_level",
    "softmax",
    "softplus",
    "standardize",
    "supported_simd_levels",
    "tanh",
]

_is_compiling = torch.compiler.is_compiling


def _needs_op(*tensors: Any) -> bool:
    """True when a call must go through torch.ops.rusttorch: while torch.compile traces, or
    when autograd must record it."""
    if _is_compiling():
        return True
    if not torch.is_grad_enabled():
        return False
    return any(isinstance(t, Tensor) and t.requires_grad for t in tensors)


def _into(result: Tensor, out: Tensor | None) -> Tensor:
    """The op's result, copied into ``out=`` when one was given."""
    if out is None:
        return result
    if torch.is_grad_enabled() and result.requires_grad:
        raise RuntimeError(
            "rusttorch_simd: functions with out=... arguments don't support automatic "
            "differentiation (as in torch); call without out= or under torch.no_grad()"
        )
    # The same rules as the direct path (there the kernels check them): copy_ would
    # broadcast a smaller out= or cast to another dtype without a word. The result is
    # complete before the copy, so here an out= overlapping an input is harmless.
    if not isinstance(out, Tensor):
        raise TypeError(f"out: expected a torch.Tensor, got {type(out).__name__}")
    if out.shape != result.shape:
        raise ValueError(
            f"out has shape {list(out.shape)} but the result has shape {list(result.shape)}"
        )
    if out.dtype != result.dtype:
        raise TypeError(f"out has dtype {out.dtype} but the result has dtype {result.dtype}")
    if out.device != result.device:
        raise ValueError(f"out is on device {str(out.device)!r}, expected 'cpu'")
    out.copy_(result)
    return out


def _refuse_grad(name: str, *tensors: Tensor) -> None:
    """Ops without autograd formulas: an input that requires grad under grad mode is an
    error, not a result silently cut off from the graph."""
    if torch.is_grad_enabled() and any(isinstance(t, Tensor) and t.requires_grad for t in tensors):
        raise RuntimeError(
            f"rusttorch_simd.{name} has no autograd (its inputs require grad): use the torch "
            "function for gradients, or call it under torch.no_grad() or with detached inputs"
        )


def _param(v: float | Sequence[float] | Tensor) -> Tensor:
    """A scale/shift/mean/std parameter as the tensor the torch.library op takes."""
    if isinstance(v, Tensor):
        return v
    return torch.tensor(v, dtype=torch.float64)


# ---- activations -------------------------------------------------------------------------


def relu(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.relu``: max(x, 0); NaN stays NaN. float32/64, float16, bfloat16."""
    if _needs_op(x):
        return _into(_ops.relu_op(x), out)
    return _native.relu(x, out=out)


def leaky_relu(x: Tensor, negative_slope: float = 0.01, *, out: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.leaky_relu``: x for x > 0, else negative_slope * x."""
    if _needs_op(x):
        return _into(_ops.leaky_relu_op(x, negative_slope), out)
    return _native.leaky_relu(x, negative_slope, out=out)


def gelu(x: Tensor, approximate: str = "none", *, out: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.gelu``, exact (``"none"``) or ``"tanh"``.

    The exact form uses erfc, so its negative tail keeps full relative accuracy where
    torch's ``0.5 x (1 + erf(x / sqrt 2))`` rounds to 0.
    """
    if _needs_op(x):
        return _into(_ops.gelu_op(x, approximate), out)
    return _native.gelu(x, approximate, out=out)


def silu(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.nn.functional.silu``: x * sigmoid(x)."""
    if _needs_op(x):
        return _into(_ops.silu_op(x), out)
    return _native.silu(x, out=out)


def sigmoid(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.sigmoid``."""
    if _needs_op(x):
        return _into(_ops.sigmoid_op(x), out)
    return _native.sigmoid(x, out=out)


def tanh(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.tanh``."""
    if _needs_op(x):
        return _into(_ops.tanh_op(x), out)
    return _native.tanh(x, out=out)


def softplus(
    x: Tensor, beta: float = 1.0, threshold: float = 20.0, *, out: Tensor | None = None
) -> Tensor:
    """``torch.nn.functional.softplus``: log(1 + exp(beta x)) / beta, x above threshold."""
    if _needs_op(x):
        return _into(_ops.softplus_op(x, beta, threshold), out)
    return _native.softplus(x, beta, threshold, out=out)


def exp(x: Tensor, *, out: Tensor | None = None) -> Tensor:
    """``torch.exp``."""
    if _needs_op(x):
        return _into(_ops.exp_op(x), out)
    return _native.exp(x, out=out)


def clamp(
    x: Tensor,
    min: float | None = None,
    max: float | None = None,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.clamp`` with number bounds: NaN stays NaN; ``min > max`` gives ``max``."""
    if _needs_op(x):
        return _into(_ops.clamp_op(x, min, max), out)
    return _native.clamp(x, min, max, out=out)


# ---- fused chains ------------------------------------------------------------------------


def fused_mad_normalize(
    a: Tensor, b: Tensor, c: Tensor, mean: float, std: float, *, out: Tensor | None = None
) -> Tensor:
    """``(a * b + c - mean) / std`` in one pass (eager torch makes four).

    >>> import torch, rusttorch_simd as rs
    >>> a = b = c = torch.ones(3)
    >>> rs.fused_mad_normalize(a, b, c, 1.0, 2.0)
    tensor([0.5000, 0.5000, 0.5000])
    """
    if _needs_op(a, b, c):
        return _into(_ops.fused_mad_normalize_op(a, b, c, mean, std), out)
    return _native.fused_mad_normalize(a, b, c, mean, std, out=out)


def affine(
    x: Tensor,
    scale: float | Sequence[float] | Tensor,
    shift: float | Sequence[float] | Tensor,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """``x * scale + shift``; scale and shift are numbers or per-feature vectors along the
    last dimension (one rounding where the CPU has FMA)."""
    if _needs_op(x, scale, shift):
        return _into(_ops.affine_op(x, _param(scale), _param(shift)), out)
    return _native.affine(x, scale, shift, out=out)


def normalize(
    x: Tensor,
    mean: float | Sequence[float] | Tensor,
    std: float | Sequence[float] | Tensor,
    dim: int = 1,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """Per-channel ``(x - mean[c]) / std[c]`` along ``dim`` (torchvision's Normalize for an
    N x C x H x W batch with the default ``dim=1``)."""
    if _needs_op(x, mean, std):
        return _into(_ops.normalize_op(x, _param(mean), _param(std), dim), out)
    return _native.normalize(x, mean, std, dim, out=out)


# ---- statistics --------------------------------------------------------------------------


def mean_var(
    x: Tensor, dim: int = 0, *, correction: float = 1.0, nan_policy: str = "propagate"
) -> tuple[Tensor, Tensor]:
    """Mean and variance along ``dim`` in one numerically stable pass (Welford, merged
    across threads). ``nan_policy``: ``"propagate"``, ``"omit"`` or ``"raise"``. Autograd
    (with ``"omit"``, the missing entries get no gradient)."""
    if _needs_op(x):
        return _ops.mean_var_op(x, dim, correction, nan_policy)
    return _native.mean_var(x, dim, correction=correction, nan_policy=nan_policy)


def standardize(
    x: Tensor,
    dim: int = 0,
    *,
    correction: float = 1.0,
    eps: float = 0.0,
    nan_policy: str = "propagate",
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(x - x.mean(dim)) / (x.std(dim) + eps)``; returns ``(y, mean, std)``.

    >>> import torch, rusttorch_simd as rs
    >>> y, mean, std = rs.standardize(torch.tensor([[1.0, 10.0], [3.0, 30.0]]))
    >>> mean
    tensor([ 2., 20.])
    """
    if _needs_op(x):
        y, mean, std = _ops.standardize_op(x, dim, correction, eps, nan_policy)
        return _into(y, out), mean, std
    return _native.standardize(
        x, dim, correction=correction, eps=eps, nan_policy=nan_policy, out=out
    )


def minmax_scale(
    x: Tensor,
    dim: int = 0,
    *,
    feature_range: tuple[float, float] = (0.0, 1.0),
    nan_policy: str = "propagate",
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """scikit-learn's ``minmax_scale`` along ``dim``; returns ``(y, min, max)``. No
    autograd."""
    if _is_compiling():
        y, lo, hi = _ops.minmax_scale_op(x, dim, list(feature_range), nan_policy)
        return _into(y, out), lo, hi
    _refuse_grad("minmax_scale", x)
    return _native.minmax_scale(x, dim, feature_range=feature_range, nan_policy=nan_policy, out=out)


def robust_scale(
    x: Tensor,
    dim: int = 0,
    *,
    quantile_range: tuple[float, float] = (25.0, 75.0),
    nan_policy: str = "propagate",
    out: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """scikit-learn's ``RobustScaler`` along ``dim``: ``(x - median) / IQR``; returns
    ``(y, center, scale)``. No autograd."""
    if _is_compiling():
        y, center, scale = _ops.robust_scale_op(x, dim, list(quantile_range), nan_policy)
        return _into(y, out), center, scale
    _refuse_grad("robust_scale", x)
    return _native.robust_scale(
        x, dim, quantile_range=quantile_range, nan_policy=nan_policy, out=out
    )


# ---- rows --------------------------------------------------------------------------------


def layer_norm(
    x: Tensor,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.layer_norm(x, (x.shape[-1],), weight, bias, eps)``."""
    if _needs_op(x, weight, bias):
        return _into(_ops.layer_norm_op(x, weight, bias, eps), out)
    return _native.layer_norm(x, weight, bias, eps, out=out)


def rms_norm(
    x: Tensor,
    weight: Tensor | None = None,
    eps: float | None = None,
    *,
    out: Tensor | None = None,
) -> Tensor:
    """``torch.nn.functional.rms_norm(x, (x.shape[-1],), weight, eps)``; ``eps=None`` is
    the dtype's machine epsilon, as in torch."""
    if _needs_op(x, weight):
        return _into(_ops.rms_norm_op(x, weight, eps), out)
    return _native.rms_norm(x, weight, eps, out=out)


def softmax(x: Tensor, dim: int = -1, *, out: Tensor | None = None) -> Tensor:
    """``torch.softmax`` over the last dimension (the only ``dim`` supported)."""
    if _needs_op(x):
        if dim not in (-1, x.dim() - 1):
            return _native.softmax(x, dim)  # raises the ValueError
        return _into(_ops.softmax_op(x), out)
    return _native.softmax(x, dim, out=out)


def log_softmax(x: Tensor, dim: int = -1, *, out: Tensor | None = None) -> Tensor:
    """``torch.log_softmax`` over the last dimension (the only ``dim`` supported)."""
    if _needs_op(x):
        if dim not in (-1, x.dim() - 1):
            return _native.log_softmax(x, dim)  # raises the ValueError
        return _into(_ops.log_softmax_op(x), out)
    return _native.log_softmax(x, dim, out=out)


def l2_normalize(
    x: Tensor, dim: int = -1, eps: float = 1e-12, *, out: Tensor | None = None
) -> Tensor:
    """``torch.nn.functional.normalize(x, p=2, dim=-1, eps)``: rows divided by
    ``max(norm, eps)``."""
    if _needs_op(x):
        if dim not in (-1, x.dim() - 1):
            return _native.l2_normalize(x, dim, eps)  # raises the ValueError
        return _into(_ops.l2_normalize_op(x, eps), out)
    return _native.l2_normalize(x, dim, eps, out=out)


# ---- distances ---------------------------------------------------------------------------


def cdist(x: Tensor, y: Tensor, metric: str = "l2", *, out: Tensor | None = None) -> Tensor:
    """Distances between the rows of ``x`` ([..., n, d]) and ``y`` ([..., m, d]):
    ``"l2"`` (``torch.cdist``), ``"sqeuclidean"``, ``"cosine"`` (1 - cosine similarity) or
    ``"dot"``. Autograd for every metric (at zero ``"l2"`` distance the gradient is 0, as
    in ``torch.cdist``)."""
    if _needs_op(x, y):
        return _into(_ops.cdist_op(x, y, metric), out)
    return _native.cdist(x, y, metric, out=out)


def cosine_similarity(
    x1: Tensor, x2: Tensor, dim: int = -1, eps: float = 1e-8, *, out: Tensor | None = None
) -> Tensor:
    """``torch.nn.functional.cosine_similarity`` along the last dimension (equal shapes,
    no broadcasting). Autograd."""
    if _needs_op(x1, x2):
        if dim not in (-1, x1.dim() - 1):
            return _native.cosine_similarity(x1, x2, dim, eps)  # raises the ValueError
        return _into(_ops.cosine_similarity_op(x1, x2, eps), out)
    return _native.cosine_similarity(x1, x2, dim, eps, out=out)


def _warn_about_env() -> None:
    for name, problem in (
        ("RUSTTORCH_NUM_THREADS", _native._thread_env_problem()),
        ("RUSTTORCH_SIMD", _native._simd_env_problem()),
        ("RUSTTORCH_OUTPUT_CACHE_MB", _native._output_cache_env_problem()),
    ):
        if problem is not None:
            warnings.warn(f"{name}: {problem}; ignoring it", RuntimeWarning, stacklevel=2)


_warn_about_env()
# A forked child has none of the parent's pool threads; build a fresh pool there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_native._forget_pool_after_fork)
