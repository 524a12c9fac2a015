"""Bad input: each case fails with a message naming the problem and the file,
and never leaves an output file; ``--max_bad_fraction`` skips and reports."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_csv, write_tfrecords

from balance.table import WeightTable
from pipelines.class_stats import main, run


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


def test_wrong_label_key_reports_every_record_missing(tmp_path):
    paths = write_tfrecords(tmp_path / "d", good_records(), shards=1)
    fails(tmp_path, r"40 bad record\(s\) \(1\): bad_missing_label: 40", "--input", paths[0],
          "--label", "nope")


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
    assert capsys.readouterr().err.startswith("error: Invalid value for argument `input`")
    assert not (tmp_path / "t.json").exists()
