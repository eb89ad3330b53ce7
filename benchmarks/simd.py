"""rusttorch_simd against eager torch and torch.compile, same process, same thread count.

Cases (issue 4's goals in brackets):
- fused chain (a*b + c - mean)/std at 128M float32 elements: eager torch, torch.compile,
  rusttorch with and without out=, and the copy-bandwidth floor for reading three arrays
  and writing one [>= 4x eager, >= 1.3x compile, out= within 80% of the floor];
- single activations at 4M and 128M elements [>= 1.0x eager];
- per-column standardize of a [128k, 1000] float32 matrix vs eager
  (x - x.mean(0)) / x.std(0) [>= 10x], and the same in bfloat16 (read and written in 16
  bits, computed in float32 by both);
- layer_norm and softmax over rows [>= 1.0x torch]; cdist [>= 1.0x torch.cdist];
- 1k and 64k elements, where per-call overhead shows;
- the 4M activations and row ops once more with OMP_WAIT_POLICY=passive (see passive_omp).

Candidates are interleaved, medians reported (benchmarks/_harness.py), with a 0.2 s pause
before each sample (a loop of calls of one candidate) of the cases whose calls are short
(the 4M activations, row ops, cdist, per-call costs), so that torch's OpenMP threads, which
spin for a while after each op, do not take a core from the candidate timed next (as in
benchmarks/sparse.py; `--settle 0` times them back to back); an untimed sample follows the
pause, so that each library is timed in its steady state rather than waking up. The 128M
cases run back to back: with pauses, their fresh outputs cost both libraries far more on the
2-core VM (allocating exp took 278 ms instead of 81), an effect of the VM's memory, not of
either library. Results go to benchmarks/results/simd.json.

    python benchmarks/simd.py [--quick] [--threads 2] [--rounds N] [--settle S]
    python benchmarks/simd.py --section activations-4m --thread-counts 2,16 --rounds 9
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _harness import RESULTS_DIR, Case, format_seconds, machine_info, report, run_group, save

import rusttorch_simd as rs

MEAN, STD = 0.25, 1.75

# Seconds of pause before each sample (see `_harness.run_group`); `--settle`.
SETTLE_S = 0.2


def eager_chain(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    return (a * b + c - MEAN) / STD


def timed_compile(fn: Any, *args: torch.Tensor) -> tuple[Any, float]:
    """torch.compile'd ``fn`` and the seconds its first (compiling) call took."""
    compiled = torch.compile(fn, fullgraph=True)
    start = time.perf_counter()
    compiled(*args)
    return compiled, time.perf_counter() - start


def fused_chain(n: int, rounds: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.rand(n, generator=g) * 4 - 2 for _ in range(3))
    out = torch.empty(n)
    copy_dst = torch.empty(n)
    compiled, compile_s = timed_compile(eager_chain, a, b, c)
    compiled_out = torch.compile(
        lambda a, b, c, o: torch.div(a * b + c - MEAN, STD, out=o), fullgraph=True
    )
    compiled_out(a, b, c, out)
    cases = [
        Case("torch eager (a*b + c - mean)/std", lambda: eager_chain(a, b, c)),
        Case("torch.compile", lambda: compiled(a, b, c)),
        Case("rs.fused_mad_normalize", lambda: rs.fused_mad_normalize(a, b, c, MEAN, STD)),
        Case(
            "rs.fused_mad_normalize(out=)",
            lambda: rs.fused_mad_normalize(a, b, c, MEAN, STD, out=out),
        ),
        Case("copy a -> out (bandwidth probe)", lambda: copy_dst.copy_(a)),
    ]
    run_group(cases, rounds=rounds, warmup_rounds=2)
    rows = report(f"Fused chain, {n:,} float32 elements", cases, cases[0].name)
    by = {c.name: c.median_s for c in cases}
    nbytes = n * 4
    bandwidth = 2 * nbytes / by["copy a -> out (bandwidth probe)"]
    floor = 4 * nbytes / bandwidth
    ours_out = by["rs.fused_mad_normalize(out=)"]
    summary = {
        "elements": n,
        "copy_bandwidth_gb_s": bandwidth / 1e9,
        "floor_s": floor,
        "floor_fraction_out": floor / ours_out,
        "speedup_vs_eager": by[cases[0].name] / by["rs.fused_mad_normalize"],
        "speedup_out_vs_eager": by[cases[0].name] / ours_out,
        "speedup_vs_compile": by["torch.compile"] / by["rs.fused_mad_normalize"],
        "speedup_out_vs_compile": by["torch.compile"] / ours_out,
        "compile_first_call_s": compile_s,
    }
    print(
        f"  copy bandwidth {bandwidth / 1e9:.1f} GB/s -> floor for 3 reads + 1 write "
        f"{format_seconds(floor)}; rs out= reaches {summary['floor_fraction_out']:.0%} of it"
    )
    return {"rows": rows, "summary": summary}


