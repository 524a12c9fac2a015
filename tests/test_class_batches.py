"""Batches of a guaranteed class composition: every batch's composition is checked."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable
from balance.class_batches import _pk_stream, inclusion_probabilities, rarest_classes

COUNTS = [2000, 1000, 600, 400, 300, 250, 200, 150, 60, 40]


def data(counts=COUNTS, seed=0):
    y = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    return np.arange(len(y), dtype="float32")[:, None], y  # x is the example's id


def check_pk(batch, y, p, k):
    ids, labels = batch
    ids = ids[:, 0].astype(int)
    assert labels.shape == (p * k,)
    np.testing.assert_array_equal(y[ids], labels)  # each example keeps its own label
    groups, examples = labels.reshape(p, k), ids.reshape(p, k)
    assert (groups == groups[:, :1]).all()  # K consecutive rows per class
    assert len(set(groups[:, 0])) == p  # P distinct classes
    assert all(len(set(row)) == k for row in examples)  # K distinct examples per class


def test_every_batch_has_p_classes_of_k_examples_and_the_mix_is_the_target():
    x, y = data()
    table = WeightTable.from_labels(y)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    out = balance.pk_batches(ds, table, classes_per_batch=4, examples_per_class=3, seed=0, block_size=480)
    counts = np.zeros(10)
    for xb, yb in out.take(1500).as_numpy_iterator():
        check_pk((xb, yb), y, 4, 3)
        counts += np.bincount(yb, minlength=10)
    assert np.abs(counts / counts.sum() - 0.1).sum() < 0.03
    assert out.element_spec[1].shape.as_list() == [12]


def test_target_shares_and_capped_classes():
    x, y = data()
    table = WeightTable.from_labels(y)
    target = {0: 4, 1: 1, 2: 1, 3: 1, 9: 1}  # class 0 wanted in more than every batch: capped at 1
    pi = inclusion_probabilities(balance.resolve_target(table, target), 3)
    np.testing.assert_allclose(pi[[0, 1, 2, 3, 9]], [1, 0.5, 0.5, 0.5, 0.5])
    assert pi[4:9].sum() == 0
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    out = balance.pk_batches(ds, table, classes_per_batch=3, examples_per_class=2, target=target, seed=1)
    seen = np.zeros(10)
    for xb, yb in out.take(1000).as_numpy_iterator():
        check_pk((xb, yb), y, 3, 2)
        seen += np.isin(np.arange(10), yb)
    np.testing.assert_allclose(seen[[0, 1, 2, 3, 9]] / 1000, pi[[0, 1, 2, 3, 9]], atol=0.05)
    assert seen[4:9].sum() == 0


def test_batches_wait_for_late_rare_classes_without_bending_the_mix():
    x, y = data()
    y = np.concatenate([np.sort(y[y < 8]), y[y >= 8]])  # classes 8 and 9 only arrive at the end
    table = WeightTable.from_labels(y)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    out = _pk_stream(ds, table, classes_per_batch=4, examples_per_class=3, target=None, buffer_per_class=None,
                     seed=2, label=None, block_size=480, max_waiting=16)
    counts, waited = np.zeros(10), 0
    for (xb, yb), w in out.take(1500).as_numpy_iterator():
        check_pk((xb, yb), y, 4, 3)
        counts += np.bincount(yb, minlength=10)
        waited += w
    assert waited > 0
    assert np.abs(counts / counts.sum() - 0.1).sum() < 0.05


def test_same_seed_same_stream_and_batched_dict_input():
    x, y = data()
    table = WeightTable.from_labels(y)
    ds = tf.data.Dataset.from_tensor_slices({"id": x, "label": y}).batch(100).repeat()

    def first(seed):
        out = balance.pk_batches(ds, table, classes_per_batch=5, examples_per_class=2, seed=seed)
        return [b["id"] for b in out.take(20).as_numpy_iterator()]

    a, b, c = first(3), first(3), first(4)
    assert all((u == v).all() for u, v in zip(a, b, strict=True))
    assert any((u != v).any() for u, v in zip(a, c, strict=True))
    for batch in balance.pk_batches(ds, table, classes_per_batch=5, examples_per_class=2,
                                    seed=0).take(50).as_numpy_iterator():
        check_pk((batch["id"], batch["label"]), y, 5, 2)


def test_every_batch_holds_the_rarest_classes():
    x, y = data()
    table = WeightTable.from_labels(y)
    rare = rarest_classes(table, 3)
    assert sorted(rare.tolist()) == [7, 8, 9]
    ds = tf.data.Dataset.from_tensor_slices((x, y)).repeat()
    out = balance.rare_class_batches(ds, table, batch_size=32, rarest=3, min_per_batch=2, seed=0, block_size=290)
    rest_ids = []
    for xb, yb in out.take(400).as_numpy_iterator():
        ids = xb[:, 0].astype(int)
        np.testing.assert_array_equal(y[ids], yb)
        assert yb.shape == (32,)
        for c in rare:
            assert (yb == c).sum() >= 2
        head = ids[:6].reshape(3, 2)
        assert all(len(set(row)) == 2 for row in head)  # distinct within a class
        rest_ids.append(ids[6:])
    # The rest of the batches is the input, every example once, shuffled within blocks of 11 batches.
    rest = np.concatenate(rest_ids)[: 36 * 286].reshape(36, 286)
    expected = ((rest[0].min() + np.arange(rest.size)) % len(y)).reshape(rest.shape)  # the repeated input
    np.testing.assert_array_equal(np.sort(rest, axis=1), np.sort(expected, axis=1))
    assert (np.diff(rest[0]) == 1).mean() < 0.1  # shuffled


@pytest.mark.parametrize("kwargs, match", [
    ({"classes_per_batch": 11, "examples_per_class": 2}, "`classes_per_batch`"),
    ({"classes_per_batch": 2, "examples_per_class": 41}, "`examples_per_class`"),
    ({"classes_per_batch": 2, "examples_per_class": 4, "buffer_per_class": 3}, "`buffer_per_class`"),
    ({"classes_per_batch": 0, "examples_per_class": 4}, "`classes_per_batch`"),
])
def test_pk_arguments_are_checked(kwargs, match):
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match=match):
        balance.pk_batches(ds, WeightTable.from_labels(y), **kwargs)


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 8, "rarest": 4, "min_per_batch": 2}, "`min_per_batch`"),
    ({"batch_size": 64, "rarest": 11, "min_per_batch": 1}, "`rarest`"),
    ({"batch_size": 256, "rarest": 2, "min_per_batch": 41}, "`min_per_batch`"),
])
def test_rare_arguments_are_checked(kwargs, match):
    x, y = data()
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    with pytest.raises(ValueError, match=match):
        balance.rare_class_batches(ds, WeightTable.from_labels(y), **kwargs)


def test_a_class_the_input_lacks_stops_the_stream_instead_of_waiting_forever():
    x, y = data()
    table = WeightTable.from_labels(y)
    keep = y != 9  # the table has class 9, the input does not
    ds = tf.data.Dataset.from_tensor_slices((x[keep], y[keep])).repeat()
    for out in (balance.pk_batches(ds, table, classes_per_batch=10, examples_per_class=2, seed=0),
                balance.rare_class_batches(ds, table, batch_size=32, rarest=2, min_per_batch=2, seed=0)):
        with pytest.raises(tf.errors.InvalidArgumentError, match="at least 2 examples of every class"):
            for _ in out.take(10):
                pass


def test_multilabel_and_variable_shapes_are_refused():
    table = WeightTable.from_labels(np.eye(3, dtype="float32")[[0, 1, 2, 0]], task="multilabel")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 1), "float32"), np.eye(3, dtype="float32")[[0, 1, 2, 0]]))
    with pytest.raises(ValueError, match="`table`"):
        balance.pk_batches(ds, table, classes_per_batch=2, examples_per_class=1)
    ragged = tf.data.Dataset.from_generator(lambda: iter([(np.zeros(2, "float32"), 0)]), output_signature=(
        tf.TensorSpec([None], tf.float32), tf.TensorSpec([], tf.int64)))
    with pytest.raises(ValueError, match="`dataset`"):
        balance.pk_batches(ragged, WeightTable.from_counts([3, 3]), classes_per_batch=2, examples_per_class=1)
