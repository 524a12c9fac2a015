"""Prior estimation under label shift (EM, BBSE) and the correction it feeds.

A logistic regression is trained at one class mix and evaluated on data
resampled to another; the estimators must recover the new mix from its
unlabeled predictions, and shifting the logits to it must not lose accuracy.
"""

import keras
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import losses
from balance import WeightTable


def _draw(rng, counts, means):
    y = np.repeat(np.arange(len(counts)), counts)
    return rng.standard_normal((len(y), means.shape[1])) + means[y], y


def _resample(rng, x, y, counts):
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in enumerate(counts)])
    return x[idx], y[idx]


def _shifted_world(seed, means, train_counts, target_counts):
    """A model trained at train_counts; validation at the same mix; a test pool resampled to target_counts."""
    rng = np.random.default_rng(seed)
    x, y = _draw(rng, train_counts, means)
    x_val, y_val = _draw(rng, train_counts, means)
    pool_x, pool_y = _draw(rng, [2 * max(target_counts)] * len(means), means)
    x_new, y_new = _resample(rng, pool_x, pool_y, target_counts)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    table = WeightTable.from_labels(y)
    return table, model.predict_proba(x_val), y_val, model.predict_proba(x_new), y_new


CASES = {
    "binary 1:10 -> 10:1": (np.array([[0.0, 0.0], [2.0, 2.0]]), [1_000, 10_000], [10_000, 1_000]),
    "3 classes": (np.array([[0.0, 0.0], [2.5, 0.0], [0.0, 2.5]]), [6_000, 3_000, 600], [600, 2_000, 6_000]),
}


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("case", CASES)
def test_estimates_recover_the_new_mix_and_the_shift_helps(case, seed):
    means, train_counts, target_counts = CASES[case]
    table, p_val, y_val, p_new, y_new = _shifted_world(seed, means, train_counts, target_counts)
    truth = np.asarray(target_counts) / sum(target_counts)
    logits = np.log(p_new)
    accuracy_before = np.mean(logits.argmax(-1) == y_new)
    for estimate in (
        losses.estimate_prior_em(p_new, table),
        losses.estimate_prior_bbse(p_new, y_val, p_val),
        losses.estimate_prior_bbse(p_new, y_val, p_val, soft=True),
    ):
        assert estimate.sum() == pytest.approx(1.0)
        assert np.abs(estimate - truth).sum() < 0.05, (estimate, truth)
        shifted = keras.ops.convert_to_numpy(losses.shift_logits(logits, table, estimate))
        accuracy_after = np.mean(shifted.argmax(-1) == y_new)
        assert accuracy_after >= accuracy_before
    if case.startswith("binary"):  # the minority class at training is the majority now: a large gain
        assert accuracy_after > accuracy_before + 0.1


def test_em_accepts_logits_and_sigmoid_outputs_alike():
    means, train_counts, target_counts = CASES["binary 1:10 -> 10:1"]
    table, _, _, p_new, _ = _shifted_world(3, means, train_counts, target_counts)
    from_probs = losses.estimate_prior_em(p_new, table)
    from_logits = losses.estimate_prior_em(np.log(p_new), table, from_logits=True)
    sigmoid_logit = np.log(p_new[:, 1:] / p_new[:, :1])
    from_sigmoid = losses.estimate_prior_em(sigmoid_logit, table.counts, from_logits=True)
    np.testing.assert_allclose(from_logits, from_probs, atol=1e-6)
    np.testing.assert_allclose(from_sigmoid, from_probs, atol=1e-6)


def test_em_leaves_the_training_mix_where_it_is():
    means, train_counts, _ = CASES["3 classes"]
    table, p_val, _, _, _ = _shifted_world(4, means, train_counts, [10, 10, 10])
    # Validation data is at the training mix: no shift to find.
    np.testing.assert_allclose(losses.estimate_prior_em(p_val, table), table.prior(), atol=0.02)


def test_bbse_with_a_perfect_classifier_returns_the_predicted_shares():
    y_val = np.array([0] * 50 + [1] * 30 + [2] * 20)
    p_val = np.eye(3)[y_val]
    p_new = np.eye(3)[np.array([2] * 70 + [0] * 20 + [1] * 10)]
    for soft in (False, True):
        np.testing.assert_allclose(
            losses.estimate_prior_bbse(p_new, y_val, p_val, soft=soft), [0.2, 0.1, 0.7], atol=1e-12
        )


