"""Every input format and label form, counted by the Beam job (DirectRunner,
in process), against ``WeightTable.from_labels`` on the same generated data."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance.table import WeightTable
from pipelines import run_class_stats as run

N = 600


def job(tmp_path, *flags: str) -> WeightTable:
    output = tmp_path / "out" / "table.json"
    table = run([*flags, "--output", str(output)])
    assert output.exists()
    assert WeightTable.load(str(output)).content_equal(table)
    return table


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def long_tail(rng, n=N, k=9):
    p = 1.0 / np.arange(1, k + 1) ** 1.5
    return rng.choice(k, size=n, p=p / p.sum())


# ------------------------------------------------------------------ TFRecord
def test_tfrecord_scalar_ids(tmp_path, rng):
    labels = long_tail(rng)
    write_tfrecords(tmp_path / "d", [example(label=y) for y in labels], shards=4)
    table = job(tmp_path, "--input", str(tmp_path / "d" / "*.tfrecord"), "--scheme", "balanced")
    ref = WeightTable.from_labels(labels, label_key="label")
    assert same_counts(table, ref.with_precomputed("balanced"))
    assert table.precomputed["scheme"] == "balanced"
    assert table.provenance["fingerprint"].startswith("sha256:")
    assert table.provenance["inputs"] == [str(tmp_path / "d" / "*.tfrecord")]


def test_tfrecord_strings_gzip_and_directory_input(tmp_path, rng):
    names = np.array(["cat", "dog", "eel", "ant"])[long_tail(rng, k=4)]
    write_tfrecords(tmp_path / "d", [example(y=str(v)) for v in names], shards=2, gzip_files=True)
    table = job(tmp_path, "--input", str(tmp_path / "d"), "--label", "y")
    ref = WeightTable.from_labels(names, label_key="y")
    assert same_counts(table, ref)
    assert table.class_names == ("ant", "cat", "dog", "eel") and table.label_dtype == "string"


def test_tfrecord_weighted_binary(tmp_path, rng):
    labels = (rng.random(N) < 0.1).astype(int)
    weights = rng.integers(1, 9, N) / 4.0  # exact in float32, so sums are exact
    records = [example(label=y, w=float(w)) for y, w in zip(labels, weights, strict=False)]
    write_tfrecords(tmp_path / "d", records)
    table = job(tmp_path, "--input", str(tmp_path / "d" / "*"), "--task", "binary", "--weight", "w")
    ref = WeightTable.from_labels(labels, task="binary", sample_weight=weights, label_key="label")
    assert same_counts(table, ref)
    assert table.num_examples == pytest.approx(weights.sum())


def test_tfrecord_id_lists_multilabel_dedupes_within_example(tmp_path, rng):
    lists = [sorted(rng.choice(6, size=rng.integers(0, 4), replace=False).tolist()) for _ in range(N)]
    lists[0] = [2, 2, 5]  # a duplicate id counts once
    write_tfrecords(tmp_path / "d", [example(labels=row) if row else example(other=1) for row in lists])
    table = job(tmp_path, "--input", str(tmp_path / "d" / "*"), "--label", "labels",
                "--task", "multilabel", "--num_classes", "6")
    ref = WeightTable.from_labels(lists, task="multilabel", label_form="id_lists", num_classes=6,
                                  label_key="labels")
    assert same_counts(table, ref)


def test_tfrecord_multi_hot(tmp_path, rng):
    matrix = (rng.random((N, 5)) < 0.3).astype(np.int64)
    write_tfrecords(tmp_path / "d", [example(label=row) for row in matrix])
    table = job(tmp_path, "--input", str(tmp_path / "d" / "*"), "--task", "multilabel",
                "--label_form", "multi_hot")
    ref = WeightTable.from_labels(matrix, task="multilabel", label_key="label")
    assert same_counts(table, ref)
    np.testing.assert_array_equal(table.counts, matrix.sum(axis=0))


def test_tfrecord_dense_segmentation_mask_with_ignore_value(tmp_path, rng):
    masks = rng.choice([0, 1, 2, 255], size=(N // 4, 6, 5), p=[0.7, 0.2, 0.05, 0.05])
    write_tfrecords(tmp_path / "d", [example(mask=m.ravel()) for m in masks])
    table = job(tmp_path, "--input", str(tmp_path / "d" / "*"), "--label", "mask",
                "--label_form", "dense", "--ignore_value", "255", "--num_classes", "3")
    ref = WeightTable.from_labels(masks, label_form="dense", ignore_value=255, num_classes=3,
                                  label_key="mask")
    assert same_counts(table, ref)
    assert table.num_elements == np.sum(masks != 255)


# ----------------------------------------------------------------------- CSV
def test_csv_ids_strings_and_weights(tmp_path, rng):
    labels = long_tail(rng)
    weights = rng.integers(1, 5, N) / 2.0
    for i in range(3):
        write_csv(tmp_path / "c" / f"{i}.csv", {"x": np.arange(N)[i::3], "y": labels[i::3],
                                               "w": weights[i::3]}, delimiter=";")
    table = job(tmp_path, "--format", "csv", "--input", str(tmp_path / "c" / "*.csv"),
                "--label", "y", "--weight", "w", "--csv_delimiter", ";")
    order = np.concatenate([np.arange(N)[i::3] for i in range(3)])
    ref = WeightTable.from_labels(labels[order], sample_weight=weights[order], label_key="y")
    assert same_counts(table, ref)

    names = np.array(["b", "a", "c"])[labels % 3]
    write_csv(tmp_path / "s" / "0.csv.gz", {"y": names}, gzip_file=True)
    table = job(tmp_path, "--format", "csv", "--input", str(tmp_path / "s" / "0.csv.gz"),
                "--label", "y")
    assert same_counts(table, WeightTable.from_labels(names, label_key="y"))


def test_csv_multilabel_delimited_lists(tmp_path, rng):
    lists = [sorted(rng.choice(4, size=rng.integers(0, 3), replace=False).tolist()) for _ in range(N)]
    cells = ["/".join(map(str, row)) for row in lists]
    write_csv(tmp_path / "m.csv", {"tags": cells, "x": np.zeros(N)})
    table = job(tmp_path, "--format", "csv", "--input", str(tmp_path / "m.csv"), "--label", "tags",
                "--task", "multilabel", "--label_delimiter", "/", "--num_classes", "4")
    ref = WeightTable.from_labels(lists, task="multilabel", label_form="id_lists", num_classes=4,
                                  label_key="tags")
    assert same_counts(table, ref)


# ------------------------------------------------------------------- Parquet
def test_parquet_scalar_ids_over_row_groups(tmp_path, rng):
    labels = long_tail(rng)
    weights = rng.integers(1, 5, N) / 8.0
    write_parquet(tmp_path / "p" / "a.parquet", {"label": labels[:400], "w": weights[:400]},
                  row_group_size=128)
    write_parquet(tmp_path / "p" / "b.parquet", {"label": labels[400:], "w": weights[400:]})
    table = job(tmp_path, "--format", "parquet", "--input", str(tmp_path / "p" / "*.parquet"),
                "--weight", "w")
    assert same_counts(table, WeightTable.from_labels(labels, sample_weight=weights,
                                                      label_key="label"))


def test_parquet_strings_and_lists(tmp_path, rng):
    names = np.array(["x", "yy", "zzz"])[long_tail(rng, k=3)]
    lists = [rng.choice(7, size=rng.integers(1, 4), replace=False).tolist() for _ in range(N)]
    write_parquet(tmp_path / "p.parquet", {"name": names, "tags": pa.array(lists)}, row_group_size=200)
    table = job(tmp_path, "--format", "parquet", "--input", str(tmp_path / "p.parquet"),
                "--label", "name")
    assert same_counts(table, WeightTable.from_labels(names, label_key="name"))
    table = job(tmp_path, "--format", "parquet", "--input", str(tmp_path / "p.parquet"),
                "--label", "tags", "--task", "multilabel")
    ref = WeightTable.from_labels(lists, task="multilabel", label_form="id_lists", label_key="tags")
    assert same_counts(table, ref)
