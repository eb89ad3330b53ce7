"""Bad input: every failure is a clear exception naming the file (and line, column, text),
never a crash or a silent wrong answer; on_error="skip" reports what it dropped."""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.feather as pf
import pyarrow.parquet as pq
import pytest
import torch

import rusttorch_data as rd


def test_ragged_row_names_file_line_and_counts(write_text) -> None:
    path = write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(rd.ParseError) as info:
        rd.read_csv(path)
    message = str(info.value)
    assert f"{path}:3" in message and "expected 3 fields, found 2" in message
    path = write_text("a,b\n1,2\n\n3,4,5\n", name="more.csv")
    with pytest.raises(rd.ParseError, match=r"more.csv:4: expected 2 fields, found 3"):
        rd.read_csv(path)


def test_unparsable_number_names_line_column_and_text(write_text) -> None:
    path = write_text('a,b\n1,2\n3,"4x"\n')
    with pytest.raises(rd.ParseError) as info:
        rd.read_csv(path)
    message = str(info.value)
    assert f"{path}:3" in message and '"b"' in message and "4x" in message


def test_fractional_integer_label_is_an_error(write_text) -> None:
    path = write_text("a,y\n1,2\n3,1.5\n")
    with pytest.raises(
        rd.ParseError, match=r":3: column \"y\": cannot parse \"1.5\" as an integer label"
    ):
        rd.read_csv(path, label="y")


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError) as info:
        rd.read_csv(missing)
    assert str(missing) in str(info.value)
    with pytest.raises(FileNotFoundError):
        rd.read_parquet(tmp_path / "nope.parquet")
    with pytest.raises(FileNotFoundError, match="no file matches"):
        rd.read_csv(str(tmp_path / "*.csv"))


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "dir.csv"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as info:
        rd.read_csv(folder)
    assert str(folder) in str(info.value)


def test_permission_denied(write_text, as_root: bool) -> None:
    if as_root:
        pytest.skip("root ignores file permissions")
    path = write_text("a\n1\n")
    os.chmod(path, 0)
    try:
        with pytest.raises(PermissionError) as info:
            rd.read_csv(path)
        assert str(path) in str(info.value)
    finally:
        os.chmod(path, 0o644)


@pytest.mark.parametrize("text", ["", "a,b,y\n", "\ufeff", "# only a comment\n"])
def test_empty_file_or_header_only_is_an_empty_dataset(write_text, text: str) -> None:
    path = write_text(text)
    # An empty file has no columns: nothing can be selected from it.
    if text.startswith("a,"):
        X, y = rd.read_csv(path, label="y", comment="#")
        assert X.shape[0] == 0 and y.shape == (0,)
        kwargs = {"label": "y"}
    else:
        assert rd.read_csv(path, comment="#").shape == (0, 0)
        kwargs = {}
    assert rd.open_source(path, comment="#", **kwargs).known_rows == 0


@pytest.mark.parametrize("text", ["", "\ufeff", "# only a comment\n"])
@pytest.mark.parametrize(
    "kwargs", [{"label": "zz"}, {"features": [7]}, {"features": ["a"]}, {"label": 0}]
)
def test_zero_column_file_invents_no_columns(write_text, text: str, kwargs: dict) -> None:
    # Like a header-only file asked for a column it lacks, not an empty (0, 1) tensor.
    path = write_text(text)
    with pytest.raises(rd.SchemaError):
        rd.read_csv(path, comment="#", **kwargs)
    with pytest.raises(rd.SchemaError):
        rd.open_source(path, comment="#", **kwargs)


def test_zero_column_parquet_and_arrow_invent_no_columns(tmp_path: Path) -> None:
    empty = pa.table({})
    pq.write_table(empty, tmp_path / "e.parquet")
    pf.write_feather(empty, tmp_path / "e.arrow")
    with pytest.raises(rd.SchemaError):
        rd.read_parquet(tmp_path / "e.parquet", label="zz")
    with pytest.raises(rd.SchemaError):
        rd.read_ipc(tmp_path / "e.arrow", features=[0])
    with pytest.raises(rd.SchemaError):
        rd.read_arrow(empty, label="y")
    assert rd.read_parquet(tmp_path / "e.parquet").shape == (0, 0)


