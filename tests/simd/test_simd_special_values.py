"""NaN and inf propagate as in torch, and empty tensors give empty results, for the ops
outside the activation suite (which covers its own): the fused chains, the per-channel
maps, the row norms, l2_normalize, cosine_similarity and the scalers. Each is compared with
the same formula evaluated by torch in float64."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F
from _simd_support import assert_close_to

import rusttorch_simd as rs


def special(rows: int = 6, d: int = 37) -> torch.Tensor:
    """Random values with NaN, +inf and -inf in some rows and columns, others clean."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(rows, d, generator=g, dtype=torch.float64)
    x[1, 3] = float("nan")
    x[2, 5] = float("inf")
    x[3, 0] = float("-inf")
    x[4, 7] = float("inf")
    x[4, 8] = float("-inf")
    return x


def param(d: int, lo: float, hi: float) -> torch.Tensor:
    return torch.linspace(lo, hi, d, dtype=torch.float64)


# name -> (ours, reference), each taking x (float64 or float32) and returning a tensor
CASES: dict[
    str, tuple[Callable[[torch.Tensor], torch.Tensor], Callable[[torch.Tensor], torch.Tensor]]
] = {
    "fused_mad_normalize": (
        lambda x: rs.fused_mad_normalize(x, x.flip(0), x.flip(1), 0.5, 2.0),
        lambda x: (x * x.flip(0) + x.flip(1) - 0.5) / 2.0,
    ),
    "affine": (
        lambda x: rs.affine(x, param(x.shape[-1], -1, 2).to(x.dtype), 0.25),
        lambda x: x * param(x.shape[-1], -1, 2) + 0.25,
    ),
    "normalize": (
        lambda x: rs.normalize(
            x, param(x.shape[0], -1, 1).tolist(), param(x.shape[0], 1, 2).tolist(), 0
        ),
        lambda x: (x - param(x.shape[0], -1, 1)[:, None]) / param(x.shape[0], 1, 2)[:, None],
    ),
    "layer_norm": (rs.layer_norm, lambda x: F.layer_norm(x, (x.shape[-1],))),
    "rms_norm": (
        lambda x: rs.rms_norm(x, None, 1e-6),
        lambda x: F.rms_norm(x, (x.shape[-1],), None, 1e-6),
    ),
    "l2_normalize": (rs.l2_normalize, lambda x: F.normalize(x, dim=-1)),
    "cosine_similarity": (
        lambda x: rs.cosine_similarity(x, x.flip(0)),
        lambda x: F.cosine_similarity(x, x.flip(0), dim=-1),
    ),
    "standardize": (
        lambda x: rs.standardize(x, 1)[0],
        lambda x: (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True),
    ),
    "minmax_scale": (
        lambda x: rs.minmax_scale(x, 1)[0],
        lambda x: (
            (x - x.amin(1, keepdim=True)) / (x.amax(1, keepdim=True) - x.amin(1, keepdim=True))
        ),
    ),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", sorted(CASES))
def test_nan_and_inf_follow_torch(name: str, dtype: torch.dtype) -> None:
    ours, ref = CASES[name]
    x = special().to(dtype)
    got = ours(x)
    want = ref(x.double())
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close_to(got, want, tol, tol, f"{name} {dtype}")


@pytest.mark.filterwarnings("ignore:std:UserWarning")
@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_inputs_give_empty_results(name: str) -> None:
    ours, ref = CASES[name]
    for shape in [(0, 5), (3, 0)] if name not in ("normalize",) else [(0, 5), (0, 0)]:
        x = torch.empty(shape, dtype=torch.float64)
        try:
            want_shape = ref(x).shape
        except (RuntimeError, IndexError):
            # torch refuses a reduction over an empty dim; an empty result (nothing to
            # scale) or a clear error are both fine here, a crash is not.
            want_shape = x.shape
            try:
                got = ours(x)
            except (ValueError, IndexError):
                continue
        else:
            got = ours(x)
        assert got.shape == want_shape and got.dtype == x.dtype, (name, shape)
