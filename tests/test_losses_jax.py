"""Every loss and metric gives the same numbers on the JAX backend as on TensorFlow.

One subprocess runs ``tests/_backend_cases.py`` with ``KERAS_BACKEND=jax``: it
computes every loss (per example, summed with sample weights, its mean and its
gradient), every metric and the logit helpers, loads a ``.keras`` model saved
here by the TensorFlow backend, saves and reloads it, and trains one epoch on
a ``balance.rebalance`` dataset. This process computes the same with
TensorFlow and compares.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

pytest.importorskip("jax", reason="the JAX backend needs `pip install tf-rebalance[jax]`")

import _backend_cases as cases  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def tf_model(tmp_path_factory):
    assert keras.backend.backend() == "tensorflow"
    model = cases.compiled_model()
    path = str(tmp_path_factory.mktemp("keras") / "tf_model.keras")
    model.save(path)
    return path, model


@pytest.fixture(scope="module")
def jax_report(tf_model):
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu",
           "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "_backend_cases.py"), tf_model[0]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout[-3000:]
    return json.loads(lines[0][len("RESULT "):])


def test_the_subprocess_ran_on_jax(jax_report):
    assert jax_report["backend"] == "jax"


def test_every_loss_and_metric_agrees_with_tensorflow(jax_report):
    expected = cases.values()
    got = jax_report["values"]
    assert sorted(got) == sorted(expected)
    # 18 losses x (per example, mean, gradient, and a weighted sum for (N, K) inputs), 6 metrics, 4 helpers.
    assert len(expected) == 18 * 3 + 17 + 6 + 4
    mismatches = {}
    for name, reference in expected.items():
        reference, value = np.asarray(reference), np.asarray(got[name])
        if value.shape != reference.shape or not np.allclose(value, reference, rtol=TOLERANCE, atol=TOLERANCE):
            mismatches[name] = (reference.shape, value.shape, float(np.max(np.abs(value - reference))))
    assert not mismatches, mismatches


def test_keras_file_from_tensorflow_loads_saves_and_evaluates_the_same_on_jax(tf_model, jax_report):
    _, model = tf_model
    on_jax = jax_report["keras_file"]
    reference = cases.evaluate(model)
    assert sorted(on_jax["evaluate"]) == ["balanced_accuracy", "loss", "per_class_recall"]
    for key, value in reference.items():
        np.testing.assert_allclose(on_jax["evaluate"][key], value, rtol=TOLERANCE, atol=TOLERANCE, err_msg=key)
    assert on_jax["loss"] == keras.losses.serialize(model.loss)
    assert on_jax["loss"]["registered_name"] == "tf_rebalance>SparseCategoricalFocalCrossentropy"
    assert [m["registered_name"] for m in on_jax["metrics"]] == [
        "tf_rebalance>BalancedAccuracy",
        "tf_rebalance>PerClassRecall",
    ]


def test_one_epoch_on_a_rebalanced_tf_data_stream_trains_the_jax_model(jax_report):
    fit = jax_report["fit_rebalanced"]
    assert len(fit["loss"]) == 1 and np.isfinite(fit["loss"][0])
    assert 0.0 <= fit["balanced_accuracy"][0] <= 1.0
    assert fit["weights_moved"] > 1e-3
