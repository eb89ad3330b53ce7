"""Large new outputs are advised onto transparent huge pages (rt-view's torch_empty), which
saves most of the page-fault cost of a fresh 100 MB output. Checked through the kernel's own
accounting in /proc/self/smaps; skipped where THP is off or the kernel had no huge page to
give (its fallback counter moved)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

import rusttorch_simd as rsimd

THP = Path("/sys/kernel/mm/transparent_hugepage/enabled")


def _thp_mode() -> str | None:
    if not sys.platform.startswith("linux") or not THP.exists():
        return None
    m = re.search(r"\[(\w+)\]", THP.read_text())
    return m.group(1) if m else None


def _fallbacks() -> int:
    for line in Path("/proc/vmstat").read_text().splitlines():
        if line.startswith("thp_fault_fallback "):
            return int(line.split()[1])
    return 0


def _huge_kib_in(t: torch.Tensor) -> int:
    """AnonHugePages of the mappings that overlap t's buffer (the advice splits the
    allocation's mapping at the huge page boundaries, so there are several)."""
    start, end = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
    total, inside = 0, False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
        if m:
            inside = int(m.group(1), 16) < end and start < int(m.group(2), 16)
        elif inside and line.startswith("AnonHugePages:"):
            total += int(line.split()[1])
    return total


@pytest.mark.skipif(_thp_mode() not in ("madvise", "always"), reason="THP is off here")
def test_a_large_new_output_is_backed_by_huge_pages() -> None:
    x = torch.randn(16 << 20)  # 64 MiB
    before = _fallbacks()
    y = rsimd.relu(x)
    if _fallbacks() != before:
        pytest.skip("the kernel had no free huge page (thp_fault_fallback moved)")
    torch.testing.assert_close(y, torch.relu(x), rtol=0, atol=0)
    # (The input is not checked for the contrast: torch's allocator may hand out memory
    # that an earlier advised buffer left with the huge-page flag.)
    assert _huge_kib_in(y) >= 2048


def test_a_small_new_output_is_left_alone() -> None:
    # Below the 4 MiB threshold nothing is advised; the result is the same either way.
    x = torch.randn(1000)
    torch.testing.assert_close(rsimd.relu(x), torch.relu(x), rtol=0, atol=0)