def test_carriage_return_only_line_endings_are_refused(write_text) -> None:
    # pandas (like Python's csv module) ends records at a bare \r too; this reader ends them
    # at \n only, so such a file is a clear error instead of a silent empty dataset.
    data = b"a,b\r1,2\r3,4\r"
    assert pd.read_csv(io.BytesIO(data)).shape == (2, 2)
    path = write_text(data, name="mac.csv")
    with pytest.raises(ValueError, match=r"mac\.csv:1: .*carriage return"):
        rd.read_csv(path)
    # CRLF and a \r inside a quoted header field are still read, as pandas reads them.
    crlf = b'a,"b\rc"\r\n1,2\r\n3,4\r\n'
    path = write_text(crlf, name="crlf.csv")
    expected = pd.read_csv(io.BytesIO(crlf))
    assert rd.open_source(path).feature_names == list(expected.columns)
    assert rd.read_csv(path).tolist() == expected.to_numpy(dtype="float32").tolist()


def test_invalid_utf8_in_header(write_text) -> None:
    path = write_text(b"a,\xff\xfe\n1,2\n")
    with pytest.raises(rd.ParseError, match=r":1: invalid UTF-8"):
        rd.read_csv(path)


def test_truncated_gzip_names_the_file(write_text) -> None:
    whole = gzip.compress(("a,b\n" + "1,2\n" * 50000).encode())
    path = write_text(whole[: len(whole) // 2], name="cut.csv.gz")
    with pytest.raises(ValueError) as info:
        rd.read_csv(path)
    assert "cut.csv.gz" in str(info.value) and "gzip" in str(info.value)


def test_corrupt_parquet_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"a": np.arange(100.0)}), path)
    data = path.read_bytes()
    path.write_bytes(data[:20] + b"\x00" * 40 + data[60:])
    with pytest.raises(ValueError) as info:
        rd.read_parquet(path)
    assert "bad.parquet" in str(info.value)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    with pytest.raises(ValueError, match=r"garbage\.parquet"):
        rd.read_parquet(garbage)


def feather_bytes(table: pa.Table, tmp_path: Path, **kwargs) -> bytearray:
    pf.write_feather(table, tmp_path / "good.arrow", **kwargs)
    return bytearray((tmp_path / "good.arrow").read_bytes())


def test_corrupt_feather_footer_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    data = feather_bytes(pa.table({"x": np.arange(10.0), "y": np.arange(10)}), tmp_path)
    data[-200:-184] = bytes(16)  # arrow-ipc unwraps a None on this footer
    path = tmp_path / "bad_footer.arrow"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"bad_footer\.arrow"):
        rd.read_ipc(path, label="y")


def test_bad_feather_buffer_length_is_a_value_error_naming_the_file(tmp_path: Path) -> None:
    data = feather_bytes(pa.table({"x": np.arange(10.0)}), tmp_path, compression="uncompressed")
    # 80 (10 float64) is written three times: in the batch message's own body length, in
    # its data buffer's length, and in the footer. A buffer past the body made arrow-ipc
    # panic in a worker thread, naming no file.
    eighty = (80).to_bytes(8, "little")
    at = data.find(eighty, data.find(eighty) + 1)
    data[at : at + 8] = (10**6).to_bytes(8, "little")
    path = tmp_path / "bad_buffer.arrow"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=r"bad_buffer\.arrow"):
        rd.read_ipc(path)
    with pytest.raises(ValueError, match=r"bad_buffer\.arrow"):
        list(rd.DataLoader(str(path), mode="stream"))


QUIET_CHILD = """
import sys
import rusttorch_data as rd
for path in sys.argv[1:]:
    for read in (rd.read_ipc, lambda p: list(rd.DataLoader(p, mode="stream"))):
        try:
            read(path)
        except ValueError as e:
            print("ValueError", e)
"""


