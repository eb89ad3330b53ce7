"""The torch.library face of rusttorch_simd: every tensor op registered as ``rusttorch::<name>``
with a fake (meta) kernel, so that ``torch.compile(fullgraph=True)`` traces through it, and
with autograd formulas for the activations, normalizations, ``mean_var`` and the distances.
The scalers ``minmax_scale`` and ``robust_scale`` have none (their statistics are order
statistics); their backward raises a clear error.

The public functions in ``rusttorch_simd`` call the compiled kernels directly (a few
microseconds per call) and go through these ops only when they must: while
``torch.compile`` traces, or when an input requires grad under grad mode.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from . import _native

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


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


def _like(x: Tensor) -> Tensor:
    """What the kernels return: a new contiguous tensor of x's shape and dtype."""
    return x.new_empty(x.shape)


# ---- activations -------------------------------------------------------------------------


@torch.library.custom_op("rusttorch::relu", mutates_args=())
def relu_op(x: Tensor) -> Tensor:
    return _native.relu(x)


@torch.library.custom_op("rusttorch::leaky_relu", mutates_args=())
def leaky_relu_op(x: Tensor, negative_slope: float) -> Tensor:
    return _native.leaky_relu(x, negative_slope)


@torch.library.custom_op("rusttorch::gelu", mutates_args=())
def gelu_op(x: Tensor, approximate: str) -> Tensor:
    return _native.gelu(x, approximate)


@torch.library.custom_op("rusttorch::silu", mutates_args=())
def silu_op(x: Tensor) -> Tensor:
    return _native.silu(x)


@torch.library.custom_op("rusttorch::sigmoid", mutates_args=())
def sigmoid_op(x: Tensor) -> Tensor:
    return _native.sigmoid(x)


@torch.library.custom_op("rusttorch::tanh", mutates_args=())
def tanh_op(x: Tensor) -> Tensor:
    return _native.tanh(x)


@torch.library.custom_op("rusttorch::softplus", mutates_args=())
def softplus_op(x: Tensor, beta: float, threshold: float) -> Tensor:
    return _native.softplus(x, beta, threshold)


@torch.library.custom_op("rusttorch::exp", mutates_args=())
def exp_op(x: Tensor) -> Tensor:
    return _native.exp(x)


@torch.library.custom_op("rusttorch::clamp", mutates_args=())
def clamp_op(x: Tensor, min: float | None, max: float | None) -> Tensor:
    return _native.clamp(x, min, max)


for _unary in (relu_op, silu_op, sigmoid_op, tanh_op, exp_op):
    _fake_for(_unary)(_like)


@_fake_for(leaky_relu_op)
def _(x: Tensor, negative_slope: float) -> Tensor:
    return _like(x)


@_fake_for(gelu_op)
def _(x: Tensor, approximate: str) -> Tensor:
    return _like(x)


@_fake_for(softplus_op)
def _(x: Tensor, beta: float, threshold: float) -> Tensor:
    return _like(x)


@_fake_for(clamp_op)
def _(x: Tensor, min: float | None, max: float | None) -> Tensor:
    return _like(x)


def _save_input(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    ctx.save_for_backward(inputs[0])
    ctx.args = inputs[1:]  # type: ignore[attr-defined]


def _save_output(ctx: torch.autograd.function.FunctionCtx, inputs: tuple, output: Tensor) -> None:
    ctx.save_for_backward(output)


def _relu_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    return grad * (x > 0).to(grad.dtype)


def _leaky_relu_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    (slope,) = ctx.args
    return torch.where(x > 0, grad, grad * slope), None


def _gelu_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    (approximate,) = ctx.args
    if approximate == "tanh":
        inner = _SQRT_2_OVER_PI * (x + 0.044715 * x**3)
        t = torch.tanh(inner)
        d_inner = _SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x)
        dy = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * d_inner
    else:
        cdf = 0.5 * torch.special.erfc(-x * (1.0 / math.sqrt(2.0)))
        pdf = torch.exp(-0.5 * x * x) * _INV_SQRT_2PI
        dy = cdf + x * pdf
    return grad * dy, None


