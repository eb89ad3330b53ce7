"""Ctrl-C during a long read raises KeyboardInterrupt promptly (the read runs with the GIL
released on a helper thread, and the decoder polls a cancel token)."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = r"""
import os, signal, sys, threading, time
import rusttorch_data as rd
rd.set_num_threads(1)
def fire():
    time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGINT)
threading.Thread(target=fire, daemon=True).start()
start = time.perf_counter()
try:
    rd.read_csv(sys.argv[1])
    print("finished", time.perf_counter() - start)
except KeyboardInterrupt:
    print("interrupted", time.perf_counter() - start)
"""


def test_ctrl_c_interrupts_a_long_read(tmp_path: Path) -> None:
    path = tmp_path / "big.csv.gz"
    row = b"1.5,2.25,3.125,4.0625,5.5,6.75,7.875,8.9375\n"
    with gzip.open(path, "wb", compresslevel=1) as out:
        out.write(b"a,b,c,d,e,f,g,h\n")
        block = row * 100_000
        for _ in range(60):
            out.write(block)
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(path)], capture_output=True, text=True, timeout=120
    )
    words = result.stdout.split()
    assert words, result.stderr
    if words[0] == "finished":
        pytest.skip(f"the read finished before the signal ({words[1]} s)")
    assert words[0] == "interrupted", result.stdout + result.stderr
    assert float(words[1]) < 2.0
