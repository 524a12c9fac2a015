"""Every input shape users have, with every method: structure, batch size, mix, seeds.

Shapes: A unbatched dicts (with ``batch_size``), B batched dicts, C in-memory
``(x, y)`` batched by the user afterwards, D TFDS-style ``(image, label)``
tuples (with ``batch_size``).
"""

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

N, K, BATCH = 6000, 4, 64
COUNTS = [4200, 1200, 450, 150]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.permutation(np.repeat(np.arange(K), COUNTS)).astype(np.int64)
    x = np.stack([np.arange(N), rng.normal(size=N)], axis=1).astype(np.float32)  # column 0: the id
    images = rng.integers(0, 256, size=(N, 6, 6, 1), dtype=np.uint8)
    return x, y, images, WeightTable.from_labels(y)


def source(shape, data):
    x, y, images, _ = data
    if shape == "A":
        return tf.data.Dataset.from_tensor_slices({"x": x, "label": y}).batch(100).unbatch()
    if shape == "B":
        return tf.data.Dataset.from_tensor_slices({"x": x, "label": y}).batch(BATCH)
    if shape == "C":
        return tf.data.Dataset.from_tensor_slices((x, y))
    return tf.data.Dataset.from_tensor_slices((images, y))


def run(shape, method, data, seed=0):
    table = data[3]
    kwargs = {} if method == "weight" else {"seed": seed}
    if shape == "C":
        return balance.rebalance(source(shape, data), table, method=method, **kwargs).batch(BATCH)
    return balance.rebalance(source(shape, data), table, method=method, batch_size=BATCH, **kwargs)


SHAPES = ["A", "B", "C", "D"]
METHODS = ["resample", "both", "weight"]


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("shape", SHAPES)
def test_structure_dtypes_and_batch_size(data, shape, method):
    out = run(shape, method, data)
    spec = out.element_spec
    assert len(spec) == (2 if method == "resample" else 3)  # (x, y[, w]) for model.fit
    x_spec, y_spec = spec[0], spec[1]
    if shape in ("A", "B"):
        assert set(x_spec) == {"x"}  # the label left the features
        assert x_spec["x"].dtype == tf.float32 and x_spec["x"].shape[1:] == (2,)
    elif shape == "D":
        assert x_spec.dtype == tf.uint8 and x_spec.shape[1:] == (6, 6, 1)
    assert y_spec.dtype == tf.int64 and y_spec.shape.rank == 1
    if method != "resample":
        assert spec[2].dtype == tf.float32 and spec[2].shape.rank == 1
    sizes = [int(b[1].shape[0]) for b in out]
    assert all(size == BATCH for size in sizes[:-1]) and 0 < sizes[-1] <= BATCH  # batch_size honoured


def collect(out):
    ys, ws = [], []
    for batch in out.as_numpy_iterator():
        ys.append(batch[1])
        ws.append(batch[2] if len(batch) == 3 else np.ones(len(batch[1])))
    return np.concatenate(ys), np.concatenate(ws)


@pytest.mark.parametrize("shape", SHAPES)
def test_weighted_mix_hits_the_target(data, shape):
    # weight: exact; both: exact in expectation (residual weights correct the sampled mix).
    y_w, w_w = collect(run(shape, "weight", data))
    np.testing.assert_array_equal(np.sort(y_w), np.sort(data[1]))  # every example once
    np.testing.assert_allclose(np.bincount(y_w, w_w) / w_w.sum(), [1 / K] * K, atol=1e-6)
    y_b, w_b = collect(run(shape, "both", data))
    np.testing.assert_allclose(np.bincount(y_b, w_b) / w_b.sum(), [1 / K] * K, atol=0.03)
    assert w_b.mean() == pytest.approx(1.0, abs=0.05)
    y_r, _ = collect(run(shape, "resample", data))
    np.testing.assert_allclose(np.bincount(y_r, minlength=K) / len(y_r), [1 / K] * K, atol=0.03)


@pytest.mark.parametrize("shape", SHAPES)
def test_same_seed_same_stream(data, shape):
    a, _ = collect(run(shape, "both", data, seed=3))
    b, _ = collect(run(shape, "both", data, seed=3))
    c, _ = collect(run(shape, "both", data, seed=4))
    np.testing.assert_array_equal(a, b)
    assert len(a) != len(c) or np.any(a != c)


def test_resampling_spreads_copies_across_batches(data):
    x, y, _, table = data
    out = balance.rebalance(tf.data.Dataset.from_tensor_slices((x, y)), table, method="resample", seed=0,
                            batch_size=BATCH)
    worst = max(np.unique(b[0][:, 0], return_counts=True)[1].max() for b in out.as_numpy_iterator())
    # the rarest class is repeated ~10x over a block of 6000; a batch of 64 sees about one copy
    assert worst <= 4


def test_multilabel_batch_size_is_honoured():
    rows = (np.random.default_rng(1).random((500, 3)) < [0.5, 0.1, 0.02]).astype(np.float32)
    table = WeightTable.from_labels(rows, task="multilabel")
    ds = tf.data.Dataset.from_tensor_slices((np.arange(500.0), rows))
    for method in ("resample", "weight"):
        kwargs = {"seed": 0} if method == "resample" else {}
        out = balance.rebalance(ds, table, method=method, batch_size=32, **kwargs)
        sizes = [int(b[1].shape[0]) for b in out]
        assert all(size == 32 for size in sizes[:-1]) and sizes[-1] <= 32
    assert sum(sizes) == 500  # weights only: every row once


def test_existing_sample_weights_are_multiplied_in(data):
    x, y, _, table = data
    ds = tf.data.Dataset.from_tensor_slices((x, y, np.full(N, 2.0, np.float32)))
    _, ws = collect(balance.rebalance(ds, table, method="weight", batch_size=BATCH))
    _, plain = collect(balance.rebalance(tf.data.Dataset.from_tensor_slices((x, y)), table, method="weight",
                                         batch_size=BATCH))
    np.testing.assert_allclose(ws, 2.0 * plain)


def test_weights_alone_keep_the_number_of_batches_known(data):
    # Keras reads it for its progress bar and for later epochs; `batch` would give the same.
    x, y, _, table = data
    out = balance.rebalance(tf.data.Dataset.from_tensor_slices((x, y)), table, method="weight", batch_size=BATCH)
    assert int(out.cardinality()) == -(-N // BATCH) == len(list(out))
