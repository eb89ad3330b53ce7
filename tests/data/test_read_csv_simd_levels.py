"""The CSV number scanner has a vector path (SSSE3/SSE4.1, used from the AVX2 level up) and a
scalar one (``RUSTTORCH_SIMD=scalar``); both must read every shape of number to the same
bits, which are Python's ``float(text)`` (float64) and that rounded to float32."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

READ = """
import sys, torch, rusttorch_data as rd
path, out = sys.argv[1], sys.argv[2]
x64 = rd.read_csv(path, header=False, feature_dtype=torch.float64)
x32 = rd.read_csv(path, header=False)
torch.save((x64, x32), out)
"""


def number_texts(rng: np.random.Generator, n: int) -> list[str]:
    """Numbers in the shapes CSV writers produce, and the odd ones around the vector path's
    limits (15 digit-or-point bytes, one point, signs, exponents)."""
    values = rng.standard_normal(n) * 10.0 ** rng.integers(-6, 9, n)
    texts = []
    for i, v in enumerate(values):
        kind = i % 10
        if kind == 0:
            texts.append(repr(float(np.float32(v))))
        elif kind == 1:
            texts.append(repr(float(v)))  # up to 17 significant digits
        elif kind == 2:
            texts.append(f"{v:.{int(rng.integers(0, 12))}f}")
        elif kind == 3:
            texts.append(f"+{abs(v):.6g}")
        elif kind == 4:
            texts.append(f"{v:.8e}")
        elif kind == 5:
            texts.append(str(int(v)))
        elif kind == 6:
            texts.append(rng.choice([".5", "5.", "-.25", "-0", "0.", "000123.4500", "-007"]))
        elif kind == 7:
            digits = "".join(rng.choice(list("0123456789"), int(rng.integers(1, 16))))
            point = int(rng.integers(0, len(digits) + 1))
            texts.append(("-" if v < 0 else "") + digits[:point] + "." + digits[point:])
        elif kind == 8:
            texts.append("9007199254740993" if i % 20 == 8 else "900719925474099.3")
        else:
            texts.append(f"{v:.15g}")
    return texts


def read_in_subprocess(path: Path, out: Path, simd: str | None) -> tuple[torch.Tensor, ...]:
    env = dict(os.environ)
    env.pop("RUSTTORCH_SIMD", None)
    if simd is not None:
        env["RUSTTORCH_SIMD"] = simd
    subprocess.run(
        [sys.executable, "-c", READ, str(path), str(out)], env=env, check=True, timeout=120
    )
    return torch.load(out)


def test_vector_and_scalar_paths_read_the_same_bits(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    cols = 7
    texts = number_texts(rng, 3000 * cols)
    rows = [",".join(texts[r * cols : (r + 1) * cols]) for r in range(3000)]
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join(rows) + "\n")
    expected64 = torch.tensor([float(t) for t in texts], dtype=torch.float64).view(3000, cols)

    default64, default32 = read_in_subprocess(path, tmp_path / "default.pt", None)
    scalar64, scalar32 = read_in_subprocess(path, tmp_path / "scalar.pt", "scalar")

    assert torch.equal(default64, expected64)
    assert torch.equal(scalar64, expected64)
    assert torch.equal(default32, expected64.to(torch.float32))
    assert torch.equal(scalar32, expected64.to(torch.float32))
