"""Replays of the malformed sparse inputs behind PyTorch crash reports (pytorch/pytorch
issues 190045, 190046, 190047 and 193824, and CVE-2025-62164: malformed row pointers or
column indices given to ``torch.sparse_csr_tensor(..., check_invariants=False)`` and then
to ``to_dense()`` or a matrix product).

The generic cases below are CSR arrays of the kinds those reports describe; the replays
at the end use the reports' own reproducers (#190045, #190047 reproducer A, #193824),
plus CSC variants built for #190047's title.

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


def script_outcome(script: str, *args: str) -> str:
    """What torch did with `script` in a child process: crashed, raised or returned."""
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", script, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode < 0 or proc.returncode in (134, 139):
        return f"crashed (exit status {proc.returncode})"
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines()
        # A message printed before the process died (e.g. "free(): invalid pointer").
        return "raised: " + (lines[-1] if lines else f"exit status {proc.returncode}")
    return "returned silently: " + proc.stdout.strip()


def torch_outcome(crow: list[int], col: list[int], shape: tuple[int, int], op: str) -> str:
    return script_outcome(TORCH_SCRIPT, repr((crow, col, shape, op)))


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


# ---- the reported inputs, replayed ----------------------------------------------------


def report_outcome(script: str) -> str:
    outcome = script_outcome(textwrap.dedent(script))
    print(f"torch {torch.__version__}: {outcome}")
    return outcome


def test_pytorch_190045_csr_3x0_times_a_0x2_dense_operand() -> None:
    """pytorch#190045: a (3, 0) CSR matrix whose metadata claims three entries in column
    0, times an empty (0, 2) dense matrix, through ``torch.sparse.mm`` (the report's
    reproducer; the report shows an ASan null read in the CPU BLAS AXPY helper)."""
    report_outcome(
        """
        import torch
        crow = torch.tensor([0, 3, 3, 3], dtype=torch.int64)
        col = torch.tensor([0, 0, 0], dtype=torch.int64)
        values = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float32)
        mat1 = torch.sparse_csr_tensor(crow, col, values, size=(3, 0), check_invariants=False)
        mat2 = torch.empty((0, 2), dtype=torch.float32)
        print(torch.sparse.mm(mat1, mat2).shape)
        """
    )
    crow, col = torch.tensor([0, 3, 3, 3]), torch.tensor([0, 0, 0])
    message = r"^col\[0\] = 0 is out of range for 0 columns$"
    with pytest.raises(IndexError, match=message):
        rs.CsrMatrix(crow, col, torch.zeros(3), (3, 0))
    t = torch.sparse_csr_tensor(crow, col, torch.zeros(3), size=(3, 0), check_invariants=False)
    with pytest.raises(IndexError, match=message):
        rs.CsrMatrix.from_torch(t)
    # The well-formed (3, 0) matrix times (0, 2): zeros, for every reduction.
    a = rs.CsrMatrix(
        torch.zeros(4, dtype=torch.int64),
        torch.tensor([], dtype=torch.int64),
        torch.tensor([]),
        (3, 0),
    )
    assert torch.equal(a @ torch.empty(0, 2), torch.zeros(3, 2))
    for reduce in ("sum", "mean", "max", "min"):
        assert torch.equal(rs.spmm(a, torch.empty(0, 2), reduce=reduce), torch.zeros(3, 2))


def test_pytorch_190047_malformed_csc_reproducer() -> None:
    """pytorch#190047, reproducer A as reported: CSC column pointers starting at 4, size
    inferred by torch (1 x 2), then ``to_dense()``. (Reproducer B, BSC, is not replayed:
    rusttorch has no block layouts, and ``from_torch`` refuses them as a layout.)"""
    report_outcome(
        """
        import torch
        ccol = torch.tensor([4, 0, 0], dtype=torch.int32)
        row = torch.tensor([0, 0, 0, 0], dtype=torch.int32)
        values = torch.tensor([0.4865506887435913, 0.2713378071784973, 0.556114137172699,
                               0.8373310565948486], dtype=torch.float32)
        t = torch.sparse_csc_tensor(ccol, row, values, pin_memory=False, requires_grad=False,
                                    check_invariants=False)
        print(t.to_dense().sum().item())
        """
    )
    ccol = torch.tensor([4, 0, 0], dtype=torch.int32)
    row = torch.tensor([0, 0, 0, 0], dtype=torch.int32)
    values = torch.tensor([0.49, 0.27, 0.56, 0.84])
    t = torch.sparse_csc_tensor(ccol, row, values, check_invariants=False)
    message = r"^ccol\[0\] = 4, expected 0$"
    for build in (rs.CscMatrix.from_torch, rs.CsrMatrix.from_torch, rs.CooMatrix.from_torch):
        with pytest.raises(ValueError, match=message):
            build(t)
    with pytest.raises(ValueError, match=message):
        rs.CscMatrix(ccol, row, values, tuple(t.shape))
    # Block layouts (reproducer B) are refused as such, even well-formed.
    bsc = torch.sparse_bsc_tensor(
        torch.tensor([0, 1]), torch.tensor([0]), torch.ones(1, 2, 2), (2, 2)
    )
    with pytest.raises(TypeError, match=r"unsupported layout torch\.sparse_bsc"):
        rs.CsrMatrix.from_torch(bsc)


# Malformed CSC arrays of the kinds #190047's title describes ("compressed column
# metadata inconsistent with the row/value storage"); built here, not taken from the
# report: (name, ccol, row, (nrows, ncols), exception, message).
CSC_CASES = [
    (
        "decreasing column pointers",
        [0, 3, 1],
        [0, 0, 0],
        (1, 2),
        ValueError,
        r"^ccol\[2\] = 1 is smaller than ccol\[1\] = 3; row pointers must never decrease$",
    ),
    (
        "column pointer past nnz",
        [0, 1, 5],
        [0, 0],
        (1, 2),
        ValueError,
        r"^ccol\[2\] = 5, expected nnz = 2 \(the length of row\)$",
    ),
    (
        "row index out of range",
        [0, 1, 2],
        [0, 7],
        (3, 2),
        IndexError,
        r"^row\[1\] = 7 is out of range for 3 rows$",
    ),
    ("negative row index", [0, 1, 2], [-2, 0], (3, 2), IndexError, r"^row\[0\] = -2 is negative$"),
]

CSC_SCRIPT = textwrap.dedent(
    """
    import sys, torch, warnings
    warnings.simplefilter("ignore")
    ccol, row, shape, op = eval(sys.argv[1])
    t = torch.sparse_csc_tensor(torch.tensor(ccol), torch.tensor(row), torch.ones(len(row)),
                                shape, check_invariants=False)
    r = t.to_dense() if op == "to_dense" else t @ torch.ones(shape[1], 4)
    print("RETURNED", r.sum().item())
    """
)


@pytest.mark.parametrize("op", ["to_dense", "matmul"])
@pytest.mark.parametrize(
    ("name", "ccol", "row", "shape", "exc", "message"), CSC_CASES, ids=[c[0] for c in CSC_CASES]
)
def test_malformed_csc_is_refused(
    name: str,
    ccol: list[int],
    row: list[int],
    shape: tuple[int, int],
    exc: type[Exception],
    message: str,
    op: str,
) -> None:
    outcome = script_outcome(CSC_SCRIPT, repr((ccol, row, shape, op)))
    print(f"torch, CSC {name}, {op}: {outcome}")
    with pytest.raises(exc, match=message):
        rs.CscMatrix(torch.tensor(ccol), torch.tensor(row), torch.ones(len(row)), shape)
    t = torch.sparse_csc_tensor(
        torch.tensor(ccol), torch.tensor(row), torch.ones(len(row)), shape, check_invariants=False
    )
    for build in (rs.CscMatrix.from_torch, rs.CsrMatrix.from_torch):
        with pytest.raises(exc, match=message):
            build(t)


def test_pytorch_193824_coo_times_coo() -> None:
    """pytorch#193824 as reported: ``torch.sparse.mm`` of two COO tensors, the second
    (3 x 2) holding column index 3; torch 2.11 aborted with ``free(): invalid next size``.
    The report builds them with torch's default (no invariant checks)."""
    report_outcome(
        """
        import torch
        mat1 = torch.sparse_coo_tensor(indices=torch.tensor([[0, 1], [1, 2]]),
                                       values=torch.tensor([1.0, 2.0]), size=(2, 3))
        mat2 = torch.sparse_coo_tensor(indices=torch.tensor([[0, 2], [0, 3]]),
                                       values=torch.tensor([3.0, 1.0]), size=(3, 2))
        print(torch.sparse.mm(mat1, mat2))
        """
    )
    i1, v1 = torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, 2.0])
    i2, v2 = torch.tensor([[0, 2], [0, 3]]), torch.tensor([3.0, 1.0])
    # check_invariants=False is what the report's default amounts to; explicit, so that a
    # torch that starts checking by default still lets this test build the tensor.
    mat1 = torch.sparse_coo_tensor(i1, v1, (2, 3), check_invariants=False)
    mat2 = torch.sparse_coo_tensor(i2, v2, (3, 2), check_invariants=False)
    message = r"^col\[1\] = 3 is out of range for 2 columns$"
    for build in (rs.CsrMatrix.from_torch, rs.CooMatrix.from_torch):
        with pytest.raises(IndexError, match=message):
            build(mat2)
    a = rs.CsrMatrix.from_torch(mat1)
    with pytest.raises(IndexError, match=message):
        a @ rs.CsrMatrix.from_coo(i2[0], i2[1], v2, (3, 2))
    # With the shape the indices need (3 x 4), the product is right.
    fixed = torch.sparse_coo_tensor(i2, v2, (3, 4), check_invariants=True)
    c = a @ rs.CsrMatrix.from_torch(fixed)
    assert torch.equal(c.to_dense(), mat1.to_dense() @ fixed.to_dense())
