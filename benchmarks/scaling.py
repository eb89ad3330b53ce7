"""Thread scaling: rusttorch against the same work in torch, pyarrow and pandas at 1, 2, 4, 8
and 16 threads, for machines with more cores than the 2-core machine the other benchmarks
were recorded on.

At each thread count T (torch, pyarrow and every rusttorch module set to T threads):
- CSV to tensor: ``rusttorch_data.read_csv`` against ``pyarrow.csv.read_csv`` + conversion
  to one float32 tensor (both T threads); ``pandas.read_csv`` (single-threaded C parser) is
  timed once, at the start, as the fixed reference;
- SpMM sum on the power-law graph of benchmarks/sparse.py (200k nodes, 4M edges, d = 64)
  against torch CSR @ dense (MKL);
- SDDMM at that pattern against ``torch.sparse.sampled_addmm``;
- the fused chain (a*b + c - mean) / std on 32M float32 elements, ``out=``, against eager
  torch (allocating; eager torch has no one-pass form);
- cdist l2 of [2048, 128] x [4096, 128] float32 against ``torch.cdist`` (both allocating),
  and the dot products alone (``rusttorch_simd.cdist(..., "dot", out=)`` against MKL's
  ``torch.mm(x, y.T, out=)``).

Medians of --rounds interleaved samples, a 0.2 s pause before each timed call (as in
sparse.py) so that torch's spinning OpenMP threads do not compete with the next candidate.
Results go to benchmarks/results/scaling_<N>cores.json (N: this machine's CPU count).

    python benchmarks/scaling.py [--threads 1,2,4,8,16] [--rounds 5] [--csv-rows 300000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _harness import Case, machine_info, run_group, save

import rusttorch_data as rd
import rusttorch_simd as rsimd
import rusttorch_sparse as rs

SETTLE_S = 0.2
CSV_FEATURES = 100


def set_threads(n: int) -> None:
    import pyarrow

    torch.set_num_threads(n)
    pyarrow.set_cpu_count(n)
    for module in (rd, rsimd, rs):
        module.set_num_threads(n)


def write_csv(rows: int, directory: Path) -> Path:
    """``rows`` x 100 float32 features + an int64 label, seeded, written by pyarrow."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, CSV_FEATURES), dtype=np.float32)
    y = rng.integers(0, 10, rows, dtype=np.int64)
    names = [f"f{i}" for i in range(CSV_FEATURES)] + ["label"]
    table = pa.table([pa.array(x[:, i]) for i in range(CSV_FEATURES)] + [pa.array(y)], names=names)
    path = directory / f"scaling_{rows}x{CSV_FEATURES}.csv"
    pcsv.write_csv(table, path)
    return path


def csv_cases(path: Path) -> list[Case]:
    import pyarrow.csv as pcsv

    def pyarrow_to_tensor() -> torch.Tensor:
        table = pcsv.read_csv(path)
        return torch.from_numpy(
            table.select(range(CSV_FEATURES)).to_pandas().to_numpy(dtype="float32")
        )

    x_ours, _ = rd.read_csv(str(path), label="label")
    torch.testing.assert_close(x_ours, pyarrow_to_tensor())
    return [
        Case("pyarrow.csv.read_csv -> float32 tensor", pyarrow_to_tensor),
        Case("rusttorch_data.read_csv", lambda: rd.read_csv(str(path), label="label")),
    ]


def pandas_csv_seconds(path: Path) -> float:
    import pandas as pd

    start = time.perf_counter()
    df = pd.read_csv(path)
    torch.from_numpy(df.iloc[:, :CSV_FEATURES].to_numpy(dtype="float32"))
    return time.perf_counter() - start


def sparse_cases() -> list[Case]:
    from sparse import csr_of, power_law_graph

    n, d = 200_000, 64
    src, dst = power_law_graph(n, 4_000_000)
    a = csr_of(src, dst, n)
    at = a.to_torch()
    g = torch.Generator().manual_seed(3)
    x, q, k = (torch.randn(n, d, generator=g) for _ in range(3))
    kt = k.t()
    torch.testing.assert_close(rs.spmm(a, x), at @ x, rtol=1e-4, atol=1e-3)
    ref = torch.sparse.sampled_addmm(at, q, kt, beta=0)
    torch.testing.assert_close(rs.sddmm(a, q, k).values, ref.values(), rtol=1e-4, atol=1e-4)
    return [
        Case("torch CSR @ dense (MKL)", lambda: at @ x),
        Case("rusttorch spmm sum", lambda: rs.spmm(a, x)),
        Case("torch.sparse.sampled_addmm", lambda: torch.sparse.sampled_addmm(at, q, kt, beta=0)),
        Case("rusttorch sddmm", lambda: rs.sddmm(a, q, k)),
    ]


