"""Per-call overhead of the rusttorch_view bridge against torch's own smallest ops.

A tensor-in, tensor-out no-op through rusttorch costs: borrowing the input (attribute reads
and a bounds check), allocating the output, a 4-element copy, and handing the output to
torch. Two output routes are measured side by side, and the DLPack one is the default in
`rt_view::python::owned_to_torch`:

- DLPack: Rust allocates (64-byte aligned) and passes ownership to torch in a capsule;
- torch.empty: torch allocates, then Rust borrows the new tensor and writes into it.

Goal (issue 2): a rusttorch round trip within 3 µs (torch.add of 4 elements: ~0.9 µs).

    python benchmarks/view.py [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from _harness import Case, machine_info, report, run_group, save

import rusttorch_view as rv


def overhead_cases(calls: int) -> list[Case]:
    x = torch.arange(4, dtype=torch.float32) + 1.0
    out = torch.empty(4)
    a = np.arange(4, dtype=np.float32) + 1.0
    return [
        Case("torch.add(x, x)", lambda: torch.add(x, x), calls),
        Case("x.clone()", lambda: x.clone(), calls),
        Case("torch.from_numpy(a)", lambda: torch.from_numpy(a), calls),
        Case("rv.info(x)  [input side only]", lambda: rv.info(x), calls),
        Case("rv.copy(x)  [DLPack output, default]", lambda: rv.copy(x), calls),
        Case(
            "rv._copy_torch_alloc(x)  [torch.empty output]",
            lambda: rv._native._copy_torch_alloc(x),
            calls,
        ),
        Case("rv.copy(x, out=out)", lambda: rv.copy(x, out=out), calls),
        Case("rv.to_torch(a)  [NumPy -> torch, zero copy]", lambda: rv.to_torch(a), calls),
    ]


def bandwidth_cases() -> list[Case]:
    # A transposed 4096 x 4096 float32 matrix (64 MiB): the strided read path at scale.
    big = torch.randn(4096, 4096).t()
    return [
        Case("big.contiguous()  [torch]", lambda: big.contiguous()),
        Case("rv.copy(big)", lambda: rv.copy(big)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20_000, help="calls per sample")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    rv.set_num_threads(args.threads)

    overhead = run_group(overhead_cases(args.calls), rounds=args.rounds)
    rows = report("Per-call overhead, 4-element float32 tensor", overhead, "torch.add(x, x)")
    bandwidth = run_group(bandwidth_cases(), rounds=max(5, args.rounds // 3), warmup_rounds=2)
    rows_bw = report(
        f"Strided copy, 4096x4096 float32 transposed, {args.threads} threads",
        bandwidth,
        "big.contiguous()  [torch]",
    )
    dlpack = next(c for c in overhead if c.name.startswith("rv.copy(x)  [DLPack"))
    empty = next(c for c in overhead if c.name.startswith("rv._copy_torch_alloc"))
    chosen = "dlpack" if dlpack.median_s <= empty.median_s else "torch.empty"
    print(
        f"\nround trip (DLPack route): {dlpack.median_s * 1e6:.2f} µs "
        f"(goal <= 3 µs); cheaper output route: {chosen}"
    )
    save(
        "view",
        {
            "machine": machine_info(args.threads),
            "overhead": rows,
            "strided_copy": rows_bw,
            "round_trip_us": dlpack.median_s * 1e6,
            "goal_us": 3.0,
            "cheaper_output_route": chosen,
        },
    )


if __name__ == "__main__":
    main()
