"""String labels: the job's tables equal ``WeightTable.from_labels`` and an independent count.

Small generated data (a few hundred distinct strings with a Zipf-like tail,
non-ASCII text among them) is written as Parquet (string and binary columns),
CSV and TFRecord, in several shards, and counted by the job's reader DoFns,
its ``CountCombineFn`` (input by input, as the runner's combiner lifting
does) and its last step. Each table is compared with ``from_labels`` on the
same labels and with ``collections.Counter``: counts, class names, their
order (sorted by code point), examples, JSON.

Arbitrary float weights are compared with an oracle that sums them the way
the job defines it: in float64 per batch in record order, batch sums in
order per shard, each shard's sum rounded down to a multiple of 2**-64, and
those added exactly.
"""

from __future__ import annotations

import collections
import json
import math
from fractions import Fraction

import numpy as np
import pyarrow as pa
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance import WeightTable
from balance.errors import InvalidArgumentError, InvalidDataError
from pipelines.config import Shard, StatsConfig
from pipelines.io.plan import plan_inputs
from pipelines.counting.table import build_table
from pipelines.counting.combiners import CountCombineFn
from pipelines.counting.count import CountShards

WORDS = ["Zebra", "apple", "Äpfel", "éclair", "猫", "🐈 emoji", "a,b", 'q"t', "ß", "zz", "Z", "a b",
         "\ufb01n", "\uffff"]
SHARDS = 3
BATCH = 64  # several batches per shard


