"""Weighted cross-entropies against TensorFlow and Keras oracles."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import losses
from balance import WeightTable

RNG = np.random.default_rng(0)
K = 4
W = np.array([2.04, 0.93, 0.57, 1.49], dtype=np.float32)


def _logits(*shape, scale=3.0):
    return (RNG.standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("label_shape", [(16,), (16, 1), (4, 5), (2, 3, 3)])
def test_sparse_equals_gathered_weight_times_tf_softmax_ce(label_shape):
    y = RNG.integers(0, K, label_shape)
    z = _logits(*[d for d in label_shape if label_shape != (16, 1) or d != 1], K)
    loss = losses.WeightedSparseCategoricalCrossentropy(W, from_logits=True, reduction=None)
    labels = y.reshape(z.shape[:-1])
    expected = W[labels] * tf.nn.sparse_softmax_cross_entropy_with_logits(labels, z).numpy()
    np.testing.assert_allclose(loss(y, z).numpy(), expected, rtol=1e-6, atol=1e-6)


def test_sparse_from_probabilities_matches_keras_times_weight():
    y = RNG.integers(0, K, 32)
    p = tf.nn.softmax(_logits(32, K)).numpy()
    ours = losses.WeightedSparseCategoricalCrossentropy(W, reduction=None)(y, p)
    keras_ce = keras.losses.SparseCategoricalCrossentropy(reduction=None)(y, p)
    np.testing.assert_allclose(ours.numpy(), W[y] * keras_ce.numpy(), rtol=1e-6)


def test_weight_by_predicted_gathers_by_argmax():
    y = RNG.integers(0, K, 32)
    z = _logits(32, K)
    loss = losses.WeightedSparseCategoricalCrossentropy(
        W, weight_by="predicted", from_logits=True, reduction=None
    )
    expected = W[z.argmax(-1)] * tf.nn.sparse_softmax_cross_entropy_with_logits(y, z).numpy()
    np.testing.assert_allclose(loss(y, z).numpy(), expected, rtol=1e-6)
    assert not np.allclose(
        expected, W[y] * tf.nn.sparse_softmax_cross_entropy_with_logits(y, z).numpy()
    )


def test_categorical_with_unit_weights_is_keras_categorical_crossentropy():
    y = np.eye(K)[RNG.integers(0, K, 32)]
    z = _logits(32, K)
    for from_logits, pred in ((True, z), (False, tf.nn.softmax(z).numpy())):
        for smoothing in (0.0, 0.1):
            ours = losses.WeightedCategoricalCrossentropy(
                np.ones(K), from_logits=from_logits, label_smoothing=smoothing
            )(y, pred)
            ref = keras.losses.CategoricalCrossentropy(
                from_logits=from_logits, label_smoothing=smoothing
            )(y, pred)
            np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)


def test_categorical_one_hot_equals_sparse_and_soft_labels_weight_by_mix():
    labels = RNG.integers(0, K, 32)
    z = _logits(32, K)
    dense = losses.WeightedCategoricalCrossentropy(W, from_logits=True, reduction=None)
    sparse = losses.WeightedSparseCategoricalCrossentropy(W, from_logits=True, reduction=None)
    np.testing.assert_allclose(dense(np.eye(K)[labels], z), sparse(labels, z), rtol=1e-6)
    soft = RNG.dirichlet(np.ones(K), 32).astype(np.float32)
    expected = (soft @ W) * tf.nn.softmax_cross_entropy_with_logits(soft, z).numpy()
    np.testing.assert_allclose(dense(soft, z).numpy(), expected, rtol=1e-5)


@pytest.mark.parametrize("pos_weight", [3.0, [0.5, 28.0, 1.0]])
def test_binary_equals_tf_weighted_cross_entropy_with_logits(pos_weight):
    y = (RNG.random((64, 3)) < 0.2).astype(np.float32)
    x = _logits(64, 3, scale=4.0)
    ref = tf.nn.weighted_cross_entropy_with_logits(y, x, pos_weight=np.float32(pos_weight))
    for neg_weight in (None, 1.0, [1.0, 1.0, 1.0]):
        loss = losses.WeightedBinaryCrossentropy(
            pos_weight, neg_weight, from_logits=True, reduction=None
        )
        np.testing.assert_allclose(loss(y, x).numpy(), tf.reduce_mean(ref, -1).numpy(), rtol=1e-5)


def test_binary_neg_weight_and_probabilities():
    y = (RNG.random((64, 3)) < 0.3).astype(np.float32)
    x = _logits(64, 3)
    q, r = np.array([2.0, 3.0, 4.0]), np.array([0.5, 0.25, 1.0])
    expected = (q * y * np.logaddexp(0, -x) + r * (1 - y) * np.logaddexp(0, x)).mean(-1)
    from_logits = losses.WeightedBinaryCrossentropy(q, r, from_logits=True, reduction=None)(y, x)
    np.testing.assert_allclose(from_logits.numpy(), expected, rtol=1e-5)
    p = tf.sigmoid(x).numpy()
    from_probs = losses.WeightedBinaryCrossentropy(q, r, reduction=None)(y, p)
    np.testing.assert_allclose(from_probs.numpy(), expected, rtol=1e-4)
    unit = losses.WeightedBinaryCrossentropy(1.0)(y, p)
    np.testing.assert_allclose(
        unit.numpy(), keras.losses.BinaryCrossentropy()(y, p).numpy(), rtol=1e-6
    )


def test_binary_single_output_accepts_rank_one_labels():
    y, x = np.array([1, 0, 0, 1]), _logits(4, 1)
    loss = losses.WeightedBinaryCrossentropy(5.0, from_logits=True, reduction=None)
    ref = tf.nn.weighted_cross_entropy_with_logits(y[:, None].astype(np.float32), x, 5.0)[:, 0]
    np.testing.assert_allclose(loss(y, x).numpy(), ref.numpy(), rtol=1e-6)


def test_scaling_logits_by_weights_is_not_the_weighted_loss():
    """The popular answer multiplies logits by class weights; that is a different function."""
    y = RNG.integers(0, 2, 64)
    z = _logits(64, 2)
    w = np.array([1.0, 500_000 / 31_000], dtype=np.float32)
    right = losses.WeightedSparseCategoricalCrossentropy(w, from_logits=True, reduction=None)(
        y, z
    ).numpy()
    wrong = tf.nn.sparse_softmax_cross_entropy_with_logits(y, z * w).numpy()
    assert not np.allclose(right, wrong, rtol=1e-2)
    # And the right one is exactly the per-example weight times the plain CE.
    np.testing.assert_allclose(
        right, w[y] * tf.nn.sparse_softmax_cross_entropy_with_logits(y, z).numpy(), rtol=1e-6
    )


def test_from_table_normalisations():
    table = WeightTable.from_counts([198, 436, 710, 272])
    inverse = losses.WeightedSparseCategoricalCrossentropy.from_table(
        table, "inverse", scheme_params={"normalize": "sum_to_one"}, from_logits=True
    )
    assert inverse.from_logits
    np.testing.assert_allclose(sum(inverse.class_weights), 1.0, rtol=1e-6)
    expected = (1 / table.counts) / (1 / table.counts).sum()
    np.testing.assert_allclose(inverse.class_weights, expected, rtol=1e-6)
    to_k = losses.WeightedCategoricalCrossentropy.from_table(
        table, "inverse", scheme_params={"normalize": "sum_to_num_classes"}
    )
    assert isinstance(to_k, losses.WeightedCategoricalCrossentropy)
    np.testing.assert_allclose(sum(to_k.class_weights), 4.0, rtol=1e-6)


def test_class_balanced_loss_is_effective_number_scheme():
    table = WeightTable.from_counts([5000, 500, 50, 5])
    loss = losses.WeightedSparseCategoricalCrossentropy.from_table(
        table, "effective_number", scheme_params={"beta": 0.999}
    )
    beta, n = 0.999, table.counts
    raw = (1 - beta) / (1 - beta**n)
    np.testing.assert_allclose(loss.class_weights, raw / raw.sum() * 4, rtol=1e-5)


def test_binary_from_table_uses_per_label_counts():
    table = WeightTable.from_counts([10, 2, 5], task="multilabel", num_examples=40)
    loss = losses.WeightedBinaryCrossentropy.from_table(table, from_logits=True)
    np.testing.assert_allclose(loss.pos_weight, [3.0, 19.0, 7.0])
    assert loss.neg_weight is None and loss.from_logits
    balanced = losses.WeightedBinaryCrossentropy.from_table(table, "balanced")
    pos, neg = table.label_weights("balanced")
    np.testing.assert_allclose(balanced.pos_weight, pos, rtol=1e-6)
    np.testing.assert_allclose(balanced.neg_weight, neg, rtol=1e-6)
    binary = WeightTable.from_counts([500_000, 31_000], task="binary")
    np.testing.assert_allclose(
        losses.WeightedBinaryCrossentropy.from_table(binary).pos_weight,
        [500_000 / 31_000],
        rtol=1e-6,
    )


def test_class_dependent_weight_changes_gradient_balance_scalar_does_not():
    """A class-dependent weight moves the optimum; a scalar one only rescales the gradient."""
    y = np.array([[1.0], [0.0], [0.0], [0.0]])
    x = tf.constant(np.zeros((4, 1), np.float32))

    def grad(loss):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = loss(y, x)
        return tape.gradient(value, x).numpy()

    plain = grad(keras.losses.BinaryCrossentropy(from_logits=True))
    weighted = grad(losses.WeightedBinaryCrossentropy(10.0, from_logits=True))
    np.testing.assert_allclose(weighted[0], 10 * plain[0], rtol=1e-6)
    np.testing.assert_allclose(weighted[1:], plain[1:], rtol=1e-6)
    with pytest.raises(ValueError, match="learning rate"):
        losses.WeightedSparseCategoricalCrossentropy(2.0)
