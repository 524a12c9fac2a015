"""Many classes: 100k int classes with exact counts for every class (never
top-k), and large unknown string vocabularies, discovered and sorted."""

from __future__ import annotations

import numpy as np
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance.table import WeightTable
from pipelines import run_class_stats as run

K = 100_000


def test_100k_classes_parquet_unknown_num_classes(tmp_path):
    rng = np.random.default_rng(5)
    labels = np.concatenate([np.arange(K), rng.zipf(1.3, 50_000) % K])  # every class, long tail
    rng.shuffle(labels)
    for i in range(3):
        write_parquet(tmp_path / "p" / f"{i}.parquet", {"label": labels[i::3]}, row_group_size=20_000)
    table = run(["--format", "parquet", "--input", str(tmp_path / "p"), "--output",
                 str(tmp_path / "t.json")])
    assert table.num_classes == K and table.counts.min() >= 1
    np.testing.assert_array_equal(table.counts, np.bincount(labels, minlength=K))


def test_100k_classes_tfrecord_with_num_classes(tmp_path):
    rng = np.random.default_rng(6)
    labels = rng.integers(0, K, 30_000)
    write_tfrecords(tmp_path / "d", [example(label=y) for y in labels], shards=4)
    table = run(["--input", str(tmp_path / "d" / "*"), "--num_classes", str(K),
                 "--output", str(tmp_path / "t.json")])
    assert same_counts(table, WeightTable.from_labels(labels, num_classes=K, label_key="label"))


def test_large_string_vocabulary_tfrecord_and_csv(tmp_path):
    rng = np.random.default_rng(8)
    vocab = np.array([f"class/{i:05d}-é" for i in rng.permutation(20_000)])
    names = vocab[rng.integers(0, len(vocab), 40_000)]
    write_tfrecords(tmp_path / "d", [example(y=str(v)) for v in names[:20_000]], shards=3)
    table = run(["--input", str(tmp_path / "d" / "*"), "--label", "y",
                 "--output", str(tmp_path / "a.json")])
    assert same_counts(table, WeightTable.from_labels(names[:20_000], label_key="y"))
    assert list(table.class_names) == sorted(set(names[:20_000]))

    for i in range(2):
        write_csv(tmp_path / "c" / f"{i}.csv", {"y": names[i::2]})
    table = run(["--format", "csv", "--input", str(tmp_path / "c" / "*.csv"), "--label", "y",
                 "--output", str(tmp_path / "b.json")])
    order = np.concatenate([names[0::2], names[1::2]])
    assert same_counts(table, WeightTable.from_labels(order, label_key="y"))
