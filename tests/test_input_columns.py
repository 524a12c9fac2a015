"""Columns and files from other people's writers, through the ``rebalance`` command line: Arrow types
counted correctly or refused clearly, duplicated CSV headers, ``--format`` from the file name and a file
whose content is another format, and a mistyped label or weight key stopping the job at its first batch."""

from __future__ import annotations

import decimal
import gzip
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _pipelines_data import example, write_csv, write_parquet, write_tfrecords

from pipelines import cli

LABELS = np.arange(600) % 3
COUNTS = np.bincount(LABELS).tolist()


def rebalance(*argv) -> int:
    return cli.main([str(a) for a in argv])


def stats(tmp_path, data, *flags) -> dict:
    """Runs ``rebalance stats`` and returns the table it wrote, as JSON."""
    out = tmp_path / "t.json"
    assert rebalance("stats", "--input", data, "--output", out, "--quiet", *flags) == 0
    return json.loads(out.read_text())


def refused(tmp_path, capsys, data, *flags) -> str:
    """Runs ``rebalance stats``, expects a refusal and no table; returns the message."""
    out = tmp_path / "t.json"
    assert rebalance("stats", "--input", data, "--output", out, "--quiet", *flags) == 1
    assert not out.exists()
    return capsys.readouterr().err


# ------------------------------------------------------------------ Arrow types
@pytest.mark.parametrize("column, names", [
    (pd.Categorical.from_codes(LABELS, ["cat", "dog", "eel"]), ["cat", "dog", "eel"]),  # string dictionary
    (pa.DictionaryArray.from_arrays(pa.array(2 - LABELS, pa.int8()), pa.array([2, 1, 0])), None),  # int values
    (pa.array([str(v) for v in LABELS], pa.large_string()), ["0", "1", "2"]),
    (pa.array([decimal.Decimal(int(v)) for v in LABELS], pa.decimal128(5, 0)), None),
    (pa.array(LABELS.astype(np.uint64)), None),
    (pa.array(LABELS.astype(np.float16)), None),
])
def test_parquet_label_types_are_counted(tmp_path, column, names):
    path = tmp_path / "d.parquet"
    if isinstance(column, pd.Categorical):
        pd.DataFrame({"y": column}).to_parquet(path)  # pandas writes a dictionary column
        assert pa.types.is_dictionary(pq.read_schema(path).field("y").type)
    else:
        pq.write_table(pa.table({"y": column}), path)
    table = stats(tmp_path, path, "--label", "y")
    assert table["counts"] == COUNTS and table["class_names"] == names


def test_a_category_column_with_label_dtype_string(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"y": pd.Categorical.from_codes(LABELS, ["b", "a", "c"])}).to_parquet(path)
    table = stats(tmp_path, path, "--label", "y", "--label_dtype", "string")
    assert dict(zip(table["class_names"], table["counts"], strict=True)) == {"b": 200, "a": 200, "c": 200}


def test_bool_labels_are_classes_0_and_1(tmp_path):
    path = write_parquet(tmp_path / "d.parquet", {"y": LABELS == 1})
    assert stats(tmp_path, path, "--label", "y", "--task", "binary")["counts"] == [400, 200]


def test_uint64_label_beyond_int64_is_refused_naming_column_and_value(tmp_path, capsys):
    values = LABELS.astype(np.uint64)
    values[5] = 2**63 + 7
    path = write_parquet(tmp_path / "d.parquet", {"y": values})
    err = refused(tmp_path, capsys, path, "--label", "y")
    assert "`label`. Expected class ids within the int64 range" in err and str(2**63 + 7) in err
    assert "'y'" in err and "d.parquet" in err


@pytest.mark.parametrize("column, shown", [
    (pa.array(np.arange(600).astype("datetime64[s]")), "timestamp["),
    (pa.array([[[int(v)]] for v in LABELS]), "a list of list<"),
    (pa.array([{"a": int(v)} for v in LABELS]), "struct<a: int64>"),
])
def test_columns_that_hold_no_class_ids_are_refused_naming_their_type(tmp_path, capsys, column, shown):
    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"y": column}), path)
    err = refused(tmp_path, capsys, path, "--label", "y", "--max_bad_fraction", "1")  # not skipped as bad
    assert "`label`. Expected a column of ints, whole-number floats or strings" in err
    assert f"holds {shown}" in err and "d.parquet" in err


def test_float_labels_with_fractions_are_refused(tmp_path, capsys):
    path = write_parquet(tmp_path / "d.parquet", {"y": np.where(LABELS == 2, 1.5, LABELS.astype(float))})
    assert "1.5" in refused(tmp_path, capsys, path, "--label", "y")


# ------------------------------------------------------------------ CSV headers
@pytest.mark.parametrize("header, flags, column", [
    ("label,x,label", [], "label"),
    ("label,w,w", ["--weight", "w"], "w"),
])
def test_a_duplicated_csv_header_is_refused_naming_file_and_column(tmp_path, capsys, header, flags, column):
    path = tmp_path / "d.csv"
    path.write_text(header + "\n" + "".join(f"{v},1,{v}\n" for v in LABELS))
    err = refused(tmp_path, capsys, path, *flags)
    assert f"The header of '{path}' names {column!r} 2 times" in err


