"""Per-class recall against class frequency: the numbers and the picture."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable


def test_per_class_recall_from_ids_and_from_scores():
    y = np.array([0, 0, 1, 1, 1, 2])
    pred = np.array([0, 1, 1, 1, 0, 0])
    np.testing.assert_allclose(balance.per_class_recall(y, pred, 4), [0.5, 2 / 3, 0.0, np.nan])
    scores = np.eye(4)[pred] * 3.0 - 1.0
    np.testing.assert_allclose(balance.per_class_recall(y, scores, 4), [0.5, 2 / 3, 0.0, np.nan])


@pytest.mark.parametrize(
    "y_pred, match",
    [(np.zeros((6, 3)), "`y_pred`. Expected scores with 4 columns"), (np.zeros(5), "`y_pred`. Expected 6 predictions")],
)
def test_per_class_recall_refuses_mismatched_predictions(y_pred, match):
    with pytest.raises(ValueError, match=match):
        balance.per_class_recall(np.zeros(6, int), y_pred, 4)


def test_model_recall_matches_predictions():
    x = np.array([[5.0, 0.0], [0.0, 5.0], [5.0, 0.0], [0.0, 5.0]], np.float32)
    y = np.array([0, 1, 1, 1])
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, kernel_initializer="identity")(inputs))
    recall = balance.model_recall(model, tf.data.Dataset.from_tensor_slices((x, y)).batch(2), 2)
    np.testing.assert_allclose(recall, [1.0, 2 / 3])


def test_plot_writes_a_png_and_checks_its_input(tmp_path):
    pytest.importorskip("matplotlib")
    table = WeightTable.from_counts([1000.0, 100.0, 10.0])
    path = balance.plot_recall_by_frequency(table, {"plain": [0.99, 0.5, 0.0], "rebalanced": [0.9, 0.8, 0.7]},
                                            str(tmp_path / "recall.png"))
    with open(path, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match=r"`recalls\['plain'\]`. Expected 3 recalls"):
        balance.plot_recall_by_frequency(table, {"plain": [0.5, 0.5]}, str(tmp_path / "bad.png"))
    with pytest.raises(ValueError, match="`path`. Expected a path ending in .png"):
        balance.plot_recall_by_frequency(table, {"plain": [0.5] * 3}, str(tmp_path / "bad.jpg"))
