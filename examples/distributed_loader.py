"""Two ranks (gloo, on one machine) reading disjoint shards of one dataset with
rusttorch-data: rank and world size come from torch.distributed, every sample is seen once
per epoch, and both ranks yield the same number of batches so collectives never hang.

    python examples/distributed_loader.py
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import rusttorch_data as rd


def run(rank: int, world_size: int, port: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    n = 10_001
    X, y = torch.randn(n, 8), torch.arange(n)
    loader = rd.DataLoader((X, y), batch_size=512, shuffle=True, seed=0)  # rank from dist
    for epoch in range(2):
        seen = torch.zeros(n, dtype=torch.int64)
        for _, ids in loader:
            seen[ids] += 1
            step = torch.tensor([1])
            dist.all_reduce(step)  # one collective per batch, as a training step would do
        dist.all_reduce(seen)
        if rank == 0:
            print(
                f"epoch {epoch}: {len(loader)} batches per rank, every sample seen "
                f"{seen.min().item()}..{seen.max().item()} times; stats {loader.stats['samples']}"
            )
    dist.destroy_process_group()


if __name__ == "__main__":
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    mp.spawn(run, args=(2, free_port), nprocs=2)
