"""Zero-copy round trips between NumPy, pyarrow and torch through rusttorch.

Every step checks its claim (equal data pointers, writes visible on the other side) and stops
with an AssertionError if it does not hold. Run it with `nox -s demo`, which builds and installs
everything first, or directly once `rusttorch` is installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

import rusttorch
from rusttorch import view


def numpy_to_torch() -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    tensor = view.to_torch(array)
    print(f"NumPy -> torch:   array at {array.ctypes.data:#x}, tensor at {tensor.data_ptr():#x}")
    assert tensor.data_ptr() == array.ctypes.data, "to_torch copied a contiguous NumPy array"

    tensor[0, 0] = 42.0
    print(f"write through torch: tensor[0, 0] = 42 -> array[0, 0] == {array[0, 0]}")
    assert array[0, 0] == 42.0, "a write through the tensor did not reach the NumPy array"


def strided_torch_round_trip() -> None:
    # A transposed, stepped view with a storage offset: rusttorch reads it in place.
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    strided = base.t()[1::2]
    info = view.info(strided)
    print(
        f"info(base.t()[1::2]): {info.dtype}, shape {info.shape}, strides {info.strides}, "
        f"contiguous {info.is_contiguous}, read in place {info.data_ptr == strided.data_ptr()}"
    )
    assert info.data_ptr == strided.data_ptr()
    assert info.shape == tuple(strided.shape) and info.strides == strided.stride()
    assert not info.is_contiguous

    again = view.to_torch(strided)
    print(
        f"torch -> torch:   same memory {again.data_ptr() == strided.data_ptr()}, "
        f"strides {again.stride()}"
    )
    assert again.data_ptr() == strided.data_ptr() and again.stride() == strided.stride()

    dense = view.copy(strided)  # the one documented copy: strided in, contiguous out
    print(
        f"copy():           contiguous {dense.is_contiguous()}, equal {torch.equal(dense, strided)}"
    )
    assert dense.is_contiguous() and torch.equal(dense, strided)
    assert dense.data_ptr() != strided.data_ptr()


def pyarrow_to_torch() -> None:
    try:
        import pyarrow as pa
    except ImportError:
        print("pyarrow -> torch:  skipped (pyarrow is not installed)")
        return
    arrow = pa.array(np.arange(1, 9, dtype=np.int64))
    values = arrow.buffers()[1]  # buffers()[0] is the validity bitmap (None: no nulls)
    assert values is not None
    # rusttorch's kernels read Arrow memory in place...
    info = view.info(arrow)
    print(f"pyarrow in place: buffer at {values.address:#x}, rusttorch reads {info.data_ptr:#x}")
    assert info.data_ptr == values.address and info.readonly
    # ...but Arrow memory is immutable and a torch tensor is always writable, so to_torch
    # copies by default rather than hand out a tensor whose writes could corrupt it.
    tensor = view.to_torch(arrow)
    print(
        f"pyarrow -> torch: copied (read-only source), equal {tensor.tolist() == arrow.to_pylist()}"
    )
    assert tensor.tolist() == arrow.to_pylist()
    assert tensor.data_ptr() != values.address
    # copy=False is the zero-copy route for callers who promise not to write.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        shared = view.to_torch(arrow, copy=False)
    print(
        f"to_torch(copy=False): shares the Arrow buffer {shared.data_ptr() == values.address}, "
        f"warns: {caught[0].message if caught else 'nothing'}"
    )
    assert shared.data_ptr() == values.address and caught


def main() -> None:
    numpy_to_torch()
    strided_torch_round_trip()
    pyarrow_to_torch()
    print()
    rusttorch.show_config()


if __name__ == "__main__":
    main()
