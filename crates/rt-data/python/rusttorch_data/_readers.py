"""File-to-tensor readers: ``open_source`` (shared with the DataLoader) and ``read_csv``,
``read_parquet``, ``read_ipc``, ``read_npy``, ``read_arrow``.

>>> import rusttorch_data as rd                                    # doctest: +SKIP
>>> X, y = rd.read_csv("train.csv", label="target")                 # doctest: +SKIP
>>> X.shape, X.dtype, y.dtype                                       # doctest: +SKIP
(torch.Size([1000, 20]), torch.float32, torch.int64)
"""

from __future__ import annotations

import glob
import os
import warnings
from collections.abc import Sequence
from typing import Any

import torch

from . import _native

__all__ = [
    "SkippedRowsWarning",
    "open_source",
    "read_arrow",
    "read_csv",
    "read_ipc",
    "read_npy",
    "read_parquet",
]

PathLike = str | os.PathLike[str]
Columns = str | int | Sequence[str | int] | None

_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
_IPC_SUFFIXES = (".arrow", ".feather", ".ipc")
_NPY_SUFFIXES = (".npy",)

# Keyword arguments every reader takes; the DataLoader passes these through unchanged.
_COLUMN_KEYS = ("features", "label", "feature_dtype", "label_dtype", "missing", "categorical")
_CSV_KEYS = ("delimiter", "quote", "comment", "header", "na_values", "chunk_bytes")


class SkippedRowsWarning(UserWarning):
    """Rows were dropped under ``on_error="skip"``; the message gives the count and the first
    ``file:line`` entries, ``.skipped`` all of them as ``(file, line, reason)``."""

    def __init__(self, message: str, skipped: list[tuple[str, int, str]]) -> None:
        super().__init__(message)
        self.skipped = skipped


def _expand(source: PathLike | Sequence[PathLike]) -> list[str]:
    """A path, a glob or a list of them, as a list of paths (globs expanded and sorted)."""
    items = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    if not items:
        raise ValueError("no files given")
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise FileNotFoundError(2, f"no file matches the pattern {text!r}", text)
            paths.extend(matches)
        else:
            paths.append(text)
    return paths


