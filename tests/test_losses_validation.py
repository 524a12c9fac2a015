"""The bad-input corpus: every loss refuses bad options at construction (or,
for lengths only known from ``y_pred``, at the first call) with one error style."""

import math

import numpy as np
import pytest

import losses
from balance import WeightTable

MULTICLASS = WeightTable.from_counts([50, 30, 20])
MULTILABEL = WeightTable.from_counts([5, 10], task="multilabel", num_examples=40)
BINARY = WeightTable.from_counts([95, 5], task="binary")

W = losses.WeightedSparseCategoricalCrossentropy
CLASS_WEIGHTED = [
    losses.WeightedSparseCategoricalCrossentropy,
    losses.WeightedCategoricalCrossentropy,
    losses.SparseCategoricalFocalCrossentropy,
    losses.CategoricalFocalCrossentropy,
]


@pytest.mark.parametrize("cls", CLASS_WEIGHTED)
@pytest.mark.parametrize(
    "weights, match",
    [
        (2.0, r"`(class_weights|alpha)`.*one .* per class.*learning rate"),
        ([1.0, -0.5, 2.0], r"finite weights >= 0.*-0.5 at index 1"),
        ([1.0, math.nan, 2.0], r"finite weights >= 0.*nan at index 1"),
        ([1.0, math.inf], r"finite weights >= 0.*inf at index 1"),
        ([0.0, 0.0], r"at least one weight > 0"),
        ([], r"non-empty 1-D"),
        ([[1.0, 2.0]], r"non-empty 1-D"),
        ("auto", r"scheme"),
        ([True, False], r"not booleans"),
        (MULTICLASS, r"from_table"),
    ],
)
def test_bad_class_weights(cls, weights, match):
    with pytest.raises(ValueError, match=match):
        cls(weights)


@pytest.mark.parametrize("cls", CLASS_WEIGHTED)
def test_wrong_length_is_refused_at_first_call(cls):
    loss = cls([1.0, 2.0, 3.0], from_logits=True)
    labels = np.array([0, 1]) if "Sparse" in cls.__name__ else np.eye(4)[[0, 1]]
    with pytest.raises(ValueError, match=r"4 values to match y_pred's last axis.*3 values"):
        loss(labels, np.zeros((2, 4), np.float32))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"pos_weight": -1.0}, r"`pos_weight`.*>= 0"),
        ({"pos_weight": math.nan}, r"`pos_weight`.*finite"),
        (
            {"pos_weight": [1.0, 2.0], "neg_weight": [1.0, 2.0, 3.0]},
            r"`neg_weight`.*as many values",
        ),
        ({"pos_weight": 2.0, "neg_weight": [-1.0]}, r"`neg_weight`.*>= 0"),
        ({"pos_weight": 2.0, "neg_weight": 2.0}, r"`neg_weight`.*scalar weight in disguise.*learning rate"),
        ({"pos_weight": [3.0, 3.0], "neg_weight": 3.0}, r"`neg_weight`.*scalar weight in disguise"),
    ],
)
def test_bad_binary_weights(kwargs, match):
    with pytest.raises(ValueError, match=match):
        losses.WeightedBinaryCrossentropy(**kwargs)


def test_binary_per_label_length_checked_against_outputs():
    loss = losses.WeightedBinaryCrossentropy([1.0, 2.0], from_logits=True)
    with pytest.raises(ValueError, match=r"`pos_weight`. Expected 3 values"):
        loss(np.zeros((2, 3)), np.zeros((2, 3), np.float32))


@pytest.mark.parametrize(
    "matrix, match",
    [
        ([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]], r"square K x K"),
        ([1.0, 2.0], r"square K x K"),
        ([[1.0]], r"K >= 2"),
        ([[0.0, -1.0], [1.0, 0.0]], r"finite entries >= 0.*-1.0 at \[0, 1\]"),
        ([[0.0, math.nan], [1.0, 0.0]], r"finite entries >= 0"),
        ([[0.0, 0.0], [0.0, 0.0]], r"all-zero"),
        ("auto", r"K x K matrix"),
    ],
)
def test_bad_cost_matrix(matrix, match):
    with pytest.raises(ValueError, match=match):
        losses.CostSensitiveCategoricalCrossentropy(matrix, mode="expected_cost")
    with pytest.raises(ValueError, match=match):
        losses.bayes_decision([[0.5, 0.5]], matrix)


