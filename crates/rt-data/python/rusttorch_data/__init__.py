"""Parallel, streaming, resumable loaders from CSV, Parquet, Arrow and .npy straight into torch
tensors, and a DataLoader that shuffles, shards and batches them in Rust threads.

>>> import rusttorch_data as rd                                   # doctest: +SKIP
>>> X, y = rd.read_csv("train.csv", label="target")                # doctest: +SKIP
>>> loader = rd.DataLoader("train.parquet", label="target", shuffle=True)  # doctest: +SKIP
>>> for features, labels in loader:                                # doctest: +SKIP
...     ...
"""

from __future__ import annotations

import os
import warnings

from . import _native
from ._native import ParseError, SchemaError, Source, get_num_threads, set_num_threads

# --- readers (file-to-tensor) ---
from ._readers import (
    SkippedRowsWarning,
    open_source,
    read_arrow,
    read_csv,
    read_ipc,
    read_npy,
    read_parquet,
)

# --- end readers ---

__version__: str = _native.__version__

# -- loader (DataLoader, transforms, tensor sources) ------------------------------------
from ._loader import DataLoader as DataLoader
from ._native import tensor_source as tensor_source
from ._transforms import Clip as Clip
from ._transforms import FillNaN as FillNaN
from ._transforms import MinMaxScale as MinMaxScale
from ._transforms import Normalize as Normalize
from ._transforms import Standardize as Standardize
from ._transforms import Transform as Transform

# -- end loader ------------------------------------------------------------------------

__all__ = [
    "Clip",
    "DataLoader",
    "FillNaN",
    "MinMaxScale",
    "Normalize",
    "ParseError",
    "SchemaError",
    "SkippedRowsWarning",
    "Source",
    "Standardize",
    "Transform",
    "__version__",
    "get_num_threads",
    "open_source",
    "read_arrow",
    "read_csv",
    "read_ipc",
    "read_npy",
    "read_parquet",
    "set_num_threads",
    "tensor_source",
]

# A fork copies no threads: the child must build its own pool (rt-view's threads module).
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_native._forget_pool_after_fork)

_problem = _native._thread_env_problem()
if _problem is not None:
    warnings.warn(f"RUSTTORCH_NUM_THREADS: {_problem}; ignoring it", RuntimeWarning, stacklevel=2)