def _format_of(path: str) -> str:
    lower = path.lower()
    if lower.endswith(_PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(_IPC_SUFFIXES):
        return "ipc"
    if lower.endswith(_NPY_SUFFIXES):
        return "npy"
    if lower.endswith(_CSV_SUFFIXES) or lower.endswith(".gz"):
        return "csv"
    raise ValueError(
        f"cannot tell the format of {path!r} from its name; pass format='csv', 'parquet', "
        "'ipc' or 'npy'"
    )


def _is_arrow(obj: object) -> bool:
    return hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__")


def _as_stream(obj: Any) -> Any:
    """Objects with only ``__arrow_c_array__`` (a pyarrow RecordBatch on old pyarrow) or a
    pandas DataFrame become a pyarrow Table, which has ``__arrow_c_stream__``."""
    if hasattr(obj, "__arrow_c_stream__"):
        return obj
    import pyarrow as pa  # type: ignore[import-untyped, import-not-found, unused-ignore]

    if hasattr(obj, "__arrow_c_array__"):
        return pa.table(obj)
    return pa.Table.from_pandas(obj, preserve_index=False)


def open_source(
    source: Any,
    *,
    format: str | None = None,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = None,
    label_dtype: Any = None,
    missing: str | float = "raise",
    categorical: str = "raise",
    on_error: str = "raise",
    max_errors: int | None = None,
    delimiter: str | None = None,
    quote: str | None = '"',
    comment: str | None = None,
    header: bool = True,
    na_values: Sequence[str] | None = None,
    chunk_bytes: int | None = None,
    labels: PathLike | None = None,
) -> _native.Source:
    """Opens ``source`` as a :class:`Source`: a path, a glob, a list of paths (one format),
    an already opened ``Source``, or in-memory Arrow data (pyarrow Table/RecordBatch, polars
    DataFrame, anything with ``__arrow_c_stream__``; a pandas DataFrame through pyarrow).

    The format comes from the file names (``.csv``/``.tsv``/``.txt`` plain or ``.gz``,
    ``.parquet``, ``.arrow``/``.feather``, ``.npy``) unless ``format=`` says it.
    ``features``/``label`` pick columns by name or 0-based index (default features: every
    column that is not a label). ``missing`` is ``"raise"``, ``"nan"`` or a fill value for
    empty fields, NA strings and nulls. CSV options: ``delimiter`` (default ``","``, ``"\\t"``
    for ``.tsv``), ``quote`` (None disables quoting), ``comment``, ``header``, ``na_values``
    (added to pandas' NA strings), ``chunk_bytes``. ``labels=`` names a separate ``.npy``
    labels file. ``on_error``/``max_errors`` are checked here and applied by whoever reads
    the source (``read_*``, the DataLoader), since they govern reading, not opening.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f'on_error must be "raise" or "skip", not {on_error!r}')
    if max_errors is not None and (not isinstance(max_errors, int) or max_errors < 0):
        raise ValueError(f"max_errors must be a non-negative int or None, not {max_errors!r}")
    if isinstance(source, _native.Source):
        return source
    columns: dict[str, Any] = {
        "features": [features] if isinstance(features, (str, int)) else features,
        "label": label,
        "feature_dtype": feature_dtype,
        "label_dtype": label_dtype,
        "missing": missing,
        "categorical": categorical,
    }
    if _is_arrow(source) or (type(source).__name__ == "DataFrame" and hasattr(source, "columns")):
        return _native.open_arrow(_as_stream(source), **columns)
    paths = _expand(source)
    kinds = {format or _format_of(p) for p in paths}
    if len(kinds) != 1:
        raise ValueError(f"the files of one source must have one format, found {sorted(kinds)}")
    kind = kinds.pop()
    if kind == "csv":
        if delimiter is None:
            first = paths[0].lower()
            delimiter = "\t" if first.endswith((".tsv", ".tsv.gz")) else ","
        return _native.open_csv(
            paths,
            delimiter=delimiter,
            quote=quote,
            comment=comment,
            header=header,
            na_values=None if na_values is None else list(na_values),
            chunk_bytes=chunk_bytes,
            **columns,
        )
    if kind == "parquet":
        return _native.open_parquet(paths, **columns)
    if kind == "ipc":
        return _native.open_ipc(paths, **columns)
    if kind == "npy":
        if len(paths) != 1:
            raise ValueError(".npy sources are one file (plus labels=)")
        return _native.open_npy(paths[0], labels=labels, **columns)
    raise ValueError(f"unknown format {kind!r}; use 'csv', 'parquet', 'ipc' or 'npy'")


def _read(
    source: _native.Source, on_error: str, max_errors: int | None, one_label: bool = True
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    features, labels, stats = _native.read_all(
        source, on_error=on_error, max_errors=max_errors, with_stats=True
    )
    skipped = stats["skipped"]
    if skipped:
        first = ", ".join(f"{f}:{line}" for f, line, _ in skipped[:5])
        more = "" if len(skipped) <= 5 else f" and {len(skipped) - 5} more"
        warnings.warn(
            SkippedRowsWarning(
                f"skipped {len(skipped)} rows that failed to parse: {first}{more} "
                f"(first reason: {skipped[0][2]})",
                skipped,
            ),
            stacklevel=3,
        )
    if labels is None:
        return features
    if one_label and labels.shape[1] == 1:
        labels = labels.reshape(-1)
    return features, labels


def read_csv(
    path: PathLike | Sequence[PathLike],
    *,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = torch.float32,
    label_dtype: Any = torch.int64,
    missing: str | float = "raise",
    categorical: str = "raise",
    on_error: str = "raise",
    max_errors: int | None = None,
    delimiter: str | None = None,
    quote: str | None = '"',
    comment: str | None = None,
    header: bool = True,
    na_values: Sequence[str] | None = None,
    chunk_bytes: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reads CSV/TSV files (plain or gzip; a path, a glob or a list) into tensors, parsing in
    parallel straight into the final row-major layout.

    Returns ``features`` (``[rows, n_features]``, float32 by default) or, with ``label=``,
    ``(features, labels)``; one label column (a name or an index) gives labels of shape
    ``[rows]``, a list gives ``[rows, len(label)]``. Numbers are correctly rounded (float64
    output equals Python's ``float()``), integer labels are exact. ``on_error="skip"`` drops
    bad rows (ragged, unparsable, missing under ``missing="raise"``) and warns with
    :class:`SkippedRowsWarning`; more than ``max_errors`` raises.

    >>> X, y = read_csv("train.csv", label="target")                 # doctest: +SKIP
    """
    source = open_source(
        path,
        format="csv",
        features=features,
        label=label,
        feature_dtype=feature_dtype,
        label_dtype=label_dtype,
        missing=missing,
        categorical=categorical,
        delimiter=delimiter,
        quote=quote,
        comment=comment,
        header=header,
        na_values=na_values,
        chunk_bytes=chunk_bytes,
    )
    return _read(source, on_error, max_errors, isinstance(label, (str, int)))


def read_parquet(
    path: PathLike | Sequence[PathLike],
    *,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = torch.float32,
    label_dtype: Any = torch.int64,
    missing: str | float = "raise",
    categorical: str = "raise",
    on_error: str = "raise",
    max_errors: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reads Parquet files (row groups and columns in parallel, only the selected columns
    decoded) into tensors; returns like :func:`read_csv`. Nulls follow ``missing``.

    >>> X, y = read_parquet("train.parquet", label="target")         # doctest: +SKIP
    """
    source = open_source(
        path,
        format="parquet",
        features=features,
        label=label,
        feature_dtype=feature_dtype,
        label_dtype=label_dtype,
        missing=missing,
        categorical=categorical,
    )
    return _read(source, on_error, max_errors, isinstance(label, (str, int)))


def read_ipc(
    path: PathLike | Sequence[PathLike],
    *,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = torch.float32,
    label_dtype: Any = torch.int64,
    missing: str | float = "raise",
    categorical: str = "raise",
    on_error: str = "raise",
    max_errors: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reads Arrow IPC files (Feather v2) into tensors; returns like :func:`read_csv`.

    >>> X = read_ipc("train.feather")                                 # doctest: +SKIP
    """
    source = open_source(
        path,
        format="ipc",
        features=features,
        label=label,
        feature_dtype=feature_dtype,
        label_dtype=label_dtype,
        missing=missing,
        categorical=categorical,
    )
    return _read(source, on_error, max_errors, isinstance(label, (str, int)))


def read_npy(
    path: PathLike,
    *,
    labels: PathLike | None = None,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = torch.float32,
    label_dtype: Any = torch.int64,
    on_error: str = "raise",
    max_errors: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reads a ``.npy`` array (1-D: one column; 2-D: rows x columns), memory-mapped. When it
    already is C-ordered little-endian ``feature_dtype`` data and every column is a feature,
    the returned tensor shares the mapped pages: no copy (a private copy-on-write mapping, so
    writing to the tensor never changes the file). Labels come from a column (``label=``
    index) or from a separate file (``labels=``); returns like :func:`read_csv`.

    >>> X, y = read_npy("X.npy", labels="y.npy")                      # doctest: +SKIP
    """
    source = open_source(
        path,
        format="npy",
        labels=labels,
        features=features,
        label=label,
        feature_dtype=feature_dtype,
        label_dtype=label_dtype,
    )
    return _read(source, on_error, max_errors, labels is not None or isinstance(label, (str, int)))


def read_arrow(
    data: Any,
    *,
    features: Columns = None,
    label: Columns = None,
    feature_dtype: Any = torch.float32,
    label_dtype: Any = torch.int64,
    missing: str | float = "raise",
    categorical: str = "raise",
    on_error: str = "raise",
    max_errors: int | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Reads in-memory Arrow data (pyarrow Table/RecordBatch, polars DataFrame, anything with
    ``__arrow_c_stream__``) into tensors; returns like :func:`read_csv`.

    >>> X, y = read_arrow(polars_df, label="target")                  # doctest: +SKIP
    """
    source = open_source(
        data,
        features=features,
        label=label,
        feature_dtype=feature_dtype,
        label_dtype=label_dtype,
        missing=missing,
        categorical=categorical,
    )
    return _read(source, on_error, max_errors, isinstance(label, (str, int)))
