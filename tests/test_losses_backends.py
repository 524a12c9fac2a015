"""Every loss and metric gives the same numbers on the JAX and PyTorch backends as on TensorFlow.

One subprocess per backend runs ``tests/_backend_cases.py`` with
``KERAS_BACKEND`` set: it computes every loss (per example, summed with sample
weights, its mean and its gradient by the backend's autodiff), every metric
and the logit helpers, loads a ``.keras`` model saved here by the TensorFlow
backend, saves and reloads it, and trains one epoch on a ``balance.rebalance``
dataset. This process computes the same with TensorFlow and compares.

JAX comes with the ``test`` extra. PyTorch is checked when it is installed;
it is not in the extra, because a plain ``torch`` requirement installs a
CUDA build of several GB on Linux.
"""

import importlib.util
import json
import os
import subprocess
import sys

import _backend_cases as cases
import keras
import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-5
BACKENDS = {"jax": "jax", "torch": "torch"}  # backend -> the package it needs


@pytest.fixture(scope="module")
def tf_model(tmp_path_factory):
    assert keras.backend.backend() == "tensorflow"
    model = cases.compiled_model()
    path = str(tmp_path_factory.mktemp("keras") / "tf_model.keras")
    model.save(path)
    return path, model


@pytest.fixture(scope="module", params=sorted(BACKENDS))
def report(request, tf_model):
    backend = request.param
    if importlib.util.find_spec(BACKENDS[backend]) is None:
        pytest.skip(f"the {backend} backend needs `pip install {BACKENDS[backend]}`")
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", "JAX_PLATFORMS": "cpu",
           "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": os.pathsep.join([ROOT, os.path.join(ROOT, "tests")])}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tests", "_backend_cases.py"), tf_model[0]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, result.stdout[-3000:]
    return backend, json.loads(lines[0][len("RESULT "):])


def test_the_subprocess_ran_on_that_backend(report):
    backend, got = report
    assert got["backend"] == backend


def test_every_loss_and_metric_agrees_with_tensorflow(report):
    expected = cases.values()
    got = report[1]["values"]
    assert sorted(got) == sorted(expected)
    # 18 losses x (per example, mean, gradient, and a weighted sum for (N, K) inputs), 6 metrics, 4 helpers.
    assert len(expected) == 18 * 3 + 17 + 6 + 4
    mismatches = {}
    for name, reference in expected.items():
        reference, value = np.asarray(reference), np.asarray(got[name])
        if value.shape != reference.shape or not np.allclose(value, reference, rtol=TOLERANCE, atol=TOLERANCE):
            mismatches[name] = (reference.shape, value.shape, float(np.max(np.abs(value - reference))))
    assert not mismatches, mismatches


def test_keras_file_from_tensorflow_loads_saves_and_evaluates_the_same(tf_model, report):
    _, model = tf_model
    other = report[1]["keras_file"]
    reference = cases.evaluate(model)
    assert sorted(other["evaluate"]) == ["balanced_accuracy", "loss", "per_class_recall"]
    for key, value in reference.items():
        np.testing.assert_allclose(other["evaluate"][key], value, rtol=TOLERANCE, atol=TOLERANCE, err_msg=key)
    assert other["loss"] == keras.losses.serialize(model.loss)
    assert other["loss"]["registered_name"] == "tf_rebalance>SparseCategoricalFocalCrossentropy"
    assert [m["registered_name"] for m in other["metrics"]] == [
        "tf_rebalance>BalancedAccuracy",
        "tf_rebalance>PerClassRecall",
    ]


def test_one_epoch_on_a_rebalanced_tf_data_stream_trains_the_model(report):
    fit = report[1]["fit_rebalanced"]
    assert len(fit["loss"]) == 1 and np.isfinite(fit["loss"][0])
    assert 0.0 <= fit["balanced_accuracy"][0] <= 1.0
    assert fit["weights_moved"] > 1e-3
