"""DataLoader over files (through the readers' open_source): content equal to pandas, memory
and stream modes, several files, errors raised at their batch with file and line, skipped
rows in the stats, empty files, and states refused when a file changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import rusttorch_data as rd

pytest.importorskip("rusttorch_data._readers", reason="the file readers are not merged yet")


def write_csv(path, n=1000, seed=0, features=4):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame(
        rng.standard_normal((n, features)).astype(np.float32),
        columns=[f"x{i}" for i in range(features)],
    )
    df["id"] = np.arange(n) + seed * 1_000_000
    df.to_csv(path, index=False)
    return df


def collect(loader):
    feats, labels = [], []
    for f, y in loader:
        feats.append(f)
        labels.append(y)
    return torch.cat(feats), torch.cat(labels)


@pytest.mark.parametrize("mode", ["memory", "stream"])
def test_csv_content_matches_pandas(tmp_path, mode):
    path = tmp_path / "a.csv"
    df = write_csv(path)
    loader = rd.DataLoader(str(path), label="id", batch_size=64, mode=mode)
    assert loader.mode == mode
    X, y = collect(loader)
    assert y.tolist() == df["id"].tolist()
    expected = torch.from_numpy(df.drop(columns="id").to_numpy(np.float32))
    assert torch.equal(X, expected)
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
    loader = rd.DataLoader(str(path), label="id", batch_size=100, mode="stream")
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
    df = write_csv(tmp_path / "x.csv", n=3000)
    path = tmp_path / "x.parquet"
    pq.write_table(pa.Table.from_pandas(df), str(path), row_group_size=500)
    a = rd.DataLoader(str(path), label="id", batch_size=128, mode="memory")
    b = rd.DataLoader(str(path), label="id", batch_size=128, mode="stream")
    Xa, ya = collect(a)
    Xb, yb = collect(b)
    assert torch.equal(Xa, Xb) and torch.equal(ya, yb)
    assert ya.tolist() == df["id"].tolist()
