"""Type stubs for the compiled ``rusttorch_sparse._native`` module.

The public, documented API is ``rusttorch_sparse`` (the matrix classes and functions);
these are the kernels it calls. Matrices are passed as their arrays plus a shape, and
every kernel re-validates the pattern in O(nnz) before reading through it.
"""

from typing import Any

import torch

__version__: str
DEFAULT_MAX_DENSE_ELEMENTS: int
DEFAULT_MAX_NNZ: int
DEFAULT_MAX_DIM_BUFFER: int

def set_dim_buffer_limit(entries: int) -> None:
    """Set the process-wide cap (default ``DEFAULT_MAX_DIM_BUFFER`` = 2**31) on the entries
    of a buffer sized by a dimension rather than by the stored entries: the row pointers of
    ``from_coo`` (``nrows + 1``), the pointers of a transpose (``ncols + 1``), the grouping
    of ``gather_scatter`` (``num_nodes + 1``). Past it such calls raise ``ValueError``."""

def get_dim_buffer_limit() -> int:
    """The cap set by ``set_dim_buffer_limit``."""

def release_cached_outputs() -> int:
    """Unmap the large output buffers this wheel keeps for reuse (up to
    ``RUSTTORCH_OUTPUT_CACHE_MB``, default 1024 or a sixteenth of the memory if less; ``0``
    turns the cache off); returns the bytes released."""

def cached_output_bytes() -> int:
    """Bytes of dropped outputs this wheel keeps for reuse now."""

def get_num_threads() -> int:
    """Threads this wheel's Rust kernels use."""

def set_num_threads(n: int) -> None:
    """Set the thread count (1 to 1024) for this wheel's Rust kernels."""

def _forget_pool_after_fork() -> None: ...
def _thread_env_problem() -> str | None: ...
def _output_cache_env_problem() -> str | None: ...
def check_compressed(
    ptr: Any,
    idx: Any,
    values: Any | None,
    shape: tuple[int, int],
    *,
    sorted: bool = False,
    layout: str = "csr",
) -> None:
    """Validate CSR (or CSC) arrays; raises naming the first violation."""

def check_coo_arrays(row: Any, col: Any, values: Any | None, shape: tuple[int, int]) -> None:
    """Validate COO arrays."""

def coo_to_csr(
    row: Any,
    col: Any,
    values: Any,
    shape: tuple[int, int],
    sum_duplicates: bool = True,
    *,
    source: str = "coo",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sorted CSR arrays ``(crow, col, values)`` of COO input. ``source`` names the arrays
    in errors: ``"coo"``, ``"edge_index"`` (``shape = (num_nodes, num_nodes)``, rows are
    ``edge_index[1]``) or ``"gather_scatter"`` (rows ``dst``, columns ``src``)."""

def coo_to_csr_positions(
    row: Any,
    col: Any,
    shape: tuple[int, int],
    sum_duplicates: bool = True,
    *,
    source: str = "coo",
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crow, col, pos)``: the pattern of ``coo_to_csr`` and, for every input entry, the
    stored entry it lands in, so the values are ``zeros(nnz).index_add(0, pos, values)``."""

def transpose(
    crow: Any, col: Any, shape: tuple[int, int], *, result: str = "transpose"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crow_t, col_t, perm)`` of the transpose; its values are ``values[perm]``.
    ``result`` (``"transpose"``, ``"csc"`` or ``"csr"``) only names the pointer array in
    the error when it would pass ``get_dim_buffer_limit()``."""

def expand_rows(crow: Any, col: Any, shape: tuple[int, int]) -> torch.Tensor:
    """The row index of every stored entry."""

def to_dense(
    crow: Any, col: Any, values: Any, shape: tuple[int, int], max_elements: int
) -> torch.Tensor:
    """The dense matrix; ``ValueError`` above ``max_elements``."""

def spmm(
    crow: Any, col: Any, values: Any | None, x: Any, shape: tuple[int, int], reduce: str = "sum"
) -> torch.Tensor:
    """``A @ X`` with a sum/mean/max/min reduction per row."""

def sddmm(
    crow: Any, col: Any, q: Any, k: Any, shape: tuple[int, int], scale: float = 1.0
) -> torch.Tensor:
    """``scale * Q @ K^T`` at the pattern's stored positions (nnz values)."""

def softmax(crow: Any, col: Any, values: Any, shape: tuple[int, int]) -> torch.Tensor:
    """Row-wise softmax of the stored values."""

def softmax_backward(
    crow: Any, col: Any, y: Any, grad: Any, shape: tuple[int, int]
) -> torch.Tensor:
    """Gradient of the row-wise softmax."""

def spgemm(
    a_crow: Any,
    a_col: Any,
    a_values: Any,
    a_shape: tuple[int, int],
    b_crow: Any,
    b_col: Any,
    b_values: Any,
    b_shape: tuple[int, int],
    max_nnz: int,
    sort_indices: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """CSR arrays of ``A @ B``; columns sorted within rows when ``sort_indices``."""

def sparse_attention(
    crow: Any, col: Any, q: Any, k: Any, v: Any, shape: tuple[int, int], scale: float
) -> torch.Tensor:
    """Fused ``softmax(scale * Q K^T at the pattern) @ V``."""

def gather_scatter(x: Any, src: Any, dst: Any, reduce: str, num_nodes: int) -> torch.Tensor:
    """``out[n] = reduce_{e: dst[e] = n} x[src[e]]``."""

def sliding_window(n: int, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crow, col)`` of a sliding-window pattern."""

def longformer(
    n: int, window: int, global_tokens: list[int], num_leading: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crow, col)`` of a Longformer pattern; tokens ``0..num_leading`` are global too."""

def bigbird(
    n: int, block: int, num_random: int, num_global: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(crow, col)`` of a BigBird pattern."""
