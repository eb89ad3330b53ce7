"""The matrix classes: ``CsrMatrix``, ``CscMatrix`` and ``CooMatrix``.

Each holds plain torch tensors (index arrays of int32 or int64, values of float32 or
float64) and a shape, so a matrix crosses wheel boundaries as tensors. Every constructor
validates in O(nnz) in Rust and raises ``ValueError``/``TypeError``/``IndexError`` naming
the first violation and its position; there is no switch that turns validation off.
"""

from __future__ import annotations

import importlib
import operator
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from . import _native, _ops

_FLOAT_DTYPES = (torch.float32, torch.float64)
_is_compiling = torch.compiler.is_compiling


def _tracks_grad(t: Tensor) -> bool:
    """Whether autograd records operations on ``t`` here."""
    return torch.is_grad_enabled() and t.requires_grad


def _no_grad_export(values: Tensor, what: str) -> Tensor:
    """``values`` for a copy outside autograd (SciPy); refused, as ``Tensor.numpy()`` is,
    when it would drop a gradient."""
    if _tracks_grad(values):
        raise RuntimeError(
            f"{what}: the values require grad, and SciPy cannot carry it; call "
            ".detach() on the matrix first (or run under torch.no_grad())"
        )
    return values.detach()


def _coo_to_csr(
    row: Tensor,
    col: Tensor,
    values: Tensor,
    dims: tuple[int, int],
    sum_duplicates: bool,
    source: str = "coo",
) -> tuple[Tensor, Tensor, Tensor]:
    """Sorted CSR arrays of COO input. The values keep their autograd history: when they
    require grad (or ``torch.compile`` traces), the conversion yields each input entry's
    position and the values are summed into place with ``index_add``, which autograd (and
    the compiler) follow; otherwise the compiled kernel sums them directly."""
    if not (_is_compiling() or _tracks_grad(values)):
        return _native.coo_to_csr(row, col, values, dims, sum_duplicates, source=source)
    if _is_compiling():
        crow, c, pos = _ops.coo_to_csr_op(row, col, dims[0], dims[1], sum_duplicates, source)
    else:
        crow, c, pos = _native.coo_to_csr_positions(row, col, dims, sum_duplicates, source=source)
    if values.shape[0] != row.shape[0]:
        what = (
            "values length (one per edge)"
            if source != "coo"
            else "values length (one per stored entry)"
        )
        raise ValueError(f"{what}: expected {row.shape[0]}, got {values.shape[0]}")
    return crow, c, values.new_zeros(c.shape[0]).index_add(0, pos, values)


def _transpose(
    crow: Tensor, col: Tensor, shape: tuple[int, int], result: str
) -> tuple[Tensor, Tensor, Tensor]:
    if _is_compiling():
        return _ops.transpose_op(crow, col, shape[0], shape[1])  # type: ignore[no-any-return]
    return _native.transpose(crow, col, shape, result=result)


def _expand_rows(crow: Tensor, col: Tensor, shape: tuple[int, int]) -> Tensor:
    if _is_compiling():
        return _ops.expand_rows_op(crow, col, shape[0], shape[1])  # type: ignore[no-any-return]
    return _native.expand_rows(crow, col, shape)


def _dense(
    crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int], max_elements: int
) -> Tensor:
    """The dense matrix; built with torch ops (``index_put`` with accumulation, which
    autograd follows) when the values require grad, by the kernel otherwise."""
    if not (_is_compiling() or _tracks_grad(values)):
        return _native.to_dense(crow, col, values, shape, max_elements)
    n = shape[0] * shape[1]
    if n > max_elements:
        raise ValueError(
            f"the dense matrix would need {n} elements, over the limit of {max_elements}; "
            "raise the limit (max_elements) if this is intended"
        )
    if values.shape[0] != col.shape[0]:
        raise ValueError(
            f"values length (one per stored entry): expected {col.shape[0]}, got {values.shape[0]}"
        )
    rows = _expand_rows(crow, col, shape)  # validates the pattern
    return values.new_zeros(shape).index_put((rows, col), values, accumulate=True)


def _scipy_sparse() -> Any:
    """``scipy.sparse``, imported on first use (SciPy is an optional dependency)."""
    return importlib.import_module("scipy.sparse")


