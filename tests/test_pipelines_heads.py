"""Several --label counted in one pass (``rebalance stats --label a --label b``): one table per label,
equal to single-label runs, bad records per label, the directory's index, and its loader feeding
``balance.rebalance`` (DirectRunner, in process)."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

import balance
from balance.errors import InvalidArgumentError, InvalidDataError, InvalidTableError
from balance.table import WeightTable
from pipelines import HeadsConfig, run_class_stats, run_head_stats
from pipelines.io.plan import plan_inputs
from pipelines.counting.table import build_table
from pipelines.cli import main
from pipelines.counting.combiners import merge_counts
from pipelines.io.publish import publish_tables
from pipelines.counting.count import CountShards

N = 400
WORDS = np.array(["cat", "dog", "eel", "ant"])


def heads_data(seed: int = 3):
    """Head a: ids 0..4 (long tail); b: strings; c: multi-hot rows of 4 labels."""
    rng = np.random.default_rng(seed)
    p = 1.0 / np.arange(1, 6) ** 1.5
    a = rng.choice(5, size=N, p=p / p.sum())
    b = WORDS[rng.choice(4, size=N, p=[0.6, 0.25, 0.1, 0.05])]
    c = (rng.random((N, 4)) < [0.5, 0.2, 0.1, 0.05]).astype(np.int64)
    return a, b, c


def in_process(config, heads=None):
    """The job's readers and last step without Beam, shard by shard (as the job runs them)."""
    plan = plan_inputs(config)
    reader = CountShards(plan.config, heads=heads)
    reader.setup()
    per_shard = [reader.read_shard(shard) for shard in plan.shards]
    if heads is None:
        return build_table(merge_counts(per_shard), plan.config, plan.inputs, plan.fingerprint)
    return {h.label: build_table(merge_counts(s[i] for s in per_shard), h, plan.inputs, plan.fingerprint)
            for i, h in enumerate(heads)}


def expected(a, b, c, *, missing_b: int = 0, c_form: str = "multi_hot"):
    c = c if c_form == "multi_hot" else [np.flatnonzero(row).tolist() for row in c]
    return {
        "a": WeightTable.from_labels(a, label_key="a"),
        "b": WeightTable.from_labels(np.array([v for v in b[missing_b:] if v is not None]), label_key="b"),
        "c": WeightTable.from_labels(c, task="multilabel", label_form=c_form, num_classes=4, label_key="c"),
    }


# ------------------------------------------------------------------ TFRecord
@pytest.fixture(scope="module")
def tfrecord_job(tmp_path_factory):
    """One CLI run over TFRecord shards; record 0 has no b (bad for b only, allowed by b's max_bad_fraction)."""
    tmp = tmp_path_factory.mktemp("heads")
    a, b, c = heads_data()
    records = [example(a=int(a[i]), b=None if i == 0 else str(b[i]), c=c[i]) for i in range(N)]
    write_tfrecords(tmp / "d", records, shards=3)
    flags = ["--input", str(tmp / "d" / "*.tfrecord"), "--label", "a", "--label", "b", "--label", "c",
             "--task", "c=multilabel", "--label_form", "c=multi_hot", "--label_dtype", "b=string",
             "--max_bad_fraction", "b=0.01"]
    return tmp, flags, (a, b, c)


def test_tfrecord_one_pass_equals_single_label_runs(tfrecord_job, capsys):
    tmp, flags, (a, b, c) = tfrecord_job
    assert main(["stats", *flags, "--output", str(tmp / "tables")]) == 0
    out = capsys.readouterr().out
    tables = balance.load_tables(str(tmp / "tables"))
    assert list(tables) == ["a", "b", "c"]
    for label, table in tables.items():  # each file is a normal table
        assert WeightTable.load(str(tmp / "tables" / f"{label}.json")) == table
    want = expected(a, b, c, missing_b=1)
    assert all(same_counts(tables[k], want[k]) for k in want)
    assert tables["b"].class_names == ("ant", "cat", "dog", "eel")
    # The single-label job counts the string head the same (a real Beam run) ...
    single = run_class_stats(["--input", flags[1], "--label", "b", "--max_bad_fraction", "0.01",
                              "--output", str(tmp / "b_alone.json")])
    assert tables["b"].content_equal(single)
    # ... and so do the single-label readers for the others.
    base = HeadsConfig.of(["a", "b", "c"], input=(flags[1],), per_label={
        "b": {"max_bad_fraction": 0.01}, "c": {"task": "multilabel", "label_form": "multi_hot"}})
    for head in base.heads:
        assert tables[head.label].content_equal(in_process(head))
    # Bad records are reported per label: the record without b is bad for b only.
    assert "label 'b' -> b.json: 399 examples" in out
    assert "bad records: {'bad_missing_label': 1}" in out.split("label 'b'")[1].split("label 'c'")[0]
    assert out.split("label 'a'")[1].split("label 'b'")[0].rstrip().endswith("bad records: none")
    index = json.loads((tmp / "tables" / "index.json").read_text())
    assert index["tables"] == {"a": "a.json", "b": "b.json", "c": "c.json"}
    assert index["fingerprint"] == single.provenance["fingerprint"]


