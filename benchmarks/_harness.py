"""Shared timing harness for rusttorch benchmarks.

Candidates are interleaved round by round (A, B, C, A, B, C, ...) after a warm-up, so that
drift in machine load affects all of them alike; each sample times a loop of calls, and
the report gives the median per-call time and its ratio to the named baseline.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).parent / "results"


@dataclass
class Case:
    """One candidate: a name, the call to time, and how many calls one sample makes."""

    name: str
    fn: Callable[[], Any]
    calls_per_sample: int = 1
    samples: list[float] = field(default_factory=list)

    @property
    def median_s(self) -> float:
        return statistics.median(self.samples)


def run_group(
    cases: list[Case],
    *,
    rounds: int = 15,
    warmup_rounds: int = 3,
    settle_s: float = 0.0,
    rewarm: bool = False,
) -> list[Case]:
    """Time every case `rounds` times, interleaved; store per-call seconds in `samples`.

    `settle_s` pauses before each case, so that the thread pool of the case before it
    (torch's OpenMP threads spin for a while after each op; rayon's briefly) has gone to
    sleep and does not compete for the cores with the case being timed. With `rewarm`, an
    untimed sample follows the pause: after a pause the first calls of either library run
    slowly (threads and idle virtual CPUs waking; on the 2-core VM the 19 calls of a 0.7 ms
    op right after a pause took 1.5 ms each), which would swamp samples of short calls."""
    for r in range(warmup_rounds + rounds):
        for case in cases:
            if settle_s:
                time.sleep(settle_s)
            fn = case.fn
            n = case.calls_per_sample
            if settle_s and rewarm:
                for _ in range(n):
                    fn()
            start = time.perf_counter()
            for _ in range(n):
                fn()
            elapsed = (time.perf_counter() - start) / n
            if r >= warmup_rounds:
                case.samples.append(elapsed)
    return cases


def format_seconds(s: float) -> str:
    if s < 1e-6:
        return f"{s * 1e9:.0f} ns"
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def report(title: str, cases: list[Case], baseline: str) -> list[dict[str, Any]]:
    """Print a table with ratios against `baseline` (>1 means faster than it) and return rows."""
    base = next(c for c in cases if c.name == baseline).median_s
    print(f"\n{title}  (baseline: {baseline})")
    print(f"  {'candidate':<46} {'median':>12} {'speedup':>9}")
    rows = []
    for c in cases:
        speedup = base / c.median_s
        print(f"  {c.name:<46} {format_seconds(c.median_s):>12} {speedup:>8.2f}x")
        rows.append(
            {
                "case": c.name,
                "median_s": c.median_s,
                "min_s": min(c.samples),
                "samples": len(c.samples),
                "speedup_vs_baseline": speedup,
                "baseline": baseline,
            }
        )
    return rows


def machine_info(threads: int) -> dict[str, Any]:
    import torch

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "torch": torch.__version__,
    }


def save(domain: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{domain}.json"
    path.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"\nresults written to {path}")
    return path