ACTIVATIONS = {
    "relu": (torch.relu, rs.relu),
    "gelu": (F.gelu, rs.gelu),
    "gelu(tanh)": (lambda x: F.gelu(x, approximate="tanh"), lambda x, **k: rs.gelu(x, "tanh", **k)),
    "silu": (F.silu, rs.silu),
    "sigmoid": (torch.sigmoid, rs.sigmoid),
    "tanh": (torch.tanh, rs.tanh),
    "softplus": (F.softplus, rs.softplus),
    "exp": (torch.exp, rs.exp),
}


def activations(n: int, rounds: int, names: list[str]) -> list[dict[str, Any]]:
    x = torch.randn(n, generator=torch.Generator().manual_seed(1)) * 3
    out = torch.empty(n)
    results = []
    # About 80 ms of calls per sample: 19 at 4M elements, so that after the pause most calls
    # find the threads of both libraries awake, as in a loop.
    calls = max(1, 80_000_000 // n)
    for name in names:
        theirs, ours = ACTIVATIONS[name]
        cases = [
            Case(f"torch {name}", lambda t=theirs: t(x), calls),
            Case(f"rs.{name}", lambda o=ours: o(x), calls),
            Case(f"rs.{name}(out=)", lambda o=ours: o(x, out=out), calls),
        ]
        short = n < 2**24
        settle = SETTLE_S if short else 0.0
        run_group(cases, rounds=rounds, warmup_rounds=2, settle_s=settle, rewarm=short)
        rows = report(f"{name}, {n:,} float32 elements", cases, cases[0].name)
        results.append({"op": name, "elements": n, "rows": rows})
    return results


def standardize(
    rows_: int, cols: int, rounds: int, dtype: torch.dtype = torch.float32
) -> dict[str, Any]:
    x = torch.randn(rows_, cols, generator=torch.Generator().manual_seed(2)) * 5 + 3
    x = x.to(dtype)
    out = torch.empty_like(x)
    cases = [
        Case("torch eager (x - x.mean(0)) / x.std(0)", lambda: (x - x.mean(0)) / x.std(0)),
        Case("rs.standardize(x)", lambda: rs.standardize(x)),
        Case("rs.standardize(x, out=)", lambda: rs.standardize(x, out=out)),
        Case("rs.mean_var(x) [stats only]", lambda: rs.mean_var(x)),
        Case("torch.var_mean(x, 0) [stats only]", lambda: torch.var_mean(x, 0)),
    ]
    run_group(cases, rounds=rounds, warmup_rounds=1)
    name = str(dtype).removeprefix("torch.")
    rows = report(f"Per-column z-score, [{rows_:,}, {cols}] {name}", cases, cases[0].name)
    return {"shape": [rows_, cols], "dtype": name, "rows": rows}


def row_ops(n: int, d: int, rounds: int) -> list[dict[str, Any]]:
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(3))
    w, b = torch.rand(d) + 0.5, torch.randn(d)
    out = torch.empty_like(x)
    groups = {
        "layer_norm": [
            Case("torch layer_norm", lambda: F.layer_norm(x, (d,), w, b)),
            Case("rs.layer_norm", lambda: rs.layer_norm(x, w, b)),
            Case("rs.layer_norm(out=)", lambda: rs.layer_norm(x, w, b, out=out)),
        ],
        "rms_norm": [
            Case("torch rms_norm", lambda: F.rms_norm(x, (d,), w)),
            Case("rs.rms_norm", lambda: rs.rms_norm(x, w)),
        ],
        "softmax": [
            Case("torch softmax", lambda: torch.softmax(x, -1)),
            Case("rs.softmax", lambda: rs.softmax(x)),
            Case("rs.softmax(out=)", lambda: rs.softmax(x, out=out)),
        ],
        "log_softmax": [
            Case("torch log_softmax", lambda: torch.log_softmax(x, -1)),
            Case("rs.log_softmax", lambda: rs.log_softmax(x)),
        ],
    }
    results = []
    for name, cases in groups.items():
        run_group(cases, rounds=rounds, warmup_rounds=2, settle_s=SETTLE_S, rewarm=True)
        rows = report(f"{name}, [{n:,}, {d}] float32", cases, cases[0].name)
        results.append({"op": name, "shape": [n, d], "rows": rows})
    return results