def test_caught_decoder_panics_print_nothing(tmp_path: Path) -> None:
    # The panics arrow-ipc raises on the two files above are caught and reported as a
    # ValueError; the panic hook's "thread ... panicked at" must not reach stderr beside it.
    footer = feather_bytes(pa.table({"x": np.arange(10.0), "y": np.arange(10)}), tmp_path)
    footer[-200:-184] = bytes(16)
    (tmp_path / "bad_footer.arrow").write_bytes(footer)
    buffer = feather_bytes(pa.table({"x": np.arange(10.0)}), tmp_path, compression="uncompressed")
    eighty = (80).to_bytes(8, "little")
    at = buffer.find(eighty, buffer.find(eighty) + 1)
    buffer[at : at + 8] = (10**6).to_bytes(8, "little")
    (tmp_path / "bad_buffer.arrow").write_bytes(buffer)
    paths = [str(tmp_path / "bad_footer.arrow"), str(tmp_path / "bad_buffer.arrow")]
    done = subprocess.run(
        [sys.executable, "-c", QUIET_CHILD, *paths], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("ValueError") == 4, done.stdout
    assert "arrow-ipc failed on it" in done.stdout or "damaged" in done.stdout, done.stdout
    assert "panicked" not in done.stderr, done.stderr[-2000:]


ABORT_PRONE = """
import sys
import rusttorch_data as rd
try:
    rd.read_ipc(sys.argv[1])
except ValueError as e:
    print("ValueError", e)
"""


def read_ipc_in_subprocess(path: Path) -> str:
    """Runs read_ipc in a child: a failed huge allocation aborts the whole process."""
    done = subprocess.run(
        [sys.executable, "-c", ABORT_PRONE, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_damaged_uncompressed_length_prefix_does_not_abort(tmp_path: Path, compression) -> None:
    data = feather_bytes(pa.table({"x": np.random.rand(100)}), tmp_path, compression=compression)
    at = data.find((800).to_bytes(8, "little"))  # the buffer's uncompressed length prefix
    data[at + 7] = 4  # now about 2.9e17 bytes
    path = tmp_path / "bad_prefix.arrow"
    path.write_bytes(data)
    out = read_ipc_in_subprocess(path)
    assert out.startswith("ValueError") and "bad_prefix.arrow" in out, out


@pytest.mark.parametrize("compression", ["lz4", "zstd"])
def test_damaged_dictionary_batch_length_prefix_does_not_abort(tmp_path: Path, compression) -> None:
    # arrow-ipc decodes every dictionary batch when it opens a file, allocating the
    # uncompressed length each buffer declares.
    values = pa.array(np.random.rand(100))
    column = pa.DictionaryArray.from_arrays(pa.array(np.arange(100, dtype=np.int32)), values)
    table = pa.table({"x": column, "y": np.arange(100.0)})
    data = feather_bytes(table, tmp_path, compression=compression)
    # Intact, the file reads (the check passes a sound dictionary batch).
    X = rd.read_ipc(tmp_path / "good.arrow", features=["x"])
    assert torch.equal(X[:, 0], torch.from_numpy(values.to_numpy().astype(np.float32)))
    # The dictionary's 800 bytes of values; dictionary batches come before record batches.
    at = data.find((800).to_bytes(8, "little"))
    data[at + 7] = 4  # now about 2.9e17 bytes
    path = tmp_path / "bad_dictionary.arrow"
    path.write_bytes(data)
    out = read_ipc_in_subprocess(path)
    assert out.startswith("ValueError") and "bad_dictionary.arrow" in out, out
    assert "dictionary batch" in out, out


def test_damaged_body_length_in_the_footer_does_not_abort(tmp_path: Path) -> None:
    data = feather_bytes(pa.table({"x": np.arange(10.0)}), tmp_path, compression="uncompressed")
    # The footer's Block(offset, metaDataLength, bodyLength=80) is the last 80 in the file.
    at = data.rfind((80).to_bytes(8, "little"))
    data[at : at + 8] = (2**40).to_bytes(8, "little")
    path = tmp_path / "bad_block.arrow"
    path.write_bytes(data)
    out = read_ipc_in_subprocess(path)
    assert out.startswith("ValueError") and "bad_block.arrow" in out, out


def footer_blocks(data: bytearray) -> list[int]:
    """Positions of the footer's Block structs (offset i64, metaDataLength i32, padding,
    bodyLength i64), ordered by the offset they point to. A struct is recognized by
    pointing at a message: the continuation marker, then a length that metaDataLength
    covers."""
    footer_len = int.from_bytes(data[-10:-6], "little")
    start, found = len(data) - 10 - footer_len, []
    for p in range(start, len(data) - 10 - 24 + 1, 8):
        off, meta_len, _pad, body_len = struct.unpack_from("<qi4sq", data, p)
        if 0 < off < start and meta_len >= 8 and off + meta_len + body_len <= start:
            marker, length = struct.unpack_from("<Ii", data, off)
            if marker == 0xFFFFFFFF and meta_len == 8 + length:
                found.append((off, p))
    return [p for _, p in sorted(found)]


def dictionary_table(rows: int = 437) -> pa.Table:
    kinds = pa.array([f"k{i % 7}" for i in range(rows)]).dictionary_encode()
    return pa.table({"kind": kinds, "x": np.arange(rows, dtype=np.float64)})


@pytest.mark.parametrize("which", ["dictionary batch", "record batch"])
def test_damaged_metadata_length_does_not_abort(tmp_path: Path, which: str) -> None:
    # A metaDataLength of 0 in the footer (the block still inside the file): arrow-ipc parses
    # the message from the whole block and reads the body from the message's own bytes, where
    # a garbage "uncompressed length" made it allocate hundreds of GB.
    data = feather_bytes(dictionary_table(), tmp_path, compression="lz4", chunksize=100)
    blocks = footer_blocks(data)
    assert len(blocks) == 6  # one dictionary batch, then five record batches
    at = blocks[0] if which == "dictionary batch" else blocks[3]
    struct.pack_into("<i", data, at + 8, 0)
    path = tmp_path / "bad_meta.arrow"
    path.write_bytes(data)
    out = read_ipc_in_subprocess(path)
    assert out.startswith("ValueError") and "bad_meta.arrow" in out, out
    assert f"metadata of {which}" in out or "metadata of a" in out, out


def test_damaged_row_count_is_refused_for_the_whole_file(tmp_path: Path) -> None:
    # A negative row count in the last batch used to send every batch of the file past our
    # checks (to arrow-ipc alone), so a damaged length prefix in another batch aborted.
    table = pa.table({"x": np.random.rand(2000)})
    data = feather_bytes(table, tmp_path, compression="zstd", chunksize=437)
    blocks = footer_blocks(data)
    off, meta_len = struct.unpack_from("<qi", data, blocks[-1])
    count = (2000 - 4 * 437).to_bytes(8, "little")
    meta = bytes(data[off : off + meta_len])
    assert count in meta
    data[off : off + meta_len] = meta.replace(count, (-1).to_bytes(8, "little", signed=True))
    prefix = (437 * 8).to_bytes(8, "little")  # the first batch's uncompressed length
    at = data.find(prefix, struct.unpack_from("<q", data, blocks[0])[0])
    data[at + 7] = 4
    path = tmp_path / "bad_rows.arrow"
    path.write_bytes(data)
    out = read_ipc_in_subprocess(path)
    assert out.startswith("ValueError") and "bad_rows.arrow" in out, out


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux's /proc/self/io")
def test_unselected_dictionaries_are_not_decoded_again(tmp_path: Path) -> None:
    # A ~6 MB dictionary column the reader does not select: arrow-ipc's FileReader reads it
    # once when the file opens; the decoders a source keeps hold only the dictionaries of
    # their columns, so it is not read (and kept) a second time.
    rows = 100_000
    words = pa.array([f"{k:08d}-{'w' * 40}" for k in range(rows)]).dictionary_encode()
    table = pa.table({"kind": words, "x": np.arange(rows, dtype=np.float64)})
    path = tmp_path / "dict.arrow"
    pf.write_feather(table, path, compression="uncompressed", chunksize=20_000)
    size = path.stat().st_size

    def rchar() -> int:
        lines = Path("/proc/self/io").read_text().splitlines()
        return next(int(v.split()[1]) for v in lines if v.startswith("rchar:"))

    before = rchar()
    X = rd.read_ipc(path, features=["x"])
    read = rchar() - before
    assert torch.equal(X[:, 0], torch.arange(rows, dtype=torch.float32))
    assert read < 1.4 * size, f"read {read:,} bytes of a {size:,}-byte file"
    # Selected, the column's codes still come out (its dictionary decoded for it).
    X = rd.read_ipc(path, features=["kind"], categorical="codes")
    assert torch.equal(X[:, 0], torch.arange(rows, dtype=torch.float32))


def test_csv_headers_differ_across_files(write_text) -> None:
    first = write_text("a,b\n1,2\n", name="one.csv")
    second = write_text("a,c\n1,2\n", name="two.csv")
    with pytest.raises(rd.SchemaError) as info:
        rd.read_csv([first, second])
    message = str(info.value)
    assert "one.csv" in message and "two.csv" in message and '"c"' in message


def test_parquet_schemas_differ_across_files(tmp_path: Path) -> None:
    pq.write_table(pa.table({"a": [1.0], "b": [2.0]}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": [1.0], "b": pa.array([2], pa.int32())}), tmp_path / "two.parquet")
    with pytest.raises(rd.SchemaError) as info:
        rd.read_parquet([tmp_path / "one.parquet", tmp_path / "two.parquet"])
    message = str(info.value)
    assert "one.parquet" in message and "two.parquet" in message and '"b"' in message


def test_missing_label_column_lists_the_columns(write_text) -> None:
    path = write_text("a,b\n1,2\n")
    with pytest.raises(rd.SchemaError) as info:
        rd.read_csv(path, label="target")
    assert '"target"' in str(info.value) and '"a", "b"' in str(info.value)
    with pytest.raises(rd.SchemaError, match="out of range"):
        rd.read_csv(path, features=[5])


def test_missing_value_policies(write_text) -> None:
    path = write_text("a,b\n1,\nNA,2\n")
    with pytest.raises(rd.ParseError, match=r":2: column \"b\" has a missing value"):
        rd.read_csv(path)
    X = rd.read_csv(path, missing="nan")
    assert X[0, 1].isnan() and X[1, 0].isnan()
    assert rd.read_csv(path, missing=7).tolist() == [[1.0, 7.0], [7.0, 2.0]]
    label_path = write_text("a,y\n1,\n", name="l.csv")
    with pytest.raises(rd.ParseError):
        rd.read_csv(label_path, label="y", missing="nan")
    with pytest.raises(ValueError, match="int64"):
        rd.read_csv(label_path, label="y", missing=0.5)


def test_skip_counts_reports_and_honours_max_errors(write_text) -> None:
    path = write_text("a,y\n1,1\nx,2\n3,3\n4\n5,5\n6,6.5\n")
    with pytest.warns(rd.SkippedRowsWarning) as record:
        X, y = rd.read_csv(path, label="y", on_error="skip", chunk_bytes=3)
    assert X.flatten().tolist() == [1.0, 3.0, 5.0] and y.tolist() == [1, 3, 5]
    warning = record[0].message
    assert isinstance(warning, rd.SkippedRowsWarning)
    assert [line for _, line, _ in warning.skipped] == [3, 5, 7]
    assert "skipped 3 rows" in str(warning) and f"{path}:3" in str(warning)
    with pytest.raises(rd.ParseError, match="more than max_errors=2"):
        rd.read_csv(path, label="y", on_error="skip", max_errors=2)
    with pytest.warns(rd.SkippedRowsWarning):
        rd.read_csv(path, label="y", on_error="skip", max_errors=3)


def test_strings_are_a_clear_error(tmp_path: Path, write_text) -> None:
    path = tmp_path / "s.parquet"
    pq.write_table(pa.table({"a": [1.0], "s": ["x"]}), path)
    with pytest.raises(TypeError, match='"s"'):
        rd.read_parquet(path)
    assert rd.read_parquet(path, features=["a"]).tolist() == [[1.0]]
    with pytest.raises(rd.ParseError, match='"s"'):
        rd.read_csv(write_text("a,s\n1,x\n"))


def test_bad_arguments(write_text) -> None:
    path = write_text("a\n1\n")
    with pytest.raises(ValueError, match="delimiter"):
        rd.read_csv(path, delimiter=";;")
    with pytest.raises(ValueError, match="on_error"):
        rd.read_csv(path, on_error="ignore")
    with pytest.raises(ValueError, match="feature_dtype"):
        rd.read_csv(path, feature_dtype=torch.int64)
    with pytest.raises(ValueError, match="missing"):
        rd.read_csv(path, missing="zero")


def test_unterminated_quote(write_text) -> None:
    path = write_text('a,b\n1,"2\n')
    with pytest.raises(ValueError, match="not closed"):
        rd.read_csv(path)
