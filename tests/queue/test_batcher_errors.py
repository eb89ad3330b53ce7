"""Every bad-input rule of Batcher: a clear exception, for exactly the callers concerned."""

from __future__ import annotations

import math
import re
from typing import Any

import pytest
import torch
from _queue_support import Gate

import rusttorch_queue as rq


def run_one_batch(requests: list[Any], fn: Any = None) -> tuple[list[Any], Gate]:
    """Queues `requests` behind a blocker so that they form one batch; returns each
    request's result or exception, and the gate (which saw the batches)."""
    gate = Gate(fn or (lambda batch: batch))
    with rq.Batcher(gate, max_batch_size=len(requests), max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        futures = [batcher.submit(r) for r in requests]
        gate.open()
        outcomes = [f.exception(timeout=10) or f.result() for f in futures]
    return outcomes, gate


# --- requests that do not match their batch are rejected alone -----------------------------


def test_a_request_of_another_shape_is_rejected_alone_and_the_rest_proceed() -> None:
    good = [torch.full((3,), float(i)) for i in range(3)]
    outcomes, gate = run_one_batch([good[0], torch.ones(5), good[1], good[2]])
    assert isinstance(outcomes[1], ValueError)
    message = str(outcomes[1])
    assert "shape (5,)" in message and "shape (3,)" in message
    assert "each of the 3 requests its batch runs" in message
    for got, expected in zip([outcomes[0], *outcomes[2:]], good, strict=True):
        assert torch.equal(got, expected)
    assert gate.sizes() == [3]


@pytest.mark.parametrize("where", ["first", "last"])
def test_the_odd_request_is_rejected_alone_wherever_it_arrives(where: str) -> None:
    # The batch runs the shape most of its requests share, not the first request's: an odd
    # request arriving first must not fail the others.
    good = [torch.full((3,), float(i)) for i in range(4)]
    odd = torch.ones(2, 5)
    requests = [odd, *good] if where == "first" else [*good, odd]
    outcomes, gate = run_one_batch(requests)
    odd_index = 0 if where == "first" else len(requests) - 1
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(errors) == 1 and isinstance(outcomes[odd_index], ValueError)
    message = str(outcomes[odd_index])
    assert "has shape (2, 5)" in message and "has shape (3,)" in message, message
    assert "each of the 4 requests its batch runs" in message
    results = [o for i, o in enumerate(outcomes) if i != odd_index]
    for got, expected in zip(results, good, strict=True):
        assert torch.equal(got, expected)
    assert gate.sizes() == [4]


def test_a_tie_between_layouts_goes_to_the_one_that_arrived_first() -> None:
    a = [torch.full((2,), float(i)) for i in range(2)]
    b = [torch.full((3,), float(i)) for i in range(2)]
    outcomes, gate = run_one_batch([b[0], a[0], a[1], b[1]])
    assert torch.equal(outcomes[0], b[0]) and torch.equal(outcomes[3], b[1])
    assert isinstance(outcomes[1], ValueError) and isinstance(outcomes[2], ValueError)
    assert "the 2 requests its batch runs it has shape (3,)" in str(outcomes[1])
    assert gate.sizes() == [2]


def test_a_request_of_another_dtype_is_rejected_alone() -> None:
    outcomes, _ = run_one_batch([torch.ones(2), torch.ones(2, dtype=torch.float64), torch.ones(2)])
    assert isinstance(outcomes[1], ValueError)
    assert "dtype float64" in str(outcomes[1]) and "dtype float32" in str(outcomes[1])
    assert isinstance(outcomes[0], torch.Tensor) and isinstance(outcomes[2], torch.Tensor)


@pytest.mark.parametrize(
    ("odd", "words"),
    [
        ((torch.ones(2), torch.ones(2)), ["a tuple of 2 tensors", "is a tensor"]),
        ({"x": torch.ones(2)}, ["a dict of 1 tensors", "is a tensor"]),
    ],
    ids=["tuple-among-tensors", "dict-among-tensors"],
)
def test_a_request_of_another_structure_is_rejected_alone(odd: Any, words: list[str]) -> None:
    outcomes, _ = run_one_batch([torch.ones(2), odd, torch.ones(2)])
    assert isinstance(outcomes[1], ValueError)
    for word in words:
        assert word in str(outcomes[1])
    assert isinstance(outcomes[2], torch.Tensor)


def test_tuples_of_another_length_or_field_shape_are_rejected_alone() -> None:
    a = (torch.ones(2), torch.ones(3))
    outcomes, _ = run_one_batch([a, (torch.ones(2),), (torch.ones(2), torch.ones(4)), a])
    assert "a tuple of 1 tensors" in str(outcomes[1])
    assert "element 1 of the request has shape (4,)" in str(outcomes[2])
    assert isinstance(outcomes[3], tuple)


def test_dicts_with_other_keys_are_rejected_alone() -> None:
    ok = {"x": torch.ones(2), "y": torch.zeros(1)}
    outcomes, _ = run_one_batch(
        [ok, {"x": torch.ones(2), "z": torch.zeros(1)}, {"x": torch.ones(3), "y": torch.zeros(1)}]
    )
    assert isinstance(outcomes[1], ValueError)
    assert "has keys 'x', 'z'" in str(outcomes[1]) and "has keys 'x', 'y'" in str(outcomes[1])
    assert "request['x'] has shape (3,)" in str(outcomes[2])
    assert isinstance(outcomes[0], dict)


def test_an_invalid_first_request_does_not_set_the_batch_layout() -> None:
    meta = torch.empty(3, device="meta")
    outcomes, gate = run_one_batch([meta, torch.ones(4), torch.ones(4)])
    assert isinstance(outcomes[0], ValueError) and "'meta'" in str(outcomes[0])
    assert isinstance(outcomes[1], torch.Tensor) and isinstance(outcomes[2], torch.Tensor)
    assert gate.sizes() == [2]


def test_an_unsupported_dtype_is_a_type_error_for_that_request() -> None:
    outcomes, _ = run_one_batch([torch.ones(2, dtype=torch.complex64), torch.ones(2)])
    assert isinstance(outcomes[0], TypeError) and "complex64" in str(outcomes[0])
    assert "the request tensor" in str(outcomes[0])
    assert isinstance(outcomes[1], torch.Tensor)


# --- requests refused at submit, in the caller's thread -------------------------------------


@pytest.mark.parametrize(
    ("request_", "error", "match"),
    [
        ([torch.ones(2)], TypeError, "got list"),
        (3.0, TypeError, "got float"),
        (None, TypeError, "got NoneType"),
        (torch.ones(2).numpy(), TypeError, "got ndarray"),
        ((), ValueError, "empty tuple"),
        ({}, ValueError, "empty dict"),
        ((torch.ones(1), 2), TypeError, r"element 1 of the request tuple must be a torch.Tensor"),
        (((torch.ones(1),),), TypeError, "element 0 of the request tuple"),
        ({1: torch.ones(1)}, TypeError, "keys of a request dict must be str"),
        ({"x": [1.0]}, TypeError, r"request\['x'\] must be a torch.Tensor"),
    ],
    ids=[
        "list",
        "float",
        "none",
        "numpy",
        "empty-tuple",
        "empty-dict",
        "tuple-with-int",
        "nested",
        "int-key",
        "dict-of-list",
    ],
)
def test_malformed_requests_are_refused_by_submit(
    request_: Any, error: type[Exception], match: str
) -> None:
    with rq.Batcher(lambda b: b) as batcher:
        with pytest.raises(error, match=match):
            batcher.submit(request_)
        with pytest.raises(error, match=match):
            batcher(request_)
        assert batcher.stats.requests == 0


def test_submit_after_close_is_a_runtime_error() -> None:
    batcher = rq.Batcher(lambda b: b)
    batcher.close()
    with pytest.raises(RuntimeError, match="closed Batcher"):
        batcher.submit(torch.ones(1))
    with pytest.raises(RuntimeError, match="closed Batcher"):
        batcher(torch.ones(1))


def test_submit_without_blocking_on_a_full_queue_raises_full() -> None:
    gate = Gate()
    with rq.Batcher(gate, max_batch_size=1, max_wait_ms=0, max_queue=2) as batcher:
        gate.hold(batcher.submit)
        queued = [batcher.submit(torch.ones(1)) for _ in range(2)]
        with pytest.raises(rq.Full, match="max_queue=2"):
            batcher.submit(torch.ones(1), block=False)
        gate.open()
        for f in queued:
            f.result(timeout=10)


# --- fn failing, or returning something unusable, fails its whole batch ---------------------


def test_an_exception_from_fn_reaches_every_request_of_its_batch_only() -> None:
    calls = []

    def fn(batch: torch.Tensor) -> torch.Tensor:
        calls.append(batch.shape[0])
        if len(calls) == 2:  # the blocker's batch is call 1
            raise ArithmeticError("bad batch")
        return batch

    gate = Gate(fn)
    with rq.Batcher(gate, max_batch_size=3, max_wait_ms=0) as batcher:
        gate.hold(batcher.submit)
        failing = [batcher.submit(torch.ones(1)) for _ in range(3)]
        fine = [batcher.submit(torch.ones(1)) for _ in range(2)]
        gate.open()
        errors = [f.exception(timeout=10) for f in failing]
        assert all(isinstance(e, ArithmeticError) and str(e) == "bad batch" for e in errors)
        assert all(f.result(timeout=10).item() == 1.0 for f in fine)
    assert batcher.stats.failed == 3


def test_an_exception_from_fn_is_raised_by_call() -> None:
    def fn(batch: torch.Tensor) -> torch.Tensor:
        raise KeyError("missing weights")

    with rq.Batcher(fn) as batcher, pytest.raises(KeyError, match="missing weights"):
        batcher(torch.ones(1))


@pytest.mark.parametrize(
    ("output", "error", "match"),
    [
        (lambda b: b[:-1], ValueError, "returned 2 rows along dim 0 for a batch of 3 requests"),
        (lambda b: torch.cat([b, b]), ValueError, "returned 6 rows"),
        (lambda b: b.sum(), ValueError, "0-d tensor"),
        (lambda b: (b, b[:1]), ValueError, r"1 rows along dim 0 \(element 1 of its tuple\)"),
        (lambda b: {"y": b[:2]}, ValueError, r"\(key 'y' of its dict\)"),
        (lambda b: None, TypeError, "it returned NoneType"),
        (lambda b: b.tolist(), TypeError, "returned a list"),
        (lambda b: (b, "text"), TypeError, r"returned a str \(element 1 of its tuple\)"),
    ],
    ids=[
        "too-few",
        "too-many",
        "0-d",
        "tuple-short",
        "dict-short",
        "none",
        "list-of-floats",
        "str",
    ],
)
def test_fn_output_without_one_row_per_request_fails_every_caller(
    output: Any, error: type[Exception], match: str
) -> None:
    outcomes, _ = run_one_batch([torch.ones(2) * i for i in range(3)], fn=output)
    for outcome in outcomes:
        assert isinstance(outcome, error)
        assert re.search(match, str(outcome)), str(outcome)


# --- constructor arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_batch_size": 0}, "max_batch_size must be at least 1, got 0"),
        ({"max_batch_size": -3}, "max_batch_size must be at least 1, got -3"),
        ({"max_queue": 0}, "max_queue must be at least 1, got 0"),
        ({"max_queue": -1}, "max_queue must be at least 1"),
        ({"max_wait_ms": -1.0}, "max_wait_ms must be a non-negative number"),
        ({"max_wait_ms": math.nan}, "max_wait_ms must be a non-negative number"),
        ({"max_wait_ms": 1e300}, "max_wait_ms=1e300 is too large"),
        ({"timeout_ms": -5.0}, "timeout_ms must be a non-negative number"),
        ({"timeout_ms": 1.0, "max_wait_ms": 2.0}, "timeout_ms .* must be greater than max_wait"),
        ({"timeout_ms": 2.0, "max_wait_ms": 2.0}, "must be greater than max_wait_ms"),
    ],
)
def test_bad_settings_are_value_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rq.Batcher(lambda b: b, **kwargs)


def test_fn_must_be_callable() -> None:
    with pytest.raises(TypeError, match="fn must be callable, got int"):
        rq.Batcher(3)  # type: ignore[arg-type]


def test_calling_the_batcher_from_its_own_fn_is_refused() -> None:
    holder: list[rq.Batcher] = []

    def fn(batch: torch.Tensor) -> Any:
        return holder[0](batch[0])  # would wait forever for itself

    with rq.Batcher(fn) as batcher:
        holder.append(batcher)
        with pytest.raises(RuntimeError, match="would wait forever"):
            batcher(torch.ones(1))
