"""read_csv against pandas.read_csv (the reference) on files that exercise every CSV feature,
hypothesis round trips, exact floats against Python's float(), and the same result for every
thread count and chunk size."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rusttorch_data as rd


def pandas_reference(path: Path, label: str | None = None, dtype=np.float32, **kwargs):
    df = pd.read_csv(path, **kwargs)
    if label is None:
        return torch.from_numpy(df.to_numpy(dtype=dtype)), None
    x = df.drop(columns=[label]).to_numpy(dtype=dtype)
    return torch.from_numpy(x), torch.from_numpy(df[label].to_numpy(dtype=np.int64))


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
    assert torch.equal(a.isnan(), b.isnan())
    assert torch.equal(torch.nan_to_num(a, nan=0.0), torch.nan_to_num(b, nan=0.0))


def test_generated_frame_matches_pandas(tmp_path: Path, threads: int) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.standard_normal((3000, 7)).astype(np.float32), columns=list("abcdefg"))
    df["y"] = rng.integers(-5, 5, len(df))
    path = tmp_path / "gen.csv"
    df.to_csv(path, index=False)
    X, y = rd.read_csv(path, label="y", chunk_bytes=4096)
    rx, ry = pandas_reference(path, "y")
    assert_same(X, rx)
    assert torch.equal(y, ry)


FEATURES_CSV = (
    "\ufeff# a comment before the header\n"
    'a,"b,with comma","c ""quoted"""\r\n'
    "1.5,2,3\r\n"
    '"4","5.25e1",-6\n'
    "\n"
    "# a comment line\n"
    '7,"8",NA\n'
    ",10,nan\n"
    '"11",12,"13"\n'
    "1e-310,-0.0,inf\n"
)


def test_every_feature_matches_pandas(write_text, threads: int) -> None:
    path = write_text(FEATURES_CSV)
    X = rd.read_csv(path, comment="#", missing="nan", chunk_bytes=5)
    ref = pd.read_csv(path, comment="#", encoding="utf-8-sig").to_numpy(np.float32)
    assert_same(X, torch.from_numpy(ref))
    names = rd.open_source(path, comment="#").feature_names
    assert names == ["a", "b,with comma", 'c "quoted"']


def test_quoted_newlines_tsv_and_no_header(write_text) -> None:
    text = '1\t"x\ny"\t2\n3\t"\t"\t4\n'
    path = write_text(text, name="d.tsv")
    X = rd.read_csv(path, header=False, features=[0, 2])
    ref = pd.read_csv(path, sep="\t", header=None, usecols=[0, 2]).to_numpy(np.float32)
    assert_same(X, torch.from_numpy(ref))


def test_gzip_equals_plain(write_text, threads: int) -> None:
    rows = "".join(f'{i}.25,"{i}\n",{i % 3}\n' for i in range(2000))
    text = "x,note,y\n" + rows
    plain = write_text(text, name="p.csv")
    packed = write_text(text, name="p.csv.gz", gz=True)
    X1, y1 = rd.read_csv(plain, features=["x"], label="y")
    X2, y2 = rd.read_csv(packed, features=["x"], label="y")
    assert torch.equal(X1, X2) and torch.equal(y1, y2)
    ref = pd.read_csv(packed)
    assert_same(X2, torch.from_numpy(ref[["x"]].to_numpy(np.float32)))
    assert y2.tolist() == ref["y"].tolist()


def test_several_files_and_globs_in_sorted_order(write_text, tmp_path: Path) -> None:
    write_text("a,y\n1,0\n2,1\n", name="part-1.csv")
    write_text("a,y\n3,0\n", name="part-0.csv")
    X, _y = rd.read_csv(str(tmp_path / "part-*.csv"), label="y")
    assert X.flatten().tolist() == [3.0, 1.0, 2.0]
    X, _ = rd.read_csv([tmp_path / "part-1.csv", tmp_path / "part-0.csv"], label="y")
    assert X.flatten().tolist() == [1.0, 2.0, 3.0]


def test_same_result_for_every_chunk_size(write_text, threads: int) -> None:
    rng = np.random.default_rng(1)
    lines = ['a,"q",y']
    for i in range(400):
        note = '"' + "".join(rng.choice(list('ab,\n"')) for _ in range(5)).replace('"', '""') + '"'
        lines.append(f"{rng.standard_normal():.6f},{note},{i}")
    path = write_text("\n".join(lines) + "\n")
    reference = rd.read_csv(path, features=["a"], label="y", chunk_bytes=1 << 20)
    for chunk in [1, 2, 3, 7, 64, 1000]:
        X, y = rd.read_csv(path, features=["a"], label="y", chunk_bytes=chunk)
        assert torch.equal(X, reference[0]) and torch.equal(y, reference[1])
    assert reference[1].tolist() == list(range(400))
    ref = pd.read_csv(path)
    assert_same(reference[0], torch.from_numpy(ref[["a"]].to_numpy(np.float32)))


