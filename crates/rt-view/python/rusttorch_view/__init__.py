"""Zero-copy, borrow-checked views of torch tensors: the bridge every rusttorch crate uses.

>>> import torch, rusttorch_view as rv
>>> x = torch.arange(6.0).reshape(2, 3).t()
>>> rv.info(x).strides
(1, 3)
>>> y = rv.to_torch(x.numpy())          # NumPy -> torch, no copy
>>> y.data_ptr() == x.data_ptr()
True
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import torch

from . import _native
from ._native import (
    TensorInfo,
    copy,
    cpu_features,
    get_num_threads,
    info,
    set_num_threads,
    supported_dtypes,
)

__version__: str = _native.__version__

__all__ = [
    "TensorInfo",
    "__version__",
    "copy",
    "cpu_features",
    "get_num_threads",
    "info",
    "set_num_threads",
    "supported_dtypes",
    "to_torch",
]


def to_torch(x: Any, *, copy: bool | None = None) -> torch.Tensor:
    """Return ``x`` as a torch tensor sharing its memory.

    ``x`` may be a torch tensor (returned as is), a NumPy array, a pyarrow numeric array
    without nulls (or a ``ChunkedArray``), anything with ``__dlpack__``, or a
    buffer-protocol object.

    ``copy=None`` (the default) shares memory where that is safe and copies otherwise:
    read-only memory (pyarrow arrays, ``bytes``, read-only NumPy arrays; every torch tensor
    is writable, and a write into such memory may crash), negative strides and misaligned
    data (which torch can not represent), and a ``ChunkedArray`` of several chunks.

    ``copy=False`` never copies: it shares read-only memory too, with a ``UserWarning``
    (the zero-copy route for pyarrow: do not write to the result), and raises
    ``ValueError`` where sharing is impossible. ``copy=True`` always copies.

    >>> import numpy as np
    >>> a = np.arange(4, dtype=np.float32)
    >>> t = to_torch(a)
    >>> t[0] = 7.0
    >>> float(a[0])
    7.0
    """
    if hasattr(x, "combine_chunks") and hasattr(x, "num_chunks"):
        # pyarrow.ChunkedArray has no single buffer. One chunk is shared as is; several
        # are concatenated, which is a copy; none gives an empty array.
        if x.num_chunks == 1:
            x = x.chunk(0)
        elif x.num_chunks > 1 and copy is False:
            raise ValueError(
                f"to_torch(copy=False) can not share a ChunkedArray of {x.num_chunks} chunks "
                "without a copy"
            )
        else:
            x = x.combine_chunks()
    return _native.to_torch(x, copy=copy)


def _warn_about_thread_env() -> None:
    problem = _native._thread_env_problem()
    if problem is not None:
        warnings.warn(
            f"RUSTTORCH_NUM_THREADS: {problem}; using the number of cores instead",
            RuntimeWarning,
            stacklevel=2,
        )


_warn_about_thread_env()
# A forked child has none of the parent's pool threads; build a fresh pool there.
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_native._forget_pool_after_fork)
