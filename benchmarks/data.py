"""rusttorch-data against the usual tabular loading paths: one full shuffled epoch in batches
of 256, from the file to the last batch (issue 3).

Data: N rows (default 1,000,000) x 100 float32 features + an int64 label, generated once,
deterministically, into $RUSTTORCH_BENCH_DATA (default /tmp/rusttorch-bench-data) as CSV
(about 1.1 GB at the default size), Parquet and .npy.

Every sample runs one candidate in a fresh subprocess (so that its peak RSS, VmHWM from
/proc/self/status, is its own; not ``ru_maxrss``, which a child started with vfork inherits
from the parent), with the same thread count for
all (torch, polars, pyarrow and rusttorch threads set to ``--threads``); candidates are
interleaved round by round after a warm-up round that also warms the page cache. The epoch
time counts from the first read to the last batch; interpreter start and imports are
excluded. "extra RSS" is the peak minus the RSS after imports, compared with the size of
the final float32 features + int64 labels.

Usage: python benchmarks/data.py [--rows 1000000] [--rounds 3] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _harness import Case, machine_info, report, save

FEATURES = 100
BATCH = 256


def data_dir() -> Path:
    return Path(os.environ.get("RUSTTORCH_BENCH_DATA", "/tmp/rusttorch-bench-data"))


def paths(rows: int) -> dict[str, Path]:
    d = data_dir()
    stem = f"tabular_{rows}x{FEATURES}"
    return {
        "csv": d / f"{stem}.csv",
        "parquet": d / f"{stem}.parquet",
        "npy_x": d / f"{stem}_x.npy",
        "npy_y": d / f"{stem}_y.npy",
    }


def generate(rows: int) -> dict[str, Path]:
    """Writes the dataset once (deterministic: seed 0); later runs reuse the files."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    p = paths(rows)
    if all(f.exists() for f in p.values()):
        return p
    p["csv"].parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"f{i}" for i in range(FEATURES)] + ["label"]
    X = np.empty((rows, FEATURES), dtype=np.float32)
    y = np.empty(rows, dtype=np.int64)
    step = 100_000
    tmp_csv = p["csv"].with_suffix(".csv.tmp")
    writer = None
    for start in range(0, rows, step):
        n = min(step, rows - start)
        xs = rng.standard_normal((n, FEATURES), dtype=np.float32)
        ys = rng.integers(0, 10, n, dtype=np.int64)
        X[start : start + n], y[start : start + n] = xs, ys
        table = pa.table(
            [pa.array(xs[:, i]) for i in range(FEATURES)] + [pa.array(ys)], names=names
        )
        if writer is None:
            writer = pcsv.CSVWriter(str(tmp_csv), table.schema)
        writer.write_table(table)
    if writer is not None:
        writer.close()
    tmp_csv.rename(p["csv"])
    table = pa.table([pa.array(X[:, i]) for i in range(FEATURES)] + [pa.array(y)], names=names)
    pq.write_table(table, str(p["parquet"]), row_group_size=65536)
    np.save(p["npy_x"], X)
    np.save(p["npy_y"], y)
    return p


# -- candidates (each runs in its own subprocess) --------------------------------------


def index_batches(X, y, seed: int = 0):
    """What a user without a loader writes: a permutation and fancy indexing."""
    import torch

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(y), generator=g)
    for i in range(0, len(y), BATCH):
        idx = perm[i : i + BATCH]
        yield X[idx], y[idx]


def candidate_pandas(p, workers: int):
    import pandas as pd
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    df = pd.read_csv(p["csv"])
    X = torch.from_numpy(df.iloc[:, :FEATURES].to_numpy(dtype="float32"))
    y = torch.from_numpy(df["label"].to_numpy(dtype="int64"))
    del df
    loader = DataLoader(TensorDataset(X, y), batch_size=BATCH, shuffle=True, num_workers=workers)
    return iter(loader)


def candidate_polars(p):
    import polars as pl

    df = pl.read_csv(p["csv"])
    X = df.select(df.columns[:FEATURES]).to_torch(dtype=pl.Float32)
    y = df["label"].to_torch()
    del df
    return index_batches(X, y)


def candidate_pyarrow_csv(p):
    import pyarrow.csv as pcsv
    import torch

    table = pcsv.read_csv(p["csv"])
    X = torch.from_numpy(table.select(range(FEATURES)).to_pandas().to_numpy(dtype="float32"))
    y = torch.from_numpy(table.column("label").to_numpy())
    del table
    return index_batches(X, y)


def candidate_pyarrow_parquet(p):
    import pyarrow.parquet as pq
    import torch

    table = pq.read_table(p["parquet"])
    X = torch.from_numpy(table.select(range(FEATURES)).to_pandas().to_numpy(dtype="float32"))
    y = torch.from_numpy(table.column("label").to_numpy())
    del table
    return index_batches(X, y)


