"""Every bad-input rule raises a clear ValueError/TypeError/IndexError naming the position,
and nothing is returned half-built."""

from __future__ import annotations

import pytest
import torch
from _sparse_support import random_csr

import rusttorch_sparse as rs

T = torch.tensor


def csr(crow: list[int], col: list[int], shape: tuple[int, int], **kw: object) -> rs.CsrMatrix:
    return rs.CsrMatrix(T(crow), T(col, dtype=torch.int64), torch.ones(len(col)), shape, **kw)  # type: ignore[arg-type]


def test_out_of_range_column_names_its_position() -> None:
    col = list(range(10)) * 2
    col[17] = 12
    with pytest.raises(IndexError, match=r"^col\[17\] = 12 is out of range for 10 columns$"):
        csr([0, 10, 20], col, (2, 10))


def test_negative_index() -> None:
    with pytest.raises(IndexError, match=r"col\[1\] = -1 is negative"):
        csr([0, 2], [0, -1], (1, 3))


def test_decreasing_row_pointers() -> None:
    with pytest.raises(ValueError, match=r"crow\[2\] = 1 is smaller than crow\[1\] = 2"):
        csr([0, 2, 1, 3], [0, 1, 2], (3, 3))


def test_crow_must_start_at_zero() -> None:
    with pytest.raises(ValueError, match=r"crow\[0\] = 1, expected 0"):
        csr([1, 2, 3], [0, 1, 2], (2, 3))


def test_crow_must_end_at_nnz() -> None:
    with pytest.raises(ValueError, match=r"crow\[2\] = 2, expected nnz = 3"):
        csr([0, 1, 2], [0, 1, 2], (2, 3))


def test_length_mismatches() -> None:
    with pytest.raises(ValueError, match=r"crow has 2 entries, expected 3"):
        csr([0, 1], [0], (2, 3))
    with pytest.raises(ValueError, match="values length"):
        rs.CsrMatrix(T([0, 1]), T([0]), T([1.0, 2.0]), (1, 1))
    with pytest.raises(ValueError, match="row and col lengths"):
        rs.CooMatrix(T([0, 1]), T([0]), T([1.0]), (2, 2))
    with pytest.raises(ValueError, match="values length"):
        rs.CsrMatrix.from_coo(T([0, 1]), T([0, 0]), T([1.0]), (2, 2))


def test_unsorted_columns_when_sorted_is_asked() -> None:
    with pytest.raises(ValueError, match=r"col\[1\] = 0 follows 2 in row 0"):
        csr([0, 2], [2, 0], (1, 3), sorted=True)
    csr([0, 2], [2, 0], (1, 3))  # allowed without sorted=True


def test_shapes_that_overflow_or_are_negative() -> None:
    with pytest.raises(ValueError, match="non-negative"):
        csr([0], [], (-1, 3))
    with pytest.raises(ValueError, match="largest int32 index"):
        rs.CsrMatrix(
            T([0, 0], dtype=torch.int32), T([], dtype=torch.int32), torch.zeros(0), (1, 2**31)
        )
    with pytest.raises((ValueError, OverflowError)):
        csr([0], [], (0, 2**70))
    with pytest.raises(ValueError, match="two dimensions"):
        csr([0], [], (1, 2, 3))  # type: ignore[arg-type]


def test_coo_index_errors_name_the_array() -> None:
    with pytest.raises(IndexError, match=r"row\[1\] = 5 is out of range for 2 rows"):
        rs.CsrMatrix.from_coo(T([0, 5]), T([0, 0]), T([1.0, 1.0]), (2, 2))
    with pytest.raises(IndexError, match=r"col\[0\] = -3 is negative"):
        rs.CooMatrix(T([0]), T([-3]), T([1.0]), (2, 2))


def test_csc_errors_use_csc_names() -> None:
    with pytest.raises(IndexError, match=r"row\[0\] = 4 is out of range for 2 rows"):
        rs.CscMatrix(T([0, 1, 1]), T([4]), T([1.0]), (2, 2))
    with pytest.raises(ValueError, match=r"ccol has 2 entries, expected 3"):
        rs.CscMatrix(T([0, 1]), T([0]), T([1.0]), (2, 2))


def test_index_and_value_dtypes() -> None:
    with pytest.raises(TypeError, match=r"crow has dtype torch\.float32"):
        rs.CsrMatrix(T([0.0, 1.0]), T([0]), T([1.0]), (1, 1))
    with pytest.raises(TypeError, match=r"values has dtype torch\.int64"):
        rs.CsrMatrix(T([0, 1]), T([0]), T([1]), (1, 1))