def test_a_latin_1_csv_with_ascii_labels_is_counted(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes(("label,city\n" + "".join(f"{v},M\u00fcnchen\n" for v in LABELS)).encode("latin-1"))
    assert stats(tmp_path, path, "--label", "label")["counts"] == COUNTS


def test_a_header_longer_than_64_kib_finds_its_last_column(tmp_path):
    path = tmp_path / "d.csv"
    wide = [f"feature_{i:05d}" for i in range(6000)]  # about 80 KiB of header before the label
    path.write_text(",".join(wide + ["label"]) + "\n" + "".join("0," * len(wide) + f"{v}\n" for v in LABELS))
    assert stats(tmp_path, path, "--label", "label", "--format", "csv")["counts"] == COUNTS


# ------------------------------------------------------------------ --format from the name, content mismatch
def _data(tmp_path, fmt: str, name: str):
    path = tmp_path / name
    if fmt == "tfrecord":
        (path.parent).mkdir(parents=True, exist_ok=True)
        records = [example(label=int(v)) for v in LABELS]
        import tensorflow as tf

        options = tf.io.TFRecordOptions(compression_type="GZIP" if name.endswith(".gz") else "")
        with tf.io.TFRecordWriter(str(path), options) as writer:
            for record in records:
                writer.write(record)
    elif fmt == "csv":
        write_csv(path, {"label": LABELS}, gzip_file=name.endswith(".gz"))
    else:
        write_parquet(path, {"label": LABELS})
    return path


@pytest.mark.parametrize("fmt, name", [
    ("parquet", "d.parquet"), ("csv", "d.csv"), ("csv", "d.csv.gz"), ("tfrecord", "d.tfrecord"),
    ("tfrecord", "d.tfrecord.gz"), ("tfrecord", "d.tfrecords"),
])
def test_the_format_is_inferred_from_the_file_name(tmp_path, fmt, name):
    assert stats(tmp_path, _data(tmp_path, fmt, name))["counts"] == COUNTS


def test_a_directory_of_parquet_files_is_read_as_parquet(tmp_path):
    _data(tmp_path / "dir", "parquet", "a.parquet")
    assert stats(tmp_path, tmp_path / "dir")["counts"] == COUNTS


def test_names_of_several_formats_are_refused(tmp_path, capsys):
    a, b = _data(tmp_path, "csv", "a.csv"), _data(tmp_path, "parquet", "b.parquet")
    err = refused(tmp_path, capsys, f"{a},{b}")
    assert "`input`. Expected files of one format (or pass --format)" in err and "a.csv" in err and "b.parquet" in err


@pytest.mark.parametrize("real, name, given, hint", [
    ("parquet", "d.data", None, "looks like a Parquet file; pass --format parquet"),  # no extension: TFRecord
    ("csv", "d.data", None, "looks like a CSV file; pass --format csv"),
    ("csv", "d.csv.gz", "tfrecord", "looks like a CSV file; pass --format csv"),
    ("tfrecord", "d.tfrecord", "csv", "looks like a TFRecord file; pass --format tfrecord"),
    ("parquet", "d.parquet", "csv", "looks like a Parquet file; pass --format parquet"),
    ("csv", "d.csv", "parquet", "looks like a CSV file; pass --format csv"),
])
def test_content_of_another_format_is_refused_naming_file_and_format(tmp_path, capsys, real, name, given, hint):
    path = _data(tmp_path, real, name)
    err = refused(tmp_path, capsys, path, *(["--format", given] if given else []))
    assert f"`format`. Expected the format of '{path}'" in err and hint in err
    assert f"Received: format='{given or 'tfrecord'}'" in err


# ------------------------------------------------------------------ a mistyped key
def test_a_tfrecord_label_key_no_record_has_stops_at_the_first_batch(tmp_path, capsys):
    paths = write_tfrecords(tmp_path / "d", [example(label=int(v), weight=1.0) for v in LABELS], shards=1)
    with open(paths[0], "ab") as handle:
        handle.write(b"\x07" * 5)  # a torn tail: a job reading to the end would fail on it instead
    err = refused(tmp_path, capsys, paths[0], "--label", "lable")
    assert "`label`. Expected a feature key or column the input has. Received: label='lable'" in err
    assert "['label', 'weight']" in err and "did you mean 'label'?" in err and "part-00000" in err


def test_a_tfrecord_weight_key_no_record_has_is_refused(tmp_path, capsys):
    paths = write_tfrecords(tmp_path / "d", [example(label=int(v), weight=1.0) for v in LABELS], shards=1)
    err = refused(tmp_path, capsys, paths[0], "--weight", "wieght")
    assert "Received: weight='wieght'" in err and "did you mean 'weight'?" in err


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_column_the_file_does_not_have_is_refused_with_the_columns_it_has(tmp_path, capsys, fmt):
    path = (write_csv if fmt == "csv" else write_parquet)(tmp_path / f"d.{fmt}", {"species": LABELS, "w": LABELS})
    err = refused(tmp_path, capsys, path, "--label", "specie")
    assert "Received: label='specie'" in err and "['species', 'w']" in err and "did you mean 'species'?" in err
    far = refused(tmp_path, capsys, path, "--label", "target_xyz")
    assert "['species', 'w']" in far and "did you mean" not in far


def test_the_sample_job_stops_on_a_mistyped_key_too(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", {"species": LABELS})
    assert rebalance("sample", "--input", path, "--label", "specie", "--max_ratio", "1", "--output",
                     tmp_path / "out", "--quiet") == 1
    assert "did you mean 'species'?" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.csv"]


def test_gzip_csv_with_a_mistyped_key(tmp_path, capsys):
    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"species\n" + b"".join(b"%d\n" % v for v in LABELS)))
    assert "did you mean 'species'?" in refused(tmp_path, capsys, path, "--label", "specis")