def test_a_label_over_its_max_bad_fraction_fails_naming_it_and_publishes_nothing(tfrecord_job):
    tmp, flags, _ = tfrecord_job
    flags = [f for f in flags if f not in ("--max_bad_fraction", "b=0.01")]
    with pytest.raises(InvalidDataError, match=r"Label 'b': .*`max_bad_fraction`.*bad_missing_label: 1 record"):
        run_head_stats([*flags, "--output", str(tmp / "failed")])
    assert not (tmp / "failed").exists()
    assert not [n for n in os.listdir(tmp) if "incomplete" in n]


def test_loaded_tables_feed_rebalance_on_two_outputs(tfrecord_job):
    tmp, _, (a, b, _) = tfrecord_job
    if not (tmp / "tables" / "index.json").exists():
        pytest.skip("needs test_tfrecord_one_pass_equals_single_label_runs")
    tables = balance.load_tables(str(tmp / "tables" / "index.json"))
    tables = {"a": tables["a"], "b": tables["b"]}
    x = np.arange(N, dtype=np.float32)[:, None]
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": a, "b": b}))
    _, labels, weights = next(iter(balance.rebalance(ds, tables, method="weight", batch_size=N)))
    ids_b = np.searchsorted(tables["b"].class_names, [s.decode() for s in labels["b"].numpy()])
    np.testing.assert_allclose(weights["a"], tables["a"].class_weights("balanced")[a], rtol=1e-6)
    np.testing.assert_allclose(weights["b"], tables["b"].class_weights("balanced")[ids_b], rtol=1e-6)
    assert weights["a"].numpy()[a == 4].mean() > 5 * weights["a"].numpy()[a == 0].mean()


def test_tfrecord_record_of_the_wrong_type_for_one_label_is_bad_for_that_label_only(tmp_path):
    a, b, _ = heads_data(11)
    write_tfrecords(tmp_path / "d", [example(a=int(a[i]), b=7 if i == 5 else str(b[i])) for i in range(N)], shards=2)
    heads = HeadsConfig.of(["a", "b"], input=(str(tmp_path / "d"),),
                           per_label={"b": {"label_dtype": "string", "max_bad_fraction": 0.01}})
    plan = plan_inputs(heads.base)
    reader = CountShards(heads.base, heads=heads.heads)
    reader.setup()
    per_shard = [reader.read_shard(shard) for shard in plan.shards]  # the batch parse fails: each label on its own
    merged = [merge_counts(counts[i] for counts in per_shard) for i in range(2)]
    assert merged[0].bad == {} and merged[1].bad == {"wrong_type": 1}
    assert merged[0].records == merged[1].records == N
    tables = [build_table(m, h, plan.inputs, plan.fingerprint) for m, h in zip(merged, heads.heads, strict=True)]
    assert same_counts(tables[0], WeightTable.from_labels(a, label_key="a"))
    assert same_counts(tables[1], WeightTable.from_labels(np.delete(b, 5), label_key="b"))


# ------------------------------------------------------------ Parquet, CSV
def test_parquet_one_pass_equals_single_label_runs(tmp_path):
    a, b, c = heads_data(5)
    lists = [np.flatnonzero(row).tolist() for row in c]
    write_parquet(tmp_path / "d" / "part.parquet", {"a": a, "b": b, "c": pa.array(lists, pa.list_(pa.int64()))},
                  row_group_size=150)
    tables = run_head_stats(["--input", str(tmp_path / "d"), "--format", "parquet", "--label", "a", "--label", "b",
                             "--label", "c", "--task", "c=multilabel", "--num_classes", "c=4",
                             "--output", str(tmp_path / "out")])
    want = expected(a, b, c, c_form="id_lists")
    assert all(same_counts(tables[k], want[k]) for k in want)
    heads = HeadsConfig.of(["a", "b", "c"], input=(str(tmp_path / "d"),), format="parquet",
                           per_label={"c": {"task": "multilabel", "num_classes": 4}})
    for head in heads.heads:
        assert tables[head.label].content_equal(in_process(head))


def test_csv_one_read_counts_each_label_as_alone(tmp_path):
    a, b, c = heads_data(9)
    cells = ["|".join(map(str, np.flatnonzero(row))) or None for row in c]
    b = b.astype(object)
    b[[3, 7]] = None  # two records bad for b only
    write_csv(tmp_path / "d.csv", {"a": a, "b": b, "c": cells})
    heads = HeadsConfig.of(["a", "b", "c"], input=(str(tmp_path / "d.csv"),), format="csv", label_dtype="auto",
                           max_bad_fraction=0.01, per_label={"b": {"label_dtype": "string"},
                                                             "c": {"task": "multilabel", "num_classes": 4}})
    together = in_process(heads.base, heads.heads)
    for head in heads.heads:
        assert together[head.label].content_equal(in_process(head))
    assert together["b"].num_examples == N - 2 and together["a"].num_examples == N
    assert same_counts(together["c"], expected(a, b, c, c_form="id_lists")["c"])


