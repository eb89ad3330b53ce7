"""Replays of the malformed sparse inputs behind PyTorch crash reports (pytorch/pytorch
issues 190045, 190046, 190047 and 193824, and CVE-2025-62164: malformed row pointers or
column indices given to ``torch.sparse_csr_tensor(..., check_invariants=False)`` and then
to ``to_dense()`` or a matrix product).

torch runs each one in a subprocess, so that a segfault or abort there cannot take the
test run down; the test records what torch did (crash, error or a silently returned
result) and checks that rusttorch refuses the same arrays with a clear exception.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch

import rusttorch_sparse as rs

# (name, crow, col, shape, the exception rusttorch raises, its message)
CASES = [
    (
        "column index far out of range",
        [0, 2, 3],
        [0, 1_000_000, 1],
        (2, 3),
        IndexError,
        r"col\[1\] = 1000000 is out of range for 3 columns",
    ),
    (
        "negative column index",
        [0, 2, 3],
        [0, -5, 1],
        (2, 3),
        IndexError,
        r"col\[1\] = -5 is negative",
    ),
    (
        "row pointer past nnz",
        [0, 2, 100],
        [0, 1, 1],
        (2, 3),
        ValueError,
        r"crow\[2\] = 100, expected nnz = 3",
    ),
    (
        "decreasing row pointers",
        [0, 3, 1],
        [0, 1, 1],
        (2, 3),
        ValueError,
        r"crow\[2\] = 1 is smaller than crow\[1\] = 3",
    ),
    (
        "negative first row pointer",
        [-4, 2, 3],
        [0, 1, 1],
        (2, 3),
        ValueError,
        r"crow\[0\] = -4, expected 0",
    ),
]

TORCH_SCRIPT = textwrap.dedent(
    """
    import sys, torch, warnings
    warnings.simplefilter("ignore")
    crow, col, shape, op = eval(sys.argv[1])
    t = torch.sparse_csr_tensor(torch.tensor(crow), torch.tensor(col), torch.ones(len(col)),
                                shape, check_invariants=False)
    r = t.to_dense() if op == "to_dense" else t @ torch.ones(shape[1], 4)
    print("RETURNED", r.sum().item())
    """
)


def torch_outcome(crow: list[int], col: list[int], shape: tuple[int, int], op: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", TORCH_SCRIPT, repr((crow, col, shape, op))],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode < 0 or proc.returncode in (134, 139):
        return f"crashed (exit status {proc.returncode})"
    if proc.returncode != 0:
        return "raised: " + proc.stderr.strip().splitlines()[-1]
    return "returned silently: " + proc.stdout.strip()


@pytest.mark.parametrize("op", ["to_dense", "matmul"])
@pytest.mark.parametrize(
    ("name", "crow", "col", "shape", "exc", "message"), CASES, ids=[c[0] for c in CASES]
)
def test_rusttorch_refuses_what_torch_crashes_on(
    name: str,
    crow: list[int],
    col: list[int],
    shape: tuple[int, int],
    exc: type[Exception],
    message: str,
    op: str,
) -> None:
    outcome = torch_outcome(crow, col, shape, op)
    print(f"torch, {name}, {op}: {outcome}")
    with pytest.raises(exc, match=message):
        rs.CsrMatrix(torch.tensor(crow), torch.tensor(col), torch.ones(len(col)), shape)
    # The same arrays arriving as a torch sparse tensor are refused too.
    t = torch.sparse_csr_tensor(
        torch.tensor(crow), torch.tensor(col), torch.ones(len(col)), shape, check_invariants=False
    )
    with pytest.raises(exc, match=message):
        rs.CsrMatrix.from_torch(t)


def test_torch_really_misbehaves_on_at_least_one_case() -> None:
    """Guards the premise: if torch starts validating these, this test says so."""
    outcomes = [torch_outcome(c[1], c[2], c[3], op) for c in CASES for op in ("to_dense", "matmul")]
    assert any(not o.startswith("raised") for o in outcomes), outcomes


def test_malformed_coo_from_torch_is_refused() -> None:
    t = torch.sparse_coo_tensor(
        torch.tensor([[0, 5], [0, 1]]), torch.ones(2), (2, 2), check_invariants=False
    )
    with pytest.raises(IndexError, match=r"row\[1\] = 5 is out of range for 2 rows"):
        rs.CsrMatrix.from_torch(t)


def test_malformed_scipy_matrix_is_refused() -> None:
    sp = pytest.importorskip("scipy.sparse")
    import numpy as np

    m = sp.csr_matrix((3, 3))
    m.indptr = np.array([0, 1, 1, 2], dtype=np.int32)
    m.indices = np.array([0, 9], dtype=np.int32)
    m.data = np.array([1.0, 2.0])
    with pytest.raises(IndexError, match=r"col\[1\] = 9 is out of range for 3 columns"):
        rs.CsrMatrix.from_scipy(m)
