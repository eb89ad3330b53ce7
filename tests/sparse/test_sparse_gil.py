"""The big kernels release the GIL: another Python thread keeps running during a long
call (time stamps every 0.5 ms; the check is tests/conftest.py's `assert_releases_gil`)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import pytest
import torch

import rusttorch_sparse as rs


@cache
def operands() -> dict[str, object]:
    g = torch.Generator().manual_seed(0)
    n, nnz, d = 50_000, 3_000_000, 128
    row = torch.randint(0, n, (nnz,), generator=g)
    col = torch.randint(0, n, (nnz,), generator=g)
    a = rs.CsrMatrix.from_coo(row, col, torch.rand(nnz, generator=g), (n, n), False)
    m = 12_000
    b = rs.CsrMatrix.from_coo(
        torch.randint(0, m, (400_000,), generator=g),
        torch.randint(0, m, (400_000,), generator=g),
        torch.rand(400_000, generator=g),
        (m, m),
    )
    x = torch.randn(n, d, generator=g)
    q = torch.randn(4096, 64, generator=g)
    return {
        "a": a,
        "b": b,
        "x": x,
        "y": torch.randn(n, d, generator=g),
        "row": row,
        "col": col,
        "q": q,
        "window": rs.sliding_window(4096, 2048),
    }


def _call(name: str) -> Callable[[], object]:
    o = operands()
    a, b, x, y = o["a"], o["b"], o["x"], o["y"]
    q, window = o["q"], o["window"]
    calls: dict[str, Callable[[], object]] = {
        "spmm": lambda: rs.spmm(a, x),  # type: ignore[arg-type]
        "sddmm": lambda: rs.sddmm(a, x, y),  # type: ignore[arg-type]
        "spgemm": lambda: rs.spgemm(b, b),  # type: ignore[arg-type]
        "sparse_attention": lambda: rs.sparse_attention(q, q, q, window),  # type: ignore[arg-type]
        "gather_scatter": lambda: rs.gather_scatter(x, o["col"], o["row"], "max"),  # type: ignore[arg-type]
    }
    return calls[name]


@pytest.mark.parametrize("name", ["spmm", "sddmm", "spgemm", "sparse_attention", "gather_scatter"])
def test_large_calls_release_the_gil(
    name: str, assert_releases_gil: Callable[[str, Callable[[], object]], None]
) -> None:
    # One thread: calls long enough to tell, from little memory.
    threads = rs.get_num_threads()
    rs.set_num_threads(1)
    try:
        assert_releases_gil(name, _call(name))
    finally:
        rs.set_num_threads(threads)
