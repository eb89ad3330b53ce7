"""torch.library integration: every op is torch.ops.rusttorch.<name> with a fake kernel;
torch.compile(fullgraph=True) traces through the public functions; opcheck passes."""

from __future__ import annotations

import pytest
import torch

import rusttorch_simd as rs

OPS = [
    "relu",
    "leaky_relu",
    "gelu",
    "silu",
    "sigmoid",
    "tanh",
    "softplus",
    "exp",
    "clamp",
    "fused_mad_normalize",
    "affine",
    "normalize",
    "mean_var",
    "standardize",
    "minmax_scale",
    "robust_scale",
    "layer_norm",
    "rms_norm",
    "softmax",
    "log_softmax",
    "l2_normalize",
    "cdist",
    "cosine_similarity",
]


@pytest.mark.parametrize("name", OPS)
def test_registered_under_the_rusttorch_namespace(name: str) -> None:
    assert hasattr(torch.ops.rusttorch, name)


def pipeline(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    h = rs.gelu(rs.affine(x, 2.0, 0.5))
    h = rs.layer_norm(rs.silu(h)) + rs.softmax(h) + rs.log_softmax(rs.tanh(h))
    h = rs.fused_mad_normalize(h, rs.sigmoid(h), rs.exp(rs.clamp(h, -3.0, 3.0)), 0.1, 2.0)
    z, mean, std = rs.standardize(rs.relu(h) + rs.softplus(h) + rs.leaky_relu(h))
    d = rs.cdist(z, y, "sqeuclidean") + rs.cosine_similarity(z, z.flip(0)).unsqueeze(1).sum()
    m, v = rs.mean_var(rs.l2_normalize(z) + rs.rms_norm(z), 1)
    s, _, _ = rs.minmax_scale(z)
    r, _, _ = rs.robust_scale(z)
    img = rs.normalize(z.reshape(2, 4, 4), [0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 4.0])
    return d.sum() + m.sum() + v.sum() + mean.sum() + std.sum() + s.sum() + r.sum() + img.sum()


def test_compile_fullgraph_traces_every_op() -> None:
    torch._dynamo.reset()
    x, y = torch.randn(8, 4), torch.randn(5, 4)
    compiled = torch.compile(pipeline, fullgraph=True, backend="inductor")
    assert torch.allclose(compiled(x, y), pipeline(x, y), rtol=1e-4, atol=1e-3)


def test_compile_fullgraph_with_backward() -> None:
    torch._dynamo.reset()

    def f(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return (rs.layer_norm(rs.gelu(x), w) * rs.softmax(x)).sum()

    x = torch.randn(6, 10, requires_grad=True)
    w = torch.randn(10, requires_grad=True)
    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    compiled(x, w).backward()
    gx, gw = x.grad.clone(), w.grad.clone()  # type: ignore[union-attr]
    x.grad = w.grad = None
    f(x, w).backward()
    assert torch.allclose(gx, x.grad) and torch.allclose(gw, w.grad)  # type: ignore[arg-type]


def test_compile_with_out_copies_into_it() -> None:
    torch._dynamo.reset()

    def f(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return rs.relu(x, out=out)

    x, out = torch.randn(10), torch.empty(10)
    torch.compile(f, fullgraph=True, backend="eager")(x, out)
    assert torch.equal(out, torch.relu(x))


OPCHECK = [
    (torch.ops.rusttorch.gelu.default, (torch.randn(3, 5), "none")),
    (torch.ops.rusttorch.relu.default, (torch.randn(3, 5),)),
    (torch.ops.rusttorch.clamp.default, (torch.randn(3, 5), -0.5, None)),
    (torch.ops.rusttorch.softplus.default, (torch.randn(3, 5), 1.0, 20.0)),
    (
        torch.ops.rusttorch.fused_mad_normalize.default,
        (torch.randn(7), torch.randn(7), torch.randn(7), 0.5, 2.0),
    ),
    (
        torch.ops.rusttorch.normalize.default,
        (torch.randn(2, 3, 4), torch.ones(3), torch.ones(3), 1),
    ),
    (torch.ops.rusttorch.standardize.default, (torch.randn(9, 4), 0, 1.0, 0.0, "propagate")),
    (torch.ops.rusttorch.mean_var.default, (torch.randn(9, 4), 1, 1.0, "omit")),
    (torch.ops.rusttorch.layer_norm.default, (torch.randn(4, 6), torch.ones(6), None, 1e-5)),
    (torch.ops.rusttorch.softmax.default, (torch.randn(4, 6),)),
    (torch.ops.rusttorch.cdist.default, (torch.randn(4, 3), torch.randn(5, 3), "l2")),
    (torch.ops.rusttorch.cosine_similarity.default, (torch.randn(4, 3), torch.randn(4, 3), 1e-8)),
    (torch.ops.rusttorch.leaky_relu.default, (torch.randn(3, 5), 0.1)),
    (torch.ops.rusttorch.silu.default, (torch.randn(3, 5),)),
    (torch.ops.rusttorch.sigmoid.default, (torch.randn(3, 5),)),
    (torch.ops.rusttorch.tanh.default, (torch.randn(3, 5),)),
    (torch.ops.rusttorch.exp.default, (torch.randn(3, 5),)),
    (
        torch.ops.rusttorch.affine.default,
        (torch.randn(3, 5), torch.randn(5), torch.tensor(0.5, dtype=torch.float64)),
    ),
    (torch.ops.rusttorch.minmax_scale.default, (torch.randn(9, 4), 0, [0.0, 1.0], "omit")),
    (torch.ops.rusttorch.robust_scale.default, (torch.randn(9, 4), 1, [25.0, 75.0], "propagate")),
    (torch.ops.rusttorch.rms_norm.default, (torch.randn(4, 6), torch.ones(6), None)),
    (torch.ops.rusttorch.log_softmax.default, (torch.randn(4, 6),)),
    (torch.ops.rusttorch.l2_normalize.default, (torch.randn(4, 6), 1e-12)),
    # 16-bit inputs: the fake kernels must give the outputs the input's dtype.
    (
        torch.ops.rusttorch.standardize.default,
        (torch.randn(9, 4).bfloat16(), 0, 1.0, 0.0, "propagate"),
    ),
    (torch.ops.rusttorch.mean_var.default, (torch.randn(9, 4).half(), 0, 1.0, "omit")),
    (
        torch.ops.rusttorch.cosine_similarity.default,
        (torch.randn(4, 3).half(), torch.randn(4, 3).half(), 1e-8),
    ),
]
# The same with inputs that require grad, so that opcheck also checks the autograd
# registrations (the backward formulas themselves are gradchecked in test_simd_autograd.py).
OPCHECK_GRAD = [
    (torch.ops.rusttorch.gelu.default, (torch.randn(3, 5, requires_grad=True), "none")),
    (torch.ops.rusttorch.silu.default, (torch.randn(3, 5, requires_grad=True),)),
    (
        torch.ops.rusttorch.normalize.default,
        (
            torch.randn(2, 3, 4, requires_grad=True),
            torch.randn(3, requires_grad=True),
            (torch.rand(3) + 0.5).requires_grad_(),
            1,
        ),
    ),
    (
        torch.ops.rusttorch.standardize.default,
        (torch.randn(9, 4, requires_grad=True), 0, 1.0, 0.0, "propagate"),
    ),
    (
        torch.ops.rusttorch.layer_norm.default,
        (torch.randn(4, 6, requires_grad=True), torch.randn(6, requires_grad=True), None, 1e-5),
    ),
    (torch.ops.rusttorch.log_softmax.default, (torch.randn(4, 6, requires_grad=True),)),
    (
        torch.ops.rusttorch.standardize.default,
        (torch.randn(9, 4).bfloat16().requires_grad_(), 1, 0.0, 0.5, "omit"),
    ),
    (torch.ops.rusttorch.mean_var.default, (torch.randn(9, 4, requires_grad=True), 1, 1.0, "omit")),
    (
        torch.ops.rusttorch.cdist.default,
        (torch.randn(4, 3, requires_grad=True), torch.randn(5, 3, requires_grad=True), "cosine"),
    ),
    (
        torch.ops.rusttorch.cdist.default,
        (torch.randn(2, 4, 3, requires_grad=True), torch.randn(2, 5, 3, requires_grad=True), "l2"),
    ),
    (
        torch.ops.rusttorch.cdist.default,
        (
            torch.randn(4, 3, requires_grad=True),
            torch.randn(5, 3, requires_grad=True),
            "sqeuclidean",
        ),
    ),
    (
        torch.ops.rusttorch.cosine_similarity.default,
        (torch.randn(4, 3, requires_grad=True), torch.randn(4, 3, requires_grad=True), 1e-8),
    ),
]


@pytest.mark.parametrize(
    "op,args", OPCHECK, ids=lambda v: str(v) if not isinstance(v, tuple) else ""
)
def test_opcheck(op, args) -> None:  # type: ignore[no-untyped-def]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize(
    "op,args", OPCHECK_GRAD, ids=lambda v: str(v) if not isinstance(v, tuple) else ""
)
def test_opcheck_with_autograd(op, args) -> None:  # type: ignore[no-untyped-def]
    torch.library.opcheck(op, args)


@pytest.mark.parametrize(
    "bad_out,problem",
    [(torch.zeros(6), "out has shape"), (torch.zeros(4, 6, dtype=torch.float64), "out has dtype")],
    ids=["shape", "dtype"],
)
def test_compiled_out_of_the_wrong_shape_or_dtype_is_refused_and_unwritten(
    bad_out: torch.Tensor, problem: str
) -> None:
    # Traced calls copy the op's result into out=; the copy must not broadcast or cast.
    x = torch.randn(4, 6)
    bad_out.fill_(3.0)

    def f(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        return rs.relu(x, out=out)

    with pytest.raises(Exception, match=problem):
        torch.compile(f, fullgraph=True, backend="eager")(x, bad_out)
    assert (bad_out == 3.0).all()
