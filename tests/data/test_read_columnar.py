"""Parquet, Arrow IPC/Feather and in-memory Arrow against pyarrow (the reference): numeric
types, nulls, projection, several files and row groups, any thread count."""

from __future__ import annotations

import decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.feather as feather
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rusttorch_data as rd


def typed_table(n: int = 1000) -> pa.Table:
    rng = np.random.default_rng(3)
    return pa.table(
        {
            "f32": rng.standard_normal(n).astype(np.float32),
            "f64": rng.standard_normal(n),
            "i8": rng.integers(-128, 127, n).astype(np.int8),
            "u16": rng.integers(0, 65535, n).astype(np.uint16),
            "i64": rng.integers(-(2**40), 2**40, n),
            "b": rng.integers(0, 2, n).astype(bool),
            "dec": pa.array(
                [decimal.Decimal(int(v)) / 100 for v in rng.integers(-(10**6), 10**6, n)],
                pa.decimal128(12, 2),
            ),
            "y": rng.integers(0, 10, n),
        }
    )


def reference(table: pa.Table, features: list[str], dtype=np.float32) -> torch.Tensor:
    cols = [
        np.asarray(table.column(f).to_numpy(zero_copy_only=False), dtype=np.float64)
        for f in features
    ]
    return torch.from_numpy(np.stack(cols, axis=1).astype(dtype))


FEATURES = ["f32", "f64", "i8", "u16", "i64", "b", "dec"]