def distances(n: int, m: int, d: int, rounds: int) -> dict[str, Any]:
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(n, d, generator=g), torch.randn(m, d, generator=g)
    cases = [
        Case("torch.cdist", lambda: torch.cdist(x, y)),
        Case("rs.cdist l2", lambda: rs.cdist(x, y)),
        Case("rs.cdist sqeuclidean", lambda: rs.cdist(x, y, "sqeuclidean")),
        Case("x @ y.T [dot, torch]", lambda: x @ y.T),
        Case("rs.cdist dot", lambda: rs.cdist(x, y, "dot")),
    ]
    run_group(cases, rounds=rounds, warmup_rounds=2, settle_s=SETTLE_S, rewarm=True)
    rows = report(f"cdist, [{n}, {d}] x [{m}, {d}] float32", cases, cases[0].name)
    return {"shape": [n, m, d], "rows": rows}


def overhead(n: int, calls: int, rounds: int) -> dict[str, Any]:
    x = torch.randn(n)
    out = torch.empty(n)
    a, b, c = torch.randn(n), torch.randn(n), torch.randn(n)
    rows2d = x.reshape(-1, 64) if n % 64 == 0 else x.reshape(1, -1)
    cases = [
        Case("torch.relu", lambda: torch.relu(x), calls),
        Case("rs.relu", lambda: rs.relu(x), calls),
        Case("rs.relu(out=)", lambda: rs.relu(x, out=out), calls),
        Case("F.gelu", lambda: F.gelu(x), calls),
        Case("rs.gelu", lambda: rs.gelu(x), calls),
        Case("torch eager chain", lambda: eager_chain(a, b, c), calls),
        Case("rs.fused_mad_normalize", lambda: rs.fused_mad_normalize(a, b, c, MEAN, STD), calls),
        Case("torch softmax (rows of 64)", lambda: torch.softmax(rows2d, -1), calls),
        Case("rs.softmax (rows of 64)", lambda: rs.softmax(rows2d), calls),
    ]
    run_group(cases, rounds=rounds, warmup_rounds=2, settle_s=SETTLE_S, rewarm=True)
    rows = report(f"Per-call cost at {n:,} float32 elements", cases, "torch.relu")
    return {"elements": n, "rows": rows}


def passive_omp(args: argparse.Namespace, rounds: int) -> Any:
    """The 4M activations and the row ops again, in a child process where torch's OpenMP
    threads sleep between ops (OMP_WAIT_POLICY=passive).

    By default they spin for a while after every torch op, and on a 2-core machine a
    spinning OpenMP thread takes a core from whatever runs next: in this interleaved
    benchmark, always a rusttorch call.
    """
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "passive.json"
        cmd = [
            sys.executable,
            __file__,
            "--section",
            "passive-child",
            "--threads",
            str(args.threads),
            "--rounds",
            str(rounds),
            "--json-to",
            str(target),
            "--settle",
            str(args.settle),
        ]
        if args.quick:
            cmd.append("--quick")
        env = {**os.environ, "OMP_WAIT_POLICY": "passive"}
        print("\n--- the same with OMP_WAIT_POLICY=passive (torch's threads do not spin) ---")
        subprocess.run(cmd, env=env, check=True)
        return json.loads(target.read_text())


