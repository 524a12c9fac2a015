"""Sample-weight lookup on every label form; unknown labels; model checks."""

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

COUNTS = [60.0, 30.0, 10.0]


@pytest.fixture
def table():
    return WeightTable.from_counts(COUNTS, class_names=["cat", "dog", "eel"])


def weights_of(ds):
    return np.concatenate([np.reshape(e[2], (-1,) + np.shape(e[2])[1:]) for e in ds.as_numpy_iterator()])


def expected(table, ids):
    return table.class_weights("balanced")[ids]


@pytest.mark.parametrize("batched", [False, True])
def test_scalar_labels(table, batched):
    ids = np.array([0, 1, 2, 2, 1, 0])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((6, 2)), ids))
    ds = ds.batch(4) if batched else ds
    out = balance.attach_sample_weights(ds, table)
    assert out.element_spec[2].shape.rank == (1 if batched else 0)
    np.testing.assert_allclose(weights_of(out if batched else out.batch(6)), expected(table, ids))
    # sklearn-style oracle: balanced = n / (K n_c).
    np.testing.assert_allclose(expected(table, [0, 1, 2]), [100 / 180, 100 / 90, 100 / 30], rtol=1e-6)


def test_one_hot_labels_use_argmax(table):
    ids = np.array([2, 0, 1])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(3), np.eye(3, dtype=np.float32)[ids])).batch(3)
    out = balance.attach_sample_weights(ds, table)
    assert out.element_spec[2].shape.as_list() == [None]
    np.testing.assert_allclose(weights_of(out), expected(table, ids))


def test_string_labels_through_class_names(table):
    names = np.array([b"eel", b"cat", b"dog"])
    ds = tf.data.Dataset.from_tensor_slices({"x": np.zeros(3), "label": names}).batch(2)
    np.testing.assert_allclose(weights_of(balance.attach_sample_weights(ds, table)), expected(table, [2, 0, 1]))


@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4)])  # tokens (B, T), pixels (B, H, W)
def test_dense_label_maps_give_weight_maps(shape):
    rng = np.random.default_rng(0)
    maps = rng.choice(3, size=(6,) + shape[1:], p=[0.7, 0.2, 0.1])
    table = WeightTable.from_labels(maps, label_form="dense")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(6), maps)).batch(shape[0])
    out = balance.rebalance(ds, table, method="weight", label_form="dense")
    ws = weights_of(out)
    assert ws.shape == maps.shape
    plan = balance.sampling_plan(table, sampling_strength=0.0)
    np.testing.assert_allclose(ws, plan.weights[maps], rtol=1e-6)
    per_class = [ws[maps == c].sum() for c in range(3)]
    np.testing.assert_allclose(per_class, [maps.size / 3] * 3, rtol=1e-5)  # equal weighted shares


def test_multi_hot_gives_per_label_matrix():
    rows = np.array([[1, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=np.float32)
    table = WeightTable.from_labels(rows, task="multilabel")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(4), rows)).batch(4)
    out = balance.attach_sample_weights(ds, table, scheme="pos_weight")
    ws = weights_of(out)
    pos, neg = table.label_weights("pos_weight")
    np.testing.assert_allclose(ws, rows * pos + (1 - rows) * neg)
    # pos_weight = negatives / positives, per label.
    np.testing.assert_allclose(pos, [2 / 2, 3 / 1, 2 / 2])


def test_binary_column_labels_and_existing_weights():
    table = WeightTable.from_counts([90.0, 10.0], task="binary")
    ys = np.array([[0.0], [1.0], [1.0]], np.float32)
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(3), ys, np.array([1.0, 1.0, 0.5]))).batch(3)
    ws = weights_of(balance.attach_sample_weights(ds, table))
    w = table.class_weights("balanced")
    np.testing.assert_allclose(ws[:, 0], [w[0], w[1], 0.5 * w[1]])


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([0, 3]), r"class ids in \[0, 3\)"),
        (np.array([-1, 0]), r"class ids in \[0, 3\)"),
        (np.array([b"cat", b"fox"]), "one of the table.{1,2}s class names"),
        (np.array([[0, 0, 0], [1, 0, 0]], np.float32), "one-hot rows with a positive entry"),
        (np.array([[0, 255], [1, 2]]), r"class ids in \[0, 3\)"),
    ],
)
def test_unknown_labels_fail_at_run_time(table, labels, match):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(len(labels)), labels)).batch(2)
    out = balance.attach_sample_weights(ds, table)
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        list(out.as_numpy_iterator())


def test_unknown_labels_can_take_a_default_weight(table):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(3), np.array([0, 255, 2]))).batch(3)
    out = balance.attach_sample_weights(ds, table, on_unknown=0.0)
    np.testing.assert_allclose(weights_of(out), [expected(table, 0), 0.0, expected(table, 2)])


@pytest.mark.parametrize(
    "kwargs, labels, match",
    [
        ({}, np.eye(4, dtype=np.float32)[[0, 1]], "disagree on the number of classes"),
        ({"on_unknown": "skip"}, np.array([0, 1]), "`on_unknown`. Expected .error. or a float"),
        ({"label_form": "multi_hot"}, np.array([0, 1]), "'multi_hot' only with a multilabel table"),
        ({"weights": [1.0, 2.0]}, np.array([0, 1]), "`weights`. Expected 3 finite weights"),
    ],
)
def test_option_errors(table, kwargs, labels, match):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(2), labels)).batch(2)
    with pytest.raises(ValueError, match=match):
        balance.attach_sample_weights(ds, table, **kwargs)


def test_string_labels_need_class_names():
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(2), np.array([b"a", b"b"])))
    with pytest.raises(ValueError, match="a table with class_names"):
        balance.attach_sample_weights(ds, WeightTable.from_counts([1.0, 1.0]))


def test_check_model_outputs(table):
    import keras

    def model(units, shape=(3,)):
        inputs = keras.Input(shape)
        return keras.Model(inputs, keras.layers.Dense(units)(inputs))

    assert balance.check_model_outputs(model(3), table) == 3
    with pytest.raises(ValueError, match="`model`. Expected 3 outputs .* Received: model='4 outputs"):
        balance.check_model_outputs(model(4), table)
    binary = WeightTable.from_counts([9.0, 1.0], task="binary")
    assert balance.check_model_outputs(model(1), binary) == 1
    with pytest.raises(ValueError, match="1 or 2 outputs"):
        balance.check_model_outputs(model(3), binary)
    assert balance.check_model_outputs(keras.Sequential([keras.layers.Dense(3)]), table) is None
