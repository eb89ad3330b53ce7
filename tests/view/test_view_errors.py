"""Every bad-input rule: the exact exception type, a message naming the problem, and no
write into `out=` when a call is refused."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest
import torch

import rusttorch_view as rv


@contextmanager
def unchanged(*tensors: torch.Tensor | np.ndarray) -> Iterator[None]:
    """Asserts that the tensors hold the same values after the block as before."""
    before = [torch.as_tensor(t).clone() for t in tensors]
    yield
    for t, b in zip(tensors, before, strict=True):
        assert torch.equal(torch.as_tensor(t), b), "a refused call wrote into its output"


ALL_ENTRY_POINTS: list[Callable[[Any], object]] = [
    rv.info,
    rv.copy,
    lambda x: rv.to_torch(x, copy=True),
    rv._native._copy_torch_alloc,
]
entry_points = pytest.mark.parametrize(
    "call", ALL_ENTRY_POINTS, ids=["info", "copy", "to_torch", "copy_torch_alloc"]
)


# --- devices --------------------------------------------------------------------------------


@entry_points
def test_meta_tensor_is_refused_naming_the_device(call: Callable[[Any], object]) -> None:
    x = torch.empty(3, 4, device="meta")
    with pytest.raises(ValueError, match="'meta'"):
        call(x)


def test_meta_tensor_as_out_is_refused() -> None:
    with pytest.raises(ValueError, match="'meta'"):
        rv.copy(torch.ones(3), out=torch.empty(3, device="meta"))


# --- dtypes ---------------------------------------------------------------------------------


@entry_points
@pytest.mark.parametrize(
    "dtype",
    [torch.complex64, torch.complex128, torch.uint16, torch.uint32, torch.float8_e4m3fn],
    ids=str,
)
def test_unsupported_torch_dtype_is_a_type_error(
    call: Callable[[Any], object], dtype: torch.dtype
) -> None:
    x = torch.zeros(4, dtype=dtype)
    name = str(dtype).removeprefix("torch.")
    with pytest.raises(TypeError, match=f"unsupported dtype .*{name}") as e:
        call(x)
    assert "float32" in str(e.value), "the message should list what is supported"


@pytest.mark.parametrize("np_dtype", ["complex64", "complex128", "uint16", "uint32", "uint64"])
def test_unsupported_numpy_dtype_is_a_type_error(np_dtype: str) -> None:
    a = np.zeros(4, dtype=np_dtype)
    for call in ALL_ENTRY_POINTS:
        with pytest.raises(TypeError, match=np_dtype):
            call(a)
    with pytest.raises(TypeError, match=np_dtype):
        rv.to_torch(a)


def test_unsupported_buffer_format_is_a_type_error() -> None:
    import array

    with pytest.raises(TypeError, match="'H'"):
        rv.info(array.array("H", [1, 2, 3]))
    with pytest.raises(TypeError, match="'Zf'"):
        rv.info(memoryview(np.zeros(2, dtype=np.complex64)))


def test_out_of_unsupported_dtype_is_a_type_error() -> None:
    out = torch.zeros(3, dtype=torch.complex64)
    with unchanged(out), pytest.raises(TypeError, match="complex64"):
        rv.copy(torch.zeros(3), out=out)


def test_big_endian_numpy_array_is_refused() -> None:
    # NumPy refuses to export non-native byte order through DLPack; the refusal comes back
    # as the ValueError of a failed DLPack export, with NumPy's reason chained.
    a = np.arange(4, dtype=">f4")
    with pytest.raises((TypeError, ValueError), match="byte order"):
        rv.info(a)
    with pytest.raises((TypeError, ValueError), match="byte order"):
        rv.to_torch(a)
    out = np.zeros(4, dtype=">f4")
    with pytest.raises((TypeError, ValueError), match="byte order"):
        rv.copy(torch.ones(4), out=out)
    np.testing.assert_array_equal(out, np.zeros(4))


def test_big_endian_buffer_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="'>f'"):
        rv.info(memoryview(np.arange(4, dtype=">f4")))


# --- layouts and objects --------------------------------------------------------------------


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@entry_points
@pytest.mark.parametrize(
    "make",
    [lambda: torch.eye(3).to_sparse(), lambda: torch.eye(3).to_sparse_csr()],
    ids=["sparse_coo", "sparse_csr"],
)
def test_sparse_tensor_is_a_type_error(
    call: Callable[[Any], object], make: Callable[[], torch.Tensor]
) -> None:
    x = make()
    with pytest.raises(TypeError, match=str(x.layout).removeprefix("torch.")):
        call(x)


@entry_points
@pytest.mark.parametrize(
    "obj", [{}, "abc", 3, 2.5, None, [1.0, 2.0], object()], ids=lambda o: type(o).__name__
)
def test_non_array_object_is_a_type_error(call: Callable[[Any], object], obj: object) -> None:
    with pytest.raises(TypeError, match=f"got {type(obj).__name__}"):
        call(obj)


def test_non_array_out_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="got list"):
        rv.copy(torch.zeros(2), out=[0.0, 0.0])  # type: ignore[arg-type]


def test_negated_view_is_refused() -> None:
    # The imaginary part of a conjugated complex tensor is a float view with the lazy
    # negation bit set; reading its memory raw would give the wrong sign.
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    x = z.conj().imag
    assert x.is_neg()
    with pytest.raises(ValueError, match="negation"):
        rv.copy(x)
    assert rv.copy(x.resolve_neg()).tolist() == [-2.0, 4.0]


def test_bad_copy_flag_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        rv.to_torch(np.zeros(2), copy="yes")  # type: ignore[arg-type]


# --- read-only memory -----------------------------------------------------------------------


def test_read_only_numpy_out_is_refused() -> None:
    out = np.zeros(5, dtype=np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        rv.copy(torch.ones(5), out=out)
    np.testing.assert_array_equal(out, np.zeros(5))


def test_read_only_buffer_out_is_refused() -> None:
    out = bytes(4)
    with pytest.raises(ValueError, match="read-only"):
        rv.copy(torch.ones(4, dtype=torch.uint8), out=out)
    assert out == bytes(4)


def test_read_only_to_torch_copy_false_shares_with_a_warning() -> None:
    a = np.arange(4.0)
    a.flags.writeable = False
    with pytest.warns(UserWarning, match="read-only"):
        t = rv.to_torch(a, copy=False)
    assert t.data_ptr() == a.ctypes.data
    assert t.tolist() == a.tolist()


def test_read_only_to_torch_default_copies_without_warning() -> None:
    a = np.arange(4.0)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = rv.to_torch(a)
    assert t.data_ptr() != a.ctypes.data
    assert t.tolist() == a.tolist()


# --- out= checks ----------------------------------------------------------------------------


def test_out_shape_mismatch() -> None:
    x = torch.arange(12.0).reshape(3, 4)
    for shape in [(4, 3), (12,), (3, 4, 1), (3, 5)]:
        out = torch.full(shape, -1.0)
        with unchanged(out), pytest.raises(ValueError, match="shape"):
            rv.copy(x, out=out)


def test_out_dtype_mismatch() -> None:
    x = torch.arange(6, dtype=torch.float32)
    out = torch.full((6,), -1, dtype=torch.float64)
    with unchanged(out), pytest.raises(TypeError, match=r"float64.*float32"):
        rv.copy(x, out=out)
    out_np = np.zeros(6, dtype=np.int32)
    with unchanged(out_np), pytest.raises(TypeError, match="int32"):
        rv.copy(x, out=out_np)


def test_out_same_tensor_is_refused() -> None:
    x = torch.arange(6.0)
    with unchanged(x), pytest.raises(ValueError, match="overlaps"):
        rv.copy(x, out=x)


def test_out_overlapping_slice_is_refused() -> None:
    base = torch.arange(10.0)
    with unchanged(base), pytest.raises(ValueError, match="overlaps"):
        rv.copy(base[:5], out=base[3:8])
    with unchanged(base), pytest.raises(ValueError, match="overlaps"):
        rv.copy(base[::2], out=base[1::2])  # interleaved: refused conservatively


def test_out_overlapping_through_another_object_is_refused() -> None:
    x = torch.arange(8, dtype=torch.int64)
    alias = x.numpy()[::-1]
    with unchanged(x), pytest.raises(ValueError, match="overlaps"):
        rv.copy(x, out=x.numpy())
    with unchanged(x), pytest.raises(ValueError, match="overlaps"):
        rv.copy(alias, out=x)


def test_out_disjoint_part_of_the_same_tensor_is_allowed() -> None:
    base = torch.arange(10.0)
    rv.copy(base[:5], out=base[5:])
    assert base.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0] * 2


def test_expanded_out_is_refused() -> None:
    backing = torch.zeros(3, 1)
    out = backing.expand(3, 4)
    with unchanged(backing), pytest.raises(ValueError, match="overlap itself"):
        rv.copy(torch.ones(3, 4), out=out)


def test_self_overlapping_as_strided_out_is_refused() -> None:
    backing = torch.zeros(10)
    out = backing.as_strided((4, 3), (2, 1))  # rows share elements
    with unchanged(backing), pytest.raises(ValueError, match="overlap itself"):
        rv.copy(torch.ones(4, 3), out=out)


def test_out_requiring_grad_is_refused_under_grad_mode() -> None:
    out = torch.zeros(4, requires_grad=True)
    with unchanged(out.detach()), pytest.raises(ValueError, match="requires grad"):
        rv.copy(torch.ones(4), out=out)


def test_out_requiring_grad_is_allowed_under_no_grad() -> None:
    out = torch.zeros(4, requires_grad=True)
    with torch.no_grad():
        assert rv.copy(torch.arange(4.0), out=out) is out
    assert out.requires_grad
    assert out.detach().tolist() == [0.0, 1.0, 2.0, 3.0]


def test_out_write_is_seen_by_autograd() -> None:
    w = torch.ones(3, requires_grad=True)
    x = torch.tensor([1.0, 2.0, 3.0])  # saved by the product for w's gradient
    z = (w * x).sum()
    version = x._version
    rv.copy(torch.zeros(3), out=x)
    assert x._version > version
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        z.backward()


def test_numpy_stride_not_a_multiple_of_the_item_size_is_refused() -> None:
    packed = np.zeros(4, dtype=np.dtype([("a", "<i4"), ("b", "u1")]))["a"]  # 5-byte steps
    with pytest.raises(ValueError, match="multiple of itemsize"):
        rv.info(packed)
    with pytest.raises(ValueError, match="multiple of itemsize"):
        rv.to_torch(packed)


# --- storage --------------------------------------------------------------------------------


@entry_points
def test_tensor_whose_storage_was_freed_is_refused(call: Callable[[Any], object]) -> None:
    x = torch.arange(10.0)
    x.untyped_storage().resize_(0)
    with pytest.raises(ValueError, match="storage"):
        call(x)


def test_view_past_a_shrunk_storage_is_refused() -> None:
    base = torch.arange(10.0)
    tail = base[6:]
    base.untyped_storage().resize_(4 * 4)  # keeps elements 0..3 only
    with pytest.raises(ValueError, match="storage"):
        rv.info(tail)
    assert rv.copy(base[:4]).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_out_whose_storage_was_freed_is_refused() -> None:
    out = torch.zeros(10)
    out.untyped_storage().resize_(0)
    with pytest.raises(ValueError, match="storage"):
        rv.copy(torch.ones(10), out=out)


# --- misaligned memory ----------------------------------------------------------------------


def misaligned_float32() -> np.ndarray:
    buf = bytearray(4 * 8 + 1)
    a = np.frombuffer(buf, dtype=np.float32, offset=1)
    a[:] = np.arange(8)
    assert not a.flags.aligned
    return a


def test_misaligned_copy_false_is_refused() -> None:
    with pytest.raises(ValueError, match="aligned"):
        rv.to_torch(misaligned_float32(), copy=False)


def test_misaligned_info_reports_the_address() -> None:
    a = misaligned_float32()
    assert rv.info(a).data_ptr == int(a.__array_interface__["data"][0])
    assert rv.info(a).data_ptr % 4 == 1


def test_misaligned_to_torch_copies() -> None:
    a = misaligned_float32()
    t = rv.to_torch(a)
    assert t.tolist() == a.tolist()
    assert t.data_ptr() % 4 == 0


# --- DLPack producers and threads -----------------------------------------------------------


def test_dlpack_producer_that_raises_is_a_value_error_with_cause() -> None:
    boom = RuntimeError("producer exploded")

    class Broken:
        def __dlpack__(self, **kwargs: object) -> object:
            raise boom

    with pytest.raises(ValueError, match="producer exploded") as e:
        rv.info(Broken())
    assert e.value.__cause__ is boom
    assert "Broken" in str(e.value)


@pytest.mark.parametrize("n", [0, -1, -(2**40)])
def test_set_num_threads_below_one_is_refused(n: int) -> None:
    before = rv.get_num_threads()
    with pytest.raises(ValueError, match=str(n)):
        rv.set_num_threads(n)
    assert rv.get_num_threads() == before


def test_set_num_threads_of_non_int_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        rv.set_num_threads(2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        rv.set_num_threads("4")  # type: ignore[arg-type]
