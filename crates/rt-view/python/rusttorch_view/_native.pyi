"""Type stubs for the compiled ``rusttorch_view._native`` module."""

from typing import Any, TypeVar, final, overload

import torch

__version__: str

_Out = TypeVar("_Out")

@final
class TensorInfo:
    """What rusttorch sees when it borrows a tensor (``info(x)``)."""

    @property
    def dtype(self) -> str:
        """Element type, named as torch names it (``"float32"``, ``"bfloat16"``...)."""
    @property
    def shape(self) -> tuple[int, ...]:
        """Extent of each dimension."""
    @property
    def strides(self) -> tuple[int, ...]:
        """Step between neighbours along each dimension, in elements (may be negative)."""
    @property
    def device(self) -> str:
        """Always ``"cpu"``: other devices are refused."""
    @property
    def is_contiguous(self) -> bool:
        """True when the elements are row-major without gaps."""
    @property
    def data_ptr(self) -> int:
        """Address of element ``[0, 0, ...]``."""
    @property
    def readonly(self) -> bool:
        """True when the producer marked the memory read-only."""
    @property
    def source(self) -> str:
        """How the memory was borrowed: ``"torch"``, ``"dlpack"`` or ``"buffer"``."""
    @property
    def itemsize(self) -> int:
        """Bytes per element."""
    @property
    def numel(self) -> int:
        """Number of elements."""
    def as_dict(self) -> dict[str, Any]:
        """All fields as a dict."""

def info(x: Any) -> TensorInfo:
    """Borrow ``x`` as rusttorch would and describe it, or raise the error a kernel would.

    >>> import torch, rusttorch_view as rv
    >>> rv.info(torch.zeros(2, 3)).shape
    (2, 3)
    """

def to_torch(x: Any, *, copy: bool | None = None) -> torch.Tensor:
    """Return ``x`` as a torch tensor sharing its memory (see the package docstring)."""

@overload
def copy(x: Any, *, out: None = None) -> torch.Tensor:
    """Copy ``x`` (any strides) into a new contiguous tensor, or into ``out``.

    ``out`` may be any writable tensor, NumPy array or buffer of the same shape and dtype
    that does not overlap ``x``; it is returned.

    >>> import torch, rusttorch_view as rv
    >>> rv.copy(torch.arange(6).reshape(2, 3).t()).is_contiguous()
    True
    """

@overload
def copy(x: Any, *, out: _Out) -> _Out: ...
def _copy_torch_alloc(x: Any) -> torch.Tensor: ...
def get_num_threads() -> int:
    """Threads this wheel's Rust kernels use."""

def set_num_threads(n: int) -> None:
    """Set the thread count (1 to 1024) for this wheel's Rust kernels."""

def cpu_features() -> list[str]:
    """SIMD instruction sets this CPU offers, e.g. ``["sse2", "avx2", "fma"]``."""

def supported_dtypes() -> list[str]:
    """The dtypes rusttorch can borrow."""

def _forget_pool_after_fork() -> None: ...
def _sleep_interruptible(seconds: float) -> float: ...
def _thread_env_problem() -> str | None: ...
