"""Per-feature transforms applied by the DataLoader's Rust threads to every feature batch.

Pass one or a list (applied in order) as ``DataLoader(..., transform=[FillNaN(0), Standardize()])``.
Parameters left as ``None`` are fitted on the whole dataset when the loader is made (one
parallel pass per transform that needs it), then exposed on the object (``t.mean``, ``t.std``)
and stored in ``loader.state_dict()``.

>>> import torch, rusttorch_data as rd
>>> X = torch.arange(12, dtype=torch.float32).reshape(6, 2)
>>> scale = rd.Standardize()
>>> batch = next(iter(rd.DataLoader(X, batch_size=6, transform=scale)))
>>> torch.allclose(batch.mean(0), torch.zeros(2), atol=1e-6)
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

__all__ = ["Clip", "FillNaN", "MinMaxScale", "Normalize", "Standardize", "Transform"]


def _values(name: str, value: Any) -> list[float] | None:
    """A scalar or per-feature vector as a list of floats (None stays None)."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().reshape(-1).tolist()
    elif hasattr(value, "tolist") and not isinstance(value, (int, float)):
        value = value.tolist()
    if isinstance(value, bool):
        raise TypeError(f"{name} must be a number or a sequence of numbers, got a bool")
    if isinstance(value, (int, float)):
        value = [value]
    if not isinstance(value, Sequence) or isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be a number or a sequence of numbers, got {type(value).__name__}"
        )
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{name} must contain numbers, got {type(v).__name__}")
        out.append(float(v))
    if not out:
        raise ValueError(f"{name} must not be empty")
    return out


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def _tensor(values: list[float] | None) -> torch.Tensor | None:
    return None if values is None else torch.tensor(values, dtype=torch.float64)


class Transform:
    """Base class: a transform is a name and its parameters, run by the Rust pipeline."""

    _name: str = ""

    def _spec(self) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def _update(self, params: dict[str, list[float]]) -> None:
        """Takes the fitted parameters from the loader."""

    def __repr__(self) -> str:
        name, params = self._spec()
        shown = ", ".join(f"{k}={v!r}" for k, v in params.items() if v is not None)
        return f"{name}({shown})"


class Standardize(Transform):
    """``(x - mean) / std`` per feature. Parameters left ``None`` are fitted: the mean and
    the population standard deviation (as scikit-learn's StandardScaler); a zero std counts
    as 1. NaNs make fitted statistics NaN: put ``FillNaN`` first."""

    def __init__(self, mean: Any = None, std: Any = None) -> None:
        self._mean = _values("mean", mean)
        self._std = _values("std", std)
        if self._std is not None and any(s < 0 or math.isnan(s) for s in self._std):
            raise ValueError("std must be >= 0")

    @property
    def mean(self) -> torch.Tensor | None:
        """Per-feature mean (float64), ``None`` until fitted."""
        return _tensor(self._mean)

    @property
    def std(self) -> torch.Tensor | None:
        """Per-feature standard deviation (float64), ``None`` until fitted."""
        return _tensor(self._std)

    def _spec(self) -> tuple[str, dict[str, Any]]:
        return "Standardize", {"mean": self._mean, "std": self._std}

    def _update(self, params: dict[str, list[float]]) -> None:
        self._mean, self._std = params["mean"], params["std"]


class MinMaxScale(Transform):
    """``(x - min) / (max - min)`` scaled to ``feature_range``; ``min``/``max`` left ``None``
    are fitted (NaNs ignored); a zero range counts as 1."""

    def __init__(
        self, feature_range: tuple[float, float] = (0.0, 1.0), min: Any = None, max: Any = None
    ) -> None:
        lo_hi = _values("feature_range", list(feature_range))
        if lo_hi is None or len(lo_hi) != 2 or not lo_hi[0] < lo_hi[1]:
            raise ValueError(f"feature_range must be (lo, hi) with lo < hi, got {feature_range!r}")
        self.feature_range = (lo_hi[0], lo_hi[1])
        self._min = _values("min", min)
        self._max = _values("max", max)

    @property
    def min(self) -> torch.Tensor | None:
        """Per-feature minimum (float64), ``None`` until fitted."""
        return _tensor(self._min)

    @property
    def max(self) -> torch.Tensor | None:
        """Per-feature maximum (float64), ``None`` until fitted."""
        return _tensor(self._max)

    def _spec(self) -> tuple[str, dict[str, Any]]:
        return "MinMaxScale", {
            "min": self._min,
            "max": self._max,
            "feature_range": list(self.feature_range),
        }

    def _update(self, params: dict[str, list[float]]) -> None:
        self._min, self._max = params["min"], params["max"]


class Normalize(Transform):
    """``(x - mean) / std`` with given parameters (a number or one per feature)."""

    def __init__(self, mean: Any, std: Any) -> None:
        self._mean = _values("mean", mean)
        self._std = _values("std", std)
        if self._mean is None or self._std is None:
            raise ValueError("Normalize needs mean and std; use Standardize() to fit them")
        if any(s == 0 or math.isnan(s) for s in self._std):
            raise ValueError("std must be non-zero")

    @property
    def mean(self) -> torch.Tensor:
        """The mean (float64)."""
        return torch.tensor(self._mean, dtype=torch.float64)

    @property
    def std(self) -> torch.Tensor:
        """The standard deviation (float64)."""
        return torch.tensor(self._std, dtype=torch.float64)

    def _spec(self) -> tuple[str, dict[str, Any]]:
        return "Normalize", {"mean": self._mean, "std": self._std}


class Clip(Transform):
    """``clamp(x, min, max)``; give ``min``, ``max`` or both."""

    def __init__(self, min: float | None = None, max: float | None = None) -> None:
        self.min = _number("min", min)
        self.max = _number("max", max)
        if self.min is None and self.max is None:
            raise ValueError("Clip needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"Clip: min {self.min} is larger than max {self.max}")

    def _spec(self) -> tuple[str, dict[str, Any]]:
        return "Clip", {"min": self.min, "max": self.max}


class FillNaN(Transform):
    """NaN becomes ``value``."""

    def __init__(self, value: float = 0.0) -> None:
        v = _number("value", value)
        self.value = 0.0 if v is None else v

    def _spec(self) -> tuple[str, dict[str, Any]]:
        return "FillNaN", {"value": self.value}


def as_transform_list(transform: Any) -> list[Transform]:
    """``None``, one transform or a sequence of them, as a list (TypeError otherwise)."""
    if transform is None:
        return []
    items = [transform] if isinstance(transform, Transform) else transform
    if not isinstance(items, (list, tuple)):
        raise TypeError(
            "transform must be a rusttorch_data transform (Standardize, MinMaxScale, Normalize, "
            f"Clip, FillNaN) or a list of them, got {type(transform).__name__}"
        )
    for t in items:
        if not isinstance(t, Transform):
            raise TypeError(
                f"transform list items must be rusttorch_data transforms, got {type(t).__name__}"
            )
    return list(items)
