"""shift_logits: moving posteriors from the training mix to another one."""

import keras
import numpy as np
import pytest

import losses
from balance import WeightTable

RNG = np.random.default_rng(11)


def _np_softmax(z):
    z = np.asarray(z, np.float64)
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _bayes_logits(x, means, prior):
    """Exact log p(y | x) (up to a constant) for unit-variance Gaussian classes."""
    log_lik = -0.5 * ((x[:, None, :] - means[None]) ** 2).sum(-1)
    return log_lik + np.log(prior)


def test_shift_gives_the_exact_posterior_at_the_target_mix():
    means = np.array([[0.0, 0.0], [1.5, 0.0], [0.0, 2.0]])
    source, target = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    x = RNG.standard_normal((64, 2)) * 2
    z = _bayes_logits(x, means, source).astype(np.float32)
    shifted = keras.ops.convert_to_numpy(losses.shift_logits(z, source, target))
    np.testing.assert_allclose(
        _np_softmax(shifted), _np_softmax(_bayes_logits(x, means, target)), rtol=1e-5, atol=1e-6
    )
    assert shifted.dtype == np.float32 and shifted.shape == z.shape


def test_table_counts_uniform_and_shares_are_the_same_prior():
    table = WeightTable.from_counts([700, 200, 100])
    z = RNG.standard_normal((8, 3)).astype(np.float32)
    from_table = losses.shift_logits(z, table, "uniform")
    from_counts = losses.shift_logits(z, [700, 200, 100], [1, 1, 1])
    np.testing.assert_allclose(from_table, from_counts, atol=1e-6)
    # "uniform" target == post-hoc logit adjustment with tau = 1, up to a constant per row.
    adjusted = losses.adjust_logits(z, table.log_prior(), tau=1.0)
    diff = keras.ops.convert_to_numpy(from_table) - keras.ops.convert_to_numpy(adjusted)
    np.testing.assert_allclose(diff, np.full_like(diff, diff[0, 0]), atol=1e-5)


def test_down_sampling_correction_reads_as_documented():
    # Model trained on a 50:50 down-sample of a 99:1 population.
    sample, population = [0.5, 0.5], [0.99, 0.01]
    z = np.array([[0.0, 0.0], [1.0, 3.0]], np.float32)
    shifted = keras.ops.convert_to_numpy(losses.shift_logits(z, source_prior=sample, target_prior=population))
    np.testing.assert_allclose(shifted, z + np.log(population) - np.log(sample), rtol=1e-6)
    assert _np_softmax(shifted)[0, 1] == pytest.approx(0.01, rel=1e-5)


def test_sigmoid_logit_matches_two_class_softmax():
    source, target = [0.9, 0.1], [0.4, 0.6]
    z1 = RNG.standard_normal((16, 1)).astype(np.float32)
    z2 = np.concatenate([np.zeros_like(z1), z1], axis=-1)
    p_sigmoid = 1 / (1 + np.exp(-keras.ops.convert_to_numpy(losses.shift_logits(z1, source, target))))
    p_softmax = _np_softmax(keras.ops.convert_to_numpy(losses.shift_logits(z2, source, target)))[:, 1:]
    np.testing.assert_allclose(p_sigmoid, p_softmax, rtol=1e-5)
    table = WeightTable.from_counts([900, 100], task="binary")
    np.testing.assert_allclose(losses.shift_logits(z1, table, target), losses.shift_logits(z1, source, target))


def test_shift_can_be_built_into_a_serving_model():
    inputs = keras.Input((3,))
    logits = keras.layers.Dense(2)(inputs)
    serving = keras.Model(inputs, losses.shift_logits(logits, [0.5, 0.5], [0.99, 0.01]))
    x = RNG.standard_normal((4, 3)).astype(np.float32)
    plain = keras.Model(inputs, logits).predict(x, verbose=0)
    np.testing.assert_allclose(serving.predict(x, verbose=0), plain + np.log([0.99, 0.01]) - np.log(0.5), rtol=1e-5)


@pytest.mark.parametrize(
    "k, source, target, match",
    [
        (2, [0.5, 0.5], [0.2, 0.3, 0.5], "`target_prior`. Expected 2 shares"),
        (2, [0.5, 0.5, 0.0], "uniform", "`source_prior`. Expected 2 shares"),
        (3, "uniform", [0.5, 0.5], "`target_prior`. Expected 3 shares"),
        (3, [0.2, 0.3, 0.5], [0.0, 0.5, 0.5], "log\\(0\\) is -inf"),
        (3, [0.2, 0.3, 0.5], [-0.1, 0.6, 0.5], "finite shares >= 0"),
        (3, "balanced", "uniform", "Received: source_prior='balanced'"),
        (3, None, "uniform", "Received: source_prior=None"),
        (3, [0, 0, 0], "uniform", "at least one share > 0"),
        (3, [[0.5, 0.5, 0.0]], "uniform", "1-D sequence"),
    ],
)
def test_bad_priors_are_refused(k, source, target, match):
    with pytest.raises(ValueError, match=match):
        losses.shift_logits(np.zeros((2, k)), source, target)


def test_multilabel_table_is_refused():
    table = WeightTable.from_counts([3, 5], task="multilabel", num_examples=10)
    with pytest.raises(ValueError, match="multiclass or binary table"):
        losses.shift_logits(np.zeros((1, 2)), table, "uniform")
