"""The kernels against torch dense references: SpMV/SpMM with every reduction, SDDMM,
sparse softmax, SpGEMM, sparse attention, gather_scatter and the pattern builders."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from _sparse_support import dense_reduce, random_csr, rows_of

import rusttorch_sparse as rs

DTYPES = [torch.float32, torch.float64]
INDEX = [torch.int32, torch.int64]


def tol(dtype: torch.dtype) -> dict[str, float]:
    return (
        {"rtol": 1e-4, "atol": 1e-5} if dtype == torch.float32 else {"rtol": 1e-10, "atol": 1e-12}
    )


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", INDEX)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("d", [1, 5, 16, 64, 71])
def test_spmm_matches_scatter_reduce(
    dtype: torch.dtype, index_dtype: torch.dtype, reduce: str, d: int
) -> None:
    a = random_csr(30, 20, 120, seed=d, dtype=dtype, index_dtype=index_dtype, sum_duplicates=False)
    x = torch.randn(20, d, dtype=dtype, generator=torch.Generator().manual_seed(1))
    got = rs.spmm(a, x, reduce)
    torch.testing.assert_close(got, dense_reduce(a, x, reduce), **tol(dtype))
    if reduce == "sum":
        torch.testing.assert_close(a @ x, a.to_dense() @ x, **tol(dtype))


def test_spmm_empty_rows_give_zero_for_every_reduction() -> None:
    a = rs.CsrMatrix(
        torch.tensor([0, 0, 2, 2]), torch.tensor([0, 1]), torch.tensor([-1.0, -2.0]), (3, 2)
    )
    x = torch.tensor([[1.0], [3.0]])
    for reduce, middle in [("sum", -7.0), ("mean", -3.5), ("max", -1.0), ("min", -6.0)]:
        assert rs.spmm(a, x, reduce).flatten().tolist() == [0.0, middle, 0.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_spmv(dtype: torch.dtype) -> None:
    a = random_csr(40, 25, 150, seed=3, dtype=dtype)
    x = torch.randn(25, dtype=dtype)
    torch.testing.assert_close(rs.spmv(a, x), a.to_dense() @ x, **tol(dtype))
    torch.testing.assert_close(a @ x, a.to_dense() @ x, **tol(dtype))


def test_strided_dense_operand_is_copied_once_and_correct() -> None:
    a = random_csr(10, 12, 40, seed=4)
    x = torch.randn(8, 12, dtype=torch.float64).t()  # non-contiguous
    torch.testing.assert_close(rs.spmm(a, x), a.to_dense() @ x)


def test_large_spmm_runs_in_parallel_and_matches() -> None:
    a = random_csr(5000, 4000, 200_000, seed=5, dtype=torch.float32)
    x = torch.randn(4000, 64)
    torch.testing.assert_close(rs.spmm(a, x), a.to_torch() @ x, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(rs.spmm(a, x, "max"), dense_reduce(a, x, "max"))


def test_large_outputs_reuse_dropped_memory_and_overwrite_it() -> None:
    # [20000, 64] float32 (5 MB) is above the 4 MiB from which rt-view caches outputs: the
    # second spmm writes into the first's memory, and every value is its own.
    a = random_csr(20_000, 3000, 60_000, seed=6, dtype=torch.float32)
    x1, x2 = torch.randn(3000, 64), torch.randn(3000, 64)
    rs.release_cached_outputs()
    first = rs.spmm(a, x1)
    addr = first.data_ptr()
    del first
    assert rs.cached_output_bytes() >= 20_000 * 64 * 4
    second = rs.spmm(a, x2, "max")
    assert second.data_ptr() == addr
    torch.testing.assert_close(second, dense_reduce(a, x2, "max"))
    assert rs.release_cached_outputs() == 0  # `second` is alive: nothing cached


def test_an_invalid_output_cache_limit_warns_at_import_and_is_ignored(
    assert_invalid_cache_limit_warns: Callable[[str], None],
) -> None:
    assert_invalid_cache_limit_warns("rusttorch_sparse")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("d", [1, 7, 16, 64, 70])
def test_sddmm_matches_dense_product_at_pattern(dtype: torch.dtype, d: int) -> None:
    a = random_csr(30, 25, 200, seed=d, dtype=dtype)
    q = torch.randn(30, d, dtype=dtype)
    k = torch.randn(25, d, dtype=dtype)
    got = rs.sddmm(a, q, k, scale=0.5)
    want = 0.5 * (q @ k.t())[rows_of(a), a.col.long()]
    torch.testing.assert_close(got.values, want, **tol(dtype))
    ref = torch.sparse.sampled_addmm(a.to_torch(), q, k.t(), beta=0.0, alpha=0.5)
    torch.testing.assert_close(got.values, ref.values(), **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_softmax_matches_masked_dense_softmax(dtype: torch.dtype) -> None:
    a = random_csr(20, 15, 80, seed=6, dtype=dtype)
    a = a.with_values(a.values * 10)
    got = rs.sparse_softmax(a).to_dense()
    dense = torch.full((20, 15), float("-inf"), dtype=dtype)
    dense[rows_of(a), a.col.long()] = a.values
    want = torch.softmax(dense, dim=1).nan_to_num(0.0)  # empty rows: all -inf -> NaN -> 0
    torch.testing.assert_close(got, want, **tol(dtype))
    ref = torch.sparse.softmax(a.to_torch().to_sparse_coo(), dim=1).to_dense()
    torch.testing.assert_close(got, ref, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("index_dtype", INDEX)
def test_spgemm_matches_dense_product(dtype: torch.dtype, index_dtype: torch.dtype) -> None:
    a = random_csr(30, 20, 90, seed=7, dtype=dtype, index_dtype=index_dtype)
    b = random_csr(20, 25, 70, seed=8, dtype=dtype, index_dtype=index_dtype)
    c = rs.spgemm(a, b, sort_indices=True)
    torch.testing.assert_close(c.to_dense(), a.to_dense() @ b.to_dense(), **tol(dtype))
    torch.testing.assert_close(rs.spgemm(a, b).to_dense(), c.to_dense())
    assert c.index_dtype == index_dtype
    for r in range(c.shape[0]):
        cols = c.col[c.crow[r] : c.crow[r + 1]]
        assert torch.all(cols[1:] > cols[:-1])
    torch.testing.assert_close((a @ b).to_dense(), c.to_dense())
    torch.testing.assert_close((a @ b.to_coo()).to_dense(), c.to_dense())


def test_spgemm_in_parallel_matches_scipy() -> None:
    pytest.importorskip("scipy")
    a = random_csr(3000, 3000, 60_000, seed=9)
    c = rs.spgemm(a, a, sort_indices=True)
    ref = a.to_scipy() @ a.to_scipy()
    ref.sort_indices()
    assert c.nnz == ref.nnz
    assert c.col.numpy().tolist() == ref.indices.tolist()
    torch.testing.assert_close(c.values, torch.from_numpy(ref.data))


def dense_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    s = (q @ k.t() * scale).masked_fill(~mask, float("-inf"))
    return (torch.softmax(s, dim=-1) @ v).nan_to_num(0.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sparse_attention_matches_dense_masked_attention(dtype: torch.dtype) -> None:
    n, m, d, dv = 40, 35, 24, 10
    pattern = random_csr(n, m, 300, seed=10, dtype=dtype)
    g = torch.Generator().manual_seed(11)
    q, k = torch.randn(n, d, dtype=dtype, generator=g), torch.randn(m, d, dtype=dtype, generator=g)
    v = torch.randn(m, dv, dtype=dtype, generator=g)
    mask = pattern.to_dense() != 0
    got = rs.sparse_attention(q, k, v, pattern)
    torch.testing.assert_close(got, dense_attention(q, k, v, mask, 1 / math.sqrt(d)), **tol(dtype))
    batched = rs.sparse_attention(
        torch.stack([q, 2 * q]), torch.stack([k, k]), torch.stack([v, v]), pattern
    )
    torch.testing.assert_close(
        batched[1], dense_attention(2 * q, k, v, mask, 1 / math.sqrt(d)), **tol(dtype)
    )


def test_sparse_attention_on_a_sliding_window_matches_sdpa() -> None:
    n, d = 300, 32
    pattern = rs.sliding_window(n, 32)
    q, k, v = (torch.randn(n, d) for _ in range(3))
    mask = pattern.to_dense() > 0
    want = torch.nn.functional.scaled_dot_product_attention(
        q[None], k[None], v[None], attn_mask=mask[None]
    )[0]
    torch.testing.assert_close(rs.sparse_attention(q, k, v, pattern), want, rtol=1e-4, atol=1e-5)


def test_batched_sparse_attention_needs_equal_batch_shapes() -> None:
    # [2, 3] and [3, 2] batches hold 6 items each; pairing them by flat index would be wrong.
    pattern = rs.sliding_window(4, 3)
    q = torch.randn(2, 3, 4, 8)
    k = v = torch.randn(3, 2, 4, 8)
    with pytest.raises(ValueError, match=r"same leading \(batch\) dimensions"):
        rs.sparse_attention(q, k, v, pattern)
    want = torch.stack(
        [
            rs.sparse_attention(q[i, j], q[i, j], q[i, j], pattern)
            for i in range(2)
            for j in range(3)
        ]
    )
    torch.testing.assert_close(rs.sparse_attention(q, q, q, pattern), want.reshape(2, 3, 4, 8))


@pytest.mark.parametrize("requires_grad", [False, True])
def test_sparse_attention_of_an_empty_batch_is_empty(requires_grad: bool) -> None:
    pattern = rs.sliding_window(4, 3)
    q, k, v = (torch.randn(0, 4, 8, requires_grad=requires_grad) for _ in range(3))
    out = rs.sparse_attention(q, k, v, pattern)
    assert out.shape == (0, 4, 8)
    if requires_grad:
        out.sum().backward()
        assert q.grad is not None and q.grad.shape == q.shape
    with pytest.raises(ValueError, match="needs q"):
        rs.sparse_attention(torch.randn(0, 5, 8), k.detach(), v.detach(), pattern)


def test_sparse_attention_with_no_features_averages_the_window() -> None:
    # d = 0: every score is 0 (and the default scale 1/sqrt(d) must not divide by zero), so
    # each row is the plain mean of the values in its window.
    pattern = rs.sliding_window(5, 3)
    v = torch.randn(5, 3, dtype=torch.float64)
    out = rs.sparse_attention(v.new_empty(5, 0), v.new_empty(5, 0), v, pattern)
    mask = (pattern.to_dense() > 0).double()
    torch.testing.assert_close(out, (mask / mask.sum(1, keepdim=True)) @ v)


@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_gather_scatter_matches_index_add_and_scatter_reduce(reduce: str) -> None:
    g = torch.Generator().manual_seed(12)
    x = torch.randn(50, 8, generator=g)
    src = torch.randint(0, 50, (400,), generator=g)
    dst = torch.randint(0, 60, (400,), generator=g)
    got = rs.gather_scatter(x, src, dst, reduce, num_nodes=60)
    msgs = x[src]
    if reduce == "sum":
        want = torch.zeros(60, 8).index_add_(0, dst, msgs)
    else:
        op = {"mean": "mean", "max": "amax", "min": "amin"}[reduce]
        want = torch.zeros(60, 8).scatter_reduce_(
            0, dst[:, None].expand(-1, 8), msgs, op, include_self=False
        )
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(rs.gather_scatter(x, src.int(), dst.int(), reduce, 60), want)


def test_gather_scatter_with_zero_features_and_no_edges() -> None:
    x = torch.zeros(4, 0)
    out = rs.gather_scatter(x, torch.tensor([0, 3]), torch.tensor([1, 2]), "max")
    assert out.shape == (4, 0)
    empty = torch.zeros(0, dtype=torch.int64)
    out = rs.gather_scatter(torch.ones(3, 2), empty, empty, "mean", num_nodes=5)
    assert torch.equal(out, torch.zeros(5, 2))


def test_pattern_builders() -> None:
    s = rs.sliding_window(10, 4).to_dense()
    i, j = torch.meshgrid(torch.arange(10), torch.arange(10), indexing="ij")
    assert torch.equal(s > 0, (i - j).abs() <= 2)
    lf = rs.longformer(12, 2, [0, 7]).to_dense() > 0
    band = (torch.arange(12)[:, None] - torch.arange(12)[None, :]).abs() <= 1
    want = band.clone()
    want[[0, 7], :] = True
    want[:, [0, 7]] = True
    assert torch.equal(lf, want)
    assert torch.equal(
        rs.longformer(12, 2, 2).to_dense() > 0, rs.longformer(12, 2, [0, 1]).to_dense() > 0
    )
    b1, b2 = rs.bigbird(64, 8, 2, 1, seed=5), rs.bigbird(64, 8, 2, 1, seed=5)
    assert torch.equal(b1.col, b2.col) and torch.equal(b1.crow, b2.crow)
    d = b1.to_dense() > 0
    assert d[:8].all() and d[:, :8].all()  # the global block
    assert all(
        d[i, max(0, i // 8 * 8 - 8) : i // 8 * 8 + 16].all() for i in range(64)
    )  # window blocks
    per_block = d.reshape(8, 8, 8, 8).any(dim=(1, 3)).sum(1)
    assert per_block[2:-1].eq(1 + 3 + 2).all()  # global + 3 window + 2 random blocks
    assert per_block[1] == 3 + 2  # its window already holds the global block


# ---- NaN propagates (as in the dense torch references) -------------------------------


def with_nans(t: torch.Tensor, rows: list[int], col: int = 1) -> torch.Tensor:
    t = t.clone()
    t[rows, col] = float("nan")
    return t


@pytest.mark.parametrize("dtype", DTYPES)
def test_sddmm_propagates_nan(dtype: torch.dtype) -> None:
    a = random_csr(12, 10, 50, seed=20, dtype=dtype)
    g = torch.Generator().manual_seed(21)
    q = with_nans(torch.randn(12, 6, dtype=dtype, generator=g), [0, 5])
    k = with_nans(torch.randn(10, 6, dtype=dtype, generator=g), [3])
    got = rs.sddmm(a, q, k, scale=0.5).values
    want = 0.5 * (q @ k.t())[rows_of(a), a.col.long()]
    assert got.isnan().any() and not got.isnan().all()
    torch.testing.assert_close(got, want, equal_nan=True, **tol(dtype))


def masked_attention_reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor, scale: float
) -> torch.Tensor:
    """Dense masked attention in which a value row outside a query's pattern cannot
    reach it (``0 * nan`` would, in a plain ``p @ v``)."""
    s = (q @ k.t() * scale).masked_fill(~mask, float("-inf"))
    p = torch.softmax(s, dim=-1)
    terms = torch.where(mask[:, :, None], p[:, :, None] * v[None], 0.0)
    return terms.sum(1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("where", ["q", "k", "v"])
def test_sparse_attention_propagates_nan(dtype: torch.dtype, where: str) -> None:
    n, m, d, dv = 14, 11, 5, 4
    pattern = random_csr(n, m, 50, seed=22, dtype=dtype)
    g = torch.Generator().manual_seed(23)
    q = torch.randn(n, d, dtype=dtype, generator=g)
    k = torch.randn(m, d, dtype=dtype, generator=g)
    v = torch.randn(m, dv, dtype=dtype, generator=g)
    if where == "q":
        q = with_nans(q, [2, 7])
    elif where == "k":
        k = with_nans(k, [4])
    else:
        v = with_nans(v, [4, 9])
    mask = pattern.to_dense() != 0
    got = rs.sparse_attention(q, k, v, pattern, scale=0.4)
    want = masked_attention_reference(q, k, v, mask, 0.4)
    assert got.isnan().any() and not got.isnan().all()
    torch.testing.assert_close(got, want, equal_nan=True, **tol(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduce", ["sum", "mean", "max", "min"])
def test_gather_scatter_propagates_nan(dtype: torch.dtype, reduce: str) -> None:
    g = torch.Generator().manual_seed(24)
    x = with_nans(torch.randn(30, 6, dtype=dtype, generator=g), [3, 17], col=2)
    x[8, 4] = float("nan")
    src = torch.randint(0, 30, (120,), generator=g)
    dst = torch.randint(0, 35, (120,), generator=g)
    got = rs.gather_scatter(x, src, dst, reduce, num_nodes=35)
    msgs = x[src]
    if reduce == "sum":
        want = torch.zeros(35, 6, dtype=dtype).index_add_(0, dst, msgs)
    else:
        op = {"mean": "mean", "max": "amax", "min": "amin"}[reduce]
        want = torch.zeros(35, 6, dtype=dtype).scatter_reduce_(
            0, dst[:, None].expand(-1, 6), msgs, op, include_self=False
        )
    assert want.isnan().any()
    torch.testing.assert_close(got, want, equal_nan=True, **tol(dtype))
    # The differentiable path (autograd recording) gives the same.
    got = rs.gather_scatter(x.requires_grad_(), src, dst, reduce, num_nodes=35)
    torch.testing.assert_close(got.detach(), want, equal_nan=True, **tol(dtype))
