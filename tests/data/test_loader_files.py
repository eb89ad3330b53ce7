"""DataLoader over files (through the readers' open_source): the content written, memory
and stream modes, several files, errors raised at their batch with file and line, skipped
rows in the stats, empty files, and states refused when a file changed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import rusttorch_data as rd

if not hasattr(rd._native, "open_csv"):
    pytest.skip("this build has no file readers", allow_module_level=True)


def write_csv(path, n=1000, seed=0, features=4):
    """Float32 features (printed with 9 significant digits, which round-trip exactly) and an
    integer id column; returns (features, ids)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    ids = np.arange(n) + seed * 1_000_000
    header = ",".join([f"x{i}" for i in range(features)] + ["id"])
    rows = [",".join([*(f"{v:.9g}" for v in X[r]), str(ids[r])]) for r in range(n)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return X, ids


def collect(loader):
    feats, labels = [], []
    for f, y in loader:
        feats.append(f)
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_csv_content_is_what_was_written(tmp_path, mode):
    path = tmp_path / "a.csv"
    features, ids = write_csv(path)
    loader = rd.DataLoader(str(path), label="id", batch_size=64, mode=mode)
    assert loader.mode == mode
    X, y = collect(loader)
    assert y.tolist() == ids.tolist()
    assert torch.equal(X, torch.from_numpy(features))
    assert len(loader) == 16


@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_shuffled_files_once_per_epoch_any_thread_count(tmp_path, mode):
    paths = []
    for i in range(3):
        write_csv(tmp_path / f"part{i}.csv", n=500 + i, seed=i)
        paths.append(str(tmp_path / f"part{i}.csv"))
    expected = sorted(i * 1_000_000 + r for i in range(3) for r in range(500 + i))
    previous = rd.get_num_threads()
    orders = []
    try:
        for threads in (1, 2, 4):
            rd.set_num_threads(threads)
            loader = rd.DataLoader(
                paths,
                label="id",
                batch_size=32,
                shuffle=True,
                seed=3,
                mode=mode,
                num_threads=threads,
                shuffle_buffer=256,
            )
            _, y = collect(loader)
            assert sorted(y.tolist()) == expected
            orders.append(y.tolist())
    finally:
        rd.set_num_threads(previous)
    assert orders[0] == orders[1] == orders[2]
    # A glob reads the same files.
    loader = rd.DataLoader(str(tmp_path / "part*.csv"), label="id", batch_size=32, mode=mode)
    assert sorted(collect(loader)[1].tolist()) == expected


def test_stream_mode_raises_the_bad_row_at_its_batch(tmp_path):
    path = tmp_path / "bad.csv"
    lines = ["a,b,id"] + [f"{i}.5,{i},{i}" for i in range(2000)]
    lines[1500] = "1.0,oops,1499"  # the 1500th record, on line 1501
    path.write_text("\n".join(lines) + "\n")
    loader = rd.DataLoader(
        str(path), label="id", batch_size=100, mode="stream", shuffle_buffer=256, chunk_bytes=2048
    )
    seen = 0
    with pytest.raises(rd.ParseError) as info:
        for _, y in loader:
            seen += len(y)
    assert "bad.csv" in str(info.value) and "1501" in str(info.value)
    assert 0 < seen <= 1499


def test_skipped_rows_are_counted_with_file_and_line(tmp_path):
    path = tmp_path / "skip.csv"
    lines = ["a,b,id"] + [f"{i}.5,{i},{i}" for i in range(100)]
    lines[10] = "1.0,oops,9"
    lines[20] = "1.0,2.0"  # ragged
    path.write_text("\n".join(lines) + "\n")
    for mode in ("memory", "stream"):
        loader = rd.DataLoader(str(path), label="id", batch_size=16, on_error="skip", mode=mode)
        _, y = collect(loader)
        assert len(y) == 98
        stats = loader.stats
        assert stats["rows_skipped"] == 2
        assert [(f.endswith("skip.csv"), line) for f, line, _ in stats["skipped"]] == [
            (True, 11),
            (True, 21),
        ]
    with pytest.raises(rd.ParseError):
        collect(rd.DataLoader(str(path), label="id", on_error="skip", max_errors=1, mode="stream"))


def test_empty_and_header_only_files(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("a,b,id\n")
    for mode in ("memory", "stream"):
        loader = rd.DataLoader(str(path), label="id", mode=mode)
        assert len(loader) == 0
        assert list(loader) == []


def test_state_is_refused_when_a_file_changed(tmp_path):
    path = tmp_path / "d.csv"
    write_csv(path, n=100)
    loader = rd.DataLoader(str(path), label="id", batch_size=10, shuffle=True)
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    assert state["fingerprint"]["files"][0][0].endswith("d.csv")
    write_csv(path, n=101)
    with pytest.raises(ValueError, match="other data"):
        rd.DataLoader(str(path), label="id", batch_size=10, shuffle=True).load_state_dict(state)


def test_parquet_memory_and_stream_agree(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    features, ids = write_csv(tmp_path / "x.csv", n=3000)
    path = tmp_path / "x.parquet"
    columns = [pa.array(features[:, i]) for i in range(4)] + [pa.array(ids)]
    table = pa.table(columns, names=["x0", "x1", "x2", "x3", "id"])
    pq.write_table(table, str(path), row_group_size=500)
    a = rd.DataLoader(str(path), label="id", batch_size=128, mode="memory")
    b = rd.DataLoader(str(path), label="id", batch_size=128, mode="stream")
    Xa, ya = collect(a)
    Xb, yb = collect(b)
    assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    assert ya.tolist() == ids.tolist()
    assert torch.equal(Xa, torch.from_numpy(features))


def test_arrow_table_and_features_only(tmp_path):
    pa = pytest.importorskip("pyarrow")
    features, ids = write_csv(tmp_path / "x.csv", n=300)
    columns = [pa.array(features[:, i]) for i in range(4)] + [pa.array(ids)]
    table = pa.table(columns, names=["x0", "x1", "x2", "x3", "id"])
    X, y = collect(rd.DataLoader(table, label="id", batch_size=64, shuffle=True, seed=2))
    order = y.argsort()
    assert torch.equal(y[order], torch.from_numpy(ids))
    assert torch.equal(X[order], torch.from_numpy(features))
    # Without a label, batches are the features alone (every column here, id included).
    batches = list(rd.DataLoader(str(tmp_path / "x.csv"), batch_size=100))
    assert all(isinstance(b, torch.Tensor) for b in batches)
    assert torch.cat(batches).shape == (300, 5)


def test_file_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError):
        rd.DataLoader(str(tmp_path / "missing.csv"))
    with pytest.raises(FileNotFoundError):
        rd.DataLoader(str(tmp_path / "nothing*.csv"))
    with pytest.raises(ValueError, match="format"):
        rd.DataLoader(str(tmp_path / "data.xyz"))
