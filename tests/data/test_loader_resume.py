"""state_dict / load_state_dict: resuming mid-epoch gives exactly the remaining samples in
the same order, for every stop point, rank and policy; states for other data or options are
refused."""

from __future__ import annotations

import io

import pytest
import torch

import rusttorch_data as rd


def data(n: int):
    return torch.arange(n, dtype=torch.float32).unsqueeze(1), torch.arange(n)


def make(n=103, **kw):
    kw.setdefault("batch_size", 10)
    kw.setdefault("shuffle", True)
    kw.setdefault("seed", 5)
    return rd.DataLoader(data(n), **kw)


def reference(epochs: int, **kw) -> list[list[list[int]]]:
    loader = make(**kw)
    return [[b.tolist() for _, b in loader] for _ in range(epochs)]


@pytest.mark.parametrize("stop", [0, 1, 5, 10, 11])
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"rank": 1, "world_size": 3},
        {"rank": 2, "world_size": 3, "uneven": "pad"},
        {"rank": 0, "world_size": 2, "uneven": "drop", "drop_last": True},
    ],
)
def test_resume_continues_exactly(stop, kw):
    ref = reference(3, **kw)
    loader = make(**kw)
    consumed = []
    it = iter(loader)
    for _ in range(min(stop, len(ref[0]))):
        consumed.append(next(it)[1].tolist())
    state = loader.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)  # the state survives torch.save
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)
    del it

    resumed = make(**kw)
    resumed.load_state_dict(state)
    if len(consumed) == len(ref[0]):
        # The whole epoch was yielded: resuming starts the next one.
        assert [b.tolist() for _, b in resumed] == ref[1]
        return
    rest = [b.tolist() for _, b in resumed]
    assert consumed + rest == ref[0]
    # The following epochs follow as if nothing happened.
    assert [b.tolist() for _, b in resumed] == ref[1]
    assert [b.tolist() for _, b in resumed] == ref[2]


def test_state_counts_yielded_batches_not_prefetched_ones():
    loader = make(prefetch=8, num_threads=2)
    it = iter(loader)
    next(it)
    next(it)
    s = loader.state_dict()
    assert (s["epoch"], s["batches_yielded"], s["samples_yielded"]) == (0, 2, 20)
    list(it)
    s = loader.state_dict()
    assert (s["epoch"], s["batches_yielded"]) == (1, 0)
    loader.set_epoch(7)
    assert loader.state_dict()["epoch"] == 7


def test_resume_after_a_finished_epoch_starts_the_next():
    ref = reference(2)
    loader = make()
    list(loader)
    state = loader.state_dict()
    resumed = make()
    resumed.load_state_dict(state)
    assert [b.tolist() for _, b in resumed] == ref[1]


def test_fitted_transforms_are_stored_and_restored():
    X = torch.randn(200, 3) * 4 + 2
    loader = rd.DataLoader(X, batch_size=50, transform=rd.Standardize())
    state = loader.state_dict()
    name, params = state["transforms"][0]
    assert name == "Standardize"
    assert torch.allclose(
        torch.tensor(params["mean"], dtype=torch.float64), X.double().mean(0), atol=1e-5
    )
    # A loader given other statistics takes the stored ones.
    other = rd.DataLoader(X, batch_size=50, transform=rd.Standardize(mean=0.0, std=1.0))
    other.load_state_dict(state)
    assert torch.allclose(other.transform[0].mean, X.double().mean(0), atol=1e-5)
    assert torch.allclose(next(iter(other)), next(iter(loader)))
    # Other transform kinds are refused.
    clip = rd.DataLoader(X, batch_size=50, transform=rd.Clip(0, 1))
    with pytest.raises(ValueError, match="transforms"):
        clip.load_state_dict(state)


def test_mismatched_states_are_refused():
    state = make().state_dict()
    with pytest.raises(ValueError, match="seed"):
        make(seed=6).load_state_dict(state)
    with pytest.raises(ValueError, match="batch_size"):
        make(batch_size=11).load_state_dict(state)
    with pytest.raises(ValueError, match="world_size"):
        make(rank=0, world_size=2).load_state_dict(state)
    with pytest.raises(ValueError, match="other data"):
        make(n=104).load_state_dict(state)
    with pytest.raises(ValueError, match="version"):
        make().load_state_dict({**state, "version": 99})
    with pytest.raises(ValueError, match="missing"):
        make().load_state_dict({"epoch": 0})
    with pytest.raises(TypeError):
        make().load_state_dict([1, 2])
    with pytest.raises(ValueError, match="batches"):
        make().load_state_dict({**state, "batches_yielded": 99})