def test_soft_bbse_counts_probabilities_not_argmaxes():
    # Two validation examples of class 0 predicted 0.6 / 0.4 each: the soft
    # confusion matrix has 0.6 and 0.4 where the hard one has 1 and 0.
    y_val = np.array([0, 0, 1, 1])
    p_val = np.array([[0.6, 0.4], [0.6, 0.4], [0.2, 0.8], [0.2, 0.8]])
    p_new = np.array([[0.9, 0.1], [0.2, 0.8], [0.2, 0.8], [0.2, 0.8]])
    # soft: mu = [0.375, 0.625] = C w with C = [[0.3, 0.1], [0.2, 0.4]], so w = [0.875, 1.125]
    # and t = w * [0.5, 0.5]; hard: C = diag(0.5, 0.5) and mu = [0.25, 0.75].
    np.testing.assert_allclose(losses.estimate_prior_bbse(p_new, y_val, p_val, soft=True), [0.4375, 0.5625])
    np.testing.assert_allclose(losses.estimate_prior_bbse(p_new, y_val, p_val), [0.25, 0.75])


def test_estimated_table_is_marked_and_round_trips(tmp_path):
    train = WeightTable.from_counts({"fraud": 100, "ok": 9_900}, label_key="label")
    estimate = losses.estimate_prior_em(np.array([[0.3, 0.7], [0.6, 0.4]]), train)
    table = losses.estimated_table(estimate, 2, method="em", like=train, inputs=["gs://b/day.tfrecord"])
    assert table.class_names == ("fraud", "ok") and table.label_key == "label"
    assert table.provenance["estimated"] == {
        "method": "em",
        "num_unlabeled": 2.0,
        "source_fingerprint": train.provenance["fingerprint"],
    }
    assert table.provenance["inputs"] == ["gs://b/day.tfrecord"]
    np.testing.assert_allclose(table.prior(), estimate, rtol=1e-6)
    loaded = WeightTable.load(table.save(str(tmp_path / "estimated.json")))
    assert loaded == table
    # The estimated table is a target prior for shift_logits like any other table.
    z = np.zeros((1, 2), np.float32)
    np.testing.assert_allclose(
        losses.shift_logits(z, train, loaded), losses.shift_logits(z, train, estimate), atol=1e-6
    )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: losses.estimate_prior_em(np.full((4,), 0.5), [1, 1]), "`target_predictions`.*shape \\(4,\\)"),
        (lambda: losses.estimate_prior_em(np.full((4, 2), 0.7), [1, 1]), "sum to 1.*from_logits=True"),
        (lambda: losses.estimate_prior_em(np.full((4, 2), 0.5), [1, 1, 1]), "`source_prior`. Expected 2 shares"),
        (lambda: losses.estimate_prior_em(np.full((4, 2), np.nan), [1, 1]), "finite predictions"),
        (lambda: losses.estimate_prior_em(np.full((4, 1), 1.5), [1, 1]), "in \\[0, 1\\]"),
        (
            lambda: losses.estimate_prior_em(np.array([[0.9, 0.1], [0.2, 0.8]]), [1, 1], max_iterations=1),
            "`max_iterations`. Expected enough steps",
        ),
        (lambda: losses.estimate_prior_em(np.full((4, 2), 0.5), [1, 1], tolerance=0), "`tolerance`"),
        (
            lambda: losses.estimate_prior_bbse(np.eye(3), [0, 1, 2], np.eye(3)[[0, 0, 2]]),
            "confusion matrix that can be inverted.*never predicted or never present.*\\[1\\]",
        ),
        (lambda: losses.estimate_prior_bbse(np.eye(3), [0, 1, 3], np.eye(3)), "class ids in \\[0, 3\\)"),
        (lambda: losses.estimate_prior_bbse(np.eye(3), [0, 1], np.eye(3)), "one label per prediction row"),
        (lambda: losses.estimate_prior_bbse(np.eye(3), [0.0, 1.0, 2.0], np.eye(3)), "integer class ids"),
        (lambda: losses.estimate_prior_bbse(np.eye(3), [0, 1], np.eye(2)), "`validation_predictions`. Expected 3"),
        (lambda: losses.estimated_table([0.5, 0.5], 10, method="guess"), "`method`"),
        (lambda: losses.estimated_table([0.5, 0.5], 0, method="em"), "`num_examples`"),
        (
            lambda: losses.estimated_table([0.2, 0.3, 0.5], 10, method="em", like=WeightTable.from_counts([1, 1])),
            "`shares`. Expected 2 shares",
        ),
    ],
)
def test_bad_input_is_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()