def _silu_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    s = torch.sigmoid(x)
    return grad * s * (1.0 + x * (1.0 - s))


def _sigmoid_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (y,) = ctx.saved_tensors
    return grad * y * (1.0 - y)


def _tanh_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (y,) = ctx.saved_tensors
    return grad * (1.0 - y * y)


def _softplus_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    beta, threshold = ctx.args
    z = x * beta
    return torch.where(z > threshold, grad, grad * torch.sigmoid(z)), None, None


def _exp_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (y,) = ctx.saved_tensors
    return grad * y


def _clamp_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    lo, hi = ctx.args
    keep = torch.ones_like(x, dtype=torch.bool)
    if lo is not None:
        keep = keep & (x >= lo)
    if hi is not None:
        keep = keep & (x <= hi)
    return grad * keep.to(grad.dtype), None, None


relu_op.register_autograd(_relu_backward, setup_context=_save_input)
leaky_relu_op.register_autograd(_leaky_relu_backward, setup_context=_save_input)
gelu_op.register_autograd(_gelu_backward, setup_context=_save_input)
silu_op.register_autograd(_silu_backward, setup_context=_save_input)
sigmoid_op.register_autograd(_sigmoid_backward, setup_context=_save_output)
tanh_op.register_autograd(_tanh_backward, setup_context=_save_output)
softplus_op.register_autograd(_softplus_backward, setup_context=_save_input)
exp_op.register_autograd(_exp_backward, setup_context=_save_output)
clamp_op.register_autograd(_clamp_backward, setup_context=_save_input)


# ---- fused elementwise chains ------------------------------------------------------------


@torch.library.custom_op("rusttorch::fused_mad_normalize", mutates_args=())
def fused_mad_normalize_op(a: Tensor, b: Tensor, c: Tensor, mean: float, std: float) -> Tensor:
    return _native.fused_mad_normalize(a, b, c, mean, std)


@_fake_for(fused_mad_normalize_op)
def _(a: Tensor, b: Tensor, c: Tensor, mean: float, std: float) -> Tensor:
    torch._check(a.shape == b.shape and a.shape == c.shape, lambda: "shapes must match")
    return _like(a)


def _mad_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    a, b, _c, _mean, std = inputs
    ctx.save_for_backward(a, b)
    ctx.std = std


def _mad_backward(ctx, grad):  # type: ignore[no-untyped-def]
    a, b = ctx.saved_tensors
    g = grad / ctx.std
    return g * b, g * a, g, None, None


fused_mad_normalize_op.register_autograd(_mad_backward, setup_context=_mad_setup)