def test_cost_mode_checks():
    with pytest.raises(
        ValueError, match=r"`mode`. Expected one of \['argmax_weight', 'expected_cost'\]"
    ):
        losses.CostSensitiveCategoricalCrossentropy([[0, 1], [1, 0]], mode="forum")
    with pytest.raises(ValueError, match=r"diagonal > 0 .*argmax_weight.*cost_matrix \+ identity"):
        losses.CostSensitiveCategoricalCrossentropy([[0, 1], [1, 0]], mode="argmax_weight")
    with pytest.raises(ValueError, match=r"`ce_weight`"):
        losses.CostSensitiveCategoricalCrossentropy(
            [[1, 1], [1, 1]], mode="argmax_weight", ce_weight=1.0
        )
    with pytest.raises(ValueError, match=r"a 3 x 3 matrix"):
        losses.bayes_decision(np.full((1, 3), 1 / 3), [[0, 1], [1, 0]])


@pytest.mark.parametrize(
    "build",
    [
        lambda: losses.WeightedSparseCategoricalCrossentropy.from_table(MULTILABEL),
        lambda: losses.WeightedCategoricalCrossentropy.from_table(MULTILABEL),
        lambda: losses.SparseCategoricalFocalCrossentropy.from_table(MULTILABEL),
        lambda: losses.CategoricalFocalCrossentropy.from_table(MULTILABEL),
        lambda: losses.WeightedBinaryCrossentropy.from_table(MULTICLASS),
        lambda: losses.BinaryFocalCrossentropy.from_table(MULTICLASS),
        lambda: losses.LogitAdjustedSparseCategoricalCrossentropy(MULTILABEL),
        lambda: losses.LogitAdjustedSparseCategoricalCrossentropy.from_table(MULTILABEL),
        lambda: losses.LDAMLoss(MULTILABEL),
    ],
)
def test_wrong_task_table_is_refused(build):
    with pytest.raises(ValueError, match=r"`table`. Expected a table with task in"):
        build()


def test_right_task_tables_are_accepted():
    assert losses.WeightedBinaryCrossentropy.from_table(BINARY).pos_weight == [19.0]
    assert len(losses.WeightedSparseCategoricalCrossentropy.from_table(BINARY).class_weights) == 2
    assert len(losses.LDAMLoss.from_table(BINARY).class_counts) == 2


def test_not_a_table_and_unknown_scheme():
    with pytest.raises(ValueError, match=r"`table`. Expected a balance.WeightTable"):
        W.from_table({"counts": [1, 2]})
    with pytest.raises(ValueError, match=r"`scheme`"):
        W.from_table(MULTICLASS, "auto")


@pytest.mark.parametrize(
    "build, match",
    [
        (
            lambda: W([1.0, 2.0], weight_by="argmax"),
            r"`weight_by`. Expected one of \['predicted', 'true'\]",
        ),
        (
            lambda: losses.WeightedCategoricalCrossentropy([1, 2], label_smoothing=1.5),
            r"`label_smoothing`",
        ),
        (lambda: losses.SparseCategoricalFocalCrossentropy([1, 2], gamma=-1), r"`gamma`.*>= 0"),
        (
            lambda: losses.BinaryFocalCrossentropy(2.0),
            r"`alpha`. Expected values in \[0, 1\].*pos_weight",
        ),
        (lambda: losses.BinaryFocalCrossentropy([0.5, math.nan]), r"`alpha`.*finite"),
        (lambda: losses.BinaryFocalCrossentropy.from_table(MULTILABEL, "pos_weight"), r"`scheme`"),
        (
            lambda: losses.LogitAdjustedSparseCategoricalCrossentropy(-1.0),
            r"`log_prior`.*softmax unchanged",
        ),
        (
            lambda: losses.LogitAdjustedSparseCategoricalCrossentropy([0.0, -math.inf]),
            r"`log_prior`.*finite",
        ),
        (lambda: losses.LogitAdjustedSparseCategoricalCrossentropy([-1.0, -2.0], tau=-1), r"`tau`"),
        (lambda: losses.LDAMLoss([10, 0, 5]), r"`class_counts`.*counts > 0.*\[1\]"),
        (lambda: losses.LDAMLoss([10, 5], max_margin=0), r"`max_margin`.*> 0"),
        (lambda: losses.LDAMLoss([10, 5], scale=math.inf), r"`scale`"),
        (
            lambda: losses.LDAMLoss([10, 5], class_weights=[1.0]),
            r"`class_weights`. Expected 2 values",
        ),
        (
            lambda: losses.adjust_logits(np.zeros((1, 3)), [-1.0, -2.0]),
            r"`log_prior`. Expected 3 values",
        ),
        (lambda: losses.BalancedAccuracy(1), r"`num_classes`. Expected an int >= 2"),
        (lambda: W([1.0, 2.0], reduction="average"), r"`reduction`"),
    ],
)
def test_bad_options(build, match):
    with pytest.raises(ValueError, match=match):
        build()
