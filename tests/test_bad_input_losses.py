"""Bad constructor arguments of the losses and metrics: each raises a
``ValueError`` naming the argument and the value, when the loss is built."""

from __future__ import annotations

import numpy as np
import pytest

import losses as L
from balance import WeightTable

W = [1.0, 2.0, 3.0]
TABLE = WeightTable.from_counts([10, 5, 1])
COST = [[0.0, 1.0], [5.0, 0.0]]


@pytest.mark.parametrize("build, match", [
    (lambda: L.WeightedSparseCategoricalCrossentropy(W, from_logits="no"),
     r"`from_logits`. Expected True or False. Received: from_logits='no'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy(W, weight_by="pred"), r"Received: weight_by='pred'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy(W, reduction="avg"), r"`reduction`.*Received: reduction=avg"),
    (lambda: L.WeightedSparseCategoricalCrossentropy([[1, 2]]), r"`class_weights`. .*'shape \(1, 2\)'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy({0: 1.0}), r"Received: class_weights=\{0: 1.0\}"),
    (lambda: L.WeightedSparseCategoricalCrossentropy(2.0), r"`class_weights`. Expected one weight per class"),
    (lambda: L.WeightedSparseCategoricalCrossentropy("balanced"), r"Received: class_weights='balanced'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy([0.0, 0.0]), r"`class_weights`. Expected at least one weight > 0"),
    (lambda: L.WeightedCategoricalCrossentropy(W, label_smoothing=2), r"Received: label_smoothing=2.0"),
    (lambda: L.WeightedCategoricalCrossentropy(W, label_smoothing=float("nan")), r"Received: label_smoothing=nan"),
    (lambda: L.WeightedCategoricalCrossentropy(W, from_logits=1), r"Received: from_logits=1"),
    (lambda: L.WeightedBinaryCrossentropy(float("nan")), r"`pos_weight`. .*'nan at index 0'"),
    (lambda: L.WeightedBinaryCrossentropy(2.0, from_logits="True"), r"Received: from_logits='True'"),
    (lambda: L.SparseCategoricalFocalCrossentropy(gamma=-1), r"`gamma`. .*>= 0. Received: gamma=-1"),
    (lambda: L.SparseCategoricalFocalCrossentropy(gamma="2"), r"`gamma`. Expected a number. Received: gamma='2'"),
    (lambda: L.SparseCategoricalFocalCrossentropy(alpha=[1, -1]), r"`alpha`. .*'-1.0 at index 1'"),
    (lambda: L.SparseCategoricalFocalCrossentropy(from_logits=1), r"Received: from_logits=1"),
    (lambda: L.BinaryFocalCrossentropy(alpha=2.0), r"`alpha`. Expected values in \[0, 1\].*Received: alpha=2.0"),
    (lambda: L.CategoricalFocalCrossentropy(alpha="balanced"), r"Received: alpha='balanced'"),
    (lambda: L.LogitAdjustedSparseCategoricalCrossentropy([-1.0, -2.0], tau=-1), r"Received: tau=-1"),
    (lambda: L.LogitAdjustedSparseCategoricalCrossentropy([float("nan"), -2.0]), r"`log_prior`. .*'nan at index 0'"),
    (lambda: L.LDAMLoss([10, -1]), r"`class_counts`. .*'-1.0 at index 1'"),
    (lambda: L.LDAMLoss([10, 0]), r"`class_counts`. Expected counts > 0.*'0 for classes \[1\]'"),
    (lambda: L.LDAMLoss([10, 5], max_margin=0), r"`max_margin`. Expected a finite number > 0. Received: max_margin=0"),
    (lambda: L.LDAMLoss([10, 5], scale=float("nan")), r"Received: scale=nan"),
    (lambda: L.LDAMLoss([10, 5], class_weights=W), r"`class_weights`. Expected 2 values, one per class"),
    (lambda: L.CostSensitiveCategoricalCrossentropy([[0]], mode="expected_cost"), r"`cost_matrix`. .*'shape \(1, 1\)'"),
    (lambda: L.CostSensitiveCategoricalCrossentropy([[0, -1], [1, 0]], mode="expected_cost"),
     r"`cost_matrix`. Expected finite entries >= 0. Received: cost_matrix='-1.0 at \[0, 1\]'"),
    (lambda: L.CostSensitiveCategoricalCrossentropy(COST, mode="x"), r"Received: mode='x'"),
    (lambda: L.CostSensitiveCategoricalCrossentropy(COST, mode="expected_cost", ce_weight=-1),
     r"Received: ce_weight=-1"),
    (lambda: L.CostSensitiveCategoricalCrossentropy(COST, mode="expected_cost", from_logits="no"),
     r"Received: from_logits='no'"),
])
def test_loss_constructor_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build, match", [
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table(TABLE, "balancd"), r"Received: scheme='balancd'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table([1, 2]), r"`table`. .*Received: table='list'"),
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table(TABLE, scheme_params={"beta": 0.9}),
     r"`beta`. Expected one of the parameters of scheme 'balanced'"),
    # A scheme option among the loss's own options is refused, pointing at scheme_params.
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table(TABLE, "effective_number", beta=0.9),
     r"`beta`. Expected no such option of WeightedSparseCategoricalCrossentropy.*scheme_params=\{'beta': 0.9\}"),
    (lambda: L.CategoricalFocalCrossentropy.from_table(TABLE, "power", alpha=0.5), r"scheme_params=\{'alpha': 0.5\}"),
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table(TABLE, scheme_params="beta=0.9"),
     r"`scheme_params`. Expected a dict of scheme options"),
    (lambda: L.WeightedSparseCategoricalCrossentropy.from_table(
        WeightTable.from_labels(np.array([[1, 0], [0, 1]]), task="multilabel")), r"`table`. .*'multilabel'"),
    (lambda: L.LogitAdjustedSparseCategoricalCrossentropy.from_table(TABLE, tau="1"), r"Received: tau='1'"),
])
def test_from_table_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("build, match", [
    (lambda: L.BalancedAccuracy(1), r"`num_classes`. Expected an int >= 2. Received: num_classes=1"),
    (lambda: L.BalancedAccuracy(2.0), r"Received: num_classes=2.0"),
    (lambda: L.BalancedAccuracy(2, threshold="0.5"), r"`threshold`. Expected a finite number or None.*'0.5'"),
    (lambda: L.BalancedAccuracy(2, threshold=float("nan")), r"Received: threshold=nan"),
    (lambda: L.PerClassRecall(3, from_logits="yes"), r"Received: from_logits='yes'"),
    (lambda: L.Recall(from_logits="yes"), r"Received: from_logits='yes'"),
    (lambda: L.Precision(from_logits=0), r"Received: from_logits=0"),
])
def test_metric_constructor_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()
