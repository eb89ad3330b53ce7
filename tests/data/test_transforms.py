"""Transforms inside the loader, against NumPy/torch references: fitted and given
parameters, composition, NaN handling, and argument checking."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_data as rd


def all_features(loader) -> torch.Tensor:
    return torch.cat([b if isinstance(b, torch.Tensor) else b[0] for b in loader])


def data(n=3000, f=5, dtype=torch.float32, seed=0):
    g = torch.Generator().manual_seed(seed)
    scale = torch.arange(1, f + 1, dtype=torch.float64) * 3
    return (torch.randn(n, f, generator=g, dtype=torch.float64) * scale + scale).to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("threads", [1, 3])
def test_standardize_is_fitted_like_numpy(dtype, threads):
    X = data(dtype=dtype)
    loader = rd.DataLoader(X, batch_size=128, transform=rd.Standardize(), num_threads=threads)
    t = loader.transform[0]
    ref = X.double().numpy()
    np.testing.assert_allclose(t.mean.numpy(), ref.mean(0), rtol=1e-6)
    np.testing.assert_allclose(t.std.numpy(), ref.std(0), rtol=1e-6)
    out = all_features(loader)
    assert out.dtype == dtype
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(out.double().numpy(), (ref - ref.mean(0)) / ref.std(0), atol=tol)
    # The source is untouched.
    assert torch.equal(X, data(dtype=dtype))


def test_minmax_with_range_and_nans_ignored_in_fit():
    X = data()
    X[5, 2] = float("nan")
    loader = rd.DataLoader(X, batch_size=1000, transform=rd.MinMaxScale(feature_range=(-1, 1)))
    t = loader.transform[0]
    ref = X.double().numpy()
    np.testing.assert_allclose(t.min.numpy(), np.nanmin(ref, 0), rtol=1e-7)
    np.testing.assert_allclose(t.max.numpy(), np.nanmax(ref, 0), rtol=1e-7)
    out = all_features(loader).double().numpy()
    expected = (ref - np.nanmin(ref, 0)) / (np.nanmax(ref, 0) - np.nanmin(ref, 0)) * 2 - 1
    np.testing.assert_allclose(out, expected, atol=1e-5)
    assert np.isnan(out[5, 2])


def test_given_parameters_and_composition():
    X = data()
    X[::7, 1] = float("nan")
    mean, std = [1.0, 2.0, 3.0, 4.0, 5.0], 2.0
    chain = [rd.FillNaN(-100.0), rd.Clip(min=-5.0, max=20.0), rd.Normalize(mean, std)]
    out = all_features(rd.DataLoader(X, batch_size=333, transform=chain)).double()
    ref = torch.nan_to_num(X.double(), nan=-100.0).clamp(-5.0, 20.0)
    ref = (ref - torch.tensor(mean, dtype=torch.float64)) / std
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-6)


def test_fitting_sees_the_transforms_before_it():
    X = data()
    X[0, 0] = float("nan")
    loader = rd.DataLoader(X, batch_size=3000, transform=[rd.FillNaN(0.0), rd.Standardize()])
    ref = torch.nan_to_num(X.double(), nan=0.0).numpy()
    np.testing.assert_allclose(loader.transform[1].mean.numpy(), ref.mean(0), rtol=1e-6)
    out = all_features(loader)
    assert not torch.isnan(out).any()


def test_standardize_given_statistics_and_zero_std():
    X = torch.ones(10, 2)
    out = all_features(rd.DataLoader(X, batch_size=4, transform=rd.Standardize()))
    # A constant column has std 0, which counts as 1: (x - mean) / 1 = 0.
    assert torch.equal(out, torch.zeros(10, 2))
    out = all_features(
        rd.DataLoader(X, batch_size=4, transform=rd.Standardize(mean=[0, 1], std=[2, 4]))
    )
    assert torch.allclose(out, torch.tensor([[0.5, 0.0]]).expand(10, 2))


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 300),
    cols=st.integers(1, 6),
    batch=st.integers(1, 64),
    seed=st.integers(0, 2**16),
)
def test_standardize_any_shape(rows, cols, batch, seed):
    X = torch.from_numpy(np.random.default_rng(seed).normal(3, 2, (rows, cols)).astype(np.float64))
    out = all_features(rd.DataLoader(X, batch_size=batch, transform=rd.Standardize()))
    ref = X.numpy()
    std = ref.std(0)
    std[std == 0] = 1
    np.testing.assert_allclose(out.numpy(), (ref - ref.mean(0)) / std, atol=1e-9)


@pytest.mark.parametrize(
    ("make", "error"),
    [
        (lambda: rd.Clip(), ValueError),
        (lambda: rd.Clip(2, 1), ValueError),
        (lambda: rd.Clip("a"), TypeError),
        (lambda: rd.Normalize([0.0], [0.0]), ValueError),
        (lambda: rd.Normalize(None, 1.0), ValueError),
        (lambda: rd.Normalize(["a"], [1.0]), TypeError),
        (lambda: rd.Standardize(std=[-1.0]), ValueError),
        (lambda: rd.MinMaxScale(feature_range=(1, 0)), ValueError),
        (lambda: rd.MinMaxScale(feature_range=(0, 1, 2)), ValueError),
        (lambda: rd.FillNaN("x"), TypeError),
        (lambda: rd.Standardize(mean=[]), ValueError),
    ],
)
def test_bad_transform_arguments(make, error):
    with pytest.raises(error):
        make()


def test_parameter_width_must_match_the_features():
    with pytest.raises(ValueError, match="features"):
        rd.DataLoader(torch.zeros(4, 3), transform=rd.Normalize([0.0, 1.0], 1.0))
    with pytest.raises(ValueError, match="features"):
        rd.DataLoader(torch.zeros(4, 3), transform=rd.Standardize(mean=[0.0, 1.0], std=[1.0, 1.0]))


def test_repr_shows_parameters():
    assert repr(rd.Clip(0, 1)) == "Clip(min=0.0, max=1.0)"
    assert repr(rd.Standardize()) == "Standardize()"
