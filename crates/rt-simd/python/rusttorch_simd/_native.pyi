"""Type stubs for the compiled ``rusttorch_simd._native`` module.

The public, documented functions are the wrappers in ``rusttorch_simd`` (same names and
arguments); these are the kernels they call.
"""

from collections.abc import Sequence
from typing import Any

import torch

__version__: str

_Param = float | Sequence[float] | torch.Tensor

def simd_level() -> str:
    """The SIMD level kernels run at now: ``"scalar"``, ``"sse2"``, ``"neon"``, ``"avx2"``
    or ``"avx512"``."""

def supported_simd_levels() -> list[str]:
    """Every level this CPU can run, lowest first."""

def set_simd_level(level: str | None) -> None:
    """Run kernels at ``level`` from now on (``ValueError`` if the CPU lacks it); ``None``
    returns to the detected level capped by ``RUSTTORCH_SIMD``."""

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

def relu(x: Any, *, out: Any = None) -> torch.Tensor: ...
def leaky_relu(x: Any, negative_slope: float = 0.01, *, out: Any = None) -> torch.Tensor: ...
def gelu(x: Any, approximate: str = "none", *, out: Any = None) -> torch.Tensor: ...
def silu(x: Any, *, out: Any = None) -> torch.Tensor: ...
def sigmoid(x: Any, *, out: Any = None) -> torch.Tensor: ...
def tanh(x: Any, *, out: Any = None) -> torch.Tensor: ...
def softplus(
    x: Any, beta: float = 1.0, threshold: float = 20.0, *, out: Any = None
) -> torch.Tensor: ...
def exp(x: Any, *, out: Any = None) -> torch.Tensor: ...
def clamp(
    x: Any, min: float | None = None, max: float | None = None, *, out: Any = None
) -> torch.Tensor: ...
def affine(x: Any, scale: _Param, shift: _Param, *, out: Any = None) -> torch.Tensor: ...
def normalize(
    x: Any, mean: _Param, std: _Param, dim: int = 1, *, out: Any = None
) -> torch.Tensor: ...
def fused_mad_normalize(
    a: Any, b: Any, c: Any, mean: float, std: float, *, out: Any = None
) -> torch.Tensor: ...
def mean_var(
    x: Any, dim: int = 0, *, correction: float = 1.0, nan_policy: str = "propagate"
) -> tuple[torch.Tensor, torch.Tensor]: ...
def standardize(
    x: Any,
    dim: int = 0,
    *,
    correction: float = 1.0,
    eps: float = 0.0,
    nan_policy: str = "propagate",
    out: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
def minmax_scale(
    x: Any,
    dim: int = 0,
    *,
    feature_range: tuple[float, float] = (0.0, 1.0),
    nan_policy: str = "propagate",
    out: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
def robust_scale(
    x: Any,
    dim: int = 0,
    *,
    quantile_range: tuple[float, float] = (25.0, 75.0),
    nan_policy: str = "propagate",
    out: Any = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]: ...
def layer_norm(
    x: Any, weight: Any = None, bias: Any = None, eps: float = 1e-05, *, out: Any = None
) -> torch.Tensor: ...
def rms_norm(
    x: Any, weight: Any = None, eps: float | None = None, *, out: Any = None
) -> torch.Tensor: ...
def softmax(x: Any, dim: int = -1, *, out: Any = None) -> torch.Tensor: ...
def log_softmax(x: Any, dim: int = -1, *, out: Any = None) -> torch.Tensor: ...
def l2_normalize(x: Any, dim: int = -1, eps: float = 1e-12, *, out: Any = None) -> torch.Tensor: ...
def cosine_similarity(
    x1: Any, x2: Any, dim: int = -1, eps: float = 1e-08, *, out: Any = None
) -> torch.Tensor: ...
def cdist(x: Any, y: Any, metric: str = "l2", *, out: Any = None) -> torch.Tensor: ...
def _forget_pool_after_fork() -> None: ...
def _thread_env_problem() -> str | None: ...
def _output_cache_env_problem() -> str | None: ...
def _simd_env_problem() -> str | None: ...
