"""Imbalance metrics against scikit-learn, streamed batch by batch and under model.evaluate."""

import keras
import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, precision_score, recall_score

import losses

RNG = np.random.default_rng(4)
K = 4


def _data(n=300, k=K):
    y = RNG.choice(k, n, p=[0.7, 0.2, 0.07, 0.03][:k] if k == K else None)
    scores = RNG.standard_normal((n, k)).astype(np.float32)
    scores[np.arange(n), y] += 1.0  # better than chance, imperfect
    return y, scores


@pytest.mark.parametrize("one_hot", [False, True])
def test_streaming_matches_sklearn_over_uneven_batches(one_hot):
    y, scores = _data()
    labels = np.eye(K)[y] if one_hot else y[:, None]
    balanced, per_class = losses.BalancedAccuracy(K), losses.PerClassRecall(K)
    for start, stop in (
        (0, 7),
        (7, 150),
        (150, 300),
    ):  # uneven batches: a mean of batch values would differ
        for metric in (balanced, per_class):
            metric.update_state(labels[start:stop], scores[start:stop])
    predicted = scores.argmax(-1)
    assert float(balanced.result()) == pytest.approx(
        balanced_accuracy_score(y, predicted), abs=1e-6
    )
    np.testing.assert_allclose(
        per_class.result(), recall_score(y, predicted, average=None), atol=1e-6
    )
    balanced.reset_state()
    assert float(balanced.result()) == 0.0


def test_sample_weight_and_absent_classes_match_sklearn():
    y, scores = _data(200)
    y[y == 2] = 0  # class 2 never occurs in the labels: sklearn skips it
    w = RNG.random(200).astype(np.float32)
    metric = losses.BalancedAccuracy(K)
    metric.update_state(y, scores, sample_weight=w)
    expected = balanced_accuracy_score(y, scores.argmax(-1), sample_weight=w)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


def test_per_pixel_labels_and_per_example_weights():
    y = RNG.integers(0, 3, (5, 4, 4))
    scores = RNG.standard_normal((5, 4, 4, 3)).astype(np.float32)
    w = RNG.random(5).astype(np.float32)
    metric = losses.BalancedAccuracy(3)
    metric.update_state(y, scores, sample_weight=w)
    pixel_w = np.broadcast_to(w[:, None, None], y.shape).ravel()
    expected = balanced_accuracy_score(y.ravel(), scores.argmax(-1).ravel(), sample_weight=pixel_w)
    assert float(metric.result()) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("from_logits", [True, False])
def test_single_sigmoid_output(from_logits):
    y = (RNG.random(400) < 0.1).astype(int)
    logits = (RNG.standard_normal(400) + 2.5 * y - 1.0).astype(np.float32)
    scores = logits if from_logits else 1 / (1 + np.exp(-logits))
    metric = losses.BalancedAccuracy(2, from_logits=from_logits)
    metric.update_state(y, scores[:, None])
    assert float(metric.result()) == pytest.approx(balanced_accuracy_score(y, logits > 0), abs=1e-6)


def test_recall_and_precision_from_logits():
    y = (RNG.random((200, 30)) < 1 / 30).astype(np.float32)
    logits = (RNG.standard_normal((200, 30)) + 3 * y - 2).astype(np.float32)
    recall, precision = losses.Recall(from_logits=True), losses.Precision(from_logits=True)
    recall.update_state(y, logits)
    precision.update_state(y, logits)
    assert float(recall.result()) == pytest.approx(
        recall_score(y.ravel(), logits.ravel() > 0), abs=1e-6
    )
    assert float(precision.result()) == pytest.approx(
        precision_score(y.ravel(), logits.ravel() > 0), abs=1e-6
    )
    # Keras's own Recall on the same logits thresholds at 0.5, not 0: a different number.
    plain = keras.metrics.Recall()
    plain.update_state(y, logits)
    assert float(plain.result()) != pytest.approx(float(recall.result()))


def test_correct_under_model_evaluate_and_reload(tmp_path):
    y, _ = _data(500)
    x = RNG.standard_normal((500, 8)).astype(np.float32)
    x[:, 0] += y  # learnable
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(K)])
    model.compile(
        optimizer=keras.optimizers.Adam(0.05),
        loss=losses.WeightedSparseCategoricalCrossentropy([1.0, 2.0, 4.0, 8.0], from_logits=True),
        metrics=[losses.BalancedAccuracy(K), losses.PerClassRecall(K)],
    )
    model.fit(x, y, epochs=3, batch_size=64, verbose=0)
    result = model.evaluate(x, y, batch_size=37, verbose=0, return_dict=True)
    predicted = model.predict(x, verbose=0).argmax(-1)
    assert result["balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(y, predicted), abs=1e-5
    )
    np.testing.assert_allclose(
        result["per_class_recall"], recall_score(y, predicted, average=None), atol=1e-5
    )
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    again = reloaded.evaluate(x, y, batch_size=37, verbose=0, return_dict=True)
    assert again["balanced_accuracy"] == pytest.approx(result["balanced_accuracy"], abs=1e-6)


def test_metric_configs_round_trip():
    for metric in (
        losses.BalancedAccuracy(3, threshold=0.3),
        losses.PerClassRecall(5, from_logits=True),
        losses.Recall(from_logits=True, class_id=2),
        losses.Precision(thresholds=0.7),
    ):
        clone = type(metric).from_config(metric.get_config())
        assert clone.get_config() == metric.get_config()
        restored = keras.metrics.deserialize(keras.metrics.serialize(metric))
        assert type(restored) is type(metric)