def _shape(shape: Sequence[int]) -> tuple[int, int]:
    dims = tuple(int(s) for s in shape)
    if len(dims) != 2:
        raise ValueError(f"shape must have two dimensions (nrows, ncols), got {tuple(shape)}")
    return dims[0], dims[1]


def _index(obj: Any, name: str) -> Tensor:
    t: Tensor = obj if isinstance(obj, Tensor) else torch.as_tensor(obj)
    if not isinstance(obj, Tensor) and (
        t.numel() == 0 or (not t.dtype.is_floating_point and t.dtype != torch.bool)
    ):
        t = t.to(torch.int64) if t.dtype not in (torch.int32, torch.int64) else t
    if t.dtype not in (torch.int32, torch.int64):
        raise TypeError(f"{name} has dtype {t.dtype}, expected torch.int32 or torch.int64")
    if t.dim() != 1:
        raise ValueError(f"{name} must be 1-dimensional, got shape {tuple(t.shape)}")
    return t


def _values(obj: Any, nnz: int) -> Tensor:
    if obj is None:
        return torch.ones(nnz, dtype=torch.float32)
    t: Tensor = obj if isinstance(obj, Tensor) else torch.as_tensor(obj)
    if not isinstance(obj, Tensor) and not t.dtype.is_floating_point:
        t = t.to(torch.float32)
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"values has dtype {t.dtype}, expected torch.float32 or torch.float64")
    if t.dim() != 1:
        raise ValueError(f"values must be 1-dimensional, got shape {tuple(t.shape)}")
    if t.device.type != "cpu":
        raise ValueError(f"values is on device {str(t.device)!r}, expected a CPU tensor")
    return t


def _recheck_compressed(
    ptr: Tensor, idx: Tensor, values: Tensor, shape: tuple[int, int], layout: str
) -> None:
    """Validation again before an export. The arrays are plain tensors that a caller may
    have changed in place since the matrix was built, and torch (``check_invariants=False``)
    and SciPy trust what they are handed: a bad row pointer crashes torch's ``to_dense()``.
    O(nnz), as the kernels' own re-check on every call."""
    _native.check_compressed(ptr, idx, values.detach(), shape, layout=layout)


