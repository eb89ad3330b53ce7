"""Autograd: every activation, normalization, mean_var and distance checked with
torch.autograd.gradcheck in float64 through the registered rusttorch:: ops; gradients agree
with torch's own ops. The scalers (order statistics) refuse inputs that require grad."""

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


@pytest.mark.parametrize("metric", ["l2", "sqeuclidean", "cosine", "dot"])
@pytest.mark.parametrize("batch", [(), (2,)], ids=["2d", "batched"])
def test_cdist_gradcheck(metric: str, batch: tuple[int, ...]) -> None:
    x, y = inputs(*batch, 5, 3, seed=10), inputs(*batch, 4, 3, seed=11)
    assert torch.autograd.gradcheck(lambda a, b: rs.cdist(a, b, metric), (x, y))


def test_cdist_gradients_match_torch_also_at_zero_distance() -> None:
    torch.manual_seed(12)
    x = torch.randn(6, 5, requires_grad=True)
    # Two rows of y coincide with rows of x: torch.cdist's gradient there is 0.
    y = torch.cat([x.detach()[:2], torch.randn(4, 5)]).requires_grad_()
    g = torch.randn(6, 6)
    ours = torch.autograd.grad(rs.cdist(x, y), (x, y), g)
    theirs = torch.autograd.grad(torch.cdist(x, y), (x, y), g)
    for a, b in zip(ours, theirs, strict=True):
        assert not a.isnan().any()
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)
    # A self-distance matrix: its diagonal is 0 only up to rounding in the forward pass.
    xs = x.detach().clone().requires_grad_()
    (ours,) = torch.autograd.grad(rs.cdist(xs, xs), xs, g)
    (theirs,) = torch.autograd.grad(torch.cdist(xs, xs), xs, g)
    assert torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    # The other metrics against their torch formulas.
    formulas = {
        "sqeuclidean": lambda a, b: (a.unsqueeze(1) - b.unsqueeze(0)).pow(2).sum(-1),
        "cosine": lambda a, b: 1 - F.cosine_similarity(a.unsqueeze(1), b.unsqueeze(0), dim=-1),
        "dot": lambda a, b: a @ b.T,
    }
    for metric, formula in formulas.items():
        ours = torch.autograd.grad(rs.cdist(x, y, metric), (x, y), g)
        theirs = torch.autograd.grad(formula(x, y), (x, y), g)
        for a, b in zip(ours, theirs, strict=True):
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), metric


def test_euclidean_gradients_against_float64() -> None:
    torch.manual_seed(19)

    def error(metric: str, x: torch.Tensor, y: torch.Tensor, ref) -> float:  # type: ignore[no-untyped-def]
        g = torch.randn(*x.shape[:-1], y.shape[-2])
        a, b = x.clone().requires_grad_(), y.clone().requires_grad_()
        ours = torch.autograd.grad(rs.cdist(a, b, metric), (a, b), g)
        a64, b64 = x.double().requires_grad_(), y.double().requires_grad_()
        want = torch.autograd.grad(ref(a64, b64), (a64, b64), g.double())
        return max(
            float((o.double() - w).abs().max() / w.abs().max())
            for o, w in zip(ours, want, strict=True)
        )

    # sqeuclidean far from the origin, with pairs 1e-3 apart and coincident pairs: its
    # gradient does not depend on the forward's rounding.
    x = 1000.0 + torch.randn(2, 6, 4)
    near = x[:, :3] + 1e-3 * torch.randn(2, 3, 4)
    y = torch.cat([near, x[:, 3:], 1000.0 + torch.randn(2, 2, 4)], 1)
    sq = lambda a, b: (a.unsqueeze(-2) - b.unsqueeze(-3)).pow(2).sum(-1)  # noqa: E731
    assert error("sqeuclidean", x, y, sq) < 1e-5
    # l2 with coincident pairs, whose forward distance is rounding, not 0: no gradient, as
    # in torch.cdist; near the origin, far from it (the forward moves both sides by the
    # same point first), and a self-distance matrix.
    x = torch.randn(2, 6, 4)
    y = torch.cat([x[:, 3:], torch.randn(2, 5, 4)], 1)
    assert error("l2", x, y, torch.cdist) < 1e-5
    assert error("l2", x + 1000.0, y + 1000.0, torch.cdist) < 1e-5
    assert error("l2", x, x, torch.cdist) < 1e-5
    # Larger, off the origin: most of the diagonal comes out as rounding (up to ~0.01).
    x = 3.0 + torch.randn(200, 64)
    assert rs.cdist(x, x).diagonal().count_nonzero() > 50
    assert error("l2", x, x, torch.cdist) < 1e-4


def test_cosine_gradients_at_a_zero_row_match_torch() -> None:
    # A zero row's norm is clamped at eps (finite differences cannot check this: a step
    # of 1e-6 leaves the clamped region). torch's gradient there has no norm term either.
    x, y = inputs(4, 3, seed=13).detach(), inputs(4, 3, seed=14).detach()
    x[1] = 0.0
    pairwise = (
        lambda a, b: rs.cdist(a, b, "cosine"),
        lambda a, b: 1 - F.cosine_similarity(a.unsqueeze(1), b.unsqueeze(0), dim=-1),
        torch.randn(4, 4, dtype=torch.float64),
    )
    rowwise = (rs.cosine_similarity, F.cosine_similarity, torch.randn(4, dtype=torch.float64))
    for ours_fn, theirs_fn, g in (pairwise, rowwise):
        a1, b1 = x.clone().requires_grad_(), y.clone().requires_grad_()
        a2, b2 = x.clone().requires_grad_(), y.clone().requires_grad_()
        ours = torch.autograd.grad(ours_fn(a1, b1), (a1, b1), g)
        theirs = torch.autograd.grad(theirs_fn(a2, b2), (a2, b2), g)
        for p, q in zip(ours, theirs, strict=True):
            assert torch.isfinite(p).all()
            assert torch.allclose(p, q, rtol=1e-9, atol=0.0)


