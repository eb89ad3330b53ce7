"""Stream mode over a chunked in-memory source: exactly once per epoch, the chunk-window
shuffle, the same order for any thread count, sharding, resume and drop_last."""

from __future__ import annotations

import itertools

import pytest
import torch

import rusttorch_data as rd


def source(n: int, chunk_rows: int):
    X = torch.arange(n, dtype=torch.float32).unsqueeze(1)
    return rd.tensor_source(X, torch.arange(n), chunk_rows=chunk_rows)


def stream(n=1000, chunk_rows=37, **kw):
    kw.setdefault("batch_size", 16)
    kw.setdefault("shuffle", True)
    kw.setdefault("seed", 1)
    kw.setdefault("shuffle_buffer", 100)
    return rd.DataLoader(source(n, chunk_rows), mode="stream", **kw)


def ids(loader) -> list[int]:
    out = []
    for f, labels in loader:
        assert torch.equal(f[:, 0].long(), labels)
        out += labels.tolist()
    return out


def test_every_sample_once_and_reshuffled_each_epoch():
    loader = stream()
    assert loader.mode == "stream"
    epochs = [ids(loader) for _ in range(3)]
    for e in epochs:
        assert sorted(e) == list(range(1000))
    assert epochs[0] != epochs[1] != epochs[2] and epochs[0] != list(range(1000))
    assert len(loader) == 63
    # 28 chunks (27 of 37 rows, then 1); windows ramp up over targets 12, 25, 50 rows (one
    # chunk each, or two when the 1-row chunk comes first), then >= 100 rows (3 chunks).
    assert 3 * 9 <= loader.stats["windows"] <= 3 * 12


def test_unshuffled_stream_is_the_file_order():
    assert ids(stream(shuffle=False)) == list(range(1000))


def test_windows_hold_whole_chunks():
    """Rows are only mixed within windows of consecutive (shuffled) chunks: each window's
    positions hold exactly the rows of the chunks it took. With 37-row chunks and a buffer
    of 74, the ramp gives windows of 1, 1, 1 chunks, then 2 chunks each."""
    order = ids(stream(n=37 * 11, chunk_rows=37, shuffle_buffer=74))
    bounds = [0, 37, 74, 111, 185, 259, 333, 407]
    for lo, hi in itertools.pairwise(bounds):
        part = order[lo:hi]
        chunks = {i // 37 for i in part}
        assert len(chunks) == (hi - lo) // 37
        assert sorted(part) == sorted(i for c in chunks for i in range(37 * c, 37 * c + 37))
        assert part != sorted(part)


@pytest.mark.parametrize("threads", [1, 2, 4])
def test_same_order_for_any_thread_count(threads):
    previous = rd.get_num_threads()
    try:
        rd.set_num_threads(1)
        reference = ids(stream(num_threads=1))
        rd.set_num_threads(threads)
        assert ids(stream(num_threads=threads)) == reference
    finally:
        rd.set_num_threads(previous)


def test_memory_and_stream_agree_without_shuffle():
    a = ids(stream(shuffle=False))
    b = ids(rd.DataLoader(source(1000, 37), batch_size=16, mode="memory"))
    assert a == b


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("uneven", ["even_batches", "drop", "pad"])
def test_sharded_stream(world, uneven):
    n = 1001
    per_rank, lens = [], set()
    whole = ids(stream(n=n))
    for rank in range(world):
        loader = stream(n=n, rank=rank, world_size=world, uneven=uneven)
        got = ids(loader)
        lens.add(len(loader))
        per_rank.append(got)
    assert len(lens) == 1
    flat = [i for r in per_rank for i in r]
    if uneven == "even_batches":
        # Contiguous parts of the one global sequence of the epoch.
        assert flat == whole
    elif uneven == "drop":
        assert flat == whole[: n - n % world]
    else:
        assert set(flat) == set(range(n))
        assert len(flat) == -(-n // world) * world
        assert flat[n:] == whole[: len(flat) - n]


@pytest.mark.parametrize("stop", [0, 3, 20])
@pytest.mark.parametrize("kw", [{}, {"rank": 1, "world_size": 2}])
def test_stream_resume(stop, kw):
    ref_loader = stream(**kw)
    ref = [[b.tolist() for _, b in ref_loader] for _ in range(2)]
    loader = stream(**kw)
    it = iter(loader)
    consumed = [next(it)[1].tolist() for _ in range(stop)]
    state = loader.state_dict()
    del it
    resumed = stream(**kw)
    resumed.load_state_dict(state)
    assert consumed + [b.tolist() for _, b in resumed] == ref[0]
    assert [b.tolist() for _, b in resumed] == ref[1]
    # A changed shuffle_buffer changes the order: the state is refused.
    with pytest.raises(ValueError, match="shuffle_buffer"):
        stream(shuffle_buffer=50, **kw).load_state_dict(state)


def test_drop_last_without_known_length():
    loader = stream(n=1000, drop_last=True)
    sizes = [len(b) for _, b in loader]
    assert sizes == [16] * 62
    assert len(loader) == 62


def test_stream_with_transform_matches_memory():
    X = torch.randn(500, 4, dtype=torch.float64) * 3 + 1
    y = torch.arange(500)
    src = rd.tensor_source(X, y, chunk_rows=64)
    a = rd.DataLoader(src, batch_size=500, mode="stream", transform=rd.Standardize())
    b = rd.DataLoader((X, y), batch_size=500, transform=rd.Standardize())
    fa, _ = next(iter(a))
    fb, _ = next(iter(b))
    assert torch.allclose(fa, fb, atol=1e-9)
    assert torch.allclose(a.transform[0].mean, X.mean(0), atol=1e-9)


def test_auto_mode_follows_the_memory_budget():
    src = source(1000, 100)
    assert rd.DataLoader(src, memory_budget=1 << 30).mode == "memory"
    assert rd.DataLoader(src, memory_budget=100).mode == "stream"
    # In-memory tensors are always served in memory mode.
    assert rd.DataLoader(torch.zeros(10, 2), memory_budget=0).mode == "memory"
    with pytest.raises(ValueError):
        rd.DataLoader(src, memory_budget=-1)
