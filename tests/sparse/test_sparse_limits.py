"""Huge but valid shapes: a matrix of shape (1, 2**40) with a handful of entries is legal,
but a buffer sized by a dimension (row pointers of a COO -> CSR conversion, pointers of a
transpose, the grouping of ``gather_scatter``, a pattern's rows) would be 2**40 entries.
Each entry point refuses it, before allocating, with a ``ValueError`` naming the buffer,
the dimension and the limit (``set_dim_buffer_limit`` raises it), where it used to abort
the process on a failed allocation or loop for hours; SpGEMM accumulates such products
in memory that follows the work, and gives the right answer.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest
import torch

import rusttorch_sparse as rs

T = torch.tensor
BIG = 2**40


def dim_limit(buffer: str, entries: int = BIG + 1) -> str:
    """The message (as a regex) of the dimension-buffer limit."""
    return (
        rf"^{buffer} would need {entries} entries, over the limit of 2147483648; "
        r"raise the limit \(set_dim_buffer_limit\) if this is intended$"
    )


ROW_POINTERS = dim_limit(r"the row pointers of the CSR matrix \(nrows \+ 1\)")


def test_the_limit_is_exported_and_defaults_to_2_31() -> None:
    assert rs.DEFAULT_MAX_DIM_BUFFER == 2**31
    assert rs.get_dim_buffer_limit() == 2**31


def test_from_coo_with_huge_nrows() -> None:
    with pytest.raises(ValueError, match=ROW_POINTERS):
        rs.CsrMatrix.from_coo(T([5]), T([1]), T([1.0]), (BIG, 2))
    with pytest.raises(ValueError, match=ROW_POINTERS):
        rs.CsrMatrix.from_coo(T([], dtype=torch.int64), T([], dtype=torch.int64), T([]), (BIG, 2))
    # Huge ncols costs nothing here.
    a = rs.CsrMatrix.from_coo(T([1]), T([BIG - 1]), T([2.0]), (2, BIG))
    assert a.crow.tolist() == [0, 0, 1] and a.col.tolist() == [BIG - 1]


def test_from_edge_index_with_huge_num_nodes() -> None:
    edge_index = T([[0, 1], [1, 2]])
    # The errors name num_nodes (the argument given), not the matrix's nrows.
    pointers = dim_limit(r"the row pointers of the aggregation matrix \(num_nodes \+ 1\)")
    with pytest.raises(ValueError, match=pointers):
        rs.CsrMatrix.from_edge_index(edge_index, num_nodes=BIG)
    with pytest.raises(ValueError, match=pointers):
        rs.CsrMatrix.from_edge_index(edge_index, BIG, torch.ones(2).requires_grad_())
    with pytest.raises(
        ValueError, match=r"^invalid argument num_nodes: 2147483648 exceeds the largest int32"
    ):
        rs.CsrMatrix.from_edge_index(edge_index.int(), num_nodes=2**31)
    with pytest.raises(ValueError, match=r"^invalid argument num_nodes: -1 is negative$"):
        rs.CsrMatrix.from_edge_index(edge_index, num_nodes=-1)
    with pytest.raises(ValueError, match=r"^invalid argument num_nodes: 1180591620717411303424"):
        rs.CsrMatrix.from_edge_index(edge_index, num_nodes=2**70)
    with pytest.raises(
        IndexError, match=r"^edge_index\[1\]\[1\] = 2 is out of range for 2 nodes \(num_nodes\)$"
    ):
        rs.CsrMatrix.from_edge_index(edge_index, num_nodes=2)


def test_coo_to_csr_and_from_torch_coo_with_huge_nrows() -> None:
    coo = rs.CooMatrix(T([3]), T([4]), T([1.0]), (BIG, BIG))
    with pytest.raises(ValueError, match=ROW_POINTERS):
        coo.to_csr()
    with pytest.raises(ValueError, match=ROW_POINTERS):
        coo.to_dense()
    t = torch.sparse_coo_tensor(T([[3], [4]]), T([1.0]), (BIG, 5), check_invariants=True)
    with pytest.raises(ValueError, match=ROW_POINTERS):
        rs.CsrMatrix.from_torch(t)
    assert rs.CooMatrix.from_torch(t).nnz == 1  # COO stays COO: no pointers needed


def test_from_scipy_coo_with_huge_nrows() -> None:
    sp = pytest.importorskip("scipy.sparse")
    import numpy as np

    m = sp.coo_matrix(
        (np.array([1.0]), (np.array([3], dtype=np.int64), np.array([1], dtype=np.int64))),
        shape=(BIG, 2),
    )
    with pytest.raises(ValueError, match=ROW_POINTERS):
        rs.CsrMatrix.from_scipy(m)


def test_transpose_and_to_csc_of_a_huge_ncols() -> None:
    # The example from the audit: an empty 1 x 2**40 matrix.
    a = rs.CsrMatrix(T([0, 0]), T([], dtype=torch.int64), T([]), (1, BIG))
    transpose = dim_limit(r"the row pointers of the transpose \(ncols \+ 1\)")
    with pytest.raises(ValueError, match=transpose):
        a.transpose()
    with pytest.raises(ValueError, match=transpose):
        _ = a.T
    csc = dim_limit(r"the column pointers of the CSC matrix \(ncols \+ 1\)")
    with pytest.raises(ValueError, match=csc):
        a.to_csc()
    assert a.to_coo().nnz == 0


def test_csc_to_csr_of_a_huge_nrows() -> None:
    c = rs.CscMatrix(T([0, 1]), T([BIG - 1]), T([1.0]), (BIG, 1))
    with pytest.raises(ValueError, match=ROW_POINTERS):
        c.to_csr()
    t = torch.sparse_csc_tensor(T([0, 1]), T([7]), T([1.0]), (BIG, 1))
    with pytest.raises(ValueError, match=ROW_POINTERS):
        rs.CsrMatrix.from_torch(t)


def test_gather_scatter_with_huge_num_nodes() -> None:
    x = torch.randn(3, 4)
    src, dst = T([0, 1]), T([1, 2])
    grouping = dim_limit(r"the row pointers of the edges grouped by destination \(num_nodes \+ 1\)")
    with pytest.raises(ValueError, match=grouping):
        rs.gather_scatter(x, src, dst, "sum", num_nodes=BIG)
    with pytest.raises(ValueError, match=grouping):
        rs.gather_scatter(torch.randn(3, 0), src, dst, "max", num_nodes=BIG)
    # With autograd recording, the grouping goes through the coo_to_csr op: same message.
    with pytest.raises(ValueError, match=grouping):
        rs.gather_scatter(x.requires_grad_(), src, dst, "mean", num_nodes=BIG)
    for t in (x.detach(), x):
        with pytest.raises(ValueError, match=r"^invalid argument num_nodes: -2 is negative$"):
            rs.gather_scatter(t, src, dst, "sum", num_nodes=-2)
        with pytest.raises(IndexError, match=r"^src\[1\] = 1 is out of range for 1 source"):
            rs.gather_scatter(t[:1], src, dst, "sum")


def test_spgemm_with_a_huge_column_count_is_right() -> None:
    # A (2 x 3) @ B (3 x 2**40): the product is tiny; dense accumulators would be 2**40
    # slots per thread.
    a = rs.CsrMatrix(T([0, 2, 3]), T([0, 2, 1]), T([1.0, 2.0, 3.0], dtype=torch.float64), (2, 3))
    bcols = [BIG - 1, 7, 0, BIG - 1, 5, 7, 2**33, BIG - 1]
    b = rs.CsrMatrix(
        T([0, 3, 5, 8]), T(bcols), torch.arange(1.0, 9.0, dtype=torch.float64), (3, BIG)
    )
    for c in (a @ b, rs.spgemm(a, b, sort_indices=True)):
        assert c.shape == (2, BIG)
        got = {
            (r, int(k)): float(v)
            for r in range(2)
            for k, v in zip(
                c.col[c.crow[r] : c.crow[r + 1]], c.values[c.crow[r] : c.crow[r + 1]], strict=True
            )
        }
        # row 0 = 1 * B[0] + 2 * B[2]; row 1 = 3 * B[1]
        assert got == {
            (0, BIG - 1): 1.0 + 2 * 8.0,
            (0, 7): 2.0 + 2 * 6.0,
            (0, 0): 3.0,
            (0, 2**33): 2 * 7.0,
            (1, BIG - 1): 3 * 4.0,
            (1, 5): 3 * 5.0,
        }
    sorted_c = rs.spgemm(a, b, sort_indices=True)
    assert sorted_c.col.tolist() == [0, 7, 2**33, BIG - 1, 5, BIG - 1]


def test_attention_patterns_are_sized_before_any_work() -> None:
    pattern = (
        r"^the attention pattern would need {} stored entries, over the limit of 2147483648; "
        r"raise the limit \({}\) if this is intended$"
    )
    start = time.perf_counter()
    with pytest.raises(ValueError, match=pattern.format(BIG, "smaller n or window")):
        rs.sliding_window(BIG, 0)
    with pytest.raises(ValueError, match=pattern.format(r"\d+", "smaller n or window")):
        rs.sliding_window(2**31, 2)
    longformer = "smaller n, window or global_tokens"
    with pytest.raises(ValueError, match=pattern.format(r"\d+", longformer)):
        rs.longformer(BIG, 2, [0])
    with pytest.raises(ValueError, match=longformer):
        rs.longformer(2**20, 0, 4096)  # 4096 global rows of 2**20 keys
    # global_tokens=g means tokens 0..g: a huge g is refused before that list exists.
    with pytest.raises(ValueError, match=longformer):
        rs.longformer(2**30, 2, 2**30)
    with pytest.raises(ValueError, match=longformer):
        rs.longformer(BIG, 2, BIG)
    with pytest.raises(
        IndexError, match=r"^global_tokens\[10\] = 10 is out of range for 10 tokens$"
    ):
        rs.longformer(10, 2, 11)
    bigbird = "smaller n, block, num_random or num_global"
    with pytest.raises(ValueError, match=pattern.format(BIG, bigbird)):
        rs.bigbird(BIG, 64, 2, 1)
    # 2**16 blocks: the first builder did 2**32 steps before it checked anything.
    with pytest.raises(ValueError, match=pattern.format(r"\d+", bigbird)):
        rs.bigbird(2**28, 2**12, 2, 0)
    assert time.perf_counter() - start < 10
    assert rs.sliding_window(5, 2).nnz == 13


@pytest.fixture
def small_limit() -> Iterator[int]:
    rs.set_dim_buffer_limit(101)
    try:
        yield 101
    finally:
        rs.set_dim_buffer_limit(rs.DEFAULT_MAX_DIM_BUFFER)


def test_the_limit_can_be_set(small_limit: int) -> None:
    assert rs.get_dim_buffer_limit() == small_limit
    rs.CsrMatrix.from_coo(T([99]), T([0]), T([1.0]), (100, 1))  # 101 pointers: allowed
    message = dim_limit(r"the row pointers.*", 102).replace("2147483648", "101")
    with pytest.raises(ValueError, match=message):
        rs.CsrMatrix.from_coo(T([100]), T([0]), T([1.0]), (101, 1))


def test_an_allocation_the_limit_allows_but_memory_cannot_hold_is_a_memory_error() -> None:
    rs.set_dim_buffer_limit(2**62)
    try:
        # (2**61 + 1) pointers of 8 bytes: past the address space, refused by the
        # allocator's size check without touching memory.
        a = rs.CsrMatrix(T([0, 0]), T([], dtype=torch.int64), T([]), (1, 2**61))
        message = r"^could not allocate \d+ bytes for the row pointers"
        with pytest.raises(MemoryError, match=message):
            a.transpose()
    finally:
        rs.set_dim_buffer_limit(rs.DEFAULT_MAX_DIM_BUFFER)


def test_nothing_crashes_in_a_fresh_process() -> None:
    """Every entry point above, in a child process: a regression that aborts shows up as
    a failed test here rather than taking pytest down."""
    script = textwrap.dedent(
        f"""
        import torch, rusttorch_sparse as rs
        T, BIG = torch.tensor, {BIG}
        e = T([], dtype=torch.int64)
        calls = [
            lambda: rs.CsrMatrix.from_coo(T([5]), T([1]), T([1.0]), (BIG, 2)),
            lambda: rs.CsrMatrix.from_edge_index(T([[0], [1]]), num_nodes=BIG),
            lambda: rs.CsrMatrix.from_torch(
                torch.sparse_coo_tensor(T([[3], [4]]), T([1.0]), (BIG, 5), check_invariants=True)
            ),
            lambda: rs.CooMatrix(T([3]), T([4]), T([1.0]), (BIG, BIG)).to_csr(),
            lambda: rs.CsrMatrix(T([0, 0]), e, T([]), (1, BIG)).transpose(),
            lambda: rs.CsrMatrix(T([0, 0]), e, T([]), (1, BIG)).to_csc(),
            lambda: rs.CscMatrix(T([0, 1]), T([3]), T([1.0]), (BIG, 1)).to_csr(),
            lambda: rs.gather_scatter(torch.randn(3, 4), T([0]), T([1]), "sum", num_nodes=BIG),
            lambda: rs.sliding_window(BIG, 0),
            lambda: rs.longformer(BIG, 2, [0]),
            lambda: rs.bigbird(BIG, 64, 2, 1),
        ]
        for call in calls:
            try:
                call()
                print("returned")
            except ValueError as err:
                print("ValueError", str(err).split(" would need")[0])
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert len(lines) == 11 and all(line.startswith("ValueError") for line in lines), lines
