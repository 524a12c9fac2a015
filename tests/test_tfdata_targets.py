"""Sampling plans: targets, factors, residual weights and epoch sizes (numpy only)."""

import numpy as np
import pytest

from balance import WeightTable, resolve_target, sampling_plan

COUNTS = [800.0, 150.0, 50.0]


@pytest.fixture
def table():
    return WeightTable.from_counts(COUNTS, class_names=["a", "b", "c"])


@pytest.mark.parametrize(
    "target, expected",
    [
        ("uniform", [1 / 3] * 3),
        (None, [1 / 3] * 3),
        ("original", [0.8, 0.15, 0.05]),
        (0.0, [1 / 3] * 3),
        (1.0, [0.8, 0.15, 0.05]),
        (0.5, np.sqrt(COUNTS) / np.sqrt(COUNTS).sum()),
        ({"a": 1, "c": 1}, [0.5, 0.0, 0.5]),
        ({0: 2, 1: 1, 2: 1}, [0.5, 0.25, 0.25]),
        ([1, 1, 2], [0.25, 0.25, 0.5]),
    ],
)
def test_resolve_target(table, target, expected):
    np.testing.assert_allclose(resolve_target(table, target), expected, rtol=1e-12)


def test_scheme_defines_the_mix_it_weights_to(table):
    np.testing.assert_allclose(resolve_target(table, scheme="balanced"), [1 / 3] * 3)
    np.testing.assert_allclose(resolve_target(table, scheme="inverse_sqrt"), resolve_target(table, 0.5))


def test_uniform_skips_empty_classes():
    table = WeightTable.from_counts([10.0, 0.0, 30.0])
    np.testing.assert_allclose(resolve_target(table), [0.5, 0.0, 0.5])


@pytest.mark.parametrize(
    "target, kwargs, match",
    [
        ("auto", {}, "`target`. Expected one of"),
        ([1, 2], {}, "3 shares, one per class"),
        ([1, -1, 1], {}, "finite shares >= 0"),
        ({"zebra": 1}, {}, "class names"),
        ({5: 1}, {}, r"class ids in \[0, 3\)"),
        ([0, 0, 0], {}, "positive share"),
        (float("nan"), {}, "finite float alpha"),
        ("uniform", {"scheme": "balanced"}, "`scheme`. Expected None when `target` is given"),
    ],
)
def test_resolve_target_errors(table, target, kwargs, match):
    with pytest.raises(ValueError, match=match):
        resolve_target(table, target, **kwargs)


def test_share_on_empty_class_is_refused():
    table = WeightTable.from_counts([10.0, 0.0, 30.0])
    with pytest.raises(ValueError, match="no examples and cannot be sampled"):
        resolve_target(table, [1, 1, 1])


@pytest.mark.parametrize("strength", [0.0, 0.3, 0.5, 1.0])
@pytest.mark.parametrize("target", ["uniform", 0.5, [0.2, 0.3, 0.5]])
def test_exact_composition(table, strength, target):
    plan = sampling_plan(table, target, sampling_strength=strength)
    p = np.asarray(COUNTS) / sum(COUNTS)
    # The sampler's mix is what the factors produce, and the weights finish the job.
    np.testing.assert_allclose(p * plan.factors / (p * plan.factors).sum(), plan.sampled, rtol=1e-12)
    np.testing.assert_allclose(plan.sampled * plan.weights, plan.target, rtol=1e-12)
    np.testing.assert_allclose((plan.sampled * plan.weights).sum(), 1.0)  # mean one per example
    if strength == 0.0:
        np.testing.assert_allclose(plan.factors, 1.0)
    if strength == 1.0:
        np.testing.assert_allclose(plan.weights, 1.0)
        np.testing.assert_allclose(plan.sampled, plan.target)


def test_weights_only_uniform_is_sklearn_balanced(table):
    plan = sampling_plan(table, "uniform", sampling_strength=0.0)
    np.testing.assert_allclose(plan.weights, table.class_weights("balanced"), rtol=1e-6)


def test_half_strength_splits_the_work_geometrically():
    table = WeightTable.from_counts([10000.0, 100.0])
    plan = sampling_plan(table, sampling_strength=0.5, epoch_size="keep_all")
    assert plan.factors[1] / plan.factors[0] == pytest.approx(10.0)
    assert plan.weights[1] / plan.weights[0] == pytest.approx(10.0)


@pytest.mark.parametrize(
    "epoch_size, expected", [("keep", 1000.0), ("keep_all", 3 * 800.0), (5000, 5000.0)]
)
def test_epoch_size(table, epoch_size, expected):
    plan = sampling_plan(table, epoch_size=epoch_size)
    if epoch_size == "keep_all":
        assert plan.factors.min() == pytest.approx(1.0)  # every class up to the largest
    assert plan.expected_epoch_size == pytest.approx(expected)
    assert plan.steps_per_epoch(64) == int(np.ceil(expected / 64))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sampling_strength": 1.5}, "`sampling_strength`. Expected a float in"),
        ({"epoch_size": "big"}, "`epoch_size`. Expected one of"),
        ({"epoch_size": 0}, "`epoch_size`"),
        ({"repeat_threshold": 0.1}, "`repeat_threshold`. Expected None"),
    ],
)
def test_plan_errors(table, kwargs, match):
    with pytest.raises(ValueError, match=match):
        sampling_plan(table, **kwargs)


def test_multilabel_repeat_factors_follow_lvis():
    table = WeightTable.from_counts([500.0, 50.0, 5.0], task="multilabel", num_examples=1000)
    plan = sampling_plan(table, repeat_threshold=0.2, epoch_size="keep_all")
    freq = np.array([0.5, 0.05, 0.005])
    np.testing.assert_allclose(plan.factors, np.maximum(1.0, np.sqrt(0.2 / freq)))
    assert plan.weights is None and plan.target is None
    # Upper bound: exact when no row has two positive labels.
    assert plan.expected_epoch_size == pytest.approx(1000 + np.dot([500, 50, 5], plan.factors - 1))
    default = sampling_plan(table, epoch_size="keep_all")
    np.testing.assert_allclose(default.factors, np.sqrt(0.5 / freq))
    with pytest.raises(ValueError, match="`epoch_size`. Expected 'keep_all'"):
        sampling_plan(table)
    with pytest.raises(ValueError, match="`target`. Expected None for a multilabel"):
        sampling_plan(table, "uniform", epoch_size="keep_all")