def zipf_labels(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    vocabulary = WORDS + [f"class-{i:04d}" for i in range(400)]
    freq = 1.0 / np.arange(1, len(vocabulary) + 1)
    return [vocabulary[i] for i in rng.choice(len(vocabulary), size=n, p=freq / freq.sum())]


def write(fmt: str, directory, rows: list, weights: list | None, *, binary: bool = False) -> tuple[str, list]:
    """Writes one record per row; returns the input pattern and the records of each shard, in order."""
    shards = [list(range(s, len(rows), SHARDS)) for s in range(SHARDS)]
    if fmt == "tfrecord":
        records = [example(label=row, w=None if weights is None else weights[i]) for i, row in enumerate(rows)]
        write_tfrecords(directory, records, shards=SHARDS)  # round-robin, as ``shards``
        return str(directory / "*"), shards
    for s, index in enumerate(shards):
        labels = [rows[i] for i in index]
        columns: dict = {"label": pa.array([None if v is None else v.encode() for v in labels], pa.binary())
                         if binary else labels}
        if weights is not None:
            columns["w"] = [weights[i] for i in index]
        if fmt == "parquet":
            write_parquet(directory / f"p{s}.parquet", columns, row_group_size=len(index))
        else:
            write_csv(directory / f"c{s}.csv", columns)
    return str(directory / ("*.parquet" if fmt == "parquet" else "*.csv")), shards


def job_table(pattern: str, fmt: str, **options) -> WeightTable:
    """The job's reader DoFns, combiner and last step, without a runner."""
    config = StatsConfig(input=(pattern,), format=fmt, batch_size=None if fmt == "csv" else BATCH, **options)
    plan = plan_inputs(config)
    reader = CountShards(plan.config)
    reader.setup()
    fn = CountCombineFn(plan.config.weighted)
    accumulator = fn.create_accumulator()
    for shard in plan.shards:
        accumulator = fn.add_input(accumulator, reader.read_shard(Shard(*shard)))
    counts = fn.extract_output(fn.merge_accumulators([fn.compact(accumulator), fn.create_accumulator()]))
    return build_table(counts, plan.config, plan.inputs, plan.fingerprint)


CASES = [("parquet", False), ("parquet", True), ("csv", False), ("tfrecord", False)]


@pytest.mark.parametrize("weighting", ["none", "eighths"])
@pytest.mark.parametrize(("fmt", "binary"), CASES)
def test_string_tables_match_from_labels_and_counter(tmp_path, fmt, binary, weighting):
    rows = zipf_labels(2000, seed=len(fmt))
    rng = np.random.default_rng(1)
    weights = None if weighting == "none" else (rng.integers(0, 17, len(rows)) / 8.0).tolist()
    pattern, _ = write(fmt, tmp_path, rows, weights, binary=binary)
    options = {"weight": "w"} if weights else {}
    table = job_table(pattern, fmt, **options)
    reference = WeightTable.from_labels(np.array(rows, dtype=object), sample_weight=weights, label_key="label")
    assert same_counts(table, reference)
    expected: collections.Counter = collections.Counter()
    for i, row in enumerate(rows):
        expected[row] += 1 if weights is None else weights[i]
    # Code point order: "Z" < "Zebra" < "a b" < ... < "Äpfel" < "猫" < "\ufb01n" < "\uffff" < "🐈 emoji".
    names = sorted(expected)
    assert table.class_names == tuple(names) and table.label_dtype == "string"
    assert table.counts.tolist() == [expected[n] for n in names]
    assert table.num_examples == (len(rows) if weights is None else sum(weights))
    assert json.loads(table.to_json())["counts"] == json.loads(reference.to_json())["counts"]


def oracle(rows: list, weights: list, shards: list, batches_of) -> dict[str, float]:
    """Float weights summed as the job defines it (see the module docstring)."""
    exact: dict[str, int] = collections.defaultdict(int)
    for index in shards:
        shard: dict[str, float] = {}
        for batch in batches_of(index):
            sums: dict[str, float] = {}
            for i in batch:
                sums[rows[i]] = sums.get(rows[i], 0.0) + weights[i]
            for name, total in sums.items():
                shard[name] = shard.get(name, 0.0) + total
        for name, total in shard.items():
            exact[name] += math.floor(Fraction(total) * 2**64)
    return {name: float(Fraction(total, 2**64)) for name, total in exact.items()}


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tfrecord"])
def test_float_weights_are_summed_exactly_as_defined(tmp_path, fmt):
    rows = zipf_labels(1500, seed=7)
    weights = np.random.default_rng(2).random(len(rows)).tolist()
    pattern, shards = write(fmt, tmp_path, rows, weights)
    table = job_table(pattern, fmt, weight="w")
    if fmt == "tfrecord":  # a float_list holds float32
        weights = np.float32(weights).astype(np.float64).tolist()
    # A small CSV file is one batch of pyarrow's streaming reader; the others are read BATCH records at a time.
    batches_of = (lambda index: [index]) if fmt == "csv" else (
        lambda index: [index[i:i + BATCH] for i in range(0, len(index), BATCH)])
    expected = oracle(rows, weights, shards, batches_of)
    assert table.class_names == tuple(sorted(expected))
    assert table.counts.tolist() == [expected[n] for n in sorted(expected)]


@pytest.mark.parametrize("fmt", ["parquet", "csv", "tfrecord"])
def test_bad_string_records_are_counted_not_fatal(tmp_path, fmt):
    rows: list = zipf_labels(300, seed=3)
    weights = [1.0] * len(rows)
    rows[5] = None  # missing label
    weights[9] = -1.0  # bad weight
    pattern, _ = write(fmt, tmp_path, rows, weights)
    with pytest.raises(InvalidDataError, match="bad_missing_label: 1 record"):
        job_table(pattern, fmt, weight="w")
    table = job_table(pattern, fmt, weight="w", max_bad_fraction=0.01)
    kept = [row for i, row in enumerate(rows) if i not in (5, 9)]
    assert same_counts(table, WeightTable.from_labels(np.array(kept, dtype=object), label_key="label"))


def test_invalid_utf8_names_the_record(tmp_path):
    rows = [w.encode() for w in zipf_labels(200, seed=4)]
    rows[130] = b"ok\xff"
    write_tfrecords(tmp_path, [example(label=row) for row in rows], shards=1)
    with pytest.raises(InvalidDataError, match=r"Expected UTF-8 text.*record 130"):
        job_table(str(tmp_path / "*"), "tfrecord")
    with pytest.raises(InvalidDataError, match=r"Expected UTF-8 text.*example 130"):
        WeightTable.from_labels(np.array(rows, dtype=object))


def test_a_two_string_record_is_a_wrong_shape_record(tmp_path):
    rows: list = zipf_labels(100, seed=5)
    records = [example(label=row) for row in rows] + [example(label=["apple", "zz"])]
    write_tfrecords(tmp_path, records, shards=1)
    table = job_table(str(tmp_path / "*"), "tfrecord", max_bad_fraction=0.05)
    assert same_counts(table, WeightTable.from_labels(np.array(rows, dtype=object), label_key="label"))
    with pytest.raises(InvalidDataError, match="bad_wrong_shape: 1 record"):
        job_table(str(tmp_path / "*"), "tfrecord")


def test_class_names_fix_the_order_and_refuse_unknown_strings(tmp_path):
    rows = zipf_labels(500, seed=6)
    pattern, _ = write("parquet", tmp_path, rows, None)
    order = tuple(sorted(set(rows), reverse=True))
    table = job_table(pattern, "parquet", class_names=order, num_classes=len(order))
    assert table.class_names == order
    assert table.counts.tolist() == [rows.count(n) for n in order]
    with pytest.raises(ValueError, match="unknown"):
        job_table(pattern, "parquet", class_names=order[1:], num_classes=len(order) - 1)


def test_lists_of_strings_stay_refused_for_multilabel(tmp_path):
    # String labels are supported with one label per example, in memory and in the job alike.
    with pytest.raises(InvalidDataError, match="lists of integer class ids"):
        WeightTable.from_labels([["a", "b"], ["c"]], task="multilabel")
    with pytest.raises(InvalidArgumentError, match="String labels are supported with one label per example"):
        StatsConfig(input=("x",), task="multilabel", label_dtype="string")
    write_parquet(tmp_path / "l.parquet", {"label": [["a", "b"], ["c"], ["a"]]})
    with pytest.raises(InvalidDataError, match="bad_wrong_type: 3 record"):
        job_table(str(tmp_path / "l.parquet"), "parquet", task="multilabel")


@pytest.mark.parametrize("weighted", [False, True])
def test_string_counts_merge_exactly_in_any_order_and_compaction_schedule(monkeypatch, weighted):
    import itertools

    from balance import string_counts
    from pipelines.counting.shard import ShardCounter

    config = StatsConfig(input=("x",), weight="w" if weighted else None, batch_size=BATCH)

    def shards():
        rng = np.random.default_rng(8)
        out = []
        for s in range(4):
            rows = zipf_labels(int(rng.integers(50, 400)), seed=10 + s)
            weights = rng.random(len(rows)) * 3 if weighted else None  # arbitrary floats
            counter = ShardCounter(config, f"s{s}")
            for start in range(0, len(rows), BATCH):
                counter.add(pa.array(rows[start:start + BATCH]), np.ones(len(rows[start:start + BATCH]), np.int64),
                            None if weights is None else weights[start:start + BATCH])
            out.append(counter.finish())
        return out

    def merged(parts):
        fn = CountCombineFn(weighted)
        accumulator = fn.create_accumulator()
        for part in parts:
            accumulator = fn.add_input(accumulator, part)
        return dict(fn.extract_output(accumulator).names.items())

    reference = merged(shards())
    for compact_at, growth in ((16, 1), (64, 2)):  # compactions in the middle of shards and of the merge
        monkeypatch.setattr(string_counts, "_COMPACT_AT", compact_at)
        monkeypatch.setattr(string_counts, "_GROWTH", growth)
        parts = shards()
        for order in itertools.permutations(range(4)):
            assert merged([parts[i] for i in order]) == reference


def test_a_missing_string_label_is_refused_not_counted_as_a_class():
    with pytest.raises(ValueError, match=r"labels.*Received: labels='None'. Found in example 2"):
        WeightTable.from_labels(np.array(["cat", "dog", None, "ant"], dtype=object))
