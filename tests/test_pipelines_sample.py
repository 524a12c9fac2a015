"""``rebalance sample``: kept counts, exact sample tables, determinism, weights,
formats, calibration back to the source prior, and bad input."""

from __future__ import annotations

import collections
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
import tensorflow as tf
from _pipelines_data import example, write_csv, write_parquet, write_tfrecords

import losses
from balance.table import WeightTable
from pipelines import cli
from pipelines.sampling.rates import keep_rates
from pipelines import run_class_stats as run_stats
from pipelines import run_sample as run

N = 6000
P = [0.85, 0.12, 0.03]


def records_of(directory) -> list[bytes]:
    files = sorted(str(p) for p in directory.glob("part-*"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def parsed(record: bytes) -> dict:
    features = tf.train.Example.FromString(record).features.feature
    return {k: list(getattr(v, v.WhichOneof("kind")).value) for k, v in features.items()}


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """Three classes at 85/12/3 %, each record unique (feature ``i``), and its table."""
    root = tmp_path_factory.mktemp("sample")
    labels = np.random.default_rng(0).choice(3, size=N, p=P)
    inputs = [example(label=int(y), i=i, x=[float(i) / N]) for i, y in enumerate(labels)]
    write_tfrecords(root / "in", inputs, shards=4)
    table = run_stats(["--input", str(root / "in" / "*"), "--output", str(root / "source.json")])
    return root, labels, inputs, table


def sample(root, name, *flags, table=True):
    argv = ["--input", str(root / "in" / "*"), "--output", str(root / name), *flags]
    return run(argv + (["--table", str(root / "source.json")] if table else []))


@pytest.fixture(scope="module")
def first(source):
    root = source[0]
    return sample(root, "s1", "--max_ratio", "2", "--seed", "7", "--weight_feature", "w"), root / "s1"


def test_kept_counts_are_within_4_sd_and_exact_in_the_table(source, first):
    _, labels, _, table = source
    sample_table, out = first
    n = np.bincount(labels, minlength=3)
    keep = np.minimum(1.0, 2 * n.min() / n)
    np.testing.assert_allclose(sample_table.keep_rates(), keep)
    written = np.bincount([parsed(r)["label"][0] for r in records_of(out)], minlength=3)
    np.testing.assert_array_equal(sample_table.counts, written)  # exact: counted from what was written
    assert sample_table.num_examples == written.sum()
    sd = np.sqrt(n * keep * (1 - keep))
    assert np.all(np.abs(written - n * keep) <= 4 * sd + 1e-9), (written, n * keep)
    assert written[2] == n[2]  # the rarest class is kept whole


def test_weight_feature_is_one_over_keep_and_records_are_unchanged(source, first):
    _, _, inputs, _ = source
    sample_table, out = first
    keep = sample_table.keep_rates()
    for record in records_of(out):
        features = parsed(record)
        assert features["w"] == pytest.approx([1.0 / keep[features["label"][0]]], rel=1e-6)
        assert record.startswith(inputs[features["i"][0]])  # the input's bytes, then the weight


def test_layout_and_provenance(source, first):
    root, _, _, table = source
    sample_table, out = first
    names = sorted(n for n in os.listdir(out) if not n.startswith("_"))
    assert sorted(set(os.listdir(out)) - set(names)) == ["_rebalance_manifest.json", "_table.json"]
    assert names and all(n.startswith("part-") for n in names)
    assert not [n for n in os.listdir(root) if "incomplete" in n or "replaced" in n]
    info = sample_table.provenance["sample"]
    assert info["seed"] == 7 and info["target"] == {"max_ratio": 2.0} and info["weight_feature"] == "w"
    assert info["source"]["fingerprint"] == table.provenance["fingerprint"]
    np.testing.assert_array_equal(sample_table.source_counts(), table.counts)
    assert sample_table.provenance["inputs"] == [str(out / n) for n in names]
    assert WeightTable.load(str(out / "_table.json")) == sample_table
    assert WeightTable.load(str(out)) == sample_table  # the sample's directory is its table too


def test_same_multiset_across_runs_shards_and_batches(source, first):
    root = source[0]
    reference = collections.Counter(records_of(first[1]))
    again = sample(root, "s2", "--max_ratio", "2", "--seed", "7", "--weight_feature", "w", "--num_shards", "3",
                   "--batch_size", "100", "--read_threads", "1")
    assert collections.Counter(records_of(root / "s2")) == reference
    np.testing.assert_array_equal(again.counts, first[0].counts)
    other = sample(root, "s4", "--max_ratio", "2", "--seed", "8", "--weight_feature", "w")
    assert collections.Counter(records_of(root / "s4")) != reference
    assert other.counts[2] == first[0].counts[2]


def test_same_multiset_in_process_and_multi_processing(tmp_path):
    """Parquet, so that the worker processes start without TensorFlow (the hash is per row either way)."""
    labels = np.random.default_rng(4).choice(3, size=4000, p=P)
    write_parquet(tmp_path / "in" / "a.parquet", {"label": labels, "i": np.arange(4000)}, row_group_size=500)
    flags = ["--input", str(tmp_path / "in" / "*"), "--format", "parquet", "--max_ratio", "2", "--seed", "3"]
    run_stats(flags[:4] + ["--output", str(tmp_path / "t.json")])
    flags += ["--table", str(tmp_path / "t.json")]
    one = run(flags + ["--output", str(tmp_path / "one")])
    two = run(flags + ["--output", str(tmp_path / "two"), "--num_shards", "3", "--direct_num_workers=2",
                       "--direct_running_mode=multi_processing"])

    def rows(name):
        table = pq.read_table(sorted(str(p) for p in (tmp_path / name).glob("part-*")))
        return collections.Counter(zip(*table.to_pydict().values(), strict=True))

    assert rows("one") == rows("two") and sum(rows("one").values()) == one.num_examples
    np.testing.assert_array_equal(one.counts, two.counts)


def test_target_keeps_the_class_furthest_below_whole():
    table = WeightTable.from_counts([800, 150, 50])
    uniform = keep_rates(table, target="uniform")
    np.testing.assert_allclose(table.counts * uniform, [50, 50, 50])
    sqrt = keep_rates(table, target="sqrt")
    np.testing.assert_allclose(table.counts * sqrt / (table.counts * sqrt).sum(),
                               np.sqrt(table.counts) / np.sqrt(table.counts).sum())
    assert sqrt.max() == 1.0 and sqrt.argmax() == 2
    shares = keep_rates(table, target=[0.5, 0.25, 0.25])
    assert shares.max() == 1.0 and np.all(shares <= 1.0)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_arrow_formats_keep_schema_and_cells(tmp_path, fmt, capsys):
    labels = np.random.default_rng(1).choice(3, size=3000, p=P)
    columns = {"label": labels, "score": np.round(np.arange(3000) / 7.0, 3), "name": [f"r{i}" for i in range(3000)]}
    if fmt == "parquet":
        write_parquet(tmp_path / "in" / "a.parquet", columns, row_group_size=700)
    else:
        write_csv(tmp_path / "in" / "a.csv", columns)
    out = tmp_path / "out"
    table = run(["--input", str(tmp_path / "in" / "*"), "--format", fmt, "--output", str(out),
                 "--max_ratio", "3", "--weight_feature", "w"])
    assert "No --table given" in capsys.readouterr().out
    assert (out / "_source_table.json").exists()
    source = WeightTable.load(str(out / "_source_table.json"))
    files = sorted(str(p) for p in out.glob("part-*"))
    read = pq.read_table(files) if fmt == "parquet" else pa.concat_tables(
        [pa_csv.read_csv(f, convert_options=pa_csv.ConvertOptions(column_types={"score": pa.string()}))
         for f in files])
    assert read.column_names == ["label", "score", "name", "w"]
    if fmt == "parquet":
        assert pq.read_schema(files[0]).remove(3) == pq.read_schema(str(tmp_path / "in" / "a.parquet"))
    rows = read.to_pylist()
    by_name = {f"r{i}": i for i in range(3000)}
    keep = table.keep_rates()
    for row in rows:
        i = by_name[row["name"]]
        assert row["label"] == labels[i] and row["w"] == pytest.approx(1.0 / keep[labels[i]])
        expected = str(columns["score"][i]) if fmt == "csv" else columns["score"][i]
        assert row["score"] == expected if fmt == "parquet" else float(row["score"]) == float(expected)
    np.testing.assert_array_equal(table.counts, np.bincount([r["label"] for r in rows], minlength=3))
    np.testing.assert_array_equal(source.counts, np.bincount(labels, minlength=3))


def test_whole_directory_readers_read_the_sample_of_a_parquet_input(tmp_path, capsys):
    """The table, source table and manifest start with "_": Arrow, pandas and rebalance's own readers skip them."""
    import pandas as pd

    labels = np.random.default_rng(3).choice(3, size=2000, p=P)
    write_parquet(tmp_path / "in" / "a.parquet", {"label": labels, "i": np.arange(2000)}, row_group_size=500)
    out = tmp_path / "out"
    assert cli.main(["sample", "--input", str(tmp_path / "in"), "--output", str(out), "--max_ratio", "2",
                     "--quiet"]) == 0  # the format is inferred from the file names
    table = WeightTable.load(str(out))
    read = pq.read_table(str(out))
    assert read.column_names == ["label", "i"] and read.num_rows == table.num_examples
    np.testing.assert_array_equal(np.bincount(read["label"].to_numpy(), minlength=3), table.counts)
    assert len(pd.read_parquet(str(out))) == table.num_examples
    for given in (str(out), str(out / "*")):  # a directory or a glob of it: the data files only
        assert run_stats(["--input", given, "--output", str(tmp_path / "again.json")]).counts.tolist() == \
            table.counts.tolist()
    capsys.readouterr()
    assert cli.main(["show", str(out)]) == 0
    assert f"{int(table.num_examples):,}" in capsys.readouterr().out


def test_csv_byte_ranges_keep_the_records_the_whole_file_keeps(tmp_path):
    """A big CSV is read as byte ranges; every record is decided once, as when read whole."""
    labels = np.random.default_rng(2).choice(3, size=3000, p=P)
    notes = [f"line {i}\nof record {i}" if i % 500 == 0 else f"r{i}" for i in range(3000)]  # quoted newlines
    write_csv(tmp_path / "a.csv", {"label": labels, "note": notes})
    flags = ["--input", str(tmp_path / "a.csv"), "--format", "csv", "--max_ratio", "2", "--seed", "1"]
    run_stats(flags[:4] + ["--output", str(tmp_path / "t.json")])
    whole = run(flags + ["--table", str(tmp_path / "t.json"), "--output", str(tmp_path / "whole"),
                         "--csv_split_bytes", "0"])
    unquoted = tmp_path / "b.csv"
    write_csv(unquoted, {"label": labels, "note": [f"r{i}" for i in range(3000)]})
    flags[1] = str(unquoted)
    parts = {}
    for name, split in (("one", "0"), ("ranges", "4000")):
        run(flags + ["--output", str(tmp_path / name), "--csv_split_bytes", split])
        files = sorted(str(p) for p in (tmp_path / name).glob("part-*"))
        parts[name] = collections.Counter(tuple(r.values()) for f in files for r in pa_csv.read_csv(f).to_pylist())
    assert parts["ranges"] == parts["one"] and sum(parts["one"].values()) < 3000
    kept_notes = [r["note"] for f in (tmp_path / "whole").glob("part-*") for r in pa_csv.read_csv(f).to_pylist()]
    assert len(kept_notes) == whole.num_examples  # quoted newlines read whole: no record split in two
    assert all(n.startswith("r") or n.split("\n")[0] == "line " + n.rsplit(" ", 1)[1] for n in kept_notes)


def test_multilabel_records_keep_their_largest_rate(tmp_path):
    rng = np.random.default_rng(2)
    records, lists = [], []
    for i in range(3000):
        ids = sorted({int(c) for c in rng.choice(4, size=rng.integers(0, 3), p=[0.7, 0.2, 0.07, 0.03])})
        lists.append(ids)
        records.append(example(labels=ids or None, i=i))
    write_tfrecords(tmp_path / "in", records, shards=2)
    table = run(["--input", str(tmp_path / "in" / "*"), "--label", "labels", "--task", "multilabel",
                 "--output", str(tmp_path / "out"), "--max_ratio", "1.5"])
    keep = table.keep_rates()
    assert keep[3] == 1.0 and keep[0] < 0.3
    kept = [parsed(r) for r in records_of(tmp_path / "out")]
    kept_ids = {f["i"][0] for f in kept}
    assert all(i in kept_ids for i, ids in enumerate(lists) if 3 in ids)  # any rare label keeps the record
    positives = np.zeros(4)
    for f in kept:
        positives[f.get("labels", [])] += 1
    np.testing.assert_array_equal(table.counts, positives)
    assert table.num_examples == len(kept) and table.provenance["sample"]["negative_keep_rate"] == keep.min()


def test_corrected_model_trained_on_a_1_to_1_sample_is_calibrated(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    rng = np.random.default_rng(3)

    def draw(n):
        y = (rng.random(n) < 0.01).astype(np.int64)
        return rng.normal(size=(n, 2)) + 1.5 * y[:, None], y

    x, y = draw(300_000)  # 3,000 positives: the 1:1 sample's fit and the test rate are within a few %
    write_tfrecords(tmp_path / "in", [example(label=int(c), x=[float(a), float(b)])
                                      for (a, b), c in zip(x, y, strict=True)], shards=2)
    table = run(["--input", str(tmp_path / "in" / "*"), "--task", "binary", "--output", str(tmp_path / "out"),
                 "--max_ratio", "1", "--seed", "1"])
    assert table.counts[0] == pytest.approx(table.counts[1], rel=0.15)
    kept = [parsed(r) for r in records_of(tmp_path / "out")]
    xs, ys = np.array([f["x"] for f in kept]), np.array([f["label"][0] for f in kept])
    on_sample = LogisticRegression(C=1e4).fit(xs, ys)
    on_all = LogisticRegression(C=1e4).fit(x, y)
    x_test, y_test = draw(300_000)
    z = on_sample.decision_function(x_test)[:, None]
    corrected = tf.sigmoid(losses.shift_logits(z, table, table.source_counts())).numpy().ravel()
    assert corrected.mean() == pytest.approx(y_test.mean(), rel=0.10)
    uncorrected = tf.sigmoid(z).numpy().ravel()
    assert uncorrected.mean() > 3 * y_test.mean()  # the sample's prior, far from the population's
    reference = log_loss(y_test, on_all.predict_proba(x_test)[:, 1])
    assert log_loss(y_test, corrected) <= 1.05 * reference


@pytest.fixture
def bad(source, tmp_path):
    root = source[0]

    def call(*flags, table=None):
        argv = ["--input", str(root / "in" / "*"), "--output", str(tmp_path / "out"), *flags]
        if table is not None:
            path = tmp_path / "t.json"
            table.save(str(path))
            argv += ["--table", str(path)]
        return run(argv)

    return call, tmp_path


def _target(tmp_path, content: str) -> str:
    path = tmp_path / "target.json"
    path.write_text(content)
    return str(path)


@pytest.mark.parametrize("case, flags, table, match", [
    ("task", ["--max_ratio", "2"], WeightTable.from_counts([5, 5], task="binary", label_key="label"),
     "a table for task='multiclass'"),
    ("label", ["--max_ratio", "2"], WeightTable.from_counts([5, 5, 5], label_key="y"), "a table of label 'label'"),
    ("classes", ["--max_ratio", "2", "--num_classes", "5"], WeightTable.from_counts([5, 5, 5], label_key="label"),
     "a table of 5 classes"),
    ("ratio", ["--max_ratio", "0.5"], None, "max_ratio"),
    ("tfds", ["--max_ratio", "2", "--format", "tfds", "--tfds_name", "mnist"], None, "--format tfrecord"),
    ("scheme", ["--max_ratio", "2", "--scheme", "balanced"], None, "scheme"),
    ("dense", ["--max_ratio", "2", "--label_form", "dense"], None, "label_form"),
    ("weight name", ["--max_ratio", "2", "--weight_feature", "label"], None, "weight_feature"),
])
def test_bad_flags_fail_before_data_flows(bad, case, flags, table, match):
    call, tmp_path = bad
    with pytest.raises(ValueError, match=match):
        call(*flags, table=table)
    assert not [n for n in os.listdir(tmp_path) if n not in ("t.json",)]  # nothing written or staged


@pytest.mark.parametrize("content, match", [
    ('{"0": "many"}', "shares"), ('"uniform"', "JSON list of shares"), ("[0.5, 0.5", "Not valid JSON"),
    ("[0.2, 0.8]", "3 shares"), ('{"7": 1.0}', "class ids"),
])
def test_target_file_that_is_not_shares(source, bad, content, match):
    call, tmp_path = bad
    with pytest.raises(ValueError, match=f"`target`.*{match}"):
        call("--target", _target(tmp_path, content), table=source[3])
    assert not (tmp_path / "out").exists()


def test_non_empty_output_needs_overwrite(source, bad):
    call, tmp_path = bad
    call("--max_ratio", "2", table=source[3])
    with pytest.raises(ValueError, match="`output`.*--overwrite"):
        call("--max_ratio", "2", table=source[3])
    table = call("--max_ratio", "2", "--overwrite", table=source[3])  # its own output: replaced
    assert table.num_examples > 0
    assert sorted(n for n in os.listdir(tmp_path) if n != "t.json" and n != "target.json") == ["out"]


@pytest.mark.parametrize("counts, match", [([5, 5], r"class ids in \[0, 2\)"), ([5, 5, 5], "counts of this input")])
def test_table_of_other_data_publishes_nothing(source, bad, counts, match):
    call, tmp_path = bad
    with pytest.raises(ValueError, match=match):
        call("--max_ratio", "2", table=WeightTable.from_counts(counts, label_key="label"))
    assert sorted(os.listdir(tmp_path)) == ["t.json"]  # no output, no staging directory left


def test_existing_weight_feature_is_refused(source, bad):
    call, tmp_path = bad
    with pytest.raises(ValueError, match="`weight_feature`.*already in the input"):
        call("--max_ratio", "2", "--weight_feature", "x", table=source[3])
    assert sorted(os.listdir(tmp_path)) == ["t.json"]


def test_help_says_down_sampling_only(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sample", "--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Down-sampling only" in text and "--max_ratio" in text and "--weight_feature" in text


def test_keep_rates_of_a_table_that_is_not_a_sample():
    with pytest.raises(ValueError, match="rebalance sample"):
        WeightTable.from_counts([3, 4]).keep_rates()
    assert json.loads(WeightTable.from_counts([3, 4]).to_json())["provenance"].get("sample") is None


def test_bad_records_are_dropped_and_counted_like_the_stats_job(tmp_path):
    labels = np.random.default_rng(5).choice(3, size=600, p=P)
    records = [example(label=int(y), i=i) for i, y in enumerate(labels)]
    write_tfrecords(tmp_path / "in", records[:300] + [b"not an Example"] + records[300:], shards=2)
    flags = ["--input", str(tmp_path / "in" / "*"), "--max_ratio", "2"]
    with pytest.raises(ValueError, match="max_bad_fraction"):
        run(flags + ["--output", str(tmp_path / "strict"), "--table", str(_table_of(tmp_path, labels))])
    assert not (tmp_path / "strict").exists()
    table = run(flags + ["--output", str(tmp_path / "out"), "--max_bad_fraction", "0.01"])
    written = records_of(tmp_path / "out")
    assert b"not an Example" not in written
    np.testing.assert_array_equal(table.counts, np.bincount([parsed(r)["label"][0] for r in written], minlength=3))
    np.testing.assert_array_equal(table.source_counts(), np.bincount(labels, minlength=3))


def _table_of(tmp_path, labels):
    path = tmp_path / "labels.json"
    WeightTable.from_labels(labels, label_key="label").save(str(path))
    return path


def test_string_labels_and_a_target_file(tmp_path):
    names = np.array(["cat", "dog", "eel"])[np.random.default_rng(6).choice(3, size=2000, p=P)]
    write_csv(tmp_path / "in" / "a.csv", {"label": names, "i": np.arange(2000)})
    flags = ["--input", str(tmp_path / "in" / "*"), "--format", "csv"]
    run_stats(flags + ["--output", str(tmp_path / "t.json")])
    target = _target(tmp_path, json.dumps({"cat": 0.5, "dog": 0.25, "eel": 0.25}))
    table = run(flags + ["--table", str(tmp_path / "t.json"), "--target", target, "--output", str(tmp_path / "out")])
    assert table.class_names == ("cat", "dog", "eel") and table.label_dtype == "string"
    n = collections.Counter(names.tolist())
    np.testing.assert_allclose(table.keep_rates(), np.array([0.5, 0.25, 0.25]) / [n["cat"], n["dog"], n["eel"]]
                               * n["eel"] / 0.25)
    rows = pa_csv.read_csv(str(next((tmp_path / "out").glob("part-*")))).column("label").to_pylist()
    np.testing.assert_array_equal(table.counts, [rows.count(c) for c in table.class_names])
    assert table.provenance["sample"]["target"]["shares"] == {"cat": 0.5, "dog": 0.25, "eel": 0.25}


def test_identical_records_share_one_decision_and_the_summary_warns(tmp_path, capsys):
    labels = np.random.default_rng(7).choice(3, size=1500, p=P)
    write_tfrecords(tmp_path / "in", [example(label=int(y)) for y in labels], shards=2)  # one record per class
    table = run(["--input", str(tmp_path / "in" / "*"), "--output", str(tmp_path / "out"), "--max_ratio", "2"])
    n = np.bincount(labels, minlength=3)
    assert set(table.counts.tolist()) <= set(n.tolist()) | {0.0}  # each class kept whole or dropped whole
    assert "Identical records share one keep decision" in capsys.readouterr().out
