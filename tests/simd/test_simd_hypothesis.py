"""Property tests over random shapes, strides and SIMD levels for the ops whose own suites
test fixed layouts: affine, normalize, standardize, robust_scale and cosine_similarity,
each against a float64 reference computed with torch or NumPy."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch
from _simd_support import assert_close_to
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_simd as rs

LEVELS = rs.supported_simd_levels()
DTYPES = st.sampled_from([torch.float32, torch.float64])
# float32 results: a few roundings at the scale of the inputs (|x| < ~5 here).
TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@contextmanager
def at_level(level: str) -> Iterator[None]:
    rs.set_simd_level(level)
    try:
        yield
    finally:
        rs.set_simd_level(None)


@st.composite
def layouts(draw: st.DrawFn, min_dims: int = 1, max_dims: int = 3) -> torch.Tensor:
    """A tensor of a random shape seen through a random layout: a step along the last
    dimension, an element offset into its storage, and possibly a transpose."""
    shape = draw(st.lists(st.integers(1, 9), min_size=min_dims, max_size=max_dims))
    step, offset = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    dtype = draw(DTYPES)
    full = [*shape[:-1], shape[-1] * step]
    n = int(np.prod(full))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**16)))
    base = torch.randn(n + offset, generator=g, dtype=torch.float64).to(dtype)
    x = base[offset:].view(full)[..., ::step]
    if draw(st.booleans()) and x.dim() >= 2:
        x = x.transpose(0, -1)
    return x


@settings(max_examples=80, deadline=None)
@given(x=layouts(), level=st.sampled_from(LEVELS), per_feature=st.booleans())
def test_affine(x: torch.Tensor, level: str, per_feature: bool) -> None:
    d = x.shape[-1]
    scale = torch.linspace(-2, 2, d, dtype=torch.float64) if per_feature else 1.5
    shift = torch.linspace(1, -1, d, dtype=torch.float64) if per_feature else -0.25
    with at_level(level):
        y = rs.affine(x, scale, shift)
    want = x.double() * scale + shift
    tol = TOL[x.dtype]
    assert_close_to(y, want, tol, tol, f"affine {list(x.shape)} {x.stride()} at {level}")


@settings(max_examples=80, deadline=None)
@given(x=layouts(min_dims=2), level=st.sampled_from(LEVELS), dim=st.integers(-2, 1))
def test_normalize(x: torch.Tensor, level: str, dim: int) -> None:
    c = x.shape[dim]
    mean = torch.linspace(-1, 1, c, dtype=torch.float64)
    std = torch.linspace(0.5, 2, c, dtype=torch.float64)
    with at_level(level):
        y = rs.normalize(x, mean.tolist(), std.tolist(), dim)
    shape = [1] * x.dim()
    shape[dim] = c
    want = (x.double() - mean.view(shape)) / std.view(shape)
    tol = TOL[x.dtype]
    assert_close_to(y, want, tol, tol, f"normalize dim {dim} {list(x.shape)} at {level}")


@pytest.mark.filterwarnings("ignore:std:UserWarning")
@settings(max_examples=80, deadline=None)
@given(x=layouts(min_dims=2, max_dims=2), level=st.sampled_from(LEVELS), dim=st.integers(0, 1))
def test_standardize(x: torch.Tensor, level: str, dim: int) -> None:
    with at_level(level):
        y, mean, std = rs.standardize(x, dim, eps=1e-3)
    x64 = x.double()
    m, s = x64.mean(dim, keepdim=True), x64.std(dim, keepdim=True)
    tol = TOL[x.dtype]
    assert_close_to(mean, m.squeeze(dim), tol, tol, "mean")
    # One row or column: the sample std is NaN (n - 1 = 0), as in torch.
    assert_close_to(std, s.squeeze(dim), tol, tol, "std")
    assert_close_to(y, (x64 - m) / (s + 1e-3), tol * 10, tol * 1e3, f"y at {level}")


@settings(max_examples=80, deadline=None)
@given(x=layouts(min_dims=2, max_dims=2), level=st.sampled_from(LEVELS), dim=st.integers(0, 1))
def test_robust_scale(x: torch.Tensor, level: str, dim: int) -> None:
    with at_level(level):
        y, center, scale = rs.robust_scale(x, dim)
    a = x.double().numpy()
    med = np.median(a, axis=dim, keepdims=True)
    q = np.percentile(a, [25.0, 75.0], axis=dim, keepdims=True)
    iqr = q[1] - q[0]
    iqr[iqr == 0] = 1.0  # scikit-learn's rule for constant features
    tol = TOL[x.dtype]
    assert_close_to(center, torch.from_numpy(med).squeeze(dim), tol, tol, "center")
    assert_close_to(scale, torch.from_numpy(iqr).squeeze(dim), tol, tol * 10, "scale")
    want = torch.from_numpy((a - med) / iqr)
    assert_close_to(y, want, tol * 10, tol * 1e2, f"y at {level}")


@settings(max_examples=80, deadline=None)
@given(x=layouts(), level=st.sampled_from(LEVELS), seed=st.integers(0, 2**16))
def test_cosine_similarity(x: torch.Tensor, level: str, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    other = torch.randn(x.shape, generator=g, dtype=torch.float64).to(x.dtype)
    with at_level(level):
        c = rs.cosine_similarity(x, other)
    want = torch.nn.functional.cosine_similarity(x.double(), other.double(), dim=-1)
    tol = TOL[x.dtype]
    assert_close_to(c, want, tol, tol, f"cosine {list(x.shape)} {x.stride()} at {level}")