def candidate_numpy_npy(p):
    import numpy as np
    import torch

    X = torch.from_numpy(np.load(p["npy_x"]))
    y = torch.from_numpy(np.load(p["npy_y"]))
    return index_batches(X, y)


def candidate_rusttorch(p, fmt: str, mode: str):
    import rusttorch_data as rd

    if fmt == "npy":
        # Memory-mapped and served in place (the .npy reader's resident dataset).
        return iter(
            rd.DataLoader(
                str(p["npy_x"]), labels=str(p["npy_y"]), batch_size=BATCH, shuffle=True, seed=0
            )
        )
    return iter(
        rd.DataLoader(str(p[fmt]), label="label", batch_size=BATCH, shuffle=True, seed=0, mode=mode)
    )


CANDIDATES = {
    "pandas.read_csv + DataLoader(num_workers=0)": lambda p: candidate_pandas(p, 0),
    "pandas.read_csv + DataLoader(num_workers=2)": lambda p: candidate_pandas(p, 2),
    "polars.read_csv -> to_torch + index batching": candidate_polars,
    "pyarrow.csv -> torch + index batching": candidate_pyarrow_csv,
    "rusttorch-data CSV (memory mode)": lambda p: candidate_rusttorch(p, "csv", "memory"),
    "rusttorch-data CSV (stream mode)": lambda p: candidate_rusttorch(p, "csv", "stream"),
    "pyarrow.parquet.read_table -> torch + index batching": candidate_pyarrow_parquet,
    "rusttorch-data Parquet (memory mode)": lambda p: candidate_rusttorch(p, "parquet", "memory"),
    "numpy.load(.npy) -> torch + index batching": candidate_numpy_npy,
    "rusttorch-data .npy (memory mode)": lambda p: candidate_rusttorch(p, "npy", "memory"),
}

GROUPS = {
    "CSV": [
        "pandas.read_csv + DataLoader(num_workers=0)",
        "pandas.read_csv + DataLoader(num_workers=2)",
        "polars.read_csv -> to_torch + index batching",
        "pyarrow.csv -> torch + index batching",
        "rusttorch-data CSV (memory mode)",
        "rusttorch-data CSV (stream mode)",
    ],
    "Parquet": [
        "pyarrow.parquet.read_table -> torch + index batching",
        "rusttorch-data Parquet (memory mode)",
    ],
    "npy": [
        "numpy.load(.npy) -> torch + index batching",
        "rusttorch-data .npy (memory mode)",
    ],
}
BASELINES = {
    "CSV": "pandas.read_csv + DataLoader(num_workers=0)",
    "Parquet": "pyarrow.parquet.read_table -> torch + index batching",
    "npy": "numpy.load(.npy) -> torch + index batching",
}


def first_batch_from_opened_source(rows: int, samples: int = 7) -> dict[str, Any]:
    """Stream mode's time to first batch once the CSV is opened (the readers' open plans the
    chunks with one scan of the file, timed separately), median of fresh loaders."""
    import statistics

    import rusttorch_data as rd
    from rusttorch_data import _native

    p = paths(rows)
    opens, firsts = [], []
    for _ in range(samples):
        t = time.perf_counter()
        src = _native.open_csv([str(p["csv"])], label="label")
        opens.append(time.perf_counter() - t)
        t = time.perf_counter()
        it = iter(rd.DataLoader(src, batch_size=BATCH, shuffle=True, seed=0, mode="stream"))
        next(it)
        firsts.append(time.perf_counter() - t)
        del it
    return {
        "open_csv_median_s": statistics.median(opens),
        "first_batch_after_open_median_s": statistics.median(firsts),
        "first_batch_after_open_max_s": max(firsts),
        "samples": samples,
    }


