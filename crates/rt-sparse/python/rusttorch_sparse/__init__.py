"""Validated sparse matrices and fast, bounds-safe CPU kernels for GNNs and sparse attention.

PyTorch builds sparse tensors without checking them by default, and malformed indices then
crash or corrupt memory. rusttorch_sparse validates every matrix in O(nnz) when it is built
(and the kernels re-check the pattern on every call), then runs parallel kernels with the
GIL released.

>>> import torch, rusttorch_sparse as rs
>>> edge_index = torch.tensor([[0, 1, 2, 2], [1, 2, 0, 1]])
>>> a = rs.CsrMatrix.from_edge_index(edge_index, num_nodes=3)
>>> x = torch.tensor([[1.0], [2.0], [4.0]])
>>> rs.spmm(a, x, reduce="max").flatten().tolist()
[4.0, 4.0, 2.0]

The differentiable kernels are also ``torch.ops.rusttorch_sparse.<name>`` custom ops, so
``torch.compile(fullgraph=True)`` traces through them.
"""

from __future__ import annotations

import os
import warnings

from . import _native, _ops
from ._functional import (
    bigbird,
    gather_scatter,
    longformer,
    sddmm,
    sliding_window,
    sparse_attention,
    sparse_softmax,
    spgemm,
    spmm,
    spmv,
)
from ._matrix import CooMatrix, CscMatrix, CsrMatrix
from ._native import (
    DEFAULT_MAX_DENSE_ELEMENTS,
    DEFAULT_MAX_DIM_BUFFER,
    DEFAULT_MAX_NNZ,
    cached_output_bytes,
    get_dim_buffer_limit,
    get_num_threads,
    release_cached_outputs,
    set_dim_buffer_limit,
    set_num_threads,
)

__version__: str = _native.__version__

__all__ = [
    "DEFAULT_MAX_DENSE_ELEMENTS",
    "DEFAULT_MAX_DIM_BUFFER",
    "DEFAULT_MAX_NNZ",
    "CooMatrix",
    "CscMatrix",
    "CsrMatrix",
    "__version__",
    "bigbird",
    "cached_output_bytes",
    "gather_scatter",
    "get_dim_buffer_limit",
    "get_num_threads",
    "longformer",
    "release_cached_outputs",
    "sddmm",
    "set_dim_buffer_limit",
    "set_num_threads",
    "sliding_window",
    "sparse_attention",
    "sparse_softmax",
    "spgemm",
    "spmm",
    "spmv",
]

del _ops  # imported for its side effect: registering the torch.library ops

if (_problem := _native._thread_env_problem()) is not None:
    warnings.warn(f"rusttorch_sparse: {_problem}", RuntimeWarning, stacklevel=2)
if (_problem := _native._output_cache_env_problem()) is not None:
    warnings.warn(
        f"rusttorch_sparse: RUSTTORCH_OUTPUT_CACHE_MB: {_problem}; ignoring it",
        RuntimeWarning,
        stacklevel=2,
    )

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_native._forget_pool_after_fork)