def activations_by_threads(args: argparse.Namespace, rounds: int) -> None:
    """The 4M activation cases alone at each of --thread-counts (torch and rusttorch set
    alike), for machines with more cores: results/device/activations_4m_<N>cores.json."""
    counts = [int(t) for t in args.thread_counts.split(",")]
    ops = args.ops.split(",")
    by_threads: dict[str, Any] = {}
    for t in counts:
        torch.set_num_threads(t)
        rs.set_num_threads(t)
        print(f"--- {t} threads ---")
        by_threads[str(t)] = activations(4 * 1024 * 1024, rounds, ops)
    target = RESULTS_DIR / "device" / f"activations_4m_{os.cpu_count()}cores.json"
    if args.json_to:
        target = Path(args.json_to)
    payload = {"machine": machine_info(max(counts)), "rounds": rounds, "by_threads": by_threads}
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(payload, indent=1))
    print(f"results written to {target}")


def main() -> None:
    global SETTLE_S
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer rounds")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument(
        "--section", default="all", choices=["all", "activations-4m", "passive-child"]
    )
    parser.add_argument(
        "--thread-counts",
        default="2",
        help="activations-4m: comma-separated thread counts to time the 4M activations at",
    )
    parser.add_argument(
        "--ops", default=",".join(ACTIVATIONS), help="activations-4m: which activations"
    )
    parser.add_argument("--json-to", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--settle", type=float, default=SETTLE_S, help="pause before each sample")
    args = parser.parse_args()
    SETTLE_S = args.settle
    torch.set_num_threads(args.threads)
    rs.set_num_threads(args.threads)
    big = 16_000_000 if args.quick else 128 * 1024 * 1024
    rounds_big = args.rounds or (3 if args.quick else 5)
    rounds = args.rounds or (5 if args.quick else 11)
    row_shape = (8192 if args.quick else 32_768, 1024)
    if args.section == "activations-4m":
        activations_by_threads(args, rounds)
        return
    if args.section == "passive-child":
        child = {
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "activations_4m": activations(4 * 1024 * 1024, rounds, list(ACTIVATIONS)),
            "rows": row_ops(*row_shape, rounds),
        }
        Path(args.json_to).write_text(json.dumps(child))
        return
    print(f"rusttorch_simd {rs.__version__}, SIMD level {rs.simd_level()}, {args.threads} threads")
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {**machine_info(args.threads), "simd_level": rs.simd_level()},
        "quick": args.quick,
    }
    results["fused_chain"] = fused_chain(big, rounds_big)
    results["activations_4m"] = activations(4 * 1024 * 1024, rounds, list(ACTIVATIONS))
    results["activations_big"] = activations(big, rounds_big, ["relu", "gelu", "silu", "exp"])
    z_rows = 16_384 if args.quick else 131_072
    results["standardize"] = standardize(z_rows, 1000, rounds_big)
    results["standardize_bf16"] = standardize(z_rows, 1000, rounds_big, torch.bfloat16)
    results["rows"] = row_ops(*row_shape, rounds)
    results["cdist"] = [
        distances(2048, 4096, 128, rounds),
        distances(4096, 4096, 3, rounds),
    ]
    results["overhead"] = [
        overhead(1024, 20_000 if not args.quick else 5000, rounds),
        overhead(65_536, 1000 if not args.quick else 300, rounds),
    ]
    results["omp_passive"] = passive_omp(args, rounds)
    results["seconds"] = time.perf_counter() - started
    print(f"\ntotal {results['seconds']:.0f} s")
    save("simd", results)


if __name__ == "__main__":
    main()
