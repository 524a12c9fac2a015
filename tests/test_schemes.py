"""Weighting schemes: invariants first, then oracles and the users' worked examples."""

import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from balance import SCHEMES, WeightTable

FOUR_CLASS_COUNTS = [198, 436, 710, 272]
PAIRED_COUNTS = {0: 2813, 1: 78, 2: 2814, 3: 78, 4: 7914, 5: 248, 6: 7914, 7: 248}
PAIRED_LOG_SMOOTHED = {0: 1.0, 1: 3.7498, 2: 1.0, 3: 3.7498, 4: 1.0, 5: 2.5931, 6: 1.0, 7: 2.5931}
LONG_TAIL = np.array([5000.0, 1200.0, 300.0, 75.0, 20.0, 5.0])


@pytest.fixture(params=[FOUR_CLASS_COUNTS, list(PAIRED_COUNTS.values()), LONG_TAIL.tolist()])
def table(request):
    return WeightTable.from_counts(request.param)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_mean_one_keeps_the_average_example_weight_at_one(table, scheme):
    weights = table.class_weights(scheme, normalize="mean_one").astype(np.float64)
    np.testing.assert_allclose((table.counts * weights).sum(), table.num_examples, rtol=1e-6)


@pytest.mark.parametrize("scheme", sorted(SCHEMES))
def test_sum_to_num_classes_and_sum_to_one(table, scheme):
    k = table.num_classes
    np.testing.assert_allclose(table.class_weights(scheme, normalize="sum_to_num_classes").sum(), k, rtol=1e-6)
    np.testing.assert_allclose(table.class_weights(scheme, normalize="sum_to_one").sum(), 1.0, rtol=1e-6)


@pytest.mark.parametrize("scheme", sorted(set(SCHEMES) - {"uniform"}))
def test_rarer_classes_never_get_smaller_weights(table, scheme):
    weights = table.class_weights(scheme)
    order = np.argsort(table.counts, kind="stable")
    assert np.all(np.diff(weights[order]) <= 1e-6), (scheme, weights)


def test_power_one_is_inverse_and_power_half_is_inverse_sqrt(table):
    for alpha, other in ((1.0, "inverse"), (0.5, "inverse_sqrt")):
        power = table.class_weights("power", alpha=alpha, normalize="none").astype(np.float64)
        ref = table.class_weights(other, normalize="none").astype(np.float64)
        np.testing.assert_allclose(power / power.sum(), ref / ref.sum(), rtol=1e-6)


def test_power_zero_is_uniform(table):
    np.testing.assert_allclose(table.class_weights("power", alpha=0.0, normalize="none"), 1.0)


def test_balanced_equals_sklearn_compute_class_weight(table):
    y = np.repeat(np.arange(table.num_classes), table.counts.astype(int))
    expected = compute_class_weight("balanced", classes=np.arange(table.num_classes), y=y)
    np.testing.assert_allclose(table.class_weights("balanced"), expected, rtol=1e-6)
    assert table.class_weights().dtype == np.float32


def test_inverse_frequency_normalised_two_ways():
    table = WeightTable.from_counts(FOUR_CLASS_COUNTS)
    inverse = 1.0 / np.array(FOUR_CLASS_COUNTS, dtype=np.float64)
    np.testing.assert_allclose(
        table.class_weights("inverse", normalize="sum_to_one"), inverse / inverse.sum(), rtol=1e-6
    )
    np.testing.assert_allclose(
        table.class_weights("inverse", normalize="sum_to_num_classes"), 4 * inverse / inverse.sum(), rtol=1e-6
    )
    # 1616 / (4 * 198) = 2.0404...
    assert table.class_weights("balanced")[0] == pytest.approx(2.040404, abs=1e-6)


def test_log_smoothed_reproduces_known_weights():
    table = WeightTable.from_counts(PAIRED_COUNTS)
    weights = table.class_weights("log_smoothed", mu=0.15)
    assert {c: round(float(w), 4) for c, w in enumerate(weights)} == PAIRED_LOG_SMOOTHED


