"""Typed stubs of the rusttorch_data._native extension module."""

import typing
from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal, overload

import torch

__version__: str

class ParseError(ValueError): ...
class SchemaError(ValueError): ...

@typing.final
class Source:
    """An opened, validated data source (files checked, columns resolved, chunks planned)."""

    @property
    def feature_names(self) -> list[str]: ...
    @property
    def label_names(self) -> list[str]: ...
    @property
    def num_chunks(self) -> int: ...
    @property
    def known_rows(self) -> int | None: ...
    @property
    def nbytes(self) -> int: ...

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def _forget_pool_after_fork() -> None: ...
def _thread_env_problem() -> str | None: ...

# --- readers ---------------------------------------------------------------------------------

_Column = str | int
_Columns = _Column | Sequence[_Column] | None

def open_csv(
    paths: Sequence[str | PathLike[str]],
    *,
    delimiter: str = ",",
    quote: str | None = ...,
    comment: str | None = None,
    header: bool = True,
    na_values: Sequence[str] | None = None,
    chunk_bytes: int | None = None,
    features: Sequence[_Column] | None = None,
    label: _Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float | None = None,
    categorical: str | None = None,
) -> Source:
    """Opens CSV/TSV files (plain or gzip, same header) as one source, planned into byte
    ranges on record boundaries."""

def open_parquet(
    paths: Sequence[str | PathLike[str]],
    *,
    features: Sequence[_Column] | None = None,
    label: _Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float | None = None,
    categorical: str | None = None,
) -> Source:
    """Opens Parquet files (same schema) as one source: a chunk per row group."""

def open_ipc(
    paths: Sequence[str | PathLike[str]],
    *,
    features: Sequence[_Column] | None = None,
    label: _Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float | None = None,
    categorical: str | None = None,
) -> Source:
    """Opens Arrow IPC files (Feather v2) as one source: a chunk per record batch."""

def open_npy(
    path: str | PathLike[str],
    *,
    labels: str | PathLike[str] | None = None,
    features: Sequence[_Column] | None = None,
    label: _Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float | None = None,
    categorical: str | None = None,
) -> Source:
    """Opens a memory-mapped .npy file; labels from a column (label=) or a file (labels=)."""

def open_arrow(
    data: Any,
    *,
    features: Sequence[_Column] | None = None,
    label: _Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float | None = None,
    categorical: str | None = None,
) -> Source:
    """Opens in-memory Arrow data (anything with __arrow_c_stream__); batches collected once."""

@overload
def read_all(
    source: Source,
    *,
    on_error: str = "raise",
    max_errors: int | None = None,
    with_stats: Literal[False] = False,
) -> tuple[torch.Tensor, torch.Tensor | None]: ...
@overload
def read_all(
    source: Source,
    *,
    on_error: str = "raise",
    max_errors: int | None = None,
    with_stats: Literal[True],
) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]: ...

@typing.final
class _SharedBuffer:
    """Buffer-protocol view of memory-mapped bytes (inside tensors returned by read_npy)."""

# --- end readers -----------------------------------------------------------------------------

# -- loader (DataLoader's native side; see _loader.py) ---------------------------------

def tensor_source(
    features: object, labels: object | None = None, *, chunk_rows: int = 65536
) -> Source:
    """Serves float32/float64 ``features [N, ...]`` (and int64/float32/float64 ``labels``)
    from memory without a copy."""

@typing.final
class _Epoch:
    def __iter__(self) -> _Epoch: ...
    def __next__(self) -> object: ...
    def close(self, superseded: bool = False) -> None: ...
    @property
    def buffered(self) -> int: ...
    @property
    def batches(self) -> int | None: ...

@typing.final
class _Loader:
    def __new__(
        cls,
        source: Source,
        *,
        batch_size: int,
        shuffle: bool,
        seed: int,
        drop_last: bool,
        num_threads: int,
        prefetch: int,
        prefetch_bytes: int,
        rank: int,
        world_size: int,
        uneven: str,
        mode: str,
        shuffle_buffer: int,
        on_error: str,
        max_errors: int | None,
        feature_shape: list[int] | None = None,
        label_shape: list[int] | None = None,
        transforms: list[tuple[str, dict[str, object]]] | None = None,
    ) -> _Loader: ...
    def __len__(self) -> int: ...
    def num_samples(self) -> int: ...
    def shard(self) -> tuple[int, int, int, int, int, int]: ...
    @property
    def mode(self) -> str: ...
    def epoch(self, epoch: int, first_batch: int = 0, samples: int = 0) -> _Epoch: ...
    def progress(self) -> tuple[int, int, int, bool]: ...
    def fingerprint(self) -> dict[str, object]: ...
    def transforms(self) -> list[tuple[str, dict[str, list[float]]]]: ...
    def set_transforms(self, transforms: list[tuple[str, dict[str, object]]]) -> None: ...
    def stats(self) -> dict[str, object]: ...