@torch.library.custom_op("rusttorch::affine", mutates_args=())
def affine_op(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    return _native.affine(x, scale, shift)


@_fake_for(affine_op)
def _(x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
    return _like(x)


def _affine_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, scale, shift = inputs
    ctx.save_for_backward(x, scale)
    ctx.shift_shape = shift.shape


def _sum_to(t: Tensor, shape: torch.Size) -> Tensor:
    """Sums the broadcast dimensions of a gradient back to a parameter's shape."""
    if len(shape) == 0:
        return t.sum()
    return t.reshape(-1, shape[-1]).sum(0)


def _affine_backward(ctx, grad):  # type: ignore[no-untyped-def]
    x, scale = ctx.saved_tensors
    gx = grad * scale.to(grad.dtype)
    gscale = _sum_to(grad * x, scale.shape).to(scale.dtype) if ctx.needs_input_grad[1] else None
    gshift = _sum_to(grad, ctx.shift_shape).to(scale.dtype) if ctx.needs_input_grad[2] else None
    return gx, gscale, gshift


affine_op.register_autograd(_affine_backward, setup_context=_affine_setup)


@torch.library.custom_op("rusttorch::normalize", mutates_args=())
def normalize_op(x: Tensor, mean: Tensor, std: Tensor, dim: int) -> Tensor:
    return _native.normalize(x, mean, std, dim)


@_fake_for(normalize_op)
def _(x: Tensor, mean: Tensor, std: Tensor, dim: int) -> Tensor:
    return _like(x)


def _channel_shape(x: Tensor, dim: int) -> list[int]:
    shape = [1] * x.dim()
    shape[dim] = x.shape[dim]
    return shape


def _normalize_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, mean, std, dim = inputs
    ctx.save_for_backward(x, mean, std)
    ctx.dim = dim % x.dim()
    ctx.shape = _channel_shape(x, ctx.dim)


def _as_param_shape(g: Tensor, p: Tensor, dim: int) -> Tensor:
    """The gradient of a mean/std parameter (one number, or one per channel along dim)
    from the elementwise gradient g: summed over every other dimension."""
    if p.numel() == 1:  # one number for every channel (with one channel, the same sum)
        return g.sum().reshape(p.shape).to(p.dtype)
    others = [d for d in range(g.dim()) if d != dim]
    return (g.sum(others) if others else g).reshape(p.shape).to(p.dtype)


def _normalize_backward(ctx, grad):  # type: ignore[no-untyped-def]
    # y = (x - m) / s per channel: dy/dx = 1/s, dy/dm = -1/s, dy/ds = -(x - m) / s^2.
    x, mean, std = ctx.saved_tensors
    m, s = mean.to(grad.dtype), std.to(grad.dtype)
    if s.dim() == 1:
        s = s.reshape(ctx.shape)
    if m.dim() == 1:
        m = m.reshape(ctx.shape)
    gx = grad / s
    gmean = _as_param_shape(-gx, mean, ctx.dim) if ctx.needs_input_grad[1] else None
    gstd = _as_param_shape(-gx * (x - m) / s, std, ctx.dim) if ctx.needs_input_grad[2] else None
    return gx if ctx.needs_input_grad[0] else None, gmean, gstd, None


normalize_op.register_autograd(_normalize_backward, setup_context=_normalize_setup)


# ---- statistics --------------------------------------------------------------------------


def _reduced(x: Tensor, dim: int) -> Tensor:
    shape = list(x.shape)
    del shape[dim % x.dim()]
    return x.new_empty(shape)


@torch.library.custom_op("rusttorch::mean_var", mutates_args=())
def mean_var_op(x: Tensor, dim: int, correction: float, nan_policy: str) -> tuple[Tensor, Tensor]:
    return _native.mean_var(x, dim, correction=correction, nan_policy=nan_policy)


@_fake_for(mean_var_op)
def _(x: Tensor, dim: int, correction: float, nan_policy: str) -> tuple[Tensor, Tensor]:
    return _reduced(x, dim), _reduced(x, dim)


def _in_float32(*tensors: Tensor | None) -> tuple[Tensor | None, ...]:
    """16-bit tensors widened to float32 for a backward formula (as the forward pass
    computes), others unchanged."""
    return tuple(
        t.float() if t is not None and t.dtype in (torch.float16, torch.bfloat16) else t
        for t in tensors
    )


def _mean_var_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, dim, correction, nan_policy = inputs
    mean, _var = output
    ctx.save_for_backward(x, mean)
    # An output the loss does not use arrives as None rather than zeros: 0 times the
    # variance's term is NaN where that term is (one row, correction=1).
    ctx.set_materialize_grads(False)
    ctx.dim, ctx.correction = dim % x.dim(), correction
    ctx.omit = nan_policy == "omit"


def _mean_var_backward(ctx, gmean, gvar):  # type: ignore[no-untyped-def]
    x0, mean0 = ctx.saved_tensors
    x, mean, gmean, gvar = _in_float32(x0, mean0, gmean, gvar)
    d = ctx.dim
    if ctx.omit:
        # Statistics over the present entries only (each column its own count); a NaN
        # entry gets no gradient, as with torch.nanmean.
        present = ~x.isnan()
        n = present.sum(d, keepdim=True).to(x.dtype)
        xc = torch.where(present, x - mean.unsqueeze(d), 0.0)
    else:
        present = None
        n = torch.tensor(float(x.shape[d]), dtype=x.dtype)
        xc = x - mean.unsqueeze(d)
    gx = torch.zeros_like(x)
    if gmean is not None:
        gx = gx + gmean.unsqueeze(d) / n
    if gvar is not None:
        # var = sum(xc^2) / (n - correction); sum(xc) = 0 removes the mean's term.
        dof = (n - ctx.correction).clamp_min(0.0)
        gx = gx + gvar.unsqueeze(d) * 2.0 * xc / dof
    if present is not None:
        gx = torch.where(present, gx, 0.0)
    return gx.to(x0.dtype), None, None, None


mean_var_op.register_autograd(_mean_var_backward, setup_context=_mean_var_setup)


@torch.library.custom_op("rusttorch::standardize", mutates_args=())
def standardize_op(
    x: Tensor, dim: int, correction: float, eps: float, nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    return _native.standardize(x, dim, correction=correction, eps=eps, nan_policy=nan_policy)


@_fake_for(standardize_op)
def _(
    x: Tensor, dim: int, correction: float, eps: float, nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    return _like(x), _reduced(x, dim), _reduced(x, dim)


def _standardize_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, dim, correction, eps, nan_policy = inputs
    _y, mean, std = output
    ctx.save_for_backward(x, mean, std)
    ctx.dim, ctx.correction, ctx.eps = dim % x.dim(), correction, eps
    ctx.omit = nan_policy == "omit"


def _standardize_backward(ctx, gy, gmean, gstd):  # type: ignore[no-untyped-def]
    x, mean, std = ctx.saved_tensors
    in_dtype = x.dtype
    if in_dtype in (torch.float16, torch.bfloat16):
        # Computed in float32 like the forward pass (the sums below would lose most of
        # their bits in 16 bits), rounded to the input's dtype at the end.
        x, mean, std, gy = (t.float() for t in (x, mean, std, gy))
        gmean = None if gmean is None else gmean.float()
        gstd = None if gstd is None else gstd.float()
    d = ctx.dim
    m = mean.unsqueeze(d)
    s = std.unsqueeze(d)
    if ctx.omit:
        # The statistics saw only the non-NaN entries: the sums below run over those, each
        # column with its own count, and a NaN entry (absent from the statistics, NaN in
        # y) gets no gradient, as with torch.nanmean.
        present = ~x.isnan()
        n = present.sum(d, keepdim=True).to(x.dtype)
        xc = torch.where(present, x - m, 0.0)
        gy = torch.where(present, gy, 0.0)
    else:
        present = None
        n = torch.tensor(float(x.shape[d]), dtype=x.dtype)
        xc = x - m
    dof = (n - ctx.correction).clamp_min(0.0)
    # y = xc / (s + eps); s = sqrt(sum(xc^2) / dof); sum(xc) = 0 removes the mean's term.
    denom = s + ctx.eps
    gx = gy / denom
    gx = gx - gx.sum(d, keepdim=True) / n
    g_s = -(gy * xc).sum(d, keepdim=True) / (denom * denom)
    if gstd is not None:
        g_s = g_s + gstd.unsqueeze(d)
    gx = gx + g_s * xc / (dof * s)
    if gmean is not None:
        gx = gx + gmean.unsqueeze(d) / n
    if present is not None:
        gx = torch.where(present, gx, 0.0)
    return gx.to(in_dtype), None, None, None, None


standardize_op.register_autograd(_standardize_backward, setup_context=_standardize_setup)


@torch.library.custom_op("rusttorch::minmax_scale", mutates_args=())
def minmax_scale_op(
    x: Tensor, dim: int, feature_range: Sequence[float], nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    lo, hi = feature_range
    return _native.minmax_scale(x, dim, feature_range=(lo, hi), nan_policy=nan_policy)


@_fake_for(minmax_scale_op)
def _(
    x: Tensor, dim: int, feature_range: Sequence[float], nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    return _like(x), _reduced(x, dim), _reduced(x, dim)


@torch.library.custom_op("rusttorch::robust_scale", mutates_args=())
def robust_scale_op(
    x: Tensor, dim: int, quantile_range: Sequence[float], nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    lo, hi = quantile_range
    return _native.robust_scale(x, dim, quantile_range=(lo, hi), nan_policy=nan_policy)


@_fake_for(robust_scale_op)
def _(
    x: Tensor, dim: int, quantile_range: Sequence[float], nan_policy: str
) -> tuple[Tensor, Tensor, Tensor]:
    return _like(x), _reduced(x, dim), _reduced(x, dim)


def _no_gradient(name: str) -> Callable[..., Any]:
    def backward(ctx, *grads):  # type: ignore[no-untyped-def]
        raise RuntimeError(
            f"rusttorch_simd.{name} has no autograd: use the torch function for gradients, "
            "or call it under torch.no_grad() or with detached inputs"
        )

    return backward


def _nothing_saved(ctx, inputs, output):  # type: ignore[no-untyped-def]
    pass


# Traced under torch.compile with inputs that require grad, a backward through these is a
# clear error (the eager path refuses such inputs before calling the kernel).
minmax_scale_op.register_autograd(_no_gradient("minmax_scale"), setup_context=_nothing_saved)
robust_scale_op.register_autograd(_no_gradient("robust_scale"), setup_context=_nothing_saved)


# ---- rows --------------------------------------------------------------------------------


@torch.library.custom_op("rusttorch::layer_norm", mutates_args=())
def layer_norm_op(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    return _native.layer_norm(x, weight, bias, eps)


@_fake_for(layer_norm_op)
def _(x: Tensor, weight: Tensor | None, bias: Tensor | None, eps: float) -> Tensor:
    return _like(x)


def _layer_norm_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, weight, bias, eps = inputs
    ctx.save_for_backward(x, weight)
    ctx.eps = eps
    ctx.has_bias = bias is not None


def _layer_norm_backward(ctx, grad):  # type: ignore[no-untyped-def]
    x, weight = ctx.saved_tensors
    mean = x.mean(-1, keepdim=True)
    var = x.var(-1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + ctx.eps)
    xhat = (x - mean) * rstd
    g = grad if weight is None else grad * weight
    gx = rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))
    rows = grad.reshape(-1, grad.shape[-1])
    gw = (rows * xhat.reshape(rows.shape)).sum(0) if weight is not None else None
    gb = rows.sum(0) if ctx.has_bias else None
    return gx, gw, gb, None


layer_norm_op.register_autograd(_layer_norm_backward, setup_context=_layer_norm_setup)


@torch.library.custom_op("rusttorch::rms_norm", mutates_args=())
def rms_norm_op(x: Tensor, weight: Tensor | None, eps: float | None) -> Tensor:
    return _native.rms_norm(x, weight, eps)


@_fake_for(rms_norm_op)
def _(x: Tensor, weight: Tensor | None, eps: float | None) -> Tensor:
    return _like(x)


def _rms_norm_setup(ctx, inputs, output):  # type: ignore[no-untyped-def]
    x, weight, eps = inputs
    ctx.save_for_backward(x, weight)
    ctx.eps = torch.finfo(x.dtype).eps if eps is None else eps


def _rms_norm_backward(ctx, grad):  # type: ignore[no-untyped-def]
    x, weight = ctx.saved_tensors
    r = torch.rsqrt((x * x).mean(-1, keepdim=True) + ctx.eps)
    g = grad if weight is None else grad * weight
    gx = r * (g - x * (r * r) * (g * x).mean(-1, keepdim=True))
    gw = None
    if weight is not None:
        rows = grad.reshape(-1, grad.shape[-1])
        gw = (rows * (x * r).reshape(rows.shape)).sum(0)
    return gx, gw, None


rms_norm_op.register_autograd(_rms_norm_backward, setup_context=_rms_norm_setup)


@torch.library.custom_op("rusttorch::softmax", mutates_args=())
def softmax_op(x: Tensor) -> Tensor:
    return _native.softmax(x)


@torch.library.custom_op("rusttorch::log_softmax", mutates_args=())
def log_softmax_op(x: Tensor) -> Tensor:
    return _native.log_softmax(x)


_fake_for(softmax_op)(_like)
_fake_for(log_softmax_op)(_like)


def _softmax_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (y,) = ctx.saved_tensors
    return y * (grad - (grad * y).sum(-1, keepdim=True))


def _log_softmax_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (y,) = ctx.saved_tensors
    return grad - torch.exp(y) * grad.sum(-1, keepdim=True)


softmax_op.register_autograd(_softmax_backward, setup_context=_save_output)
log_softmax_op.register_autograd(_log_softmax_backward, setup_context=_save_output)


@torch.library.custom_op("rusttorch::l2_normalize", mutates_args=())
def l2_normalize_op(x: Tensor, eps: float) -> Tensor:
    return _native.l2_normalize(x, -1, eps)


@_fake_for(l2_normalize_op)
def _(x: Tensor, eps: float) -> Tensor:
    return _like(x)


def _l2_normalize_backward(ctx, grad):  # type: ignore[no-untyped-def]
    (x,) = ctx.saved_tensors
    (eps,) = ctx.args
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    n = norm.clamp_min(eps)
    y = x / n
    # Where the norm is clamped, the denominator is a constant.
    inside = (norm > eps).to(grad.dtype)
    return grad / n - inside * y * (grad * y).sum(-1, keepdim=True) / n, None


l2_normalize_op.register_autograd(_l2_normalize_backward, setup_context=_save_input)


# ---- distances ---------------------------------------------------------------------------


@torch.library.custom_op("rusttorch::cdist", mutates_args=())
def cdist_op(x: Tensor, y: Tensor, metric: str) -> Tensor:
    return _native.cdist(x, y, metric)


@_fake_for(cdist_op)
def _(x: Tensor, y: Tensor, metric: str) -> Tensor:
    return x.new_empty((*x.shape[:-1], y.shape[-2]))


# The cosine metric clamps each row's norm at this (rt_simd::distance::COSINE_EPS).
_COSINE_EPS = 1e-8
# Rows sampled for cdist's centre (CENTER_SAMPLE_ROWS in distance.rs).
_CENTER_SAMPLE_ROWS = 64


def _save_inputs_and_output(ctx, inputs, output):  # type: ignore[no-untyped-def]
    ctx.save_for_backward(inputs[0], inputs[1], output)
    ctx.args = inputs[2:]


def _inverse_norms(x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
    """``1 / max(|row|, eps)`` per row (keepdim), and where the norm was not clamped (only
    there does the norm carry a gradient)."""
    norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
    return 1.0 / norm.clamp_min(eps), (norm > eps).to(x.dtype)


def _cdist_backward(ctx, grad):  # type: ignore[no-untyped-def]
    x, y, out = ctx.saved_tensors
    (metric,) = ctx.args
    if metric == "dot":
        return grad @ y, grad.transpose(-1, -2) @ x, None
    if metric == "cosine":
        return (*_cosine_backward(x, y, out, grad), None)
    if metric == "l2":
        return (*_l2_backward(x, y, out, grad), None)
    # s_ij = |x_i - y_j|^2: ds/dx_i = 2 (x_i - y_j), ds/dy_j = 2 (y_j - x_i), as two
    # products. They cancel by |x|/|x_i - y_j|, so both sides are first moved by the same
    # point, which the differences do not see: data far from the origin then loses no
    # more than centred data.
    center = _euclidean_center(x, y)
    xc, yc = x - center, y - center
    gx = 2.0 * (grad.sum(-1, keepdim=True) * xc - grad @ yc)
    gy = 2.0 * (grad.sum(-2).unsqueeze(-1) * yc - grad.transpose(-1, -2) @ xc)
    return gx, gy, None


def _euclidean_center(x: Tensor, y: Tensor) -> Tensor:
    """The point the forward kernel moves both operands by (``euclidean_center`` in
    distance.rs): per feature, the lower median of the finite values of every
    ``ceil(n / 64)``-th row of the operand with fewer rows (0 where there are none)."""
    rows = x if x.shape[-2] <= y.shape[-2] else y
    n = rows.shape[-2]
    if n == 0:
        return rows.new_zeros((*rows.shape[:-2], 1, rows.shape[-1]))
    sample = rows[..., :: -(-n // _CENTER_SAMPLE_ROWS), :]
    finite = torch.where(sample.isfinite(), sample, float("nan"))
    return finite.nanmedian(-2, keepdim=True).values.nan_to_num(0.0)


def _l2_backward(x: Tensor, y: Tensor, out: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of ``out_ij = |x_i - y_j|``: ``sum_j c_ij (x_i - y_j)`` with ``c = grad /
    out``, as two matrix products on the points moved as the forward moved them (the
    differences do not see it; data far from the origin then cancels no worse than
    centred data).

    The forward pass's ``out`` comes from ``|x - p|^2 + |y - p|^2 - 2 (x - p).(y - p)``, so
    coincident points get a few ulp of the first two terms (~1e-4 in float32 for unit
    data), not 0, and ``grad / out`` would blow up their zero terms past what the products'
    cancellation can take. A pair whose squared distance is within 16 ulp of those terms
    (which the forward cannot tell from coincident) gets no gradient, as coincident points
    in ``torch.cdist``.
    """
    center = _euclidean_center(x, y)
    xc, yc = x - center, y - center
    # out^2 - k (|x_i - p|^2 + |y_j - p|^2) <= 0, in one [n, m] buffer (then reused for c):
    # every fresh buffer of that size costs a pass of page faults.
    k = 16 * torch.finfo(out.dtype).eps
    work = out.square()
    work.sub_(k * (xc * xc).sum(-1, keepdim=True)).sub_(k * (yc * yc).sum(-1).unsqueeze(-2))
    coincide = work <= 0
    c = torch.div(grad, out, out=work).masked_fill_(coincide, 0.0)
    gx = c.sum(-1, keepdim=True) * xc - c @ yc
    gy = c.sum(-2).unsqueeze(-1) * yc - c.transpose(-1, -2) @ xc
    return gx, gy


def _cosine_backward(x: Tensor, y: Tensor, out: Tensor, grad: Tensor) -> tuple[Tensor, Tensor]:
    """Gradients of ``out = 1 - s``, ``s_ij = (x_i . y_j) fx_i fy_j`` with ``fx = 1 /
    max(|x_i|, eps)``: ``ds/dx_i = fx_i fy_j y_j - s_ij x_i fx_i^2``, the second term only
    where the norm was not clamped."""
    fx, in_x = _inverse_norms(x, _COSINE_EPS)
    fy, in_y = _inverse_norms(y, _COSINE_EPS)
    # sum_j grad_ij s_ij, and the same over i, with s = 1 - out.
    g_out = grad * out
    gs_rows = (grad.sum(-1) - g_out.sum(-1)).unsqueeze(-1)
    gs_cols = (grad.sum(-2) - g_out.sum(-2)).unsqueeze(-1)
    gx = in_x * x * fx * fx * gs_rows - fx * ((grad * fy.transpose(-1, -2)) @ y)
    gy = in_y * y * fy * fy * gs_cols - fy * ((grad * fx).transpose(-1, -2) @ x)
    return gx, gy


cdist_op.register_autograd(_cdist_backward, setup_context=_save_inputs_and_output)


@torch.library.custom_op("rusttorch::cosine_similarity", mutates_args=())
def cosine_similarity_op(x1: Tensor, x2: Tensor, eps: float) -> Tensor:
    return _native.cosine_similarity(x1, x2, -1, eps)


@_fake_for(cosine_similarity_op)
def _(x1: Tensor, x2: Tensor, eps: float) -> Tensor:
    return x1.new_empty(x1.shape[:-1])


def _cosine_similarity_backward(ctx, grad):  # type: ignore[no-untyped-def]
    a0, b0, s0 = ctx.saved_tensors
    (eps,) = ctx.args
    a, b, s, grad = _in_float32(a0, b0, s0, grad)
    # s = (a . b) fa fb with fa = 1 / max(|a|, eps): ds/da = fa fb b - s a fa^2 (the second
    # term where |a| > eps), and the same with a and b swapped.
    fa, in_a = _inverse_norms(a, eps)
    fb, in_b = _inverse_norms(b, eps)
    g, s = grad.unsqueeze(-1), s.unsqueeze(-1)
    ga = g * (fa * fb * b - in_a * s * a * fa * fa)
    gb = g * (fa * fb * a - in_b * s * b * fb * fb)
    return ga.to(a0.dtype), gb.to(b0.dtype), None


cosine_similarity_op.register_autograd(
    _cosine_similarity_backward, setup_context=_save_inputs_and_output
)
