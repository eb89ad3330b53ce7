"""rusttorch: fast, memory-safe CPU kernels and data loading for PyTorch, written in Rust.

This meta-package bundles the component wheels at one version and re-exports them:
``rusttorch.view`` (the zero-copy torch/NumPy/DLPack bridge) today, and ``rusttorch.simd``,
``.sparse``, ``.fused``, ``.data`` and ``.queue`` as they are installed.

>>> import numpy as np, rusttorch
>>> a = np.arange(6, dtype=np.float32)
>>> t = rusttorch.view.to_torch(a)   # no copy: torch reads NumPy's memory
>>> t.data_ptr() == a.ctypes.data
True
"""

from __future__ import annotations

from types import ModuleType

from rusttorch import _config, _versions
from rusttorch._components import COMPONENTS, VERSION
from rusttorch._config import ComponentConfig, Config

__version__ = VERSION

_installed = _versions.load_installed(__version__)
_versions.check_versions(__version__, _installed)

# A plain import (already loaded above) so that type checkers see the stubs of rusttorch_view.
import rusttorch_view as view  # noqa: E402

globals().update({component.name: module for component, module in _installed.items()})

__all__ = [
    "ComponentConfig",
    "Config",
    "__version__",
    "get_config",
    "get_num_threads",
    "release_cached_outputs",
    "set_num_threads",
    "show_config",
    "view",
]


# Each component's pool refuses more (rt-view's `threads::MAX_NUM_THREADS`).
MAX_NUM_THREADS = 1024


def set_num_threads(n: int) -> None:
    """Size the Rust thread pool of every installed component to ``n`` threads.

    Each component wheel links its own copy of the pool, so setting one through
    ``rusttorch_view.set_num_threads`` leaves the others alone; this sets them all.

    >>> rusttorch.set_num_threads(2); rusttorch.get_num_threads()  # doctest: +SKIP
    2
    """
    # Checked here so that a bad value changes no pool instead of only the first few.
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"set_num_threads() expects an int, got {type(n).__name__}")
    if not 1 <= n <= MAX_NUM_THREADS:
        raise ValueError(f"set_num_threads() expects 1 <= n <= {MAX_NUM_THREADS}, got {n}")
    for module in _installed.values():
        module.set_num_threads(n)


def get_num_threads() -> int:
    """Threads in the Rust pool of ``rusttorch.view``.

    After :func:`set_num_threads` every component agrees; ``get_config()`` lists each one.
    """
    return int(view.get_num_threads())


def release_cached_outputs() -> int:
    """Unmap the large output buffers that the installed components keep for reuse and
    return the bytes released.

    Components whose kernels allocate large outputs (``rusttorch.simd``, ``.sparse``) keep
    dropped ones, up to ``RUSTTORCH_OUTPUT_CACHE_MB`` each (default 1024, or a sixteenth of the
    memory if less), so that the next
    output of the same size needs no fresh pages; this hands that memory back.
    """
    return sum(
        int(module.release_cached_outputs())
        for module in _installed.values()
        if hasattr(module, "release_cached_outputs")
    )


def get_config() -> Config:
    """Components and versions, threads, CPU features, torch, NumPy, Python and platform."""
    return _config.collect(_installed)


def show_config() -> str:
    """Print :func:`get_config` as a short report and return the printed text.

    ``python -m rusttorch info`` prints the same report.
    """
    text = _config.render(get_config())
    print(text)
    return text


def __getattr__(name: str) -> ModuleType:
    # Reached only for names not set above: say which wheel a missing component needs.
    for component in COMPONENTS:
        if component.name == name:
            hint = (
                f"python -m pip install '{component.wheel}=={__version__}'"
                if component.released
                else "it is planned and not released yet"
            )
            raise AttributeError(
                f"rusttorch.{name} needs the {component.wheel} wheel, which is not installed "
                f"({hint})"
            )
    raise AttributeError(f"module 'rusttorch' has no attribute {name!r}")