def rss_mib() -> float:
    """Peak resident memory of this process so far (Linux's VmHWM, in MiB)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    raise RuntimeError("no VmHWM in /proc/self/status")


def worker(name: str, rows: int) -> None:
    """Runs one candidate for one epoch and prints its measurements as JSON."""
    import torch  # noqa: F401  (imports are excluded from the timing and from "extra RSS")

    with contextlib.suppress(ImportError):
        import rusttorch_data  # noqa: F401
    import pandas  # noqa: F401
    import polars  # noqa: F401
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    p = paths(rows)
    base_rss = rss_mib()
    start = time.perf_counter()
    it = CANDIDATES[name](p)
    first = None
    batches = samples = 0
    checksum = 0
    for _features, y in it:
        if first is None:
            first = time.perf_counter() - start
        batches += 1
        samples += len(y)
        checksum += int(y[0])  # touch each batch so nothing is lazily skipped
    total = time.perf_counter() - start
    print(
        json.dumps(
            {
                "seconds": total,
                "first_batch_s": first,
                "batches": batches,
                "samples": samples,
                "peak_rss_mib": rss_mib(),
                "extra_rss_mib": rss_mib() - base_rss,
            }
        )
    )


def run_candidate(name: str, rows: int, threads: int) -> dict[str, Any] | None:
    env = dict(
        os.environ,
        RUSTTORCH_NUM_THREADS=str(threads),
        POLARS_MAX_THREADS=str(threads),
        OMP_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
    )
    code = (
        f"import sys, torch, pyarrow; torch.set_num_threads({threads}); "
        f"pyarrow.set_cpu_count({threads}); pyarrow.set_io_thread_count({threads}); "
        f"sys.path.insert(0, {str(Path(__file__).parent)!r}); import data; "
        f"data.worker({name!r}, {rows})"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {name}: failed: {proc.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", default="", help="comma-separated groups: CSV,Parquet,npy,ttfb")
    args = parser.parse_args()

    t = time.perf_counter()
    p = generate(args.rows)
    print(
        f"data: {p['csv']} ({p['csv'].stat().st_size / 1e9:.2f} GB), ready in "
        f"{time.perf_counter() - t:.1f} s"
    )
    tensor_mib = args.rows * (FEATURES * 4 + 8) / 2**20
    only = args.only.split(",") if args.only else []
    groups = [g for g in GROUPS if not only or g in only]
    names = [n for g in groups for n in GROUPS[g]]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    for r in range(args.rounds + 1):  # round 0 warms the page cache and is not counted
        for name in names:
            result = run_candidate(name, args.rows, args.threads)
            if result is not None and r > 0:
                runs[name].append(result)
        print(f"round {r} done" + (" (warm-up)" if r == 0 else ""))

    previous: dict[str, Any] = {}
    old = Path(__file__).parent / "results" / "data.json"
    if only and old.exists():
        # A partial run (--only) updates its groups and keeps the others' last results.
        previous = json.loads(old.read_text())
        if previous.get("rows") != args.rows:
            previous = {}
    payload: dict[str, Any] = {
        **previous,
        "benchmark": "data",
        "machine": machine_info(args.threads),
        "rows": args.rows,
        "features": FEATURES,
        "batch_size": BATCH,
        "csv_bytes": p["csv"].stat().st_size,
        "final_tensor_mib": tensor_mib,
        "groups": dict(previous.get("groups", {})),
        "load_average_at_end": os.getloadavg(),
    }
    for g in groups:
        cases = []
        for name in GROUPS[g]:
            if runs[name]:
                cases.append(
                    Case(name, fn=lambda: None, samples=[x["seconds"] for x in runs[name]])
                )
        if not any(c.name == BASELINES[g] for c in cases):
            continue
        rows = report(
            f"{g}: one shuffled epoch, {args.rows} rows, {args.threads} threads",
            cases,
            BASELINES[g],
        )
        for row in rows:
            rs = runs[row["case"]]
            row["first_batch_s_median"] = sorted(x["first_batch_s"] or 0 for x in rs)[len(rs) // 2]
            row["peak_rss_mib_max"] = max(x["peak_rss_mib"] for x in rs)
            row["extra_rss_mib_max"] = max(x["extra_rss_mib"] for x in rs)
            row["extra_rss_over_tensor"] = row["extra_rss_mib_max"] / tensor_mib
            row["batches"] = rs[0]["batches"]
        print(f"  {'candidate':<46} {'1st batch':>10} {'peak RSS':>10} {'extra/tensor':>13}")
        for row in rows:
            print(
                f"  {row['case']:<46} {row['first_batch_s_median'] * 1e3:>8.0f}ms "
                f"{row['peak_rss_mib_max']:>7.0f}MiB {row['extra_rss_over_tensor']:>12.2f}x"
            )
        payload["groups"][g] = rows
    if not only or "ttfb" in only:
        ttfb = first_batch_from_opened_source(args.rows)
        payload["stream_first_batch"] = ttfb
        print(
            f"\nstream mode, first batch after opening: "
            f"{ttfb['first_batch_after_open_median_s'] * 1e3:.0f} ms median "
            f"(open_csv: {ttfb['open_csv_median_s'] * 1e3:.0f} ms)"
        )
    # Ratios of rusttorch-data (CSV, memory mode) against every CSV candidate.
    if "CSV" in payload["groups"]:
        rows = {r["case"]: r["median_s"] for r in payload["groups"]["CSV"]}
        ours = rows.get("rusttorch-data CSV (memory mode)")
        if ours:
            payload["csv_speedups_of_rusttorch_memory"] = {k: v / ours for k, v in rows.items()}
            print("\nrusttorch-data (CSV, memory mode) is faster than:")
            for k, v in payload["csv_speedups_of_rusttorch_memory"].items():
                print(f"  {k:<46} {v:>6.2f}x")
    save("data", payload)


if __name__ == "__main__":
    main()