def _same_index_dtype(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    if a.dtype != b.dtype:
        return a.to(torch.int64), b.to(torch.int64)
    return a, b


def _coo_arrays(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``(row, col, values)`` of a 2-D torch sparse COO tensor, validated. ``_values()``
    has no autograd history, so a tensor that requires grad is coalesced (after the
    indices are validated; coalescing is differentiable) and its ``values()`` taken."""
    if t.dim() != 2:
        raise ValueError(f"expected a 2-D tensor, got {t.dim()} dimensions")
    i, v = t._indices(), t._values()
    if v.dim() != 1:
        raise ValueError("hybrid sparse tensors (dense trailing dimensions) are not supported")
    CooMatrix(i[0], i[1], v.detach(), tuple(t.shape))
    if _tracks_grad(t):
        c = t.coalesce()
        i, v = c.indices(), c.values()
    return i[0], i[1], v


def _count(value: Any, name: str) -> int:
    """A size or count argument as an int, with errors that name it (the compiled functions
    take unsigned integers, and a negative one would surface as a bare OverflowError)."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer, got bool")
    try:
        n = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None
    if n < 0:
        raise ValueError(f"invalid argument {name}: {n} is negative")
    if n >= 2**63:
        raise ValueError(f"invalid argument {name}: {n} exceeds the largest int64 index")
    return n


def _num_nodes(num_nodes: Any) -> int:
    """``num_nodes`` as an int; errors name it (not the shape it becomes)."""
    return _count(num_nodes, "num_nodes")


class CsrMatrix:
    """A validated compressed-sparse-row matrix.

    >>> import torch, rusttorch_sparse as rs
    >>> a = rs.CsrMatrix(torch.tensor([0, 1, 3]), torch.tensor([2, 0, 1]),
    ...                  torch.tensor([1.0, 2.0, 3.0]), (2, 3))
    >>> (a @ torch.ones(3, 4)).shape
    torch.Size([2, 4])
    >>> rs.CsrMatrix(torch.tensor([0, 1, 3]), torch.tensor([2, 0, 3]),
    ...              torch.tensor([1.0, 2.0, 3.0]), (2, 3))
    Traceback (most recent call last):
    IndexError: col[2] = 3 is out of range for 3 columns
    """

    __slots__ = ("col", "crow", "shape", "values")

    crow: Tensor
    col: Tensor
    values: Tensor
    shape: tuple[int, int]

    def __init__(
        self,
        crow: Any,
        col: Any,
        values: Any = None,
        shape: Sequence[int] | None = None,
        *,
        sorted: bool = False,
    ) -> None:
        crow = _index(crow, "crow")
        col = _index(col, "col")
        crow, col = _same_index_dtype(crow, col)
        if shape is None:
            raise TypeError("CsrMatrix needs shape=(nrows, ncols)")
        values = _values(values, col.shape[0])
        dims = _shape(shape)
        _native.check_compressed(crow, col, values, dims, sorted=sorted, layout="csr")
        self.crow, self.col, self.values, self.shape = crow, col, values, dims

    @classmethod
    def _trusted(
        cls, crow: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]
    ) -> CsrMatrix:
        """Wraps arrays that a rusttorch kernel produced (already valid by construction)."""
        m = cls.__new__(cls)
        m.crow, m.col, m.values, m.shape = crow, col, values, shape
        return m

    # ---- constructors ----------------------------------------------------------------

    @classmethod
    def from_coo(
        cls, row: Any, col: Any, values: Any, shape: Sequence[int], sum_duplicates: bool = True
    ) -> CsrMatrix:
        """From coordinates in any order; duplicates add up (``sum_duplicates=True``) or are
        kept as separate entries."""
        row = _index(row, "row")
        col = _index(col, "col")
        row, col = _same_index_dtype(row, col)
        values = _values(values, row.shape[0])
        dims = _shape(shape)
        crow, c, v = _coo_to_csr(row, col, values, dims, sum_duplicates)
        return cls._trusted(crow, c, v, dims)

    @classmethod
    def from_edge_index(
        cls, edge_index: Tensor, num_nodes: int, values: Tensor | None = None
    ) -> CsrMatrix:
        """The ``num_nodes x num_nodes`` aggregation matrix of a PyG-style ``[2, E]`` edge
        index (row 0 sources, row 1 targets): ``A[dst, src]`` holds each edge, so
        ``A @ x`` gathers messages from sources into targets. Parallel edges stay separate
        entries (so ``reduce="mean"`` counts each). Gradients flow to ``values``."""
        edge_index = torch.as_tensor(edge_index)
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index must have shape [2, E], got {tuple(edge_index.shape)}")
        n = _num_nodes(num_nodes)
        src = _index(edge_index[0], "edge_index[0]")
        dst = _index(edge_index[1], "edge_index[1]")
        v = _values(values, src.shape[0])
        crow, c, v = _coo_to_csr(dst, src, v, (n, n), False, source="edge_index")
        return cls._trusted(crow, c, v, (n, n))

    @classmethod
    def from_torch(cls, t: Tensor) -> CsrMatrix:
        """From a torch sparse CSR, CSC or COO tensor (validated here, unlike torch's
        default) or a dense 2-D tensor. A tensor that requires grad keeps its autograd
        history in ``values`` (a dense one at its nonzero entries, as ``to_sparse`` does)."""
        if not isinstance(t, Tensor):
            raise TypeError(
                f"from_torch expects a torch.Tensor, got {type(t).__name__} (from_scipy takes "
                "SciPy matrices; torch.as_tensor converts a NumPy array)"
            )
        if t.dim() != 2:
            raise ValueError(f"expected a 2-D tensor, got {t.dim()} dimensions")
        if t.layout == torch.sparse_csr:
            values = t.values()
            if values.dim() != 1:
                raise ValueError(
                    "hybrid sparse tensors (dense trailing dimensions) are not supported"
                )
            return cls(t.crow_indices(), t.col_indices(), values, tuple(t.shape))
        if t.layout == torch.sparse_csc:
            return CscMatrix.from_torch(t).to_csr()
        if t.layout == torch.sparse_coo:
            row, col, values = _coo_arrays(t)
            return cls.from_coo(row, col, values, tuple(t.shape))
        if t.layout == torch.strided:
            if t.dtype not in _FLOAT_DTYPES:
                raise TypeError(f"values have dtype {t.dtype}, expected float32 or float64")
            s = t.detach().to_sparse_csr()
            m = cls(s.crow_indices(), s.col_indices(), s.values(), tuple(t.shape))
            if _tracks_grad(t):
                # The same entries, gathered from t itself so that autograd follows them.
                rows = _expand_rows(m.crow, m.col, m.shape)
                m = cls._trusted(m.crow, m.col, t[rows, m.col], m.shape)
            return m
        raise TypeError(f"unsupported layout {t.layout}")

    @classmethod
    def from_scipy(cls, m: Any) -> CsrMatrix:
        """From any SciPy sparse matrix or array (validated here)."""
        fmt = getattr(m, "format", None)
        if fmt is None or not hasattr(m, "tocsr"):
            raise TypeError(
                f"from_scipy expects a SciPy sparse matrix or array, got {type(m).__name__}"
            )
        if fmt == "coo":
            return cls.from_coo(
                torch.from_numpy(m.row), torch.from_numpy(m.col), torch.from_numpy(m.data), m.shape
            )
        if fmt == "csc":
            return CscMatrix.from_scipy(m).to_csr()
        if fmt != "csr":
            m = m.tocsr()
        return cls(
            torch.from_numpy(m.indptr),
            torch.from_numpy(m.indices),
            torch.from_numpy(m.data),
            m.shape,
        )

    # ---- properties ------------------------------------------------------------------

    @property
    def nnz(self) -> int:
        """Stored entries (duplicates count separately)."""
        return int(self.col.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """The value dtype."""
        return self.values.dtype

    @property
    def index_dtype(self) -> torch.dtype:
        """The index dtype (int32 or int64)."""
        return self.col.dtype

    def __repr__(self) -> str:
        return (
            f"CsrMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype}, "
            f"index_dtype={self.index_dtype})"
        )

    # ---- conversions -----------------------------------------------------------------

    def with_values(self, values: Tensor) -> CsrMatrix:
        """The same pattern with new values (one per stored entry)."""
        values = _values(values, self.nnz)
        if values.shape[0] != self.nnz:
            raise ValueError(f"values has {values.shape[0]} entries, expected nnz = {self.nnz}")
        return CsrMatrix._trusted(self.crow, self.col, values, self.shape)

    def detach(self) -> CsrMatrix:
        """The same matrix with ``values.detach()`` (no autograd history)."""
        return CsrMatrix._trusted(self.crow, self.col, self.values.detach(), self.shape)

    def to_torch(self) -> Tensor:
        """A ``torch.sparse_csr`` tensor sharing these arrays (validated again first)."""
        _recheck_compressed(self.crow, self.col, self.values, self.shape, "csr")
        return torch.sparse_csr_tensor(
            self.crow, self.col, self.values, self.shape, check_invariants=False
        )

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` (shares memory where NumPy allows; validated again
        first)."""
        # The gradient check first: it needs no SciPy.
        values = _no_grad_export(self.values, "to_scipy").numpy()
        _recheck_compressed(self.crow, self.col, self.values, self.shape, "csr")
        return _scipy_sparse().csr_matrix(
            (values, self.col.numpy(), self.crow.numpy()), shape=self.shape
        )

    def to_dense(self, max_elements: int = _native.DEFAULT_MAX_DENSE_ELEMENTS) -> Tensor:
        """The dense matrix; ``ValueError`` above ``max_elements`` elements.
        Differentiable in ``values``."""
        return _dense(self.crow, self.col, self.values, self.shape, max_elements)

    def transpose(self) -> CsrMatrix:
        """The transpose, as CSR (columns sorted within rows)."""
        crow_t, col_t, perm = _transpose(self.crow, self.col, self.shape, "transpose")
        return CsrMatrix._trusted(crow_t, col_t, self.values[perm], (self.shape[1], self.shape[0]))

    @property
    def T(self) -> CsrMatrix:
        """The transpose."""
        return self.transpose()

    def to_csc(self) -> CscMatrix:
        """The same matrix in CSC layout."""
        ccol, row, perm = _transpose(self.crow, self.col, self.shape, "csc")
        return CscMatrix._trusted(ccol, row, self.values[perm], self.shape)

    def to_coo(self) -> CooMatrix:
        """The same matrix in COO layout (row-major order)."""
        rows = _expand_rows(self.crow, self.col, self.shape)
        return CooMatrix._trusted(rows, self.col, self.values, self.shape)

    def to_csr(self) -> CsrMatrix:
        """This matrix."""
        return self

    # ---- products --------------------------------------------------------------------

    def matmul(self, other: Any, reduce: str = "sum") -> Any:
        """``A @ X`` for a dense ``X`` (with a row reduction), or ``A @ B`` for sparse ``B``."""
        from ._functional import spgemm, spmm

        if isinstance(other, (CsrMatrix, CscMatrix, CooMatrix)):
            if reduce != "sum":
                raise ValueError("sparse @ sparse supports only reduce='sum'")
            return spgemm(self, other.to_csr())
        return spmm(self, other, reduce)

    def __matmul__(self, other: Any) -> Any:
        return self.matmul(other)


class CscMatrix:
    """A validated compressed-sparse-column matrix: ``ccol`` has ``ncols + 1`` entries and
    ``row`` the row index of each stored entry."""

    __slots__ = ("ccol", "row", "shape", "values")

    ccol: Tensor
    row: Tensor
    values: Tensor
    shape: tuple[int, int]

    def __init__(
        self, ccol: Any, row: Any, values: Any = None, shape: Sequence[int] | None = None
    ) -> None:
        ccol = _index(ccol, "ccol")
        row = _index(row, "row")
        ccol, row = _same_index_dtype(ccol, row)
        if shape is None:
            raise TypeError("CscMatrix needs shape=(nrows, ncols)")
        values = _values(values, row.shape[0])
        dims = _shape(shape)
        _native.check_compressed(ccol, row, values, dims, layout="csc")
        self.ccol, self.row, self.values, self.shape = ccol, row, values, dims

    @classmethod
    def _trusted(
        cls, ccol: Tensor, row: Tensor, values: Tensor, shape: tuple[int, int]
    ) -> CscMatrix:
        m = cls.__new__(cls)
        m.ccol, m.row, m.values, m.shape = ccol, row, values, shape
        return m

    @classmethod
    def from_torch(cls, t: Tensor) -> CscMatrix:
        """From a torch sparse CSC tensor (validated), or anything ``CsrMatrix.from_torch``
        takes."""
        if t.layout == torch.sparse_csc:
            return cls(t.ccol_indices(), t.row_indices(), t.values(), tuple(t.shape))
        return CsrMatrix.from_torch(t).to_csc()

    @classmethod
    def from_scipy(cls, m: Any) -> CscMatrix:
        """From a SciPy sparse matrix or array."""
        if getattr(m, "format", None) != "csc":
            return CsrMatrix.from_scipy(m).to_csc()
        return cls(
            torch.from_numpy(m.indptr),
            torch.from_numpy(m.indices),
            torch.from_numpy(m.data),
            m.shape,
        )

    @property
    def nnz(self) -> int:
        """Stored entries."""
        return int(self.row.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """The value dtype."""
        return self.values.dtype

    def __repr__(self) -> str:
        return f"CscMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    def to_csr(self) -> CsrMatrix:
        """The same matrix in CSR layout."""
        # The CSC arrays are the CSR arrays of the transpose.
        crow, col, perm = _transpose(self.ccol, self.row, (self.shape[1], self.shape[0]), "csr")
        return CsrMatrix._trusted(crow, col, self.values[perm], self.shape)

    def to_coo(self) -> CooMatrix:
        """The same matrix in COO layout."""
        return self.to_csr().to_coo()

    def to_csc(self) -> CscMatrix:
        """This matrix."""
        return self

    def transpose(self) -> CsrMatrix:
        """The transpose, as CSR (sharing these arrays)."""
        return CsrMatrix._trusted(self.ccol, self.row, self.values, (self.shape[1], self.shape[0]))

    def detach(self) -> CscMatrix:
        """The same matrix with ``values.detach()`` (no autograd history)."""
        return CscMatrix._trusted(self.ccol, self.row, self.values.detach(), self.shape)

    def to_torch(self) -> Tensor:
        """A ``torch.sparse_csc`` tensor sharing these arrays (validated again first)."""
        _recheck_compressed(self.ccol, self.row, self.values, self.shape, "csc")
        return torch.sparse_csc_tensor(
            self.ccol, self.row, self.values, self.shape, check_invariants=False
        )

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.csc_matrix`` (validated again first)."""
        values = _no_grad_export(self.values, "to_scipy").numpy()
        _recheck_compressed(self.ccol, self.row, self.values, self.shape, "csc")
        return _scipy_sparse().csc_matrix(
            (values, self.row.numpy(), self.ccol.numpy()), shape=self.shape
        )

    def to_dense(self, max_elements: int = _native.DEFAULT_MAX_DENSE_ELEMENTS) -> Tensor:
        """The dense matrix."""
        return self.to_csr().to_dense(max_elements)


class CooMatrix:
    """A validated coordinate matrix: one ``(row, col, value)`` per stored entry, any
    order, duplicates allowed."""

    __slots__ = ("col", "row", "shape", "values")

    row: Tensor
    col: Tensor
    values: Tensor
    shape: tuple[int, int]

    def __init__(
        self, row: Any, col: Any, values: Any = None, shape: Sequence[int] | None = None
    ) -> None:
        row = _index(row, "row")
        col = _index(col, "col")
        row, col = _same_index_dtype(row, col)
        if shape is None:
            raise TypeError("CooMatrix needs shape=(nrows, ncols)")
        values = _values(values, row.shape[0])
        dims = _shape(shape)
        _native.check_coo_arrays(row, col, values, dims)
        self.row, self.col, self.values, self.shape = row, col, values, dims

    @classmethod
    def _trusted(
        cls, row: Tensor, col: Tensor, values: Tensor, shape: tuple[int, int]
    ) -> CooMatrix:
        m = cls.__new__(cls)
        m.row, m.col, m.values, m.shape = row, col, values, shape
        return m

    @classmethod
    def from_torch(cls, t: Tensor) -> CooMatrix:
        """From a torch sparse COO tensor (validated, not coalesced, unless it requires
        grad: then coalesced, so that ``values`` keep their autograd history) or any tensor
        ``CsrMatrix.from_torch`` takes."""
        if t.layout == torch.sparse_coo:
            row, col, values = _coo_arrays(t)
            return cls._trusted(row, col, values, (int(t.shape[0]), int(t.shape[1])))
        return CsrMatrix.from_torch(t).to_coo()

    @classmethod
    def from_scipy(cls, m: Any) -> CooMatrix:
        """From a SciPy sparse matrix or array."""
        m = m.tocoo()
        return cls(
            torch.from_numpy(m.row), torch.from_numpy(m.col), torch.from_numpy(m.data), m.shape
        )

    @property
    def nnz(self) -> int:
        """Stored entries (duplicates count separately)."""
        return int(self.row.shape[0])

    @property
    def dtype(self) -> torch.dtype:
        """The value dtype."""
        return self.values.dtype

    def __repr__(self) -> str:
        return f"CooMatrix(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype})"

    def to_csr(self, sum_duplicates: bool = True) -> CsrMatrix:
        """The same matrix in CSR layout, sorted."""
        return CsrMatrix.from_coo(self.row, self.col, self.values, self.shape, sum_duplicates)

    def to_csc(self) -> CscMatrix:
        """The same matrix in CSC layout."""
        return self.to_csr().to_csc()

    def to_coo(self) -> CooMatrix:
        """This matrix."""
        return self

    def transpose(self) -> CooMatrix:
        """The transpose (swaps the index arrays)."""
        return CooMatrix._trusted(self.col, self.row, self.values, (self.shape[1], self.shape[0]))

    def detach(self) -> CooMatrix:
        """The same matrix with ``values.detach()`` (no autograd history)."""
        return CooMatrix._trusted(self.row, self.col, self.values.detach(), self.shape)

    def to_torch(self) -> Tensor:
        """A ``torch.sparse_coo`` tensor (validated again first, see ``CsrMatrix.to_torch``)."""
        _native.check_coo_arrays(self.row, self.col, self.values.detach(), self.shape)
        return torch.sparse_coo_tensor(
            torch.stack([self.row, self.col]), self.values, self.shape, check_invariants=False
        )

    def to_scipy(self) -> Any:
        """A ``scipy.sparse.coo_matrix`` (validated again first)."""
        values = _no_grad_export(self.values, "to_scipy").numpy()
        _native.check_coo_arrays(self.row, self.col, self.values.detach(), self.shape)
        return _scipy_sparse().coo_matrix(
            (values, (self.row.numpy(), self.col.numpy())), shape=self.shape
        )

    def to_dense(self, max_elements: int = _native.DEFAULT_MAX_DENSE_ELEMENTS) -> Tensor:
        """The dense matrix (duplicates add up)."""
        return self.to_csr().to_dense(max_elements)