def test_dtype_mismatch_between_matrix_and_dense_operand() -> None:
    a = random_csr(3, 4, 6, dtype=torch.float32)
    with pytest.raises(TypeError, match="x has dtype float64 but values has dtype float32"):
        rs.spmm(a, torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(TypeError, match="k has dtype float64"):
        rs.sddmm(a, torch.ones(3, 2), torch.ones(4, 2, dtype=torch.float64))


def test_dense_operand_shape_mismatch() -> None:
    a = random_csr(3, 4, 6)
    with pytest.raises(ValueError, match=r"x has shape \[5, 2\], expected 4 rows"):
        rs.spmm(a, torch.ones(5, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="q has 2 features but k has 3"):
        rs.sddmm(a, torch.ones(3, 2, dtype=torch.float64), torch.ones(4, 3, dtype=torch.float64))


def test_dense_operand_on_another_device() -> None:
    a = random_csr(3, 4, 6)
    x = torch.ones(4, 2, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match=r"x: .*device 'meta'"):
        rs.spmm(a, x)


def test_bad_reduce() -> None:
    a = random_csr(3, 4, 6)
    with pytest.raises(ValueError, match="reduce must be one of"):
        rs.spmm(a, torch.ones(4, 2, dtype=torch.float64), reduce="prod")


def test_resource_limits() -> None:
    a = random_csr(50, 50, 400, seed=1)
    with pytest.raises(
        ValueError, match=r"the product A @ B would need \d+ stored entries, over the limit of 10"
    ):
        rs.spgemm(a, a, max_nnz=10)
    with pytest.raises(
        ValueError, match="the dense matrix would need 2500 elements, over the limit of 100"
    ):
        a.to_dense(max_elements=100)
    huge = rs.CsrMatrix(T([0, 0]), T([], dtype=torch.int64), torch.zeros(0), (1, 2**40))
    with pytest.raises(ValueError, match="over the limit"):
        huge.to_dense()
    with pytest.raises(ValueError, match="shapes do not chain"):
        rs.spgemm(a, random_csr(3, 3, 2))


def test_an_int32_product_past_the_index_range_says_to_use_int64() -> None:
    # (n x 1) @ (1 x n) has n^2 entries: past 2^31 - 1 for n = 46341, whatever max_nnz says.
    n = 46_341
    col = torch.zeros(n, dtype=torch.int32)
    tall = rs.CsrMatrix(torch.arange(n + 1, dtype=torch.int32), col, torch.ones(n), (n, 1))
    wide = rs.CsrMatrix(
        torch.tensor([0, n], dtype=torch.int32),
        torch.arange(n, dtype=torch.int32),
        torch.ones(n),
        (1, n),
    )
    with pytest.raises(ValueError, match="int32 index range: use int64 indices"):
        rs.spgemm(tall, wide, max_nnz=2**40)
    with pytest.raises(ValueError, match=r"raise the limit \(max_nnz\)"):
        rs.spgemm(tall, wide, max_nnz=1000)


def test_kernels_revalidate_tensors_changed_after_construction() -> None:
    a = random_csr(4, 4, 8)
    a.col[0] = 99  # mutate in place behind the matrix's back
    with pytest.raises(IndexError, match="col\\[0\\] = 99"):
        rs.spmm(a, torch.ones(4, 2, dtype=torch.float64))
    with pytest.raises(IndexError):
        rs.sparse_softmax(a)


@pytest.mark.parametrize("layout", ["csr", "csc", "coo"])
@pytest.mark.parametrize("export", ["to_torch", "to_scipy"])
def test_exports_revalidate_tensors_changed_after_construction(layout: str, export: str) -> None:
    # torch (check_invariants=False) and SciPy trust what they are handed: a row pointer
    # changed behind the matrix's back would crash torch's to_dense() or read out of bounds.
    if export == "to_scipy":
        pytest.importorskip("scipy")
    a = {"csr": lambda m: m, "csc": rs.CsrMatrix.to_csc, "coo": rs.CsrMatrix.to_coo}[layout](
        random_csr(4, 4, 8)
    )
    index = a.row if layout == "csc" else a.col
    index[0] = 99
    with pytest.raises(IndexError, match="= 99"):
        getattr(a, export)()


def test_values_on_another_device_are_refused_by_with_values() -> None:
    a = random_csr(3, 4, 6)
    with pytest.raises(ValueError, match="values is on device 'meta'"):
        a.with_values(torch.ones(a.nnz, dtype=torch.float64, device="meta"))


@pytest.mark.parametrize("op", ["spmm", "sddmm"])
def test_a_meta_operand_on_the_autograd_path_is_a_value_error(op: str) -> None:
    # With grad the call goes through the torch.library op; a meta operand would send the
    # dispatcher to the fake kernel and return an uninitialized CPU tensor.
    a = random_csr(4, 4, 8)
    q = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    meta = torch.ones(4, 3, dtype=torch.float64, device="meta")
    with pytest.raises(ValueError, match="same device"):
        if op == "spmm":
            rs.spmm(a.with_values(a.values.requires_grad_()), meta)
        else:
            rs.sddmm(a, q, meta)


def test_operands_of_the_wrong_kind_are_type_errors_naming_them() -> None:
    np = pytest.importorskip("numpy")
    a = random_csr(2, 2, 3)
    q = torch.ones(2, 1, dtype=torch.float64)
    cases = [
        (lambda: rs.spmv(a, [1.0, 2.0]), "spmv: x must be a torch.Tensor, got list"),
        (lambda: rs.sddmm(a, [[1.0], [2.0]], q), "sddmm: q must be a torch.Tensor, got list"),
        (lambda: rs.sddmm(a, q, q, scale=None), "sddmm: scale must be a real number, got NoneType"),
        (lambda: rs.sparse_attention(q, q, "v", a), "sparse_attention: v must be a torch.Tensor"),
        (lambda: rs.CsrMatrix.from_torch(np.eye(2)), "from_torch expects a torch.Tensor, got nd"),
        (lambda: rs.CsrMatrix.from_scipy(np.eye(2)), "from_scipy expects a SciPy sparse matrix"),
    ]
    for call, message in cases:
        with pytest.raises(TypeError, match=message):
            call()
    # NumPy scalars and 0-d tensors still serve as the scale.
    want = rs.sddmm(a, q, q, scale=0.5).values
    assert torch.equal(rs.sddmm(a, q, q, scale=np.float32(0.5)).values, want)
    assert torch.equal(rs.sddmm(a, q, q, scale=torch.tensor(0.5)).values, want)


def test_gather_scatter_errors() -> None:
    x = torch.ones(3, 2)
    with pytest.raises(IndexError, match=r"src\[1\] = 3 is out of range"):
        rs.gather_scatter(x, T([0, 3]), T([0, 1]))
    with pytest.raises(IndexError, match=r"dst\[0\] = 7 is out of range"):
        rs.gather_scatter(x, T([0, 1]), T([7, 1]), num_nodes=3)
    # The same message with and without autograd (the two take different paths).
    for x_ in (x, x.clone().requires_grad_()):
        with pytest.raises(
            ValueError, match=r"src length \(one entry per dst entry\): expected 1, got 2"
        ):
            rs.gather_scatter(x_, T([0, 1]), T([0]))


def test_pattern_builder_errors() -> None:
    with pytest.raises(IndexError, match="global_tokens"):
        rs.longformer(8, 2, [8])
    with pytest.raises(ValueError, match="block"):
        rs.bigbird(8, 0, 1, 1)


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: rs.sliding_window(-1, 2), "n"),
        (lambda: rs.sliding_window(8, -2), "window"),
        (lambda: rs.longformer(8, 2, -3), "global_tokens"),
        (lambda: rs.bigbird(8, 2, -1, 1), "num_random"),
        (lambda: rs.bigbird(8, 2, 1, -1), "num_global"),
        (lambda: rs.bigbird(8, 2, 1, 1, seed=-5), "seed"),
        (lambda: rs.spgemm(random_csr(3, 3, 4), random_csr(3, 3, 4), max_nnz=-1), "max_nnz"),
    ],
)
def test_negative_sizes_and_counts_are_value_errors_naming_the_argument(
    call: object, name: str
) -> None:
    # The compiled functions take unsigned integers; a negative one must not surface as a
    # bare OverflowError (nor, for longformer's count, be read as 0).
    with pytest.raises(ValueError, match=f"invalid argument {name}: -\\d+ is negative"):
        call()  # type: ignore[operator]


def test_integer_like_global_token_counts() -> None:
    np = pytest.importorskip("numpy")
    want = rs.longformer(8, 2, 2).to_dense()
    assert torch.equal(rs.longformer(8, 2, np.int64(2)).to_dense(), want)
    assert torch.equal(rs.longformer(8, 2, [0, 1]).to_dense(), want)
    assert torch.equal(rs.longformer(8, 2, np.array([0, 1])).to_dense(), want)
    with pytest.raises(TypeError, match="global_tokens must be an integer, got bool"):
        rs.longformer(8, 2, True)


def test_nan_values_are_allowed_and_propagate() -> None:
    a = rs.CsrMatrix(T([0, 2, 3]), T([0, 1, 1]), T([float("nan"), 1.0, 2.0]), (2, 2))
    out = rs.spmm(a, torch.ones(2, 1))
    assert torch.isnan(out[0, 0]) and out[1, 0] == 2.0
    assert torch.isnan(rs.spmm(a, torch.ones(2, 1), "max")[0, 0])
    assert torch.isnan(rs.sparse_softmax(a).values[:2]).all()