def test_cosine_similarity_gradients() -> None:
    a, b = inputs(3, 6, 4, seed=15), inputs(3, 6, 4, seed=16)
    assert torch.autograd.gradcheck(lambda p, q: rs.cosine_similarity(p, q, eps=1e-6), (a, b))
    a32 = a.detach().float().requires_grad_()
    b32 = b.detach().float().requires_grad_()
    g = torch.randn(3, 6)
    ours = torch.autograd.grad(rs.cosine_similarity(a32, b32), (a32, b32), g)
    theirs = torch.autograd.grad(F.cosine_similarity(a32, b32, dim=-1), (a32, b32), g)
    for p, q in zip(ours, theirs, strict=True):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6)
    # 16-bit inputs: gradients in the input's dtype, computed in float32.
    a16 = a32.detach().bfloat16().requires_grad_()
    (ga,) = torch.autograd.grad(
        rs.cosine_similarity(a16, b32.detach().bfloat16()), a16, g.bfloat16()
    )
    assert ga.dtype == torch.bfloat16
    assert torch.allclose(ga.float(), ours[0], rtol=0.05, atol=0.02)


@pytest.mark.parametrize("dim,correction", [(0, 1.0), (1, 0.0), (-1, 2.0)])
def test_mean_var_gradcheck(dim: int, correction: float) -> None:
    x = inputs(5, 4, 3, seed=17)
    assert torch.autograd.gradcheck(lambda t: rs.mean_var(t, dim, correction=correction), (x,))


def test_mean_var_gradients_match_torch_and_omit_missing_entries() -> None:
    x = inputs(8, 3, seed=18)
    gm, gv = torch.randn(3, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    mean, var = rs.mean_var(x)
    (ours,) = torch.autograd.grad((mean * gm).sum() + (var * gv).sum(), x)
    (theirs,) = torch.autograd.grad((x.mean(0) * gm).sum() + (x.var(0) * gv).sum(), x)
    assert torch.allclose(ours, theirs)
    xn = x.detach().clone()
    xn[2, 0] = xn[5, 1] = float("nan")
    xn.requires_grad_()
    mean, var = rs.mean_var(xn, nan_policy="omit")
    (ours,) = torch.autograd.grad((mean * gm).sum() + (var * gv).sum(), xn)
    present = ~xn.isnan()
    n = present.sum(0)
    ref_mean = torch.where(present, xn, 0.0).sum(0) / n
    ref_var = torch.where(present, xn - ref_mean, 0.0).pow(2).sum(0) / (n - 1)
    (theirs,) = torch.autograd.grad((ref_mean * gm).sum() + (ref_var * gv).sum(), xn)
    assert not ours.isnan().any() and ours[2, 0] == 0.0 and ours[5, 1] == 0.0
    assert torch.allclose(ours, theirs)
    h = torch.randn(8, 3).half().requires_grad_()
    (gh,) = torch.autograd.grad(rs.mean_var(h)[1].sum(), h)
    assert gh.dtype == torch.float16


def test_mean_gradient_is_not_spoiled_by_an_unused_nan_variance() -> None:
    # One row with correction=1: the variance is NaN (as torch's), the mean's gradient is
    # still 1 / n when only the mean reaches the loss.
    x = torch.randn(1, 3, dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(rs.mean_var(x)[0].sum(), x)
    assert torch.equal(g, torch.ones(1, 3, dtype=torch.float64))
    # A column with one present value under "omit".
    x = torch.tensor([[float("nan"), 1.0], [2.0, 3.0]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(rs.mean_var(x, nan_policy="omit")[0].sum(), x)
    assert g.tolist() == [[0.0, 0.5], [1.0, 0.5]]


@pytest.mark.parametrize(
    "call",
    [lambda a: rs.minmax_scale(a), lambda a: rs.robust_scale(a)],
    ids=["minmax_scale", "robust_scale"],
)
def test_scalers_refuse_inputs_that_require_grad(call) -> None:  # type: ignore[no-untyped-def]
    a = torch.randn(4, 3, requires_grad=True)
    with pytest.raises(RuntimeError, match="has no autograd"):
        call(a)
    with torch.no_grad():
        assert call(a)[0].shape == (4, 3)
    assert call(a.detach())[0].grad_fn is None


def test_scaler_ops_traced_with_grad_fail_clearly_in_backward() -> None:
    # What torch.compile records for a scaler whose input requires grad.
    x = torch.randn(5, 2, requires_grad=True)
    y, _, _ = torch.ops.rusttorch.minmax_scale(x, 0, [0.0, 1.0], "propagate")
    with pytest.raises(RuntimeError, match="minmax_scale has no autograd"):
        y.sum().backward()
    y, _, _ = torch.ops.rusttorch.robust_scale(x, 0, [25.0, 75.0], "propagate")
    with pytest.raises(RuntimeError, match="robust_scale has no autograd"):
        y.sum().backward()
