"""Cost-matrix, logit-adjusted and LDAM losses against numpy references."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import losses
from balance import WeightTable

RNG = np.random.default_rng(2)
K = 3
COST = np.array([[0.0, 1.0, 4.0], [2.0, 0.0, 1.0], [10.0, 3.0, 0.0]])


def _np_log_softmax(z):
    z = np.asarray(z, np.float64)
    return (
        z
        - np.log(np.exp(z - z.max(-1, keepdims=True)).sum(-1, keepdims=True))
        - z.max(-1, keepdims=True)
    )


def test_expected_cost_numpy_reference_sparse_one_hot_and_soft():
    labels = RNG.integers(0, K, 32)
    z = RNG.standard_normal((32, K)).astype(np.float32) * 2
    p = np.exp(_np_log_softmax(z))
    expected = (p * COST[labels]).sum(-1)
    loss = losses.CostSensitiveCategoricalCrossentropy(
        COST, mode="expected_cost", from_logits=True, reduction=None
    )
    np.testing.assert_allclose(loss(labels, z).numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(loss(np.eye(K)[labels], z).numpy(), expected, rtol=1e-5)
    soft = RNG.dirichlet(np.ones(K), 32)
    np.testing.assert_allclose(
        loss(soft, z).numpy(), np.einsum("bi,ij,bj->b", soft, COST, p), rtol=1e-5
    )
    with_ce = losses.CostSensitiveCategoricalCrossentropy(
        COST, mode="expected_cost", from_logits=True, ce_weight=0.5, reduction=None
    )(labels, z)
    ce = -_np_log_softmax(z)[np.arange(32), labels]
    np.testing.assert_allclose(with_ce.numpy(), expected + 0.5 * ce, rtol=1e-5)
    probs = losses.CostSensitiveCategoricalCrossentropy(COST, mode="expected_cost", reduction=None)
    np.testing.assert_allclose(probs(labels, p.astype(np.float32)).numpy(), expected, rtol=1e-5)


def test_argmax_weight_is_forum_formulation_with_gradient_through_ce_only():
    weights = COST + np.eye(K)  # forum convention: 1 on the diagonal
    labels = RNG.integers(0, K, 64)
    z = tf.constant(RNG.standard_normal((64, K)).astype(np.float32) * 2)
    loss = losses.CostSensitiveCategoricalCrossentropy(
        weights, mode="argmax_weight", from_logits=True, reduction="sum"
    )
    w = weights[labels, z.numpy().argmax(-1)]
    ce = -_np_log_softmax(z.numpy())[np.arange(64), labels]
    np.testing.assert_allclose(loss(labels, z).numpy(), (w * ce).sum(), rtol=1e-5)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(labels, z)
    reference = losses.WeightedSparseCategoricalCrossentropy(
        np.ones(K), from_logits=True, reduction=None
    )
    with tf.GradientTape() as tape2:
        tape2.watch(z)
        ref_value = tf.reduce_sum(tf.constant(w, tf.float32) * reference(labels, z))
    np.testing.assert_allclose(
        tape.gradient(value, z), tape2.gradient(ref_value, z), rtol=1e-5, atol=1e-7
    )


def test_bayes_decision_minimises_expected_cost():
    p = RNG.dirichlet(np.ones(K), 200)
    expected = np.argmin(p @ COST, axis=-1)
    np.testing.assert_array_equal(losses.bayes_decision(p, COST).numpy(), expected)
    zero_one = 1 - np.eye(K)
    np.testing.assert_array_equal(losses.bayes_decision(p, zero_one).numpy(), p.argmax(-1))
    np.testing.assert_array_equal(
        losses.bayes_decision([[0.7, 0.3]], [[0, 1], [5, 0]]).numpy(), [1]
    )


@pytest.mark.parametrize("tau", [0.0, 1.0, 1.7])
def test_logit_adjusted_numpy_reference(tau):
    counts = np.array([900.0, 90.0, 10.0])
    log_prior = np.log(counts / counts.sum())
    labels = RNG.integers(0, K, (6, 4))
    z = RNG.standard_normal((6, 4, K)).astype(np.float32)
    loss = losses.LogitAdjustedSparseCategoricalCrossentropy(log_prior, tau, reduction=None)
    shifted = _np_log_softmax(z + tau * log_prior)
    expected = -np.take_along_axis(shifted, labels[..., None], -1)[..., 0]
    np.testing.assert_allclose(loss(labels, z).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_logit_adjusted_from_table_and_post_hoc_adjustment():
    table = WeightTable.from_counts([900, 90, 10])
    direct = losses.LogitAdjustedSparseCategoricalCrossentropy(table)
    built = losses.LogitAdjustedSparseCategoricalCrossentropy.from_table(table, tau=1.0)
    np.testing.assert_allclose(direct.log_prior, table.log_prior(), rtol=1e-6)
    assert built.log_prior == direct.log_prior
    z = RNG.standard_normal((5, K)).astype(np.float32)
    adjusted = losses.adjust_logits(z, table.log_prior(), tau=2.0)
    np.testing.assert_allclose(adjusted.numpy(), z - 2.0 * table.log_prior(), rtol=1e-6)
    # Post-hoc adjustment favours the rare class for a tie.
    assert (
        losses.adjust_logits(np.zeros((1, K), np.float32), table.log_prior()).numpy().argmax() == 2
    )


def test_ldam_numpy_reference():
    counts = np.array([1000.0, 100.0, 10.0])
    margins = 0.5 * counts**-0.25 / (counts**-0.25).max()
    np.testing.assert_allclose(losses.ldam_margins(counts, 0.5), margins)
    assert margins.max() == pytest.approx(0.5) and margins.argmax() == 2
    labels = RNG.integers(0, K, 32)
    z = np.tanh(RNG.standard_normal((32, K))).astype(np.float32)  # cosine-like logits
    shifted = z - np.eye(K)[labels] * margins
    expected = -_np_log_softmax(30.0 * shifted)[np.arange(32), labels]
    loss = losses.LDAMLoss(counts, reduction=None)
    np.testing.assert_allclose(loss(labels, z).numpy(), expected, rtol=1e-4, atol=1e-5)
    w = np.array([0.5, 1.0, 2.0])
    weighted = losses.LDAMLoss(WeightTable.from_counts(counts), class_weights=w, reduction=None)
    np.testing.assert_allclose(
        weighted(labels, z).numpy(), w[labels] * expected, rtol=1e-4, atol=1e-5
    )


def test_ldam_with_zero_margin_and_unit_scale_is_plain_ce():
    labels = RNG.integers(0, K, 16)
    z = RNG.standard_normal((16, K)).astype(np.float32)
    loss = losses.LDAMLoss([5, 5, 5], max_margin=1e-12, scale=1.0)
    ref = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    np.testing.assert_allclose(loss(labels, z).numpy(), ref(labels, z).numpy(), rtol=1e-6)
