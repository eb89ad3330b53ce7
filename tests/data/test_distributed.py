"""Distributed sharding: every sample exactly once per epoch across ranks, the uneven
policies, equal batch counts on every rank, rank resolution, and a two-process gloo run."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import rusttorch_data as rd


def data(n: int):
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


def rank_epoch(n, rank, world, **kw):
    loader = rd.DataLoader(data(n), rank=rank, world_size=world, **kw)
    batches = [labels.tolist() for _, labels in loader]
    return loader, batches


@pytest.mark.parametrize("n", [0, 1, 5, 97, 100, 256])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
@pytest.mark.parametrize("shuffle", [False, True])
def test_even_batches_serves_every_sample_once(n, world, shuffle):
    seen, counts = [], set()
    for rank in range(world):
        loader, batches = rank_epoch(n, rank, world, batch_size=8, shuffle=shuffle, seed=4)
        assert len(batches) == len(loader)
        counts.add(len(batches))
        seen += [i for b in batches for i in b]
        assert loader.stats["samples_dropped"] == 0 and loader.stats["samples_padded"] == 0
    assert len(counts) == 1, "every rank yields the same number of batches"
    assert sorted(seen) == list(range(n))


@pytest.mark.parametrize("n", [1, 10, 97])
@pytest.mark.parametrize("world", [2, 3, 4])
def test_drop_and_pad(n, world):
    dropped_total, seen = 0, []
    for rank in range(world):
        loader, batches = rank_epoch(n, rank, world, batch_size=4, uneven="drop", shuffle=True)
        flat = [i for b in batches for i in b]
        assert len(flat) == n // world
        seen += flat
        dropped_total += loader.stats["samples_dropped"]
    assert len(set(seen)) == len(seen) == n - n % world
    assert dropped_total == n % world

    padded_total, seen = 0, []
    for rank in range(world):
        loader, batches = rank_epoch(n, rank, world, batch_size=4, uneven="pad", shuffle=True)
        flat = [i for b in batches for i in b]
        assert len(flat) == -(-n // world)
        seen += flat
        padded_total += loader.stats["samples_padded"]
    assert set(seen) == set(range(n))
    assert len(seen) - n == padded_total == -(-n // world) * world - n


def test_ranks_take_contiguous_parts_of_one_global_permutation():
    whole = [
        i
        for _, b in rd.DataLoader(data(40), batch_size=40, shuffle=True, seed=2)
        for i in b.tolist()
    ]
    parts = []
    for rank in range(4):
        _, batches = rank_epoch(40, rank, 4, batch_size=40, shuffle=True, seed=2)
        parts += [i for b in batches for i in b]
    assert parts == whole


def test_rank_from_environment(monkeypatch):
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    loader = rd.DataLoader(data(10), batch_size=10)
    assert (loader.rank, loader.world_size) == (1, 2)
    assert next(iter(loader))[1].tolist() == [5, 6, 7, 8, 9]
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ValueError, match="RANK"):
        rd.DataLoader(data(10))
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK"):
        rd.DataLoader(data(10))
    monkeypatch.delenv("RANK")
    monkeypatch.delenv("WORLD_SIZE")
    assert rd.DataLoader(data(10)).world_size == 1


GLOO_SCRIPT = textwrap.dedent(
    """
    import os, sys, json
    import torch, torch.distributed as dist
    import rusttorch_data as rd

    dist.init_process_group("gloo")
    n = 1003
    X, y = torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)
    loader = rd.DataLoader((X, y), batch_size=16, shuffle=True, seed=7)
    assert (loader.rank, loader.world_size) == (dist.get_rank(), dist.get_world_size())
    result = {}
    for epoch in range(2):
        ids = []
        for _, labels in loader:
            # A collective per batch: a rank with fewer batches would hang here.
            t = torch.tensor([len(labels)])
            dist.all_reduce(t)
            ids += labels.tolist()
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (len(loader), ids))
        result[epoch] = gathered
    if dist.get_rank() == 0:
        print(json.dumps(result))
    dist.destroy_process_group()
    """
)


def test_two_process_gloo_run(tmp_path):
    pytest.importorskip("torch.distributed")
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("gloo is not available")
    script = tmp_path / "ddp.py"
    script.write_text(GLOO_SCRIPT)
    import json
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = []
    for rank in range(2):
        env = dict(
            os.environ,
            RANK=str(rank),
            WORLD_SIZE="2",
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            RUSTTORCH_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(script)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    result = json.loads(outs[0][0].strip().splitlines()[-1])
    epochs = []
    for epoch in ("0", "1"):
        (len0, ids0), (len1, ids1) = result[epoch]
        assert len0 == len1 == 32  # ceil(ceil(1003 / 2) / 16)
        assert sorted(ids0 + ids1) == list(range(1003))
        assert not set(ids0) & set(ids1)
        epochs.append(ids0 + ids1)
    assert epochs[0] != epochs[1]


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 300),
    world=st.integers(1, 4),
    batch_size=st.integers(1, 40),
    uneven=st.sampled_from(["even_batches", "drop", "pad"]),
    mode=st.sampled_from(["memory", "stream"]),
    stop_fraction=st.floats(0, 1),
    seed=st.integers(0, 2**32),
)
def test_exactly_once_across_ranks_and_resume_points(
    n, world, batch_size, uneven, mode, stop_fraction, seed
):
    """Every rank stops at some batch, saves its state, and a fresh loader resumes it: the
    union over ranks is each sample exactly once (even_batches), or the policy's share."""
    X, y = data(n)
    src = rd.tensor_source(X, y, chunk_rows=17)
    kw = dict(
        batch_size=batch_size,
        shuffle=True,
        seed=seed,
        uneven=uneven,
        mode=mode,
        world_size=world,
        shuffle_buffer=40,
    )
    seen, lens = [], set()
    for rank in range(world):
        loader = rd.DataLoader(src, rank=rank, **kw)
        lens.add(len(loader))
        it = iter(loader)
        stop = int(stop_fraction * len(loader))
        for _ in range(stop):
            seen += next(it)[1].tolist()
        state = loader.state_dict()
        del it
        resumed = rd.DataLoader(src, rank=rank, **kw)
        resumed.load_state_dict(state)
        if stop == len(loader):
            # The whole epoch was yielded: the resumed loader starts the next one.
            assert resumed.state_dict()["epoch"] == 1
            continue
        seen += [i for _, b in resumed for i in b.tolist()]
    assert len(lens) == 1
    if uneven == "even_batches":
        assert sorted(seen) == list(range(n))
    elif uneven == "drop":
        assert len(seen) == len(set(seen)) == n - n % world
    else:
        assert set(seen) == set(range(n)) and len(seen) == -(-n // world) * world
