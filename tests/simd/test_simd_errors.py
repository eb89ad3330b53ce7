"""Every bad-input rule: the exception type, a message naming the problem, and no write into
out= when a call is refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import torch
from _simd_support import UNSUPPORTED_DTYPES, dtype_name

import rusttorch_simd as rs


@contextmanager
def unchanged(*tensors: torch.Tensor) -> Iterator[None]:
    before = [t.clone() for t in tensors]
    yield
    for t, b in zip(tensors, before, strict=True):
        # Exact, NaN equal to NaN: any element a refused call wrote shows up.
        torch.testing.assert_close(t, b, rtol=0, atol=0, equal_nan=True, msg="a refused call wrote")


# (name, call taking x and out=) for every op with a tensor output
def _x(shape: tuple[int, ...] = (4, 6)) -> torch.Tensor:
    return torch.randn(*shape)


UNARY: dict[str, Callable[..., Any]] = {
    "relu": rs.relu,
    "leaky_relu": rs.leaky_relu,
    "gelu": rs.gelu,
    "silu": rs.silu,
    "sigmoid": rs.sigmoid,
    "tanh": rs.tanh,
    "softplus": rs.softplus,
    "exp": rs.exp,
    "clamp": lambda x, **k: rs.clamp(x, -1.0, 1.0, **k),
    "affine": lambda x, **k: rs.affine(x, 2.0, 1.0, **k),
    "normalize": lambda x, **k: rs.normalize(x, 0.5, 2.0, 1, **k),
    "fused_mad_normalize": lambda x, **k: rs.fused_mad_normalize(x, x, x, 0.0, 1.0, **k),
    "layer_norm": rs.layer_norm,
    "rms_norm": rs.rms_norm,
    "softmax": rs.softmax,
    "log_softmax": rs.log_softmax,
    "l2_normalize": rs.l2_normalize,
    "cosine_similarity": lambda x, **k: rs.cosine_similarity(x, x.clone(), **k),
    "cdist": lambda x, **k: rs.cdist(x, x.clone(), **k),
    "standardize": lambda x, **k: rs.standardize(x, **k)[0],
    "minmax_scale": lambda x, **k: rs.minmax_scale(x, **k)[0],
    "robust_scale": lambda x, **k: rs.robust_scale(x, **k)[0],
}
STATS = {"mean_var": lambda x: rs.mean_var(x)}
ALL = {**UNARY, **STATS}
# cdist is the one f32/f64-only op: it is compute-bound (the other ops read each element
# once, so 16-bit inputs halve their memory traffic; they are computed in f32).
REDUCTION_ONLY = {"cdist"}


def out_shape(name: str, x: torch.Tensor) -> tuple[int, ...]:
    return tuple(UNARY[name](x).shape)


@pytest.mark.parametrize("name", sorted(ALL))
@pytest.mark.parametrize("dtype", UNSUPPORTED_DTYPES, ids=dtype_name)
def test_wrong_dtype_is_a_type_error(name: str, dtype: torch.dtype) -> None:
    x = torch.ones(4, 6).to(dtype)
    with pytest.raises(TypeError, match=dtype_name(dtype)):
        ALL[name](x)


@pytest.mark.parametrize("name", sorted(REDUCTION_ONLY))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=dtype_name)
def test_16_bit_floats_are_refused_where_not_memory_bound(name: str, dtype: torch.dtype) -> None:
    with pytest.raises(TypeError, match="expected one of float32, float64"):
        ALL[name](_x().to(dtype))


@pytest.mark.parametrize("name", sorted(ALL))
def test_non_cpu_tensor_is_a_value_error(name: str) -> None:
    with pytest.raises(ValueError, match="'meta'"):
        ALL[name](torch.empty(4, 6, device="meta"))


# A parameter or second operand on the meta device beside a CPU input that requires grad.
MIXED_DEVICES: dict[str, Callable[[torch.Tensor, torch.Tensor], Any]] = {
    "affine": lambda x, m: rs.affine(x, m, 0.0),
    "normalize": lambda x, m: rs.normalize(x, m, 1.0, 1),
    "fused_mad_normalize": lambda x, m: rs.fused_mad_normalize(x, m.expand(4, 6), x, 0.0, 1.0),
    "layer_norm": lambda x, m: rs.layer_norm(x, m),
    "rms_norm": lambda x, m: rs.rms_norm(x, m),
}


def test_an_output_too_large_for_the_address_space_is_a_value_error() -> None:
    # 2**62 float32 elements (a stride-0 view of one element) need 2**64 bytes of output.
    x = torch.zeros(1).as_strided((2**62,), (0,))
    with pytest.raises(ValueError, match=r"^shape \[4611686018427387904\] overflows the address"):
        rs.relu(x)


@pytest.mark.parametrize("name", sorted(MIXED_DEVICES))
def test_a_meta_operand_on_the_autograd_path_is_a_value_error(name: str) -> None:
    # With grad the call goes through the torch.library op, where a meta operand would send
    # the dispatcher to the fake kernel and return an uninitialized CPU tensor.
    x = torch.randn(4, 6, requires_grad=True)
    with pytest.raises(ValueError, match="same device"):
        MIXED_DEVICES[name](x, torch.ones(6, device="meta"))


def test_meta_inputs_alone_still_trace_on_the_autograd_path() -> None:
    x = torch.empty(4, 6, device="meta", requires_grad=True)
    y = rs.layer_norm(x, torch.ones(6, device="meta"))
    assert y.device.type == "meta"
    assert y.shape == x.shape


@pytest.mark.parametrize("name", sorted(UNARY))
def test_out_aliasing_an_input_is_refused_and_unwritten(name: str) -> None:
    x = _x()
    if out_shape(name, x) != tuple(x.shape):
        pytest.skip("output shape differs from the input's")
    with unchanged(x), pytest.raises(ValueError, match="overlaps"):
        UNARY[name](x, out=x)
    big = torch.randn(8, 6)
    view = big[:4]
    with unchanged(big), pytest.raises(ValueError, match="overlaps"):
        UNARY[name](view, out=big[2:6])


@pytest.mark.parametrize("name", sorted(UNARY))
def test_out_of_the_wrong_shape_or_dtype_is_refused_and_unwritten(name: str) -> None:
    x = _x()
    shape = out_shape(name, x)
    wrong_shape = torch.full((*shape[:-1], shape[-1] + 1), 3.0)
    with unchanged(wrong_shape), pytest.raises(ValueError, match="shape"):
        UNARY[name](x, out=wrong_shape)
    wrong_dtype = torch.full(shape, 3.0, dtype=torch.float64)
    with unchanged(wrong_dtype), pytest.raises(TypeError, match="dtype"):
        UNARY[name](x, out=wrong_dtype)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_refused_inputs_leave_out_unwritten(name: str) -> None:
    x = _x()
    out = torch.full(out_shape(name, x), 3.0)
    with unchanged(out), pytest.raises(TypeError, match="int32"):
        UNARY[name](x.to(torch.int32), out=out)
    with unchanged(out), pytest.raises(ValueError, match="'meta'"):
        UNARY[name](torch.empty(4, 6, device="meta"), out=out)


def test_mismatched_operands_leave_out_unwritten() -> None:
    a, b = torch.randn(4), torch.randn(5)
    out = torch.full((4,), 3.0)
    with unchanged(out), pytest.raises(ValueError, match="shape"):
        rs.fused_mad_normalize(a, b, a, 0.0, 1.0, out=out)
    out2 = torch.full((4, 3), 3.0)
    with unchanged(out2), pytest.raises(ValueError, match="equal batch dimensions and d"):
        rs.cdist(torch.randn(4, 6), torch.randn(3, 5), out=out2)
    with unchanged(out), pytest.raises(ValueError, match="shape"):
        rs.cosine_similarity(torch.randn(4, 6), torch.randn(5, 6), out=out)


def test_out_that_requires_grad_is_refused() -> None:
    out = torch.zeros(3, requires_grad=True)
    with pytest.raises(ValueError, match="requires grad"):
        rs.relu(torch.ones(3), out=out)


def test_mismatched_shapes_are_value_errors() -> None:
    a, b = torch.ones(4), torch.ones(5)
    with pytest.raises(ValueError, match="shape"):
        rs.fused_mad_normalize(a, b, a, 0.0, 1.0)
    with pytest.raises(TypeError, match="dtype"):
        rs.fused_mad_normalize(a, a.double(), a, 0.0, 1.0)
    with pytest.raises(ValueError, match="shape"):
        rs.cosine_similarity(torch.ones(3, 4), torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"\[\.\.\., n, d\]"):
        rs.cdist(torch.ones(3, 4), torch.ones(3, 5))
    with pytest.raises(ValueError, match=r"\[\.\.\., n, d\]"):
        rs.cdist(torch.ones(4), torch.ones(4))
    with pytest.raises(TypeError, match="dtype"):
        rs.cdist(torch.ones(3, 4), torch.ones(3, 4, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"weight has shape \[3\], expected \[4\]"):
        rs.layer_norm(torch.ones(2, 4), torch.ones(3))
    with pytest.raises(TypeError, match="bias has dtype float64"):
        rs.layer_norm(torch.ones(2, 4), None, torch.ones(4, dtype=torch.float64))
    with pytest.raises(ValueError, match="scale has 3 values"):
        rs.affine(torch.ones(2, 4), [1.0, 2.0, 3.0], 0.0)
    with pytest.raises(ValueError, match="mean has 2 values"):
        rs.normalize(torch.ones(1, 3, 2, 2), [0.0, 1.0], 1.0)


def test_bad_arguments_are_value_errors() -> None:
    x = _x()
    with pytest.raises(ValueError, match="approximate"):
        rs.gelu(x, "fast")
    with pytest.raises(ValueError, match="beta"):
        rs.softplus(x, beta=0.0)
    with pytest.raises(ValueError, match="at least one of min and max"):
        rs.clamp(x)
    with pytest.raises(ValueError, match="nan_policy"):
        rs.mean_var(x, nan_policy="ignore")
    with pytest.raises(ValueError, match="metric"):
        rs.cdist(x, x, "manhattan")
    with pytest.raises(ValueError, match="feature_range"):
        rs.minmax_scale(x, feature_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="quantile_range"):
        rs.robust_scale(x, quantile_range=(80.0, 20.0))
    with pytest.raises(ValueError, match="correction"):
        rs.mean_var(x, correction=-1.0)
    with pytest.raises(ValueError, match="eps"):
        rs.layer_norm(x, eps=-1.0)
    with pytest.raises(ValueError, match="only the last dimension"):
        rs.softmax(x, dim=0)
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        rs.mean_var(x, 2)
    with pytest.raises(IndexError, match="dim -3 is out of range"):
        rs.normalize(x, 0.0, 1.0, -3)
    with pytest.raises(TypeError, match="mean: expected a number"):
        rs.normalize(x, "zero", 1.0)


def test_numpy_and_read_only_inputs() -> None:
    import numpy as np

    a = np.ones((3, 4), dtype=np.float32)
    a.setflags(write=False)
    assert torch.equal(rs.relu(a), torch.ones(3, 4))  # read-only input is fine
    out = np.zeros((3, 4), dtype=np.float32)
    out.setflags(write=False)
    with pytest.raises(ValueError, match="read-only"):
        rs.relu(torch.ones(3, 4), out=out)
    with pytest.raises(TypeError, match=r"expected a torch\.Tensor"):
        rs.relu([1.0, 2.0])


def test_outputs_of_other_shapes_overlapping_an_input_are_refused() -> None:
    buf = torch.randn(100)
    x = buf[:24].view(4, 6)
    with unchanged(buf), pytest.raises(ValueError, match="overlaps"):
        rs.cdist(x, torch.randn(4, 6), out=buf[10:26].view(4, 4))
    with unchanged(buf), pytest.raises(ValueError, match="overlaps"):
        rs.cosine_similarity(x, torch.randn(4, 6), out=buf[20:24])
    with unchanged(buf), pytest.raises(ValueError, match="overlaps"):
        rs.layer_norm(torch.randn(4, 6), buf[:6], out=buf[3:27].view(4, 6))
