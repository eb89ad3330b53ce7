"""Autograd: every activation and normalization checked with torch.autograd.gradcheck in
float64 through the registered rusttorch:: ops; gradients agree with torch's own ops."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
import torch.nn.functional as F

import rusttorch_simd as rs


def inputs(*shape: int, seed: int = 0, away_from: float | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g, dtype=torch.float64) * 2
    if away_from is not None:
        # Kinks (relu at 0, clamp at its bounds) have no derivative: keep clear of them.
        x = torch.where((x - away_from).abs() < 0.05, x + 0.2, x)
    return x.requires_grad_()


UNARY: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], float | None]] = {
    "relu": (rs.relu, 0.0),
    "leaky_relu": (lambda x: rs.leaky_relu(x, 0.1), 0.0),
    "gelu": (rs.gelu, None),
    "gelu_tanh": (lambda x: rs.gelu(x, "tanh"), None),
    "silu": (rs.silu, None),
    "sigmoid": (rs.sigmoid, None),
    "tanh": (rs.tanh, None),
    "softplus": (lambda x: rs.softplus(x, 1.5, 3.0), None),
    "exp": (rs.exp, None),
    "clamp": (lambda x: rs.clamp(x, -1.0, 1.0), 1.0),
    "affine": (lambda x: rs.affine(x, 1.5, -0.5), None),
    "normalize": (lambda x: rs.normalize(x, [0.1, 0.2, 0.3], [0.5, 2.0, 4.0], 1), None),
    "layer_norm": (lambda x: rs.layer_norm(x), None),
    "rms_norm": (lambda x: rs.rms_norm(x), None),
    "softmax": (rs.softmax, None),
    "log_softmax": (rs.log_softmax, None),
    "l2_normalize": (rs.l2_normalize, None),
    "standardize": (lambda x: rs.standardize(x)[0], None),
    "standardize_dim1_eps": (lambda x: rs.standardize(x, 1, eps=0.1, correction=0)[0], None),
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_gradcheck(name: str) -> None:
    fn, kink = UNARY[name]
    x = inputs(4, 3, 5, away_from=kink)
    if kink == 1.0:
        x = inputs(4, 3, 5, away_from=-1.0).detach()
        x = torch.where((x - 1.0).abs() < 0.05, x - 0.2, x).requires_grad_()
    assert torch.autograd.gradcheck(fn, (x,), eps=1e-6, atol=1e-6, rtol=1e-5)


def test_standardize_gradients_include_the_statistics() -> None:
    x = inputs(6, 4)
    assert torch.autograd.gradcheck(lambda t: rs.standardize(t), (x,), eps=1e-6, atol=1e-6)


def test_gradcheck_with_parameter_gradients() -> None:
    x = inputs(5, 7, seed=1)
    w = inputs(7, seed=2)
    b = inputs(7, seed=3)
    assert torch.autograd.gradcheck(lambda x, w, b: rs.layer_norm(x, w, b), (x, w, b))
    assert torch.autograd.gradcheck(lambda x, w: rs.rms_norm(x, w, 1e-6), (x, w))
    assert torch.autograd.gradcheck(lambda x, s, t: rs.affine(x, s, t), (x, w, b))
    a, c = inputs(9, seed=4), inputs(9, seed=5)
    assert torch.autograd.gradcheck(
        lambda a, b, c: rs.fused_mad_normalize(a, b, c, 0.5, 2.0), (a, inputs(9, seed=6), c)
    )


@pytest.mark.parametrize(
    "ours,theirs",
    [
        (rs.gelu, F.gelu),
        (rs.silu, F.silu),
        (rs.softplus, F.softplus),
        (lambda x: rs.layer_norm(x), lambda x: F.layer_norm(x, (x.shape[-1],))),
        (rs.log_softmax, lambda x: torch.log_softmax(x, -1)),
    ],
)
def test_gradients_match_torch_in_float32(ours, theirs) -> None:  # type: ignore[no-untyped-def]
    x = torch.randn(8, 33, requires_grad=True)
    g = torch.randn(8, 33)
    (ga,) = torch.autograd.grad(ours(x), x, g)
    (gb,) = torch.autograd.grad(theirs(x), x, g)
    assert torch.allclose(ga, gb, rtol=1e-4, atol=1e-5)


def test_no_grad_and_detached_inputs_take_the_direct_path() -> None:
    x = torch.randn(4, requires_grad=True)
    with torch.no_grad():
        y = rs.gelu(x)
    assert not y.requires_grad
    assert rs.gelu(x.detach()).grad_fn is None
    assert rs.gelu(x).grad_fn is not None


def test_out_with_autograd_is_refused_like_torch() -> None:
    x = torch.randn(4, requires_grad=True)
    with pytest.raises(RuntimeError, match="out="):
        rs.tanh(x, out=torch.empty(4))


def test_normalize_gradients_reach_tensor_mean_and_std() -> None:
    x = inputs(3, 4, 5, seed=7)
    mean, std = inputs(4, seed=8), (torch.rand(4, dtype=torch.float64) + 0.5).requires_grad_()
    assert torch.autograd.gradcheck(lambda x, m, s: rs.normalize(x, m, s, 1), (x, mean, std))
    m0 = torch.tensor(0.3, dtype=torch.float64, requires_grad=True)
    s0 = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, m, s: rs.normalize(x, m, s, -1), (x, m0, s0))
    # Only a parameter requires grad: the op must still record it.
    assert torch.autograd.gradcheck(lambda m: rs.normalize(x.detach(), m, 2.0, 1), (mean,))


def test_standardize_omit_gradients_skip_the_missing_entries() -> None:
    torch.manual_seed(9)
    x = torch.randn(9, 3, dtype=torch.float64)
    x[1, 0] = x[4, 2] = x[5, 2] = float("nan")
    x.requires_grad_()

    def nan_aware(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # The statistics over the present entries, with torch ops (the reference).
        present = ~t.isnan()
        n = present.sum(0)
        mean = torch.where(present, t, 0.0).sum(0) / n
        xc = torch.where(present, t - mean, 0.0)
        std = (xc.pow(2).sum(0) / (n - 1)).sqrt()
        return torch.where(present, xc / std, float("nan")), mean, std

    ours = rs.standardize(x, nan_policy="omit")
    ref = nan_aware(x)
    g = [torch.randn_like(t) for t in ref]

    def loss(outs: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return sum((torch.nan_to_num(o) * w).sum() for o, w in zip(outs, g, strict=True))

    (ga,) = torch.autograd.grad(loss(ours), x)
    (gb,) = torch.autograd.grad(loss(ref), x)
    assert not ga.isnan().any()
    assert torch.allclose(ga, gb)
    assert ga[1, 0] == 0.0 and ga[4, 2] == 0.0


@pytest.mark.parametrize(
    "call",
    [lambda a, b: rs.cdist(a, b), lambda a, b: rs.cosine_similarity(a, b)],
    ids=["cdist", "cosine_similarity"],
)
def test_ops_without_autograd_refuse_inputs_that_require_grad(call) -> None:  # type: ignore[no-untyped-def]
    a, b = torch.randn(4, 3, requires_grad=True), torch.randn(4, 3)
    with pytest.raises(RuntimeError, match="has no autograd"):
        call(a, b)
    with pytest.raises(RuntimeError, match="has no autograd"):
        call(b, a)
    with torch.no_grad():
        assert call(a, b).shape[0] == 4
    assert call(a.detach(), b).grad_fn is None
