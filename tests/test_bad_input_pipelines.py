"""Bad input: each case fails with a message naming the problem and the file,
and never leaves an output file; ``--max_bad_fraction`` skips and reports."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance.table import WeightTable
from pipelines.config import Shard
from pipelines.io.tfrecord_check import check_complete
from pipelines import run_class_stats as run
from pipelines.jobs.stats import main


def fails(tmp_path, match: str, *flags: str) -> None:
    output = tmp_path / "out" / "table.json"
    with pytest.raises(ValueError, match=match):
        run([*flags, "--output", str(output)])
    assert not output.exists()
    assert not list((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def good_records(n=40):
    return [example(label=i % 4) for i in range(n)]


def test_missing_labels_fail_naming_counter_file_and_count(tmp_path):
    records = good_records() + [example(other=1)] * 3
    paths = write_tfrecords(tmp_path / "d", records, shards=1)
    fails(tmp_path, rf"bad_missing_label: 3 record\(s\), e\.g\. in '{re.escape(paths[0])}'",
          "--input", paths[0])


def test_max_bad_fraction_skips_and_counts_only_good_records(tmp_path, capsys):
    records = good_records() + [example(other=1)] * 3 + [example(label=1.5)] * 2
    paths = write_tfrecords(tmp_path / "d", records, shards=2)
    fails(tmp_path, "5 bad record", "--input", ",".join(paths), "--max_bad_fraction", "0.1")
    table = run(["--input", ",".join(paths), "--max_bad_fraction", "0.2",
                 "--output", str(tmp_path / "t.json")])
    assert same_counts(table, WeightTable.from_labels(np.arange(40) % 4, label_key="label"))
    out = capsys.readouterr().out
    assert "'bad_missing_label': 3" in out and "'bad_wrong_type': 2" in out


@pytest.mark.parametrize("bad, counter", [
    (example(label=0.5), "bad_wrong_type"),
    (example(label=[1, 2]), "bad_wrong_shape"),
    (b"\x08\x96\x01 not a proto \xff\xff", "bad_unparsable"),
    (example(label=1, w="heavy"), "bad_weight"),
])
def test_bad_record_kinds(tmp_path, bad, counter):
    records = [example(label=i % 4, w=1.0) for i in range(30)] + [bad]
    paths = write_tfrecords(tmp_path / "d", records, shards=1)
    fails(tmp_path, rf"{counter}: 1 record\(s\), e\.g\. in '{re.escape(paths[0])}'",
          "--input", paths[0], "--weight", "w")


def test_corrupted_tfrecord_names_the_file(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records(200), shards=2)
    data = bytearray(Path(paths[1]).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(paths[1]).write_bytes(bytes(data))
    fails(tmp_path, rf"readable TFRecord files. Received: input='{re.escape(paths[1])}'.*[Cc]orrupt",
          "--input", str(tmp_path / "d" / "*"))


def test_truncated_tfrecord_names_the_file(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records(50), shards=1)
    data = Path(paths[0]).read_bytes()
    Path(paths[0]).write_bytes(data[:-7])
    fails(tmp_path, rf"input='{re.escape(paths[0])}'.*truncated", "--input", paths[0])


def test_label_out_of_range_names_value_and_file(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records() + [example(label=17)], shards=1)
    fails(tmp_path, rf"class ids in \[0, 4\). Received: labels=17. Found in file '{re.escape(paths[0])}'",
          "--input", paths[0], "--num_classes", "4")


def test_negative_label_without_num_classes(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records() + [example(label=-3)], shards=1)
    fails(tmp_path, r"class ids >= 0. Received: labels=-3. Found in file", "--input", paths[0])


def test_no_matching_files(tmp_path):
    fails(tmp_path, r"Received: input='.*nothing-\*\.tfrecord'. Empty input",
          "--input", str(tmp_path / "nothing-*.tfrecord"))


def test_zero_records(tmp_path):
    paths = write_tfrecords(tmp_path / "d", [], shards=2)
    fails(tmp_path, r"at least one record. Received: input='0 records'", "--input", paths[0])


def test_csv_bad_rows_and_non_integer_labels(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("x,label\n1,0\n2,1\n3,2,extra\n4,two\n5,\n6,1\n")
    fails(tmp_path, r"bad_missing_label: 1.*bad_unparsable: 1.*bad_wrong_type: 1",
          "--format", "csv", "--input", str(path), "--label_dtype", "int")
    table = run(["--format", "csv", "--input", str(path), "--label_dtype", "int",
                 "--max_bad_fraction", "0.5", "--output", str(tmp_path / "t.json")])
    np.testing.assert_array_equal(table.counts, [1, 2])


def test_mixed_int_and_string_labels(tmp_path):
    write_csv(tmp_path / "c" / "a.csv", {"label": ["1", "2"]})
    write_csv(tmp_path / "c" / "b.csv", {"label": ["cat", "dog"]})
    fails(tmp_path, r"both int ids and strings", "--format", "csv", "--input",
          str(tmp_path / "c" / "*.csv"))


def test_wrong_label_key_stops_at_the_first_batch_naming_the_keys_present(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records(), shards=1)
    fails(tmp_path, r"Received: label='nope'. Not among the features of the first batch .*: \['label'\]",
          "--input", paths[0], "--label", "nope")


@pytest.mark.parametrize("flags, match", [
    (["--task", "multilabel", "--label_form", "dense"], "label_form"),
    (["--task", "binary", "--num_classes", "3"], "num_classes"),
    (["--max_bad_fraction", "2"], "max_bad_fraction"),
    (["--format", "tfds"], "tfds_name"),
    (["--label_form", "dense", "--label_dtype", "string"], "label_dtype"),
])
def test_invalid_flags(tmp_path, flags, match):
    paths = write_tfrecords(tmp_path / "d", good_records(4), shards=1)
    fails(tmp_path, f"argument `{match}`", "--input", paths[0], *flags)


def test_main_prints_one_line_error_and_exits_1(tmp_path, capsys):
    code = main(["--input", str(tmp_path / "none*"), "--output", str(tmp_path / "t.json")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith("rebalance stats: error: Invalid value for argument `input`") and err.count("\n") == 1
    assert not (tmp_path / "t.json").exists()


# ------------------------------------------------------------- torn shards
@pytest.mark.parametrize("stray", [1, 11])
def test_torn_tail_fails_naming_file_and_offset(tmp_path, stray):
    paths = write_tfrecords(tmp_path / "d", good_records(50), shards=2)
    whole = Path(paths[1]).stat().st_size
    with open(paths[1], "ab") as handle:  # an interrupted copy of a third file's first header
        handle.write(b"\x07" * stray)
    fails(tmp_path, rf"input='{re.escape(paths[1])}'. Torn tail: the last whole record ends at byte offset "
          rf"{whole} but the file has {whole + stray} bytes", "--input", str(tmp_path / "d"))


def test_gzip_cut_in_its_trailer_fails(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records(50), shards=1, gzip_files=True)
    data = Path(paths[0]).read_bytes()
    Path(paths[0]).write_bytes(data[:-5])  # tf.data reads all 50 records of this file
    fails(tmp_path, rf"GZIP TFRecord files. Received: input='{re.escape(paths[0])}'. The GZIP stream does not "
          "end cleanly", "--input", paths[0])


def test_gzip_of_a_torn_file_fails(tmp_path):
    raw = write_tfrecords(tmp_path / "raw", good_records(50), shards=1)[0]
    path = tmp_path / "d" / "torn.tfrecord.gz"
    path.parent.mkdir()
    path.write_bytes(gzip.compress(Path(raw).read_bytes() + b"\x01\x02\x03"))
    fails(tmp_path, rf"input='{re.escape(str(path))}'. Torn tail: the decompressed stream has \d+ bytes, "
          r"the last whole record ends at decompressed byte offset \d+", "--input", str(path))


def test_multi_member_gzip_is_complete(tmp_path):
    raw = Path(write_tfrecords(tmp_path / "raw", good_records(50), shards=1)[0]).read_bytes()
    path = tmp_path / "two-members.tfrecord"
    path.write_bytes(gzip.compress(raw[:700]) + gzip.compress(raw[700:]))  # split inside a record
    table = run(["--input", str(path), "--output", str(tmp_path / "t.json")])
    np.testing.assert_array_equal(table.counts, [13, 13, 12, 12])


def test_tfds_slice_with_fewer_records_than_take_fails(tmp_path):
    path = write_tfrecords(tmp_path / "d", good_records(10), shards=1)[0]
    with pytest.raises(ValueError, match=rf"input='{re.escape(path)}'. Truncated: expected 12 records"):
        check_complete(Shard(path, skip=0, take=12), False, 10, 0)


# ------------------------------------------------------- float labels (rule)
def test_whole_float_labels_count_as_ids_in_every_format(tmp_path):
    labels = np.arange(40) % 4
    reference = WeightTable.from_labels(labels.astype(np.float32), label_key="label")
    tf_paths = write_tfrecords(tmp_path / "t", [example(label=float(v)) for v in labels], shards=2)
    csv = write_csv(tmp_path / "c.csv", {"label": [f"{v}.0" for v in labels]})
    parquet = write_parquet(tmp_path / "p.parquet", {"label": labels.astype(np.float64)}, row_group_size=16)
    for flags in (["--input", ",".join(tf_paths)], ["--format", "csv", "--input", csv],
                  ["--format", "parquet", "--input", parquet]):
        table = run([*flags, "--output", str(tmp_path / "t.json")])
        assert same_counts(table, reference), flags


@pytest.mark.parametrize("fmt, bad", [("tfrecord", 1.5), ("tfrecord", float("nan")), ("parquet", 1.5),
                                      ("parquet", float("inf")), ("csv", 1.5), ("csv", float("nan"))])
def test_non_whole_float_label_fails_naming_value_and_file(tmp_path, fmt, bad):
    values = [0.0, 1.0, 2.0] * 5 + [bad]
    if fmt == "tfrecord":
        path = write_tfrecords(tmp_path / "t", [example(label=v) for v in values], shards=1)[0]
    elif fmt == "parquet":
        path = write_parquet(tmp_path / "p.parquet", {"label": np.array(values)})
    else:
        path = write_csv(tmp_path / "c.csv", {"label": [str(v) for v in values]})
    fails(tmp_path, rf"Expected integer class ids \(a float label must be a whole number: 1.0 is class 1\)."
          rf" Received: labels={bad!r}. Found in file '{re.escape(path)}'", "--format", fmt, "--input", path)


# ---------------------------------------------------- options that are unused
@pytest.mark.parametrize("flags, name", [
    (["--csv_delimiter", ";"], "csv_delimiter"),
    (["--label_delimiter", ";"], "label_delimiter"),
    (["--tfds_split", "test"], "tfds_split"),
    (["--tfds_data_dir", "/tmp"], "tfds_data_dir"),
    (["--tfds_name", "mnist"], "tfds_name"),
    (["--format", "parquet", "--compression", "gzip"], "compression"),
    (["--format", "csv", "--label_delimiter", ";"], "label_delimiter"),
    (["--format", "csv", "--batch_size", "1000"], "batch_size"),
])
def test_option_the_format_cannot_use_is_refused(tmp_path, flags, name):
    path = write_tfrecords(tmp_path / "d", good_records(4), shards=1)[0]
    fails(tmp_path, rf"argument `{name}`. Expected to be set only with .*It is not used with format=",
          "--input", path, *flags)


@pytest.mark.parametrize("flags, match", [
    (["--class_names", "cat,dog,cat,eel"], r"`class_names`. Expected unique names.*Duplicates: \['cat'\]"),
    (["--class_names", "a,,b,c"], r"`class_names`. Expected non-empty names. Received: class_names=\['a', '', "),
    (["--class_names", "a,b,c", "--num_classes", "4"], r"`num_classes`. Expected 3, the number of class_names"),
    (["--weight", ""], r"`weight`. Expected a feature key"),
    (["--batch_size", "0"], r"`batch_size`. Expected a positive int. Received: batch_size=0"),
    (["--read_threads", "-2"], r"`read_threads`. Expected a positive int. Received: read_threads=-2"),
    (["--max_bad_fraction", "nan"], r"`max_bad_fraction`. Expected a fraction in \[0, 1\]. Received: "
     "max_bad_fraction=nan"),
    (["--num_classes", "0"], r"`num_classes`. Expected a positive int. Received: num_classes=0"),
    (["--ignore_value", "255"], r"`ignore_value`. Expected None unless label_form='dense'"),
    (["--label", ""], r"`label`. Expected a feature key"),
])
def test_invalid_values_fail_before_reading(tmp_path, flags, match):
    fails(tmp_path, match, "--input", str(tmp_path / "never-read.tfrecord"), *flags)


def test_output_that_is_a_directory_fails_before_reading(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(ValueError, match=r"`output`. Expected a file path for the table \(not a directory\)"):
        run(["--input", str(tmp_path / "never-read"), "--output", str(tmp_path / "out")])
