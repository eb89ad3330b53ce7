"""``DataLoader``: shuffled, sharded, prefetched, resumable batches from files or tensors,
built by Rust threads.

>>> import torch, rusttorch_data as rd
>>> X, y = torch.randn(1000, 8), torch.randint(0, 2, (1000,))
>>> loader = rd.DataLoader((X, y), batch_size=128, shuffle=True, seed=1)
>>> len(loader)
8
>>> features, labels = next(iter(loader))
>>> features.shape, labels.shape
(torch.Size([128, 8]), torch.Size([128]))
"""

from __future__ import annotations

import importlib
import os
import weakref
from collections.abc import Iterator
from typing import Any

import torch

from . import _native
from ._transforms import Transform, as_transform_list

__all__ = ["DataLoader"]

_STATE_VERSION = 1
_UNEVEN = ("drop", "pad", "even_batches")
_MODES = ("auto", "memory", "stream")
_ON_ERROR = ("raise", "skip")


def _int(name: str, value: Any, *, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be {bound}, got {value}")
    return value


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def resolve_distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """The arguments, else an initialized ``torch.distributed``, else ``RANK``/``WORLD_SIZE``,
    else ``(0, 1)``."""
    if (rank is None) != (world_size is None):
        raise ValueError("give both rank and world_size, or neither")
    if rank is not None and world_size is not None:
        world_size = _int("world_size", world_size, minimum=1)
        rank = _int("rank", rank, minimum=0, maximum=world_size - 1)
        return rank, world_size
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    env_rank, env_world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if env_rank is not None and env_world is not None:
        try:
            r, w = int(env_rank), int(env_world)
        except ValueError:
            raise ValueError(
                f"RANK={env_rank!r} and WORLD_SIZE={env_world!r} must be integers"
            ) from None
        if not (w >= 1 and 0 <= r < w):
            raise ValueError(f"RANK={r} must be in [0, WORLD_SIZE={w})")
        return r, w
    return 0, 1


def _is_array(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return True
    return type(obj).__module__.split(".")[0] == "numpy" and hasattr(obj, "__array_interface__")


def _prepare_tensor(obj: Any, what: str, *, labels: bool) -> Any:
    """A CPU, C-contiguous tensor or array of a supported dtype (copies only when needed)."""
    if isinstance(obj, torch.Tensor):
        if obj.device.type != "cpu":
            raise ValueError(f"{what} is on {obj.device}; move it with .cpu() first")
        obj = obj.detach()
        if labels and not obj.is_floating_point() and obj.dtype not in (torch.int64, torch.bool):
            obj = obj.long()  # small int label types widen to int64 (a copy of the labels)
        elif labels and obj.dtype == torch.bool:
            raise TypeError(f"{what} has dtype torch.bool; pass integer or float labels")
        return obj.contiguous()
    import numpy as np

    arr = np.asarray(obj)
    if labels and arr.dtype.kind in "iu" and arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    return np.ascontiguousarray(arr)


def _memory_budget(memory_budget: int | None) -> int:
    """Bytes memory mode may use under mode="auto": the argument, else half of the
    available memory."""
    if memory_budget is not None:
        return _int("memory_budget", memory_budget, minimum=0)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (ValueError, OSError, AttributeError):
        return 4 << 30


def estimated_decoded_bytes(source: _native.Source) -> int:
    """Decoded size of a source: exact from row counts when the format states them, else
    estimated from file sizes (CSV text takes at least 2 bytes per value: a digit and a
    delimiter; a float32 takes 4, so decoded <= 2x text, conservatively)."""
    width = len(source.feature_names) * 4 + len(source.label_names) * 8
    rows = source.known_rows
    if rows is not None:
        return rows * width
    return source.nbytes * 2


class DataLoader:
    """Batches of ``(features, labels)`` (or ``features``) from files, Arrow data or tensors,
    shuffled, sharded across ranks and prefetched by Rust threads.

    ``source``: a path, a glob, a list of paths or an in-memory Arrow object (read through
    the readers' ``open_source``); an opened :class:`Source`; or tensors/arrays ``X`` or
    ``(X, y)``, served without a copy (they must not be resized in place while the loader
    lives; changed values show up in later batches, as with torch's TensorDataset).

    Each ``iter(loader)`` runs the next epoch (0 first), reshuffled from ``(seed, epoch)``;
    ``set_epoch(e)`` picks the next one. ``len(loader)`` is the number of batches this rank
    yields per epoch. ``rank``/``world_size`` default to an initialized torch.distributed,
    else ``RANK``/``WORLD_SIZE``; each sample is served once per epoch across ranks, with the
    remainder handled by ``uneven``: ``"drop"`` (``N // W`` each), ``"pad"`` (``ceil(N/W)``
    each, repeating the first samples) or ``"even_batches"`` (each sample once; every rank
    yields the same number of batches, so a short rank's last batch is one smaller, possibly
    empty). ``state_dict()``/``load_state_dict()`` resume mid-epoch exactly.

    ``mode``: ``"memory"`` decodes everything once and shuffles globally; ``"stream"`` reads
    windows of about ``shuffle_buffer`` records in a shuffled chunk order each epoch, with
    bounded memory; ``"auto"`` picks memory when the decoded data fits ``memory_budget``
    (default: half the available RAM). With several ranks, stream mode counts the records
    once (cached) to cut the epoch into equal parts.

    ``num_threads`` threads gather batches in memory mode; decoding (materializing, stream
    windows, fitting transforms) runs on the shared pool sized by ``set_num_threads`` /
    ``RUSTTORCH_NUM_THREADS``. ``prefetch`` batches (and at most ``prefetch_bytes``) are
    built ahead of the consumer. ``transform``: one transform or a list, applied to feature
    batches in the worker threads. Extra keyword arguments go to the file readers.
    """

    def __init__(
        self,
        source: Any,
        batch_size: int = 256,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        features: Any = None,
        label: Any = None,
        num_threads: int | None = None,
        prefetch: int = 4,
        transform: Transform | list[Transform] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        mode: str = "auto",
        on_error: str = "raise",
        max_errors: int | None = None,
        uneven: str = "even_batches",
        prefetch_bytes: int = 256 << 20,
        shuffle_buffer: int = 1 << 16,
        memory_budget: int | None = None,
        **reader_options: Any,
    ) -> None:
        batch_size = _int("batch_size", batch_size, minimum=1)
        shuffle = _bool("shuffle", shuffle)
        seed = _int("seed", seed, minimum=0, maximum=2**64 - 1)
        drop_last = _bool("drop_last", drop_last)
        if num_threads is None:
            num_threads = _native.get_num_threads()
        num_threads = _int("num_threads", num_threads, minimum=1)
        prefetch = _int("prefetch", prefetch, minimum=1)
        prefetch_bytes = _int("prefetch_bytes", prefetch_bytes, minimum=1)
        shuffle_buffer = _int("shuffle_buffer", shuffle_buffer, minimum=1)
        mode = _choice("mode", mode, _MODES)
        on_error = _choice("on_error", on_error, _ON_ERROR)
        uneven = _choice("uneven", uneven, _UNEVEN)
        if max_errors is not None:
            max_errors = _int("max_errors", max_errors, minimum=0)
            if on_error != "skip":
                raise ValueError('max_errors applies with on_error="skip"')
        self._transforms = as_transform_list(transform)
        rank, world_size = resolve_distributed(rank, world_size)

        src, feature_shape, label_shape, kind = self._open(
            source, features, label, on_error, max_errors, reader_options
        )
        if mode == "auto":
            fits = kind == "tensor" or estimated_decoded_bytes(src) <= _memory_budget(memory_budget)
            mode = "memory" if fits else "stream"
        self._source = src
        self._native = _native._Loader(
            src,
            batch_size=batch_size,
            shuffle=shuffle,
            seed=seed,
            drop_last=drop_last,
            num_threads=num_threads,
            prefetch=prefetch,
            prefetch_bytes=prefetch_bytes,
            rank=rank,
            world_size=world_size,
            uneven=uneven,
            mode=mode,
            shuffle_buffer=shuffle_buffer,
            on_error=on_error,
            max_errors=max_errors,
            feature_shape=feature_shape,
            label_shape=label_shape,
            transforms=[t._spec() for t in self._transforms],
        )
        self._sync_transforms()
        self._options: dict[str, Any] = {
            "batch_size": batch_size,
            "shuffle": shuffle,
            "seed": seed,
            "drop_last": drop_last,
            "rank": rank,
            "world_size": world_size,
            "uneven": uneven,
            "mode": mode,
            "shuffle_buffer": shuffle_buffer,
        }
        self._next_epoch = 0
        self._started = False
        self._epoch_set = False
        self._resume: tuple[int, int, int] | None = None
        self._current: weakref.ref[Any] | None = None

    # -- sources --------------------------------------------------------------------------

    @staticmethod
    def _open(
        source: Any,
        features: Any,
        label: Any,
        on_error: str,
        max_errors: int | None,
        reader_options: dict[str, Any],
    ) -> tuple[Any, list[int] | None, list[int] | None, str]:
        in_memory = _is_array(source) or (
            isinstance(source, tuple)
            and len(source) == 2
            and _is_array(source[0])
            and (_is_array(source[1]) or source[1] is None)
        )
        if isinstance(source, _native.Source) or in_memory:
            extra = {"features": features, "label": label, **reader_options}
            given = sorted(k for k, v in extra.items() if v is not None)
            if given:
                raise ValueError(
                    f"{', '.join(given)} apply when opening files or Arrow data; this source is "
                    "already opened (pass column choices to open_source instead)"
                )
        if isinstance(source, _native.Source):
            return source, None, None, "source"
        if in_memory:
            X, y = source if isinstance(source, tuple) else (source, None)
            X = _prepare_tensor(X, "features", labels=False)
            y = None if y is None else _prepare_tensor(y, "labels", labels=True)
            src = _native.tensor_source(X, y)
            return src, list(X.shape[1:]), None if y is None else list(y.shape[1:]), "tensor"
        if isinstance(source, tuple):
            raise TypeError(
                "a tuple source must be (features, labels) tensors or arrays; pass a list for "
                "several files"
            )
        # The readers' entry point when this build has it (looked up at run time, so that the
        # loader does not depend on the readers' Python module to import).
        try:
            readers = importlib.import_module(f"{__package__}._readers")
            open_source = readers.open_source
        except (ImportError, AttributeError):
            open_source = _open_files
        src = open_source(
            source,
            features=features,
            label=label,
            on_error=on_error,
            max_errors=max_errors,
            **reader_options,
        )
        return src, None, None, "files"

    def _sync_transforms(self) -> None:
        for t, (_, params) in zip(self._transforms, self._native.transforms(), strict=True):
            t._update(params)

    # -- iteration ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._native)

    def __iter__(self) -> Iterator[Any]:
        self._close_current()
        if self._resume is not None:
            epoch, first, samples = self._resume
            self._resume = None
        else:
            epoch, first, samples = self._next_epoch, 0, 0
        self._next_epoch = epoch + 1
        self._started = True
        self._epoch_set = False
        it = self._native.epoch(epoch, first, samples)
        self._current = weakref.ref(it)
        return it

    def _close_current(self) -> None:
        current = self._current() if self._current is not None else None
        if current is not None:
            current.close(superseded=True)
        self._current = None

    def set_epoch(self, epoch: int) -> None:
        """Makes the next ``iter(loader)`` run epoch ``epoch`` from its start."""
        self._next_epoch = _int("epoch", epoch, minimum=0)
        self._resume = None
        self._epoch_set = True

    @property
    def epoch(self) -> int:
        """The epoch the next ``iter()`` starts."""
        return self._resume[0] if self._resume is not None else self._next_epoch

    @property
    def mode(self) -> str:
        """``"memory"`` or ``"stream"``."""
        return str(self._native.mode)

    @property
    def rank(self) -> int:
        return int(self._options["rank"])

    @property
    def world_size(self) -> int:
        return int(self._options["world_size"])

    @property
    def transform(self) -> list[Transform]:
        """The transforms, with fitted parameters."""
        return list(self._transforms)

    @property
    def num_samples(self) -> int:
        """Samples per epoch across all ranks."""
        return int(self._native.num_samples())

    @property
    def stats(self) -> dict[str, Any]:
        """Rows and bytes read, rows skipped (with file and line), time spent reading,
        parsing, gathering and waiting (seconds), batches and samples delivered, samples
        dropped/padded by the distributed policy."""
        out = dict(self._native.stats())
        out.update(mode=self.mode, rank=self.rank, world_size=self.world_size)
        out["uneven"] = self._options["uneven"]
        return out

    # -- resume ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Where the consumer is (batches yielded, not prefetched), the options that define
        the order, fitted transform parameters and a fingerprint of the data."""
        if self._resume is not None:
            epoch, batches, samples = self._resume
        elif not self._started or self._epoch_set:
            epoch, batches, samples = self._next_epoch, 0, 0
        else:
            epoch, batches, samples, finished = self._native.progress()
            if finished:
                epoch, batches, samples = epoch + 1, 0, 0
        return {
            "version": _STATE_VERSION,
            **self._options,
            "epoch": int(epoch),
            "batches_yielded": int(batches),
            "samples_yielded": int(samples),
            "transforms": [[name, dict(params)] for name, params in self._native.transforms()],
            "fingerprint": dict(self._native.fingerprint()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Makes the next ``iter()`` continue exactly where ``state`` stopped: the same
        remaining samples, in the same order. Raises ValueError when the state belongs to
        other data or to a loader with other ordering options."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict from state_dict(), got {type(state).__name__}")
        missing = [
            k
            for k in ("version", "epoch", "batches_yielded", "samples_yielded", "fingerprint")
            if k not in state
        ]
        if missing:
            raise ValueError(f"not a DataLoader state: missing {', '.join(missing)}")
        if state["version"] != _STATE_VERSION:
            raise ValueError(
                f"state version {state['version']!r} is not supported (this is {_STATE_VERSION})"
            )
        keys = [
            "batch_size",
            "shuffle",
            "seed",
            "drop_last",
            "rank",
            "world_size",
            "uneven",
            "mode",
        ]
        if self._options["mode"] == "stream":
            keys.append("shuffle_buffer")
        differ = [
            f"{k}: state {state.get(k)!r}, loader {self._options[k]!r}"
            for k in keys
            if state.get(k) != self._options[k]
        ]
        if differ:
            raise ValueError(
                "the state was saved by a loader with other options: " + "; ".join(differ)
            )
        mine = dict(self._native.fingerprint())
        theirs = state["fingerprint"]
        if not isinstance(theirs, dict) or theirs.get("digest") != mine["digest"]:
            details = []
            if isinstance(theirs, dict):
                for key in ("files", "rows", "chunks", "columns"):
                    a, b = theirs.get(key), mine[key]
                    if _normalize(a) != _normalize(b):
                        details.append(f"{key}: state {a!r}, now {b!r}")
            raise ValueError(
                "the state was saved for other data ("
                + ("; ".join(details) or "fingerprint differs")
                + ")"
            )
        epoch = _int("epoch", state["epoch"], minimum=0)
        batches = _int("batches_yielded", state["batches_yielded"], minimum=0)
        samples = _int("samples_yielded", state["samples_yielded"], minimum=0)
        total = len(self)
        if batches > total:
            raise ValueError(
                f"the state says {batches} batches were yielded, but an epoch has {total}"
            )
        transforms = state.get("transforms", [])
        if transforms:
            self._native.set_transforms([(name, dict(params)) for name, params in transforms])
            self._sync_transforms()
        self._close_current()
        if batches == total:
            self._resume = None
            self._next_epoch = epoch + 1
        else:
            self._resume = (epoch, batches, samples)
        self._started = True
        self._epoch_set = self._resume is None

    def __repr__(self) -> str:
        o = self._options
        return (
            f"DataLoader(mode={o['mode']!r}, batch_size={o['batch_size']}, shuffle={o['shuffle']}, "
            f"rank={o['rank']}, world_size={o['world_size']}, uneven={o['uneven']!r}, "
            f"source={self._source!r})"
        )


_CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz", ".txt.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_IPC_SUFFIXES = (".arrow", ".feather", ".ipc")


def _reader(name: str) -> Any:
    """A native ``open_*`` function (looked up by name: they belong to the readers' stubs)."""
    return getattr(_native, name)


def _open_files(
    source: Any,
    *,
    features: Any = None,
    label: Any = None,
    on_error: str = "raise",
    max_errors: int | None = None,
    **options: Any,
) -> Any:
    """Used only while the readers' ``open_source`` is absent from this build: paths, globs
    and lists of paths of one format, or Arrow data, through the native ``open_*``.
    (``on_error``/``max_errors`` act through the loader's error budget.)"""
    import glob

    del on_error, max_errors
    columns = {"features": features, "label": label, **options}
    if hasattr(source, "__arrow_c_stream__"):
        return _reader("open_arrow")(source, **columns)
    items = [source] if isinstance(source, (str, os.PathLike)) else source
    if not isinstance(items, (list, tuple)) or not items:
        raise TypeError(
            "source must be a path, a glob, a non-empty list of paths, Arrow data, an opened "
            f"Source, or tensors X / (X, y); got {type(source).__name__}"
        )
    paths: list[str] = []
    for item in items:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(f"paths must be str or os.PathLike, got {type(item).__name__}")
        text = os.fspath(item)
        if any(c in text for c in "*?["):
            matched = sorted(glob.glob(text))
            if not matched:
                raise FileNotFoundError(2, f"no file matches {text!r}", text)
            paths += matched
        else:
            paths.append(text)
    kinds = set()
    for p in paths:
        lower = p.lower()
        if lower.endswith(_CSV_SUFFIXES):
            kinds.add("csv")
        elif lower.endswith(_PARQUET_SUFFIXES):
            kinds.add("parquet")
        elif lower.endswith(_IPC_SUFFIXES):
            kinds.add("ipc")
        elif lower.endswith(".npy"):
            kinds.add("npy")
        else:
            raise ValueError(
                f"cannot tell the format of {p!r} from its name (.csv, .tsv, .parquet, .arrow, "
                ".feather, .npy, optionally .gz for text)"
            )
    if len(kinds) != 1:
        raise ValueError(f"all files of one source must have one format, got {sorted(kinds)}")
    kind = kinds.pop()
    if kind == "csv":
        if all(p.lower().endswith((".tsv", ".tsv.gz")) for p in paths):
            columns.setdefault("delimiter", "\t")
        return _reader("open_csv")(paths, **columns)
    if kind == "parquet":
        return _reader("open_parquet")(paths, **columns)
    if kind == "ipc":
        return _reader("open_ipc")(paths, **columns)
    if len(paths) != 1:
        raise ValueError(".npy sources take one file (labels: labels=<path>)")
    return _reader("open_npy")(paths[0], **columns)


def _normalize(value: Any) -> Any:
    """Lists and tuples compare equal after a torch.save/JSON round trip."""
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value
