"""Every bad argument to Queue gets a clear exception."""

from __future__ import annotations

from typing import Any

import pytest

import rusttorch_queue as rq


@pytest.mark.parametrize("maxsize", [0, -1, -(2**40)])
def test_non_positive_maxsize_is_a_value_error(maxsize: int) -> None:
    with pytest.raises(ValueError, match=f"maxsize must be at least 1, got {maxsize}"):
        rq.Queue(maxsize)


@pytest.mark.parametrize("maxsize", [1.5, "8", None])
def test_non_integer_maxsize_is_a_type_error(maxsize: Any) -> None:
    with pytest.raises(TypeError):
        rq.Queue(maxsize)


def test_maxsize_is_required() -> None:
    with pytest.raises(TypeError):
        rq.Queue()  # type: ignore[call-arg]


@pytest.mark.parametrize("timeout", [-1, -0.001, float("nan")])
def test_negative_or_nan_timeout_is_a_value_error(timeout: float) -> None:
    q: rq.Queue[int] = rq.Queue(1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.get(timeout=timeout)
    q.put(1)
    with pytest.raises(ValueError, match="'timeout' must be a non-negative number"):
        q.put(2, timeout=timeout)
    assert q.qsize() == 1


def test_bad_argument_types_are_type_errors() -> None:
    q: rq.Queue[int] = rq.Queue(1)
    with pytest.raises(TypeError):
        q.get(timeout="1")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        q.put(1, block="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        q.put()  # type: ignore[call-arg]
    assert q.empty()
