"""``model.fit`` on rebalanced datasets, every label form; MirroredStrategy."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

RNG = np.random.default_rng(0)


def fit(model, ds, loss, steps=None):
    """Trains on the rebalanced dataset, then checks that Keras's loss on one of its batches is the
    loss computed by hand with that batch's weights (so the weights reach the loss, broadcast per
    example, token or label as intended)."""
    model.compile(optimizer="adam", loss=loss)
    history = model.fit(ds, epochs=2, steps_per_epoch=steps, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    batch = next(iter(ds))
    keras_loss = model.evaluate(tf.data.Dataset.from_tensors(batch), verbose=0)
    np.testing.assert_allclose(keras_loss, hand_loss(loss, model, *batch), rtol=1e-4)
    return history.history["loss"]


def hand_loss(loss, model, x, y, weights=None):
    """``sum(w * loss) / number of losses``, Keras's ``sum_over_batch_size``, in numpy."""
    logits = np.asarray(model(x), dtype=np.float64)
    y = np.asarray(y)
    if isinstance(loss, keras.losses.BinaryCrossentropy):
        y = y.reshape(logits.shape).astype(np.float64)
        per = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
        per = per.mean(axis=-1)
    else:
        log_p = logits - np.log(np.sum(np.exp(logits - logits.max(-1, keepdims=True)), -1, keepdims=True)) \
            - logits.max(-1, keepdims=True)
        if isinstance(loss, keras.losses.SparseCategoricalCrossentropy):
            per = -np.take_along_axis(log_p, y.reshape(log_p.shape[:-1] + (1,)).astype(int), -1)[..., 0]
        else:
            per = -np.sum(y * log_p, axis=-1)
    w = np.ones_like(per) if weights is None else np.asarray(weights, np.float64).reshape(per.shape)
    return np.sum(w * per) / per.size


def dense_model(inputs, units, shape=None):
    x = keras.layers.Dense(8, activation="relu")(inputs)
    x = keras.layers.Dense(units)(x)
    return keras.Model(inputs, keras.layers.Reshape(shape)(x) if shape else x)


