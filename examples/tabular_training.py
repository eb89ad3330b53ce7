"""Train a small MLP for one epoch on a tabular CSV with rusttorch-data, next to the usual
pandas + torch DataLoader path, and print the throughput of both.

The dataset (a learnable 4-class problem, 32 float features) is generated once into
$RUSTTORCH_DEMO_DATA (default: ~/.cache/rusttorch/demo). Run:

    python examples/tabular_training.py [--rows 300000] [--batch-size 256]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

import rusttorch_data as rd

FEATURES = 32
CLASSES = 4


def dataset(rows: int) -> Path:
    """The CSV, written on first use (deterministic, seed 0)."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    root = Path(
        os.environ.get("RUSTTORCH_DEMO_DATA", Path.home() / ".cache" / "rusttorch" / "demo")
    )
    path = root / f"tabular_{rows}x{FEATURES}.csv"
    if path.exists():
        return path
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, FEATURES), dtype=np.float32)
    W = rng.standard_normal((FEATURES, CLASSES), dtype=np.float32)
    y = (X @ W + 0.5 * rng.standard_normal((rows, CLASSES), dtype=np.float32)).argmax(1)
    names = [f"x{i}" for i in range(FEATURES)] + ["target"]
    table = pa.table([pa.array(X[:, i]) for i in range(FEATURES)] + [pa.array(y)], names=names)
    tmp = path.with_suffix(".tmp")
    pcsv.write_csv(table, str(tmp))
    tmp.rename(path)
    print(f"generated {path} ({path.stat().st_size / 1e6:.0f} MB)")
    return path


def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(FEATURES, 64), torch.nn.ReLU(), torch.nn.Linear(64, CLASSES)
    )


def train_one_epoch(batches, net: torch.nn.Module) -> tuple[int, float]:
    """One epoch of Adam; returns the samples seen and the mean loss of the last 50 batches."""
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    seen, recent = 0, []
    for features, labels in batches:
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(features), labels)
        loss.backward()
        opt.step()
        seen += len(labels)
        recent = [*recent, loss.item()][-50:]
    return seen, sum(recent) / max(len(recent), 1)


def with_rusttorch(path: Path, batch_size: int) -> tuple[int, float, float]:
    start = time.perf_counter()
    loader = rd.DataLoader(
        str(path),
        label="target",
        batch_size=batch_size,
        shuffle=True,
        seed=0,
        transform=rd.Standardize(),
    )
    seen, loss = train_one_epoch(loader, model())
    return seen, loss, time.perf_counter() - start


def with_pandas(path: Path, batch_size: int) -> tuple[int, float, float]:
    import pandas as pd
    from torch.utils.data import DataLoader, TensorDataset

    start = time.perf_counter()
    df = pd.read_csv(path)
    X = torch.from_numpy(df.drop(columns="target").to_numpy(dtype=np.float32).copy())
    y = torch.from_numpy(df["target"].to_numpy(dtype=np.int64))
    X = (X - X.mean(0)) / X.std(0, unbiased=False)
    loader = DataLoader(TensorDataset(X, y), batch_size=batch_size, shuffle=True)
    seen, loss = train_one_epoch(loader, model())
    return seen, loss, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()
    path = dataset(args.rows)
    print(
        f"one epoch of a {FEATURES}-64-{CLASSES} MLP on {path.name}, batch {args.batch_size}, "
        f"{torch.get_num_threads()} torch threads, {rd.get_num_threads()} rusttorch threads"
    )
    # torch's first forward/backward/Adam step pays one-off start-up costs (seconds here);
    # pay them before timing so they don't land on whichever candidate runs first.
    warm = [
        (torch.zeros(args.batch_size, FEATURES), torch.zeros(args.batch_size, dtype=torch.long))
    ]
    train_one_epoch(warm, model())
    results = {}
    for name, run in (
        ("rusttorch-data", with_rusttorch),
        ("pandas + torch DataLoader", with_pandas),
    ):
        seen, loss, seconds = run(path, args.batch_size)
        results[name] = seconds
        print(
            f"  {name:<28} {seconds:6.2f} s  {seen / seconds:>10,.0f} samples/s  "
            f"final loss {loss:.3f}"
        )
    ratio = results["pandas + torch DataLoader"] / results["rusttorch-data"]
    print(f"rusttorch-data: {ratio:.1f}x the end-to-end throughput (file to trained epoch)")


if __name__ == "__main__":
    main()
