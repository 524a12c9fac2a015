"""Focal losses against Keras's own focal losses (the oracle) and a numpy reference."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import losses
from balance import WeightTable

RNG = np.random.default_rng(1)
K = 4
ALPHA = [0.1, 0.4, 0.25, 0.9]


def _logits(*shape, scale=2.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("gamma", [0.0, 2.0, 3.5])
def test_categorical_focal_equals_keras_with_alpha_vector(from_logits, gamma):
    y = np.eye(K)[RNG.integers(0, K, 32)].astype(np.float32)
    z = _logits(32, K)
    pred = z if from_logits else tf.nn.softmax(z).numpy()
    ours = losses.CategoricalFocalCrossentropy(
        ALPHA, gamma, from_logits=from_logits, reduction=None
    )
    ref = keras.losses.CategoricalFocalCrossentropy(
        alpha=ALPHA, gamma=gamma, from_logits=from_logits, reduction=None
    )
    np.testing.assert_allclose(ours(y, pred).numpy(), ref(y, pred).numpy(), rtol=1e-5, atol=1e-7)


def test_categorical_focal_soft_labels_follow_keras_formula():
    y = RNG.dirichlet(np.ones(K), 16).astype(np.float32)
    z = _logits(16, K)
    ours = losses.CategoricalFocalCrossentropy(ALPHA, 2.0, from_logits=True, reduction=None)(y, z)
    ref = keras.losses.CategoricalFocalCrossentropy(alpha=ALPHA, from_logits=True, reduction=None)(
        y, z
    )
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-5)


@pytest.mark.parametrize("from_logits", [True, False])
def test_sparse_focal_equals_keras_categorical_focal_on_one_hot(from_logits):
    labels = RNG.integers(0, K, (8, 5))  # per-token labels
    z = _logits(8, 5, K)
    pred = z if from_logits else tf.nn.softmax(z).numpy()
    ours = losses.SparseCategoricalFocalCrossentropy(ALPHA, from_logits=from_logits, reduction=None)
    ref = keras.losses.CategoricalFocalCrossentropy(
        alpha=ALPHA, from_logits=from_logits, reduction=None
    )
    np.testing.assert_allclose(
        ours(labels, pred).numpy(), ref(np.eye(K)[labels], pred).numpy(), rtol=1e-5, atol=1e-7
    )


def test_sparse_focal_numpy_reference_and_no_alpha():
    labels = RNG.integers(0, K, 64)
    z = _logits(64, K).astype(np.float64)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    log_pt = log_p[np.arange(64), labels]
    expected = np.asarray(ALPHA)[labels] * (1 - np.exp(log_pt)) ** 2 * -log_pt
    ours = losses.SparseCategoricalFocalCrossentropy(ALPHA, from_logits=True, reduction=None)
    np.testing.assert_allclose(ours(labels, z.astype(np.float32)).numpy(), expected, rtol=1e-5)
    plain = losses.SparseCategoricalFocalCrossentropy(None, gamma=0.0, from_logits=True)(labels, z)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, z)
    np.testing.assert_allclose(plain.numpy(), ce.numpy(), rtol=1e-6)


@pytest.mark.parametrize("from_logits", [True, False])
@pytest.mark.parametrize("alpha", [None, 0.25, 0.8])
def test_binary_focal_equals_keras(from_logits, alpha):
    y = (RNG.random((32, 3)) < 0.3).astype(np.float32)
    x = _logits(32, 3)
    pred = x if from_logits else tf.sigmoid(x).numpy()
    ours = losses.BinaryFocalCrossentropy(alpha, 2.0, from_logits=from_logits, reduction=None)
    ref = keras.losses.BinaryFocalCrossentropy(
        apply_class_balancing=alpha is not None,
        alpha=alpha or 0.25,
        gamma=2.0,
        from_logits=from_logits,
        reduction=None,
    )
    np.testing.assert_allclose(ours(y, pred).numpy(), ref(y, pred).numpy(), rtol=1e-5, atol=1e-7)


def test_binary_focal_per_label_alpha_is_applied_per_label():
    y = (RNG.random((32, 3)) < 0.3).astype(np.float32)
    x = _logits(32, 3)
    alphas = [0.1, 0.5, 0.9]
    ours = losses.BinaryFocalCrossentropy(alphas, from_logits=True, reduction=None)(y, x).numpy()
    columns = [
        keras.losses.BinaryFocalCrossentropy(
            apply_class_balancing=True, alpha=a, from_logits=True, reduction=None
        )(y[:, i : i + 1], x[:, i : i + 1]).numpy()
        for i, a in enumerate(alphas)
    ]
    np.testing.assert_allclose(ours, np.mean(columns, axis=0), rtol=1e-5)


def test_focal_from_table():
    table = WeightTable.from_counts([100, 10, 1])
    loss = losses.SparseCategoricalFocalCrossentropy.from_table(table, gamma=1.0, from_logits=True)
    np.testing.assert_allclose(loss.alpha, table.class_weights("balanced"), rtol=1e-6)
    assert loss.gamma == 1.0 and loss.from_logits
    cat = losses.CategoricalFocalCrossentropy.from_table(table, "power", scheme_params={"alpha": 0.5})
    np.testing.assert_allclose(cat.alpha, table.class_weights("power", alpha=0.5), rtol=1e-6)
    multilabel = WeightTable.from_counts([10, 30], task="multilabel", num_examples=40)
    binary = losses.BinaryFocalCrossentropy.from_table(multilabel)
    np.testing.assert_allclose(binary.alpha, [30 / 40, 10 / 40], rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0])
def test_focal_gradients_finite_for_small_gamma_at_saturated_logits(gamma):
    """(1 - p)^gamma has an infinite slope at p = 1 for gamma < 1; the loss must not."""
    labels = np.array([0, 1])
    z = tf.constant([[1e4, -1e4, 0.0, 0.0], [0.0, 1e4, 0.0, 0.0]])
    multi = np.array([[1.0, 0, 1, 0], [0, 1, 0, 1]], np.float32)
    cases = [
        (losses.SparseCategoricalFocalCrossentropy(None, gamma, from_logits=True), labels),
        (losses.CategoricalFocalCrossentropy(None, gamma, from_logits=True), np.eye(K)[labels]),
        (losses.BinaryFocalCrossentropy(None, gamma, from_logits=True), multi),
    ]
    for loss, y in cases:
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(y, z)
        assert np.isfinite(value.numpy())
        assert np.all(np.isfinite(tape.gradient(value, z).numpy())), type(loss).__name__