@pytest.mark.parametrize("method", ["resample", "weight", "both"])
def test_dict_features_sparse_labels(method):
    y = RNG.choice(3, size=600, p=[0.8, 0.15, 0.05])
    table = WeightTable.from_labels(y)
    ds = tf.data.Dataset.from_tensor_slices({"features": RNG.normal(size=(600, 4)).astype("float32"), "label": y})
    ds = balance.rebalance(ds, table, method=method, **({} if method == "weight" else {"seed": 0})).batch(32)
    inputs = {"features": keras.Input((4,), name="features")}
    model = keras.Model(inputs, dense_model(inputs["features"], 3).output)
    assert balance.check_model_outputs(model, table) == 3
    fit(model, ds, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_one_hot_labels_batched_input():
    ids = RNG.choice(4, size=512, p=[0.7, 0.1, 0.1, 0.1])
    table = WeightTable.from_labels(ids)
    ds = tf.data.Dataset.from_tensor_slices((RNG.normal(size=(512, 4)).astype("float32"),
                                             np.eye(4, dtype="float32")[ids])).batch(32, drop_remainder=True)
    ds = balance.rebalance(ds, table, seed=0, mixing_window=256)
    fit(dense_model(keras.Input((4,)), 4), ds, keras.losses.CategoricalCrossentropy(from_logits=True))


def test_tfds_as_supervised():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=256, policy=tfds.testing.MockPolicy.USE_CODE):
        ds = tfds.load("mnist", split="train", as_supervised=True)
    labels = np.array([y for _, y in ds.as_numpy_iterator()])
    table = WeightTable.from_labels(labels, num_classes=10)
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y))
    ds = balance.rebalance(ds, table, target="original", sampling_strength=0.5, seed=0).batch(32)
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs)))
    fit(model, ds, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


def test_binary_sigmoid_column():
    ids = RNG.choice(2, size=400, p=[0.95, 0.05])
    table = WeightTable.from_labels(ids, task="binary")
    ds = tf.data.Dataset.from_tensor_slices((RNG.normal(size=(400, 3)).astype("float32"),
                                             ids.astype("float32")[:, None])).batch(20, drop_remainder=True)
    ds = balance.rebalance(ds, table, seed=0, mixing_window=200)
    fit(dense_model(keras.Input((3,)), 1), ds, keras.losses.BinaryCrossentropy(from_logits=True))


def test_multilabel_per_label_weights():
    rows = (RNG.random((300, 5)) < [0.5, 0.2, 0.1, 0.05, 0.03]).astype("float32")
    table = WeightTable.from_labels(rows, task="multilabel")
    x = RNG.normal(size=(300, 3)).astype("float32")
    # A trailing axis of 1 keeps the binary cross-entropy per label, so the
    # (B, L) weight matrix weights each label.
    ds = tf.data.Dataset.from_tensor_slices((x, rows[..., None])).batch(30)
    weighted = balance.rebalance(ds, table, method="weight", scheme="pos_weight")
    assert weighted.element_spec[2].shape.as_list() == [None, 5, 1]
    model = dense_model(keras.Input((3,)), 5, shape=(5, 1))
    assert balance.check_model_outputs(model, table) == 5
    fit(model, weighted, keras.losses.BinaryCrossentropy(from_logits=True))
    resampled = balance.rebalance(tf.data.Dataset.from_tensor_slices((x, rows)).batch(30), table,
                                  method="resample", seed=0, batch_size=30)
    fit(dense_model(keras.Input((3,)), 5), resampled, keras.losses.BinaryCrossentropy(from_logits=True))


def test_per_token_labels():
    tokens = RNG.choice(3, size=(200, 6), p=[0.85, 0.1, 0.05])
    table = WeightTable.from_labels(tokens, label_form="dense")
    x = RNG.normal(size=(200, 6, 2)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, tokens)).batch(20)
    ds = balance.rebalance(ds, table, method="weight", label_form="dense")
    assert ds.element_spec[2].shape.as_list() == [None, 6]
    fit(dense_model(keras.Input((6, 2)), 3), ds, keras.losses.SparseCategoricalCrossentropy(from_logits=True))


MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, balance

    rng = np.random.default_rng(0)
    y = rng.choice(3, size=4000, p=[0.8, 0.15, 0.05])
    x = rng.normal(size=(4000, 4)).astype("float32")
    table = balance.WeightTable.from_labels(y)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    base = tf.data.Dataset.from_tensor_slices((x, y))

    # 1. One pipeline, split across replicas.
    ds = balance.rebalance(base.batch(64, drop_remainder=True), table, seed=0)
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(ds, epochs=2, verbose=0)

    # 2. Input sharded per worker (input pipeline), a seed per pipeline.
    def per_worker(ctx):
        shard = base.shard(ctx.num_input_pipelines, ctx.input_pipeline_id)
        return balance.rebalance(shard, table, method="resample", seed=10 + ctx.input_pipeline_id).batch(
            ctx.get_per_replica_batch_size(64))
    dist = strategy.distribute_datasets_from_function(per_worker)
    seen = []
    for batch in dist:
        for part in strategy.experimental_local_results(batch[1]):
            seen.append(part.numpy())
    seen = np.concatenate(seen)
    json.dump({"replicas": strategy.num_replicas_in_sync, "loss": history.history["loss"],
               "mix": (np.bincount(seen, minlength=3) / len(seen)).tolist(), "n": len(seen)}, sys.stdout)
    """
)


def test_mirrored_strategy_two_logical_cpus():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env, check=False,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["replicas"] == 2
    assert np.all(np.isfinite(out["loss"]))
    np.testing.assert_allclose(out["mix"], [1 / 3] * 3, atol=0.03)
    assert abs(out["n"] - 4000) < 200
