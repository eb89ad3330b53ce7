"""Fixtures for the rusttorch_simd tests: every SIMD level this CPU supports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import rusttorch_simd as rs

LEVELS = rs.supported_simd_levels()


@pytest.fixture(params=LEVELS)
def level(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs the test at one SIMD level, then restores the default."""
    rs.set_simd_level(request.param)
    try:
        yield request.param
    finally:
        rs.set_simd_level(None)