@pytest.mark.parametrize("row_group_size", [1000, 128, 7])
def test_parquet_matches_pyarrow(tmp_path: Path, threads: int, row_group_size: int) -> None:
    table = typed_table()
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")
    X, y = rd.read_parquet(path, label="y")
    assert torch.equal(X, reference(table, FEATURES))
    assert y.tolist() == table.column("y").to_pylist()
    source = rd.open_source(path, label="y")
    assert source.num_chunks == -(-1000 // row_group_size)
    assert source.known_rows == 1000


def test_parquet_projection_order_and_float64(tmp_path: Path) -> None:
    table = typed_table(100)
    path = tmp_path / "t.parquet"
    pq.write_table(table, path)
    X = rd.read_parquet(path, features=["i64", "f32"], feature_dtype=torch.float64)
    assert torch.equal(X, reference(table, ["i64", "f32"], np.float64))
    X, y = rd.read_parquet(path, features=[1], label="f32", label_dtype="float32")
    assert torch.equal(y, torch.from_numpy(table.column("f32").to_numpy()))


def test_parquet_several_files_in_order(tmp_path: Path) -> None:
    for i in range(3):
        pq.write_table(
            pa.table({"a": [float(i), float(i) + 0.5], "y": [i, i]}), tmp_path / f"p{i}.parquet"
        )
    X, y = rd.read_parquet(str(tmp_path / "p*.parquet"), label="y")
    assert X.flatten().tolist() == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    assert y.tolist() == [0, 0, 1, 1, 2, 2]


def test_nulls_follow_the_missing_policy(tmp_path: Path) -> None:
    path = tmp_path / "n.parquet"
    pq.write_table(pa.table({"a": [1.0, None, 3.0], "y": [1, 2, None]}), path)
    # Columnar files count rows from 0, as pandas and pyarrow do, and say so.
    with pytest.raises(
        rd.ParseError, match=r'n\.parquet, row index 1: column "a" has a missing value'
    ):
        rd.read_parquet(path)
    with pytest.raises(rd.ParseError, match=r'<arrow>, row index 2: column "y" has a missing'):
        rd.read_arrow(pq.read_table(path), features=[], label="y")
    X = rd.read_parquet(path, features=["a"], missing="nan")
    assert X[1, 0].isnan() and X[2, 0].item() == 3.0
    X, y = rd.read_parquet(path, label="y", missing=-1)
    assert X.flatten().tolist() == [1.0, -1.0, 3.0] and y.tolist() == [1, 2, -1]


def test_float_labels_must_be_integral_for_int64(tmp_path: Path) -> None:
    path = tmp_path / "l.parquet"
    pq.write_table(pa.table({"a": [1.0, 2.0], "y": [1.0, 2.5]}), path)
    with pytest.raises(rd.ParseError, match=r'l\.parquet, row index 1: column "y": .*"2\.5"'):
        rd.read_parquet(path, label="y")
    _, y = rd.read_parquet(path, label="y", label_dtype=torch.float64)
    assert y.tolist() == [1.0, 2.5]


@pytest.mark.parametrize("compression", ["uncompressed", "lz4", "zstd"])
def test_feather_matches_pyarrow(tmp_path: Path, threads: int, compression: str) -> None:
    table = typed_table()
    path = tmp_path / "t.feather"
    feather.write_feather(table, path, compression=compression, chunksize=300)
    X, y = rd.read_ipc(path, label="y")
    assert torch.equal(X, reference(table, FEATURES))
    assert y.tolist() == table.column("y").to_pylist()
    assert rd.open_source(path).num_chunks == 4
    assert rd.open_source(path).known_rows == 1000
    X3 = rd.read_ipc(path, features=["u16"])
    assert torch.equal(X3, reference(table, ["u16"]))


def bytes_read_by_this_process() -> int:
    """Bytes this process (all its threads) has read through read/pread so far (Linux)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_ipc_with_many_batches_reads_its_footer_once(tmp_path: Path, threads: int) -> None:
    # 4,000 batches of 8 rows: the footer lists every batch (about 100 KB). A reader that
    # parsed the footer again for every batch would read over 400 MB; one read per file
    # keeps the total within a few times the file's size.
    rng = np.random.default_rng(5)
    table = pa.table({f"c{i}": rng.standard_normal(32_000).astype(np.float32) for i in range(3)})
    path = tmp_path / "many.arrow"
    feather.write_feather(table, path, compression="uncompressed", chunksize=8)
    size = path.stat().st_size
    before = bytes_read_by_this_process()
    X = rd.read_ipc(path)
    read = bytes_read_by_this_process() - before
    assert torch.equal(X, reference(table, ["c0", "c1", "c2"]))
    assert rd.open_source(path).num_chunks == 4000
    assert read < 4 * size, f"read {read:,} bytes of a {size:,}-byte file"


def test_in_memory_arrow_objects(threads: int) -> None:
    table = typed_table(500)
    expected = reference(table, FEATURES)
    X, y = rd.read_arrow(table, label="y")
    assert torch.equal(X, expected) and y.tolist() == table.column("y").to_pylist()
    batches = table.to_batches(max_chunksize=64)
    X, _ = rd.read_arrow(pa.Table.from_batches(batches), label="y")
    assert torch.equal(X, expected)
    X, _ = rd.read_arrow(batches[0], label="y")
    assert torch.equal(X, expected[:64])
    X, _ = rd.read_arrow(table.to_pandas(), label="y")
    assert torch.equal(X, expected)


def test_polars_dataframe() -> None:
    pl = pytest.importorskip("polars")
    df = pl.DataFrame({"a": [1.0, 2.0], "b": [3, 4], "y": [0, 1]})
    X, y = rd.read_arrow(df, label="y")
    assert X.tolist() == [[1.0, 3.0], [2.0, 4.0]] and y.tolist() == [0, 1]


def test_open_arrow_refuses_other_objects() -> None:
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        rd._native.open_arrow([1, 2, 3])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.floats(allow_nan=False, width=64), min_size=1, max_size=200),
    st.integers(1, 50),
)
def test_parquet_round_trip(tmp_path: Path, values: list[float], group: int) -> None:
    path = tmp_path / "h.parquet"
    pq.write_table(
        pa.table({"v": values, "y": list(range(len(values)))}), path, row_group_size=group
    )
    X, y = rd.read_parquet(path, label="y", feature_dtype="float64")
    assert X.flatten().tolist() == values
    assert y.tolist() == list(range(len(values)))


def test_categorical_codes_by_first_appearance(tmp_path: Path, threads: int) -> None:
    colors = ["red", "blue", "red", None, "green", "blue", "violet"]
    table = pa.table(
        {
            "x": [float(i) for i in range(7)],
            "color": colors,
            "kind": pa.array(["b", "a", "b", "a", "c", "c", "a"]).dictionary_encode(),
        }
    )
    expected_color = [0.0, 1.0, 0.0, -1.0, 2.0, 1.0, 3.0]
    for group in [1, 3, 7]:
        path = tmp_path / f"c{group}.parquet"
        pq.write_table(table, path, row_group_size=group)
        X, y = rd.read_parquet(path, label="kind", categorical="codes", missing=-1)
        assert X[:, 1].tolist() == expected_color
        assert y.tolist() == [0, 1, 0, 1, 2, 2, 1]
    X, y = rd.read_arrow(table, label="kind", categorical="codes", missing=-1)
    assert X[:, 1].tolist() == expected_color and y.tolist() == [0, 1, 0, 1, 2, 2, 1]
    path = tmp_path / "c.feather"
    feather.write_feather(table, path, chunksize=2)
    X, y = rd.read_ipc(path, label="kind", categorical="codes", missing=-1)
    assert X[:, 1].tolist() == expected_color
    with pytest.raises(TypeError, match='categorical="codes"'):
        rd.read_arrow(table)


def test_categorical_codes_for_csv(write_text, threads: int) -> None:
    text = (
        "x,color,kind,mixed\n"
        "0,red,b,1\n"
        '1,"blue, dark",a,x\n'
        "2,red,b,1\n"
        "3,,a,2\n"
        "4,green,c,x\n"
        '5,"blue, dark",c,1\n'
        "6,violet,a,2\n"
    )
    path = write_text(text)
    for chunk in [1, 7, 1 << 20]:
        X, y = rd.read_csv(path, label="kind", categorical="codes", missing=-1, chunk_bytes=chunk)
        assert X[:, 0].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
        assert X[:, 1].tolist() == [0.0, 1.0, 0.0, -1.0, 2.0, 1.0, 3.0]
        # A column with any text is coded whole, numbers included.
        assert X[:, 2].tolist() == [0.0, 1.0, 0.0, 2.0, 1.0, 0.0, 2.0]
        assert y.tolist() == [0, 1, 0, 1, 2, 2, 1]
    with pytest.raises(rd.ParseError, match='"color"'):
        rd.read_csv(path, label="kind")


# Above 2^53 a 64-bit integer goes to float32 differently when rounded once (NumPy's and
# pyarrow's casts) and when rounded twice through float64: 2^60 + 2^36 + 1 is just above the
# midpoint between two float32 values, but float64 rounds it onto that midpoint, which then
# rounds to even.
_TWICE = [2**60 + 2**36 + 1, -(2**60 + 2**36 + 1), 2**62 + 2**38 + 1, 3, -7]


@pytest.mark.parametrize("fmt", ["parquet", "feather", "memory"])
def test_64_bit_integers_are_rounded_once(tmp_path: Path, fmt: str) -> None:
    table = pa.table(
        {
            "i64": pa.array(_TWICE, pa.int64()),
            "u64": pa.array([abs(v) for v in _TWICE], pa.uint64()),
            "y": pa.array(_TWICE[::-1], pa.int64()),
        }
    )
    once = np.stack([table.column(c).to_numpy().astype(np.float32) for c in ("i64", "u64")], 1)
    assert not np.array_equal(
        once[:, 0], table.column("i64").to_numpy().astype(np.float64).astype(np.float32)
    )
    if fmt == "parquet":
        pq.write_table(table, tmp_path / "t.parquet")
        source: object = tmp_path / "t.parquet"
        read = rd.read_parquet
    elif fmt == "feather":
        feather.write_feather(table, tmp_path / "t.feather")
        source, read = tmp_path / "t.feather", rd.read_ipc
    else:
        source, read = table, rd.read_arrow
    X, y = read(source, features=["i64", "u64"], label="y", label_dtype="float32")
    assert torch.equal(X, torch.from_numpy(once))
    assert torch.equal(y, torch.from_numpy(table.column("y").to_numpy().astype(np.float32)))