def test_n_over_count_and_max_over_count():
    table = WeightTable.from_counts(PAIRED_COUNTS)
    counts = np.array(list(PAIRED_COUNTS.values()), dtype=np.float64)
    ratio = table.class_weights("inverse", normalize="none") * counts.sum()
    np.testing.assert_allclose(ratio, counts.sum() / counts, rtol=1e-6)
    max_over = table.class_weights("max_over_count")
    np.testing.assert_allclose(max_over, counts.max() / counts, rtol=1e-6)
    assert max_over.min() == pytest.approx(1.0)


def test_effective_number_matches_cui_et_al_and_tends_to_inverse():
    counts = LONG_TAIL
    table = WeightTable.from_counts(counts)
    beta = 0.99
    raw = (1 - beta) / (1 - beta**counts)
    np.testing.assert_allclose(
        table.class_weights("effective_number", beta=beta), raw * len(counts) / raw.sum(), rtol=1e-5
    )
    # beta -> 1 approaches inverse frequency; beta = 0 is uniform.
    near_one = table.class_weights("effective_number", beta=1 - 1e-9, normalize="sum_to_one")
    np.testing.assert_allclose(near_one, table.class_weights("inverse", normalize="sum_to_one"), rtol=1e-3)
    np.testing.assert_allclose(table.class_weights("effective_number", beta=0.0), 1.0)


def test_median_frequency_gives_the_median_class_weight_one():
    table = WeightTable.from_counts([10.0, 20.0, 40.0])
    np.testing.assert_allclose(table.class_weights("median_frequency"), [2.0, 1.0, 0.5])


def test_clip_applies_after_normalisation():
    table = WeightTable.from_counts(LONG_TAIL)
    weights = table.class_weights("inverse", clip=(0.5, 20.0))
    assert weights.min() >= 0.5 and weights.max() == pytest.approx(20.0)


def test_zero_count_policies():
    table = WeightTable.from_counts([100.0, 0.0, 10.0, 0.0], class_names=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"2 class\(es\) have none: 1 \('b'\), 3 \('d'\)"):
        table.class_weights("balanced")
    zero = table.class_weights("balanced", zero_count="zero")
    np.testing.assert_allclose(zero, [110 / (4 * 100), 0.0, 110 / (4 * 10), 0.0], rtol=1e-6)
    high = table.class_weights("inverse", zero_count="max", normalize="none")
    np.testing.assert_allclose(high, [0.01, 0.1, 0.1, 0.1], rtol=1e-6)
    # Uniform weights are defined for empty classes too.
    np.testing.assert_allclose(table.class_weights("uniform"), 1.0)


def test_pos_weight_is_negatives_over_positives():
    labels = np.array([[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 0, 0]])
    table = WeightTable.from_labels(labels, task="multilabel")
    np.testing.assert_allclose(table.pos_weight(), [3.0, 3.0, 1 / 3], rtol=1e-6)
    pos, neg = table.label_weights("balanced")
    # Per label, balanced weights satisfy neg * w_neg + pos * w_pos = n.
    np.testing.assert_allclose(neg * table.negatives() + pos * table.positives(), 4.0, rtol=1e-6)
    np.testing.assert_allclose(pos / neg, table.pos_weight(), rtol=1e-6)


def test_pos_weight_for_a_binary_table():
    table = WeightTable.from_labels(np.array([0] * 95 + [1] * 5), task="binary")
    np.testing.assert_allclose(table.pos_weight(), [19.0])


def test_prior_and_log_prior():
    table = WeightTable.from_counts([30.0, 60.0, 10.0])
    np.testing.assert_allclose(table.prior(), [0.3, 0.6, 0.1], rtol=1e-6)
    np.testing.assert_allclose(table.log_prior(), np.log([0.3, 0.6, 0.1]), rtol=1e-6)
    empty = WeightTable.from_counts([30.0, 0.0])
    with pytest.raises(ValueError, match="smoothing"):
        empty.log_prior()
    np.testing.assert_allclose(empty.log_prior(smoothing=1.0), np.log([31 / 32, 1 / 32]), rtol=1e-6)


def test_keras_class_weight_covers_every_class():
    table = WeightTable.from_counts({0: 5.0, 3: 10.0}, num_classes=4)
    weights = table.keras_class_weight("balanced", scheme_params={"zero_count": "zero"})
    assert sorted(weights) == [0, 1, 2, 3] and all(isinstance(v, float) for v in weights.values())
    assert weights[1] == 0.0