def fused_cases(elements: int) -> list[Case]:
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(elements, generator=g) for _ in range(3))
    out = torch.empty_like(a)
    torch.testing.assert_close(
        rsimd.fused_mad_normalize(a, b, c, 0.5, 2.0, out=out), (a * b + c - 0.5) / 2.0
    )
    return [
        Case("torch eager (a*b + c - mean) / std", lambda: (a * b + c - 0.5) / 2.0),
        Case(
            "rusttorch fused_mad_normalize(out=)",
            lambda: rsimd.fused_mad_normalize(a, b, c, 0.5, 2.0, out=out),
        ),
    ]


def cdist_cases() -> list[Case]:
    g = torch.Generator().manual_seed(4)
    x, y = torch.randn(2048, 128, generator=g), torch.randn(4096, 128, generator=g)
    out = torch.empty(2048, 4096)
    torch.testing.assert_close(rsimd.cdist(x, y), torch.cdist(x, y), rtol=1e-4, atol=2e-3)
    return [
        Case("torch.cdist", lambda: torch.cdist(x, y)),
        Case("rusttorch cdist l2", lambda: rsimd.cdist(x, y)),
        Case("torch.mm(x, y.T, out=) [MKL]", lambda: torch.mm(x, y.T, out=out)),
        Case("rusttorch cdist dot (out=)", lambda: rsimd.cdist(x, y, "dot", out=out)),
    ]


PAIRS = {
    "csv": ("pyarrow.csv.read_csv -> float32 tensor", "rusttorch_data.read_csv"),
    "spmm": ("torch CSR @ dense (MKL)", "rusttorch spmm sum"),
    "sddmm": ("torch.sparse.sampled_addmm", "rusttorch sddmm"),
    "fused": ("torch eager (a*b + c - mean) / std", "rusttorch fused_mad_normalize(out=)"),
    "cdist": ("torch.cdist", "rusttorch cdist l2"),
    "cdist_dot": ("torch.mm(x, y.T, out=) [MKL]", "rusttorch cdist dot (out=)"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", default="1,2,4,8,16")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--csv-rows", type=int, default=300_000)
    parser.add_argument("--fused-elements", type=int, default=32 * 2**20)
    args = parser.parse_args()
    counts = [t for t in map(int, args.threads.split(",")) if t <= (os.cpu_count() or 1)]

    with tempfile.TemporaryDirectory() as tmp:
        csv_path = write_csv(args.csv_rows, Path(tmp))
        set_threads(1)
        pandas_csv_seconds(csv_path)  # warms the page cache
        pandas_s = min(pandas_csv_seconds(csv_path) for _ in range(2))
        print(f"pandas.read_csv -> float32 tensor, {args.csv_rows} rows: {pandas_s:.3f} s")
        cases = (
            csv_cases(csv_path) + sparse_cases() + fused_cases(args.fused_elements) + cdist_cases()
        )
        table: dict[str, dict[str, float]] = {}
        for t in counts:
            set_threads(t)
            for case in cases:
                case.samples.clear()
            run_group(cases, rounds=args.rounds, warmup_rounds=1, settle_s=SETTLE_S)
            table[str(t)] = {c.name: c.median_s for c in cases}
            line = ", ".join(
                f"{k} {table[str(t)][base] / table[str(t)][ours]:.2f}x"
                for k, (base, ours) in PAIRS.items()
            )
            csv_ours = table[str(t)]["rusttorch_data.read_csv"]
            print(f"{t:>2} threads: {line}; CSV vs pandas {pandas_s / csv_ours:.1f}x", flush=True)

    print(f"\n{'case':<42}" + "".join(f"{t:>10}" for t in table))
    for c in cases:
        print(f"{c.name:<42}" + "".join(f"{table[t][c.name] * 1e3:>8.1f}ms" for t in table))
    save(
        f"scaling_{os.cpu_count()}cores",
        {
            "benchmark": "scaling",
            "machine": machine_info(max(counts)),
            "thread_counts": counts,
            "csv_rows": args.csv_rows,
            "fused_elements": args.fused_elements,
            "pandas_read_csv_s": pandas_s,
            "median_s": table,
            "speedups": {
                t: {k: row[base] / row[ours] for k, (base, ours) in PAIRS.items()}
                | {"csv_vs_pandas": pandas_s / row["rusttorch_data.read_csv"]}
                for t, row in table.items()
            },
            "load_average_at_end": os.getloadavg(),
        },
    )


if __name__ == "__main__":
    main()
