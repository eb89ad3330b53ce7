"""rusttorch_sparse against torch (MKL CSR, COO, index_add_/scatter_reduce, sampled_addmm,
dense and SDPA attention) and SciPy, same process, same thread count.

Cases (issue 5's goals in brackets):
- SpMM sum, power-law graph of 200k nodes, 4M edges, 64 float32 features
  [>= 1.2x torch CSR @ dense, >= 3x SciPy]; also R-MAT and a banded FEM-like matrix;
- SpMM mean / max as GNN aggregation vs gather + index_add_ / scatter_reduce [>= 10x];
- SDDMM at the graph's pattern vs torch.sparse.sampled_addmm [>= 1.5x];
- SpGEMM A @ A vs SciPy [>= 2x] and torch;
- sparse attention, n = 4096, window 256, d = 64, vs dense masked attention [faster] and
  scaled_dot_product_attention with the boolean mask [within 2x].

Candidates are interleaved, medians reported (benchmarks/_harness.py), with a 0.2 s pause
before each timed call so that torch's OpenMP threads, which spin for a while after each
op, do not take a core from the candidate timed next (`--settle 0` times them back to
back); results go to benchmarks/results/sparse.json.

    python benchmarks/sparse.py [--threads 2] [--rounds N] [--quick] [--settle S]
"""

from __future__ import annotations

import argparse
import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from _harness import Case, machine_info, report, run_group, save

import rusttorch_sparse as rs

# Seconds of pause before each timed call (see `_harness.run_group`); `--settle`.
SETTLE_S = 0.2


