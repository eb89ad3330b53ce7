"""Fixtures for the rusttorch_data reader tests: files written on demand and thread counts."""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import rusttorch_data as rd


@pytest.fixture(params=[1, 2, 3])
def threads(request: pytest.FixtureRequest) -> Iterator[int]:
    """Runs the test with 1, 2 and 3 threads, then restores the previous count."""
    before = rd.get_num_threads()
    rd.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        rd.set_num_threads(before)


@pytest.fixture
def write_text(tmp_path: Path) -> Callable[..., Path]:
    """``write_text(text, name="data.csv", gz=False, encoding="utf-8")`` writes a file under
    the test's temporary directory (gzip-compressed with ``gz=True``) and returns its path."""

    def write(
        text: str | bytes, name: str = "data.csv", gz: bool = False, encoding: str = "utf-8"
    ) -> Path:
        path = tmp_path / name
        data = text.encode(encoding) if isinstance(text, str) else text
        if gz:
            data = gzip.compress(data)
        path.write_bytes(data)
        return path

    return write


@pytest.fixture
def as_root() -> bool:
    """True when running as root, which ignores file permissions."""
    import os

    return hasattr(os, "geteuid") and os.geteuid() == 0
