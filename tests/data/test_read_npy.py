"""read_npy against numpy.load (the reference): zero copy when the layout fits, conversion
otherwise (dtypes, Fortran order, big-endian, 1-D), labels from a column or a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import rusttorch_data as rd


def test_matching_layout_is_shared_not_copied(tmp_path: Path) -> None:
    x = np.random.default_rng(0).standard_normal((300, 5)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    X = rd.read_npy(path)
    assert torch.equal(X, torch.from_numpy(x))
    # A write lands in this process's private copy, never in the file.
    X[0, 0] = 1234.0
    assert np.load(path)[0, 0] == x[0, 0]
    del X


@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<i2", ">i8", "<u1", "|b1", "<u8"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_other_layouts_are_converted(tmp_path: Path, dtype: str, order: str, threads: int) -> None:
    rng = np.random.default_rng(1)
    x = np.asarray(rng.integers(0, 100, (257, 3)), dtype=dtype, order=order)
    path = tmp_path / "x.npy"
    np.save(path, x)
    X = rd.read_npy(path)
    assert torch.equal(X, torch.from_numpy(x.astype(np.float32)))


def test_one_dimensional_is_one_column(tmp_path: Path) -> None:
    path = tmp_path / "v.npy"
    np.save(path, np.arange(10.0))
    assert rd.read_npy(path).shape == (10, 1)


def test_labels_from_a_file_and_from_a_column(tmp_path: Path) -> None:
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    y = np.arange(10, dtype=np.int64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    X, labels = rd.read_npy(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    assert torch.equal(X, torch.from_numpy(x)) and labels.tolist() == y.tolist()
    np.save(tmp_path / "yf.npy", y.astype(np.int32))
    _, labels = rd.read_npy(tmp_path / "x.npy", labels=tmp_path / "yf.npy")
    assert labels.dtype == torch.int64 and labels.tolist() == y.tolist()
    X, labels = rd.read_npy(tmp_path / "x.npy", label=1)
    assert X.flatten().tolist() == x[:, 0].tolist()
    assert labels.tolist() == x[:, 1].astype(np.int64).tolist()


def test_bad_npy_files(tmp_path: Path) -> None:
    np.save(tmp_path / "o.npy", np.array([object(), 1], dtype=object), allow_pickle=True)
    with pytest.raises(TypeError, match=r"o\.npy"):
        rd.read_npy(tmp_path / "o.npy")
    # A structured array's error shows its whole field list, not a cut-off header.
    np.save(tmp_path / "s.npy", np.zeros(3, dtype=[("a", "<f4"), ("b", "<i8")]))
    with pytest.raises(TypeError) as info:
        rd.read_npy(tmp_path / "s.npy")
    assert "[('a', '<f4'), ('b', '<i8')]" in str(info.value)
    assert "fortran_order" not in str(info.value)
    np.save(tmp_path / "3d.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="3-dimensional"):
        rd.read_npy(tmp_path / "3d.npy")
    np.save(tmp_path / "t.npy", np.zeros((100, 4)))
    data = (tmp_path / "t.npy").read_bytes()
    (tmp_path / "t.npy").write_bytes(data[:-50])
    with pytest.raises(ValueError, match="truncated"):
        rd.read_npy(tmp_path / "t.npy")
    (tmp_path / "g.npy").write_bytes(b"garbage")
    with pytest.raises(ValueError, match=r"g\.npy"):
        rd.read_npy(tmp_path / "g.npy")
    np.save(tmp_path / "y.npy", np.zeros(3))
    np.save(tmp_path / "x.npy", np.zeros((4, 2)))
    with pytest.raises(rd.SchemaError, match="rows"):
        rd.read_npy(tmp_path / "x.npy", labels=tmp_path / "y.npy")
    np.save(tmp_path / "frac.npy", np.array([[1.0, 2.0], [3.0, 0.5]]))
    with pytest.raises(rd.ParseError, match=r"frac\.npy, row index 1: column \"1\": .*0\.5"):
        rd.read_npy(tmp_path / "frac.npy", label=1)


# Above 2^53 a 64-bit integer goes to float32 differently when rounded once (NumPy's astype)
# and when rounded twice through float64: 2^60 + 2^36 + 1 is just above the midpoint between
# two float32 values, but float64 rounds it onto that midpoint, which then rounds to even.
_TWICE = [2**60 + 2**36 + 1, -(2**60 + 2**36 + 1), 2**62 + 2**38 + 1, 3, -7]


@pytest.mark.parametrize("dtype", ["<i8", ">i8", "<u8"])
def test_64_bit_integers_are_rounded_once(tmp_path: Path, dtype: str) -> None:
    values = [abs(v) for v in _TWICE] if dtype == "<u8" else _TWICE
    x = np.array([values, values[::-1]], dtype=dtype).T.copy()
    once = x.astype(np.float32)
    assert not np.array_equal(once, x.astype(np.float64).astype(np.float32))
    np.save(tmp_path / "x.npy", x)
    assert torch.equal(rd.read_npy(tmp_path / "x.npy"), torch.from_numpy(once))
    assert torch.equal(
        rd.read_npy(tmp_path / "x.npy", feature_dtype=torch.float64),
        torch.from_numpy(x.astype(np.float64)),
    )
    features, labels = rd.read_npy(tmp_path / "x.npy", label=1, label_dtype="float32")
    assert torch.equal(features, torch.from_numpy(once[:, :1]))
    assert torch.equal(labels, torch.from_numpy(once[:, 1]))