# ------------------------------------------------------------------ bad flags
REQUIRED = ["--input", "never-read.tfrecord", "--label", "a", "--label", "b"]


@pytest.mark.parametrize("flags, match", [
    (["--task", "c=multilabel"], r"`task`.*LABEL among the --label keys \['a', 'b'\].*\['c'\] name no --label"),
    (["--num_classes", "a=3", "--num_classes", "a=4"], r"`num_classes`.*each label once"),
    (["--label_form", "sparse", "--label_form", "one_hot"], r"`label_form`.*given twice without a label"),
    (["--label_form", "b=multi_hot"], r"Label 'b': .*`label_form`"),
    (["--label", "a"], r"`label`. Expected each label key once"),
])
def test_bad_per_label_flags_fail_before_reading(tmp_path, flags, match):
    with pytest.raises(InvalidArgumentError, match=match):
        run_head_stats([*REQUIRED, *flags, "--output", str(tmp_path / "out")])


def test_several_labels_refuse_an_existing_file_and_a_non_empty_directory(tmp_path):
    (tmp_path / "t.json").write_text("{}")
    with pytest.raises(InvalidArgumentError, match="a directory for one table per label"):
        run_head_stats([*REQUIRED, "--output", str(tmp_path / "t.json")])
    with pytest.raises(InvalidArgumentError, match="--overwrite"):
        run_head_stats([*REQUIRED, "--output", str(tmp_path)])
    with pytest.raises(InvalidArgumentError, match="one --label here.*run_head_stats"):
        run_class_stats([*REQUIRED, "--output", str(tmp_path / "x.json")])
    with pytest.raises(InvalidArgumentError, match="`overwrite`"):
        run_class_stats(["--input", "x.tfrecord", "--overwrite", "--output", str(tmp_path / "x.json")])
    with pytest.raises(InvalidArgumentError, match="`batch_size`. Expected one value for every label"):
        HeadsConfig((HeadsConfig.of(["a"], input=("x",)).base, HeadsConfig.of(["b"], input=("x",), batch_size=7).base))
    with pytest.raises(InvalidArgumentError, match=r"`per_label`.*\['weight'\] are read options"):
        HeadsConfig.of(["a", "b"], input=("x",), per_label={"a": {"weight": "w"}})


def test_publishing_replaces_only_with_overwrite_and_writes_the_index_last(tmp_path):
    tables = {"a": WeightTable.from_labels([0, 1, 1], label_key="a"),
              "x/y": WeightTable.from_labels(["p", "q"], label_key="x/y")}
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with pytest.raises(InvalidArgumentError, match="new or empty directory"):
        publish_tables(tables, str(out))
    with pytest.raises(InvalidArgumentError, match="written by rebalance.*'old.txt'"):  # not ours
        publish_tables(tables, str(out), overwrite=True)
    assert (out / "old.txt").exists() and not [n for n in os.listdir(tmp_path) if n.startswith(".")]
    (out / "old.txt").unlink()
    publish_tables(tables, str(out))
    publish_tables(tables, str(out), overwrite=True)
    assert sorted(os.listdir(out)) == ["_rebalance_manifest.json", "a.json", "index.json", "x_y.json"]
    assert balance.load_tables(str(out)) == tables
    (out / "index.json").unlink()  # as a job killed before its last step leaves it
    with pytest.raises(InvalidArgumentError, match=r"holding index.json.*an incomplete job's output"):
        balance.load_tables(str(out))
    publish_tables({"a": tables["a"], "b": tables["a"]}, str(tmp_path / "wrong"))
    with pytest.raises(InvalidTableError, match="b.json holds label 'a'"):
        balance.load_tables(str(tmp_path / "wrong"))


# ------------------------------------------------------------------ TFDS
def test_tfds_each_label_takes_its_own_class_label(tmp_path):
    import tensorflow_datasets as tfds

    class TwoHeadsTiny(tfds.core.GeneratorBasedBuilder):
        """Two ClassLabel features: a (3 names, the last never occurs), b (2 names)."""

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "a": tfds.features.ClassLabel(names=["low", "mid", "high"]),
                "b": tfds.features.ClassLabel(names=["no", "yes"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for i in range(60):
                yield i, {"a": i % 2, "b": int(i % 5 == 0)}

    TwoHeadsTiny(data_dir=str(tmp_path / "tfds")).download_and_prepare()
    tables = run_head_stats(["--format", "tfds", "--tfds_name", "two_heads_tiny", "--tfds_data_dir",
                             str(tmp_path / "tfds"), "--label", "a", "--label", "b", "--output", str(tmp_path / "t")])
    assert tables["a"].class_names == ("low", "mid", "high") and tables["a"].counts.tolist() == [30, 30, 0]
    assert tables["b"].class_names == ("no", "yes") and tables["b"].counts.tolist() == [48, 12]
