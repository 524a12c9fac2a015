"""Bad input to the tf.data layer: refused with a message naming the value, never ignored."""

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

TABLE = WeightTable.from_counts([30.0, 10.0, 5.0])


def pairs(labels):
    return tf.data.Dataset.from_tensor_slices((np.zeros(len(labels), np.float32), labels))


@pytest.mark.parametrize("method", ["weight", "both", "resample"])
@pytest.mark.parametrize("bad", [1.5, float("nan"), float("inf")])
def test_fractional_or_nan_float_labels_stop_the_pipeline(method, bad):
    labels = np.array([0.0, bad, 2.0, 1.0], np.float32)
    kwargs = {} if method == "weight" else {"seed": 0}
    out = balance.rebalance(pairs(labels), TABLE, method=method, batch_size=2, **kwargs)
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected whole-number class ids") as error:
        list(out)
    assert ("1.5" if bad == 1.5 else str(bad).replace("inf", "inf")) in str(error.value).lower()


def test_whole_number_float_labels_are_class_ids():
    labels = np.array([0.0, 1.0, 2.0, 1.0], np.float32)
    batch = next(iter(balance.rebalance(pairs(labels), TABLE, method="weight", batch_size=4)))
    np.testing.assert_allclose(batch[2].numpy(), TABLE.class_weights("balanced")[[0, 1, 2, 1]], rtol=1e-6)


def test_fractional_labels_are_refused_even_with_a_default_weight():
    out = balance.attach_sample_weights(pairs(np.array([0.5, 1.0], np.float32)), TABLE, on_unknown=0.0,
                                        batch_size=2)
    with pytest.raises(tf.errors.InvalidArgumentError, match="whole-number"):
        list(out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "weight", "seed": 0}, "`seed`. Expected None for method='weight'"),
        ({"method": "weight", "mixing_window": 4096}, "`mixing_window`. Expected None for method='weight'"),
        ({"method": "weight", "epoch_size": "keep_all"}, "`epoch_size`. Expected None for method='weight'"),
        ({"method": "weight", "redraw_each_epoch": False}, "`redraw_each_epoch`. Expected None"),
        ({"method": "resample", "repeat_threshold": 0.1}, "`repeat_threshold`. Expected None for a single-label"),
        ({"batch_size": 0}, "`batch_size`. Expected a positive int. Received: batch_size=0"),
        ({"batch_size": 2.5}, "`batch_size`. Expected a positive int. Received: batch_size=2.5"),
        ({"on_unknown": "default_weight"}, "`on_unknown`. Expected 'error' or a float"),
        ({"on_unknown": -1.0}, "`on_unknown`. Expected 'error' or a float >= 0"),
        ({"label": 3}, "`label`. Expected a dict key"),
        ({"label": "y"}, "`label`. Expected a function for elements that are not dicts"),
        ({"method": "oversample"}, "`method`. Expected one of"),
    ],
)
def test_options_a_path_cannot_use_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        balance.rebalance(pairs(np.array([0, 1, 2])), TABLE, **kwargs)


def test_dict_without_the_label_key_names_the_keys():
    ds = tf.data.Dataset.from_tensor_slices({"x": np.zeros(3), "y": np.array([0, 1, 2])})
    with pytest.raises(ValueError, match=r"`label`. Expected one of the element's keys \['x', 'y'\]"):
        balance.rebalance(ds, TABLE, batch_size=2)


def test_batch_size_with_dense_labels_is_refused():
    tokens = np.array([[0, 1, 2], [2, 1, 0]])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((2, 3)), tokens)).batch(2)
    with pytest.raises(ValueError, match="`batch_size`. Expected None for dense labels"):
        balance.rebalance(ds, TABLE, method="weight", label_form="dense", batch_size=2)
    with pytest.raises(ValueError, match="one class per example"):
        balance.rebalance(ds, TABLE, method="resample", seed=0)


@pytest.mark.parametrize("method", ["weight", "resample"])
def test_int64_ids_past_int32_are_unknown_not_wrapped(method):
    # 2**32 + 1 would wrap to class 1 in int32; it is outside the table.
    labels = np.array([0, 2**32 + 1, 2, 1], np.int64)
    kwargs = {} if method == "weight" else {"seed": 0}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 3\)") as error:
        list(balance.rebalance(pairs(labels), TABLE, method=method, batch_size=4, **kwargs))
    assert "4294967297" in str(error.value)
    kept = next(iter(balance.rebalance(pairs(labels), TABLE, method="weight", batch_size=4, on_unknown=0.0)))
    np.testing.assert_allclose(kept[2].numpy()[1], 0.0)


LONG_TAIL = np.array([0] * 90 + [1] * 10)


@pytest.mark.parametrize("method", ["resample", "both"])
def test_a_sparse_feature_is_refused_for_resampling_and_weighted_as_it_is(method):
    table = WeightTable.from_labels(LONG_TAIL)
    sparse = tf.sparse.from_dense(tf.constant(np.eye(100, 5)))
    ds = tf.data.Dataset.from_tensor_slices(({"s": sparse}, LONG_TAIL))
    with pytest.raises(ValueError, match=r"`dataset`. Expected dense or ragged features for resampling. "
                       r"Received: dataset='a tf.SparseTensor feature .*tf.sparse.to_dense"):
        balance.rebalance(ds, table, method=method, batch_size=16, seed=0)
    weighted = balance.rebalance(ds, table, method="weight", batch_size=16)
    assert sum(int(w.shape[0]) for _, _, w in weighted) == 100


@pytest.mark.parametrize("method", ["resample", "both"])
def test_ragged_features_are_resampled_with_their_rows(method):
    table = WeightTable.from_labels(LONG_TAIL)
    tokens = tf.ragged.constant([[i] * (i % 3 + 1) for i in range(100)])
    ds = tf.data.Dataset.from_tensor_slices(({"tokens": tokens, "id": np.arange(100)}, LONG_TAIL))
    for batch in balance.rebalance(ds, table, method=method, batch_size=16, seed=0):
        x = batch[0]
        for row, i in zip(x["tokens"].to_list(), x["id"].numpy(), strict=True):
            assert row == [i] * (i % 3 + 1)  # each copy keeps its own tokens
