"""``CountCombineFn`` without a pipeline: merge, compact and sequential adds
agree, with empty shards, in any order, exactly (also with float weights)."""

from __future__ import annotations

import itertools
import pickle

import numpy as np
import pytest

from balance.errors import InvalidDataError
from balance.table import WeightTable
from pipelines.config import StatsConfig
from pipelines.counting.shard import ShardCounter
from pipelines.counting.table import build_table
from pipelines.counting.combiners import ClassCounts, CountCombineFn, from_exact


def shard_counts(config: StatsConfig, labels, weights=None, path="f") -> ClassCounts:
    counter = ShardCounter(config, path)
    labels = np.asarray(labels)
    for start in range(0, len(labels), 7):  # several batches per shard
        part = labels[start:start + 7]
        counter.add(part, np.ones(len(part), np.int64),
                    None if weights is None else np.asarray(weights)[start:start + 7])
    return counter.finish()


def combine_sequential(fn, inputs):
    acc = fn.create_accumulator()
    for x in inputs:
        acc = fn.add_input(acc, x)
    return fn.extract_output(acc)


def combine_merged(fn, inputs, parts):
    accs = []
    for chunk in np.array_split(np.arange(len(inputs)), parts):
        acc = fn.create_accumulator()
        for i in chunk:
            acc = fn.add_input(acc, inputs[i])
        accs.append(fn.compact(acc))
    return fn.extract_output(fn.merge_accumulators(accs))


def as_tuple(counts: ClassCounts):
    return (counts.ids.tolist(), sorted(counts.names.items()), counts.examples, counts.records,
            sorted(counts.bad.items()), counts.kinds)


@pytest.mark.parametrize("weighted", [False, True])
def test_merge_compact_and_sequential_agree_in_any_order(weighted):
    rng = np.random.default_rng(0)
    config = StatsConfig(input=("x",), weight="w" if weighted else None)
    shards = []
    for i in range(6):
        n = 0 if i in (1, 4) else int(rng.integers(5, 40))  # empty shards too
        labels = rng.integers(0, 3 + i, n)
        weights = rng.random(n) * 3 if weighted else None  # arbitrary floats
        shards.append(shard_counts(config, labels, weights, path=f"s{i}"))
    fn = CountCombineFn(weighted)
    reference = as_tuple(combine_sequential(fn, shards))
    for order in itertools.islice(itertools.permutations(range(6)), 0, 720, 37):
        ordered = [shards[i] for i in order]
        assert as_tuple(combine_sequential(fn, ordered)) == reference
        for parts in (1, 2, 4):
            assert as_tuple(combine_merged(fn, ordered, parts)) == reference
    assert len(reference[0]) == max(len(s.ids) for s in shards)


def test_weighted_counts_match_float_sum():
    rng = np.random.default_rng(1)
    config = StatsConfig(input=("x",), weight="w")
    labels, weights = rng.integers(0, 4, 500), rng.random(500)
    merged = combine_sequential(CountCombineFn(True), [
        shard_counts(config, labels[i::5], weights[i::5]) for i in range(5)])
    expected = np.bincount(labels, weights=weights, minlength=4)
    np.testing.assert_allclose(from_exact(merged.ids, True), expected, rtol=1e-12)
    assert from_exact(merged.examples, True) == pytest.approx(weights.sum(), rel=1e-12)


def test_empty_input_gives_empty_counts_and_a_clear_error():
    fn = CountCombineFn()
    empty = fn.extract_output(fn.merge_accumulators([]))
    assert empty.records == 0 and empty.ids.size == 0
    assert as_tuple(combine_merged(fn, [], 1)) == as_tuple(empty)
    with pytest.raises(ValueError, match="at least one record"):
        build_table(empty, StatsConfig(input=("x",)), ["x"], "sha256:0")


def test_string_counts_merge_and_sort():
    config = StatsConfig(input=("x",))
    a = shard_counts(config, np.array([b"b", b"a", b"b"], dtype=object))
    b = shard_counts(config, np.array(["c", "a"], dtype=object))
    merged = combine_merged(CountCombineFn(), [a, b], 2)
    assert merged.names == {"a": 2, "b": 2, "c": 1}
    table = build_table(merged, config, ["x"], "sha256:0")
    assert table.class_names == ("a", "b", "c")
    np.testing.assert_array_equal(table.counts, [2, 2, 1])


def test_bad_counters_and_sample_file_are_order_independent():
    config = StatsConfig(input=("x",))
    shards = []
    for path in ("z.tfrecord", "a.tfrecord", "m.tfrecord"):
        counter = ShardCounter(config, path)
        counter.add(np.array([1, 2]), np.array([1, 0, 1]))  # one missing label
        shards.append(counter.finish())
    fn = CountCombineFn()
    for order in itertools.permutations(shards):
        merged = combine_merged(fn, list(order), 2)
        assert merged.bad == {"missing_label": 3} and merged.bad_files == {"missing_label": "a.tfrecord"}
        assert merged.records == 9


def test_multi_hot_width_clash_fails_in_any_order():
    config = StatsConfig(input=("x",), task="multilabel", label_form="multi_hot")
    a, b = ShardCounter(config, "a"), ShardCounter(config, "b")
    a.add(np.array([1, 0, 1]), np.array([3]))
    b.add(np.array([1, 0]), np.array([2]))
    for pair in ([a.finish(), b.finish()], [b.finish(), a.finish()]):
        merged = combine_merged(CountCombineFn(), pair, 2)
        # Carried to the last step as data (so multi-process runners report it typed), then raised.
        assert isinstance(merged.error, InvalidDataError)
        with pytest.raises(InvalidDataError, match="length 2 and 3"):
            build_table(merged, config, ["x"], "sha256:0")


def test_accumulator_is_small_and_table_matches_from_labels():
    config = StatsConfig(input=("x",), num_classes=100_000)
    labels = np.random.default_rng(2).integers(0, 100_000, 20_000)
    merged = combine_merged(CountCombineFn(), [shard_counts(config, labels[i::3]) for i in range(3)], 2)
    assert len(pickle.dumps(merged)) < 100_000 * 8 + 10_000  # one int64 per class, nothing per example
    table = build_table(merged, config, ["x"], "sha256:0")
    ref = WeightTable.from_labels(labels, num_classes=100_000)
    np.testing.assert_array_equal(table.counts, ref.counts)