def test_na_values_and_fill(write_text) -> None:
    path = write_text("a,b\n1,-999\nNA,2\n")
    # Like pandas, na_values adds to the default NA strings.
    X = rd.read_csv(path, na_values=["-999"], missing=0.5)
    assert X.tolist() == [[1.0, 0.5], [0.5, 2.0]]
    ref = pd.read_csv(path, na_values=["-999"]).fillna(0.5).to_numpy(np.float32)
    assert X.tolist() == ref.tolist()
    X = rd.read_csv(path, missing=-1)
    assert X.tolist() == [[1.0, -999.0], [-1.0, 2.0]]


def test_label_dtypes_and_several_labels(write_text) -> None:
    path = write_text("a,y1,y2\n1,9223372036854775807,-3\n2,0,4\n")
    X, y = rd.read_csv(path, label=["y1", "y2"])
    assert y.dtype == torch.int64 and y.shape == (2, 2)
    assert y[0, 0].item() == 2**63 - 1
    X, y = rd.read_csv(
        path, label="y2", features=["a"], label_dtype=torch.float64, feature_dtype="float64"
    )
    assert y.dtype == torch.float64 and X.dtype == torch.float64
    assert y.tolist() == [-3.0, 4.0]


FLOAT_TEXT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=True, width=64).map(repr),
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: f"{v:.17e}"),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6).map(
        lambda v: f"{v:.9f}"
    ),
    st.integers(-(10**25), 10**25).map(str),
    st.tuples(st.integers(0, 10**12), st.integers(0, 10**12)).map(lambda t: f"{t[0]}.{t[1]}"),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(FLOAT_TEXT, min_size=1, max_size=40))
def test_float64_equals_python_float(write_text, texts: list[str]) -> None:
    path = write_text("v\n" + "\n".join(texts) + "\n", name="f.csv")
    X = rd.read_csv(path, feature_dtype=torch.float64, chunk_bytes=16)
    got = [struct.pack("<d", v) for v in X.flatten().tolist()]
    expected = [struct.pack("<d", float(t)) for t in texts]
    assert got == expected
    # float32 output: the float64 value rounded to float32, as pandas then .astype(float32).
    X32 = rd.read_csv(path, chunk_bytes=16)
    expected32 = torch.tensor([float(t) for t in texts], dtype=torch.float64).to(torch.float32)
    assert torch.equal(X32.flatten(), expected32)


frames = st.integers(1, 60).flatmap(
    lambda n: st.tuples(
        st.lists(st.floats(allow_nan=True, allow_infinity=False, width=32), min_size=n, max_size=n),
        st.lists(
            st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
            min_size=n,
            max_size=n,
        ),
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n),
    )
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frames, st.sampled_from([1, 13, 4096]))
def test_round_trip_through_pandas(write_text, data, chunk: int) -> None:
    a, b, y = data
    df = pd.DataFrame({"a": np.array(a, dtype=np.float32), "b": b, "y": y})
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    path = write_text(buf.getvalue(), name="rt.csv")
    X, labels = rd.read_csv(
        path, label="y", missing="nan", feature_dtype=torch.float64, chunk_bytes=chunk
    )
    assert labels.tolist() == y
    ref = pd.read_csv(path, float_precision="round_trip")
    assert_same(X, torch.from_numpy(ref[["a", "b"]].to_numpy(np.float64)))


def test_label_list_keeps_its_dimension(write_text) -> None:
    path = write_text("a,y\n1,2\n3,4\n")
    _, y = rd.read_csv(path, label=["y"])
    assert y.shape == (2, 1)
    _, y = rd.read_csv(path, label=1)
    assert y.shape == (2,)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.text(alphabet='01.-e,"\n\r#NA ', max_size=60), st.sampled_from([1, 2, 5, 64]))
def test_any_text_gives_the_same_answer_for_every_chunk_size(
    write_text, text: str, chunk: int
) -> None:
    """Arbitrary text never crashes the reader, and cutting it into tiny chunks never changes
    the outcome: the same tensors, or the same kind of error."""
    path = write_text("a,b\n" + text, name="fuzz.csv")

    def outcome(chunk_bytes: int):
        try:
            X = rd.read_csv(path, comment="#", missing="nan", chunk_bytes=chunk_bytes)
        except ValueError as error:  # ParseError, SchemaError, corrupt input
            return type(error).__name__
        return [[v if v == v else "nan" for v in row] for row in X.tolist()]

    assert outcome(chunk) == outcome(1 << 20)
