"""The module's surface: exported names, TensorInfo, cpu_features, and the typed stubs."""

from __future__ import annotations

import ast
import inspect
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

import rusttorch_view as rv

INFO_FIELDS = [
    "dtype",
    "shape",
    "strides",
    "device",
    "is_contiguous",
    "data_ptr",
    "readonly",
    "source",
    "itemsize",
    "numel",
]


def test_public_names() -> None:
    for name in rv.__all__:
        assert hasattr(rv, name), name
    assert set(rv.__all__) >= {"info", "to_torch", "copy", "get_num_threads", "set_num_threads"}
    assert isinstance(rv.__version__, str)
    assert rv.__version__ == rv._native.__version__
    assert rv.__version__.count(".") >= 2


def test_stub_declares_every_native_function() -> None:
    stub = Path(rv.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    declared = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)}
    native = {
        name
        for name, obj in vars(rv._native).items()
        if not name.startswith("__") and (callable(obj) or inspect.isclass(obj))
    }
    assert native == declared
    assert (Path(rv.__file__).parent / "py.typed").exists()


def test_info_fields_match_as_dict() -> None:
    x = torch.arange(12, dtype=torch.int16).reshape(3, 4)[:, 1:]
    i = rv.info(x)
    d = i.as_dict()
    assert list(d) == INFO_FIELDS
    for field in INFO_FIELDS:
        assert d[field] == getattr(i, field), field
    assert d["dtype"] == "int16"
    assert d["shape"] == (3, 3)
    assert d["strides"] == (4, 1)
    assert d["is_contiguous"] is False
    assert d["itemsize"] == 2
    assert i.numel == 9


def test_info_is_frozen() -> None:
    i = rv.info(torch.zeros(2))
    with pytest.raises(AttributeError):
        i.dtype = "float64"  # type: ignore[misc]
    assert isinstance(i, rv.TensorInfo)


def test_info_repr_names_the_fields() -> None:
    r = repr(rv.info(np.zeros((2, 3), dtype=np.float64)))
    assert r.startswith("TensorInfo(")
    for part in ["float64", "(2, 3)", "(3, 1)", "cpu", "dlpack"]:
        assert part in r, (part, r)


def test_info_of_scalar_shape_repr() -> None:
    assert "shape=()" in repr(rv.info(torch.tensor(1.0)))
    assert "shape=(4,)" in repr(rv.info(torch.zeros(4)))


def test_cpu_features() -> None:
    features = rv.cpu_features()
    assert isinstance(features, list)
    assert all(isinstance(f, str) for f in features)
    assert len(set(features)) == len(features)
    if platform.machine() in ("x86_64", "AMD64"):
        assert "sse2" in features  # part of x86-64 itself
        flags = _proc_cpu_flags()
        if flags:
            for name, flag in [("avx2", "avx2"), ("fma", "fma"), ("avx512f", "avx512f")]:
                assert (name in features) == (flag in flags), name


def _proc_cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def test_to_torch_keyword_only_copy() -> None:
    with pytest.raises(TypeError):
        rv.to_torch(np.zeros(2), True)  # type: ignore[misc]
    with pytest.raises(TypeError):
        rv.copy(torch.zeros(2), torch.zeros(2))  # type: ignore[misc]
