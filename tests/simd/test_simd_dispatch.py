"""Runtime dispatch: the detected level, RUSTTORCH_SIMD capping it (in a fresh process),
set_simd_level at run time, and identical results from every level where the math is
exact."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
import torch

import rusttorch_simd as rs

ORDER = ["scalar", "sse2", "neon", "avx2", "avx512"]


def run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True, timeout=120
    )


def test_levels_are_known_and_ordered() -> None:
    levels = rs.supported_simd_levels()
    assert levels[0] == "scalar"
    assert all(level in ORDER for level in levels)
    assert levels == sorted(levels, key=ORDER.index)
    assert rs.simd_level() in levels


def test_default_is_the_best_supported_level_unless_capped() -> None:
    if os.environ.get("RUSTTORCH_SIMD"):
        pytest.skip("RUSTTORCH_SIMD is set for this run")
    assert rs.simd_level() == rs.supported_simd_levels()[-1]


@pytest.mark.parametrize("cap", ["scalar", "sse2", "avx2", "avx512", "neon"])
def test_environment_caps_the_level(cap: str) -> None:
    result = run_python("import rusttorch_simd as rs; print(rs.simd_level())", RUSTTORCH_SIMD=cap)
    assert result.returncode == 0, result.stderr
    got = result.stdout.strip()
    supported = rs.supported_simd_levels()
    rank = {"scalar": 0, "sse2": 1, "neon": 1, "avx2": 2, "avx512": 3}
    want = max((lvl for lvl in supported if rank[lvl] <= rank[cap]), key=lambda lvl: rank[lvl])
    assert got == want


def test_unknown_environment_value_warns_and_is_ignored() -> None:
    code = (
        "import warnings; warnings.simplefilter('always');"
        "import rusttorch_simd as rs; print(rs.simd_level())"
    )
    result = run_python(code, RUSTTORCH_SIMD="avx9000")
    assert result.returncode == 0, result.stderr
    assert "RUSTTORCH_SIMD" in result.stderr and "avx9000" in result.stderr
    assert result.stdout.strip() == rs.supported_simd_levels()[-1]


def test_set_simd_level_switches_and_resets() -> None:
    before = rs.simd_level()
    try:
        for level in rs.supported_simd_levels():
            rs.set_simd_level(level)
            assert rs.simd_level() == level
            rs.relu(torch.randn(100))
    finally:
        rs.set_simd_level(None)
    assert rs.simd_level() == before


def test_unsupported_or_unknown_levels_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown SIMD level"):
        rs.set_simd_level("avx9000")
    unsupported = [lvl for lvl in ORDER if lvl not in rs.supported_simd_levels()]
    for level in unsupported:
        with pytest.raises(ValueError, match="not supported by this CPU"):
            rs.set_simd_level(level)


def test_exact_ops_agree_bit_for_bit_across_levels() -> None:
    x = torch.randn(100_003)
    x[::101] = float("nan")
    results = {}
    try:
        for level in rs.supported_simd_levels():
            rs.set_simd_level(level)
            results[level] = (
                rs.relu(x),
                rs.clamp(x, -0.5, 0.5),
                rs.normalize(x.reshape(1, -1), [0.5], [2.0], 0),
            )
    finally:
        rs.set_simd_level(None)
    first = next(iter(results.values()))
    for level, res in results.items():
        for a, b in zip(res, first, strict=True):
            assert torch.equal(a.isnan(), b.isnan()), level
            assert torch.equal(a[~a.isnan()], b[~b.isnan()]), level


def test_threads_follow_set_num_threads_and_results_do_not_change() -> None:
    x = torch.randn(300_000)
    before = rs.get_num_threads()
    try:
        rs.set_num_threads(1)
        assert rs.get_num_threads() == 1
        one = rs.gelu(x)
        mean1, var1 = rs.mean_var(x.reshape(-1, 3))
        rs.set_num_threads(3)
        three = rs.gelu(x)
        mean3, var3 = rs.mean_var(x.reshape(-1, 3))
    finally:
        rs.set_num_threads(before)
    assert torch.equal(one, three)
    assert torch.allclose(mean1, mean3, rtol=1e-6, atol=1e-7)
    assert torch.allclose(var1, var3, rtol=1e-6)
    with pytest.raises(ValueError):
        rs.set_num_threads(0)
    # A mistyped count is refused, not a pool that spawns threads until memory runs out.
    for huge in (1025, 2**40):
        with pytest.raises(ValueError, match="from 1 to 1024"):
            rs.set_num_threads(huge)
    assert rs.get_num_threads() == before


_X = torch.randn(12_000_000)
_ROWS = _X.view(-1, 1000)
LONG_CALLS = {
    "gelu": lambda: rs.gelu(_X),
    # Twice, to last long enough: between the two calls a GIL-holding kernel would let the
    # counting thread in once or twice, far fewer stamps than the test asks for.
    "layer_norm": lambda: [rs.layer_norm(_ROWS, torch.ones(1000)) for _ in range(2)],
    "softmax": lambda: rs.softmax(_ROWS),
    # (mean_var shares standardize's pass over the data and is too quick to time here.)
    "standardize": lambda: rs.standardize(_ROWS),
    "robust_scale": lambda: rs.robust_scale(_ROWS[:6000]),
    "cdist": lambda: rs.cdist(_ROWS[:1500, :200], _ROWS[:1500, 200:400]),
}


@pytest.mark.parametrize("name", sorted(LONG_CALLS))
def test_large_calls_release_the_gil(
    name: str, assert_releases_gil: Callable[[str, Callable[[], object]], None]
) -> None:
    # Several times slower per element, one thread: calls long enough to tell, from little
    # memory.
    rs.set_simd_level("scalar")
    threads = rs.get_num_threads()
    rs.set_num_threads(1)
    try:
        assert_releases_gil(name, LONG_CALLS[name])
    finally:
        rs.set_simd_level(None)
        rs.set_num_threads(threads)