def power_law_graph(
    n: int, e: int, seed: int = 0, alpha: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """``e`` distinct edges whose endpoints follow a Zipf-like law (degree ~ rank^-alpha)
    over a shuffled node order."""
    g = torch.Generator().manual_seed(seed)
    weights = torch.arange(1, n + 1, dtype=torch.float64) ** -alpha
    perm = torch.randperm(n, generator=g)
    m = int(e * 1.6)
    src = perm[torch.multinomial(weights, m, replacement=True, generator=g)]
    dst = perm[torch.multinomial(weights, m, replacement=True, generator=g)]
    key = torch.unique(src * n + dst)
    key = key[torch.randperm(key.numel(), generator=g)[:e]]
    assert key.numel() == e, f"only {key.numel()} distinct edges; raise the oversampling"
    return key // n, key % n


def rmat_graph(
    scale: int, e: int, seed: int = 1, p: tuple[float, float, float] = (0.57, 0.19, 0.19)
) -> tuple[torch.Tensor, torch.Tensor]:
    """R-MAT (Graph500 parameters): each edge picks a quadrant per bit."""
    g = torch.Generator().manual_seed(seed)
    a, b, c = p
    src = torch.zeros(e, dtype=torch.int64)
    dst = torch.zeros(e, dtype=torch.int64)
    for bit in range(scale):
        r = torch.rand(e, generator=g)
        down = r >= a + b  # quadrants c, d
        right = ((r >= a) & (r < a + b)) | (r >= a + b + c)  # quadrants b, d
        src |= down.long() << bit
        dst |= right.long() << bit
    return src, dst


def banded(n: int, half_band: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A FEM-like banded pattern: each row couples to its neighbours within half_band."""
    offs = torch.arange(-half_band, half_band + 1)
    rows = torch.arange(n).repeat_interleave(offs.numel())
    cols = rows + offs.repeat(n)
    keep = (cols >= 0) & (cols < n)
    return rows[keep], cols[keep]


def csr_of(rows: torch.Tensor, cols: torch.Tensor, n: int, seed: int = 2) -> rs.CsrMatrix:
    g = torch.Generator().manual_seed(seed)
    vals = torch.rand(rows.numel(), generator=g) + 0.5
    return rs.CsrMatrix.from_coo(rows, cols, vals, (n, n))


def spmm_sum(name: str, a: rs.CsrMatrix, d: int, rounds: int) -> list[dict[str, Any]]:
    n = a.shape[1]
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(3))
    at = a.to_torch()
    sp = a.to_scipy()
    xn = x.numpy()
    coo = at.to_sparse_coo()
    ref = at @ x
    got = rs.spmm(a, x)
    torch.testing.assert_close(got, ref, rtol=1e-4, atol=1e-3)
    cases = [
        Case("torch CSR @ dense (MKL)", lambda: at @ x),
        Case("scipy csr @ ndarray", lambda: sp @ xn),
        Case("torch COO sparse.mm", lambda: torch.sparse.mm(coo, x)),
        Case("rusttorch spmm sum", lambda: rs.spmm(a, x)),
    ]
    return report(
        f"SpMM sum, {name}: nnz={a.nnz:,}, d={d}",
        run_group(cases, rounds=rounds, warmup_rounds=1, settle_s=SETTLE_S),
        "torch CSR @ dense (MKL)",
    )


def aggregation(
    a: rs.CsrMatrix, src: torch.Tensor, dst: torch.Tensor, d: int, rounds: int
) -> list[dict[str, Any]]:
    n = a.shape[0]
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(4))
    deg = torch.zeros(n).index_add_(0, dst, torch.ones(dst.numel())).clamp_min(1)
    idx = dst.unsqueeze(1).expand(-1, d)

    def index_add_mean() -> torch.Tensor:
        return torch.zeros(n, d).index_add_(0, dst, x[src]) / deg.unsqueeze(1)

    def scatter_max() -> torch.Tensor:
        return torch.zeros(n, d).scatter_reduce_(0, idx, x[src], "amax", include_self=False)

    pattern = rs.CsrMatrix.from_edge_index(torch.stack([src, dst]), n)
    torch.testing.assert_close(rs.spmm(pattern, x, "mean"), index_add_mean(), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(rs.spmm(pattern, x, "max"), scatter_max())
    cases = [
        Case("gather + index_add_ (mean)", index_add_mean),
        Case("rusttorch spmm mean", lambda: rs.spmm(pattern, x, "mean")),
        Case("rusttorch gather_scatter mean", lambda: rs.gather_scatter(x, src, dst, "mean")),
        Case("gather + scatter_reduce amax", scatter_max),
        Case("rusttorch spmm max", lambda: rs.spmm(pattern, x, "max")),
        Case("rusttorch gather_scatter max", lambda: rs.gather_scatter(x, src, dst, "max")),
    ]
    run_group(cases, rounds=rounds, warmup_rounds=1, settle_s=SETTLE_S)
    rows = report("GNN mean aggregation", cases[:3], "gather + index_add_ (mean)")
    rows += report("GNN max aggregation", cases[3:], "gather + scatter_reduce amax")
    return rows


def sddmm(a: rs.CsrMatrix, d: int, rounds: int) -> list[dict[str, Any]]:
    n = a.shape[0]
    g = torch.Generator().manual_seed(5)
    q = torch.randn(n, d, generator=g)
    k = torch.randn(n, d, generator=g)
    at = a.to_torch()
    kt = k.t()
    ref = torch.sparse.sampled_addmm(at, q, kt, beta=0.0)
    torch.testing.assert_close(rs.sddmm(a, q, k).values, ref.values(), rtol=1e-4, atol=1e-4)
    cases = [
        Case("torch.sparse.sampled_addmm", lambda: torch.sparse.sampled_addmm(at, q, kt, beta=0.0)),
        Case("rusttorch sddmm", lambda: rs.sddmm(a, q, k)),
    ]
    return report(
        f"SDDMM at the graph pattern, d={d}",
        run_group(cases, rounds=rounds, warmup_rounds=1, settle_s=SETTLE_S),
        "torch.sparse.sampled_addmm",
    )


def spgemm(a: rs.CsrMatrix, rounds: int) -> list[dict[str, Any]]:
    sp = a.to_scipy()
    at = a.to_torch()
    c = rs.spgemm(a, a, sort_indices=True)
    ref = sp @ sp
    ref.sort_indices()
    assert c.nnz == ref.nnz, (c.nnz, ref.nnz)
    assert np.array_equal(c.col.numpy(), ref.indices)
    nnz_c = c.nnz
    del c, ref  # a few GB each
    cases = [
        Case("scipy A @ A", lambda: sp @ sp),
        Case("torch CSR A @ A", lambda: at @ at),
        Case("rusttorch spgemm", lambda: rs.spgemm(a, a)),
        Case("rusttorch spgemm, sorted columns", lambda: rs.spgemm(a, a, sort_indices=True)),
    ]
    return report(
        f"SpGEMM A @ A: nnz(A)={a.nnz:,}, nnz(C)={nnz_c:,}",
        run_group(cases, rounds=rounds, warmup_rounds=1, settle_s=SETTLE_S),
        "scipy A @ A",
    )


def attention(n: int, window: int, d: int, rounds: int) -> list[dict[str, Any]]:
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(n, d, generator=g) for _ in range(3))
    pattern = rs.sliding_window(n, window)
    mask = pattern.to_dense() > 0
    scale = 1.0 / math.sqrt(d)

    def dense_masked() -> torch.Tensor:
        s = (q @ k.t()) * scale
        return torch.softmax(s.masked_fill(~mask, float("-inf")), dim=-1) @ v

    def sdpa() -> torch.Tensor:
        return F.scaled_dot_product_attention(q[None], k[None], v[None], attn_mask=mask[None])[0]

    torch.testing.assert_close(
        rs.sparse_attention(q, k, v, pattern), dense_masked(), rtol=1e-4, atol=1e-4
    )
    cases = [
        Case("dense masked attention", dense_masked),
        Case("SDPA with boolean mask", sdpa),
        Case("rusttorch sparse_attention", lambda: rs.sparse_attention(q, k, v, pattern)),
    ]
    return report(
        f"sparse attention n={n}, window={window}, d={d}, nnz={pattern.nnz:,}",
        run_group(cases, rounds=rounds, warmup_rounds=1, settle_s=SETTLE_S),
        "dense masked attention",
    )


def main() -> None:
    global SETTLE_S
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="a tenth of the sizes, for a smoke run")
    ap.add_argument("--only", default="", help="comma-separated groups: spmm,agg,sddmm,spgemm,attn")
    ap.add_argument(
        "--settle",
        type=float,
        default=SETTLE_S,
        help="seconds of pause before each timed call, so that the previous candidate's "
        "spinning pool threads (torch's OpenMP) are asleep; 0 times them back to back",
    )
    args = ap.parse_args()
    SETTLE_S = args.settle
    torch.set_num_threads(args.threads)
    rs.set_num_threads(args.threads)
    only = set(filter(None, args.only.split(",")))
    want = lambda g: not only or g in only  # noqa: E731
    scale = 10 if args.quick else 1
    n, e, d = 200_000 // scale, 4_000_000 // scale, 64
    src, dst = power_law_graph(n, e)
    a = csr_of(dst, src, n)
    results: dict[str, Any] = {
        "machine": machine_info(args.threads),
        "settle_s": args.settle,
        "groups": {},
    }
    # Other work on the machine skews multi-threaded candidates most; record how busy it was.
    results["load_average_at_start"] = os.getloadavg()
    groups = results["groups"]
    if want("spmm"):
        groups["spmm_power_law"] = spmm_sum("power-law 200k/4M", a, d, args.rounds)
        rs_, rd = rmat_graph(18 - (3 if args.quick else 0), e)
        groups["spmm_rmat"] = spmm_sum(
            "R-MAT scale 18", csr_of(rs_, rd, 1 << (18 - (3 if args.quick else 0))), d, args.rounds
        )
        br, bc = banded(n * 2, 10)
        groups["spmm_banded"] = spmm_sum("banded FEM-like", csr_of(br, bc, n * 2), d, args.rounds)
    if want("agg"):
        groups["aggregation"] = aggregation(a, src, dst, d, args.rounds)
    if want("sddmm"):
        groups["sddmm"] = sddmm(a, d, args.rounds)
    if want("spgemm"):
        groups["spgemm"] = spgemm(a, max(3, args.rounds // 2))
    if want("attn"):
        groups["attention"] = attention(4096, 256, 64, args.rounds)
    results["load_average_at_end"] = os.getloadavg()
    if not only:
        save("sparse", results)


if __name__ == "__main__":
    main()
