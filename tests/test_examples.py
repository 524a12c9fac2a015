"""Each example runs (in smoke mode) and shows what it says it shows.

Each example's ``main`` returns the numbers it prints; the claims are checked
here on those numbers, independently of the example's own asserts.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = ("import json, runpy, sys; result = runpy.run_path(sys.argv[1])['main'](['--smoke']); "
       "print('RESULT', json.dumps(result, default=float))")


def run_example(name: str) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, "-c", RUN, os.path.join(ROOT, "examples", f"{name}.py")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = [x for x in result.stdout.splitlines() if x.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def check_weighted_softmax(r):
    (plain_bacc, plain_rare), (weighted_bacc, weighted_rare) = r["plain CE"], r["weighted by true label"]
    assert weighted_bacc > plain_bacc and weighted_rare > plain_rare + 0.05  # balanced accuracy, rarest recall
    assert r["bayes cost"] < r["argmax cost"]  # the Bayes decision lowers the expected cost


def check_keras_class_weight(r):
    assert r["class_weight (balanced)"] > r["plain"] + 0.02  # balanced accuracy


def check_sparse_multilabel(r):
    assert r["pos_weight loss"] > r["plain binary CE"] + 0.2  # recall
    assert r["pos_weight via tf.data"] > r["plain binary CE"] + 0.2


def check_binary_weights(r):
    right = r["per-example weights (right)"][0]  # recall on positives
    assert right > r["plain"][0] + 0.15 and right > r["multiply the logits (wrong)"][0] + 0.15


def check_sigmoid_oversample_and_weight(r):
    naive, exact, plain = (r[k] for k in ("oversample + pos_weight (naive)", "rebalance both (exact)", "plain"))
    assert abs(exact[0] - 0.5) < 0.08 and naive[0] > 0.85  # positives' share of the weighted mix
    assert exact[1] > plain[1] + 0.2 and naive[2] < exact[2] - 0.1  # recall on positives, on negatives


def check_downsample_and_correct(r):
    (negatives, positives), (kept_negatives, kept_positives) = r["source_counts"], r["sample_counts"]
    assert kept_positives == positives and abs(kept_negatives / kept_positives - 10) < 1  # --max_ratio 10
    assert negatives > kept_negatives
    rate = r["test_rate"]
    assert abs(r["corrected_mean"] - rate) < 0.15 * rate and r["raw_mean"] > 10 * rate  # calibrated after the shift
    assert r["corrected_log_loss"] < r["raw_log_loss"]


def check_class_batches(r):
    plain, pk, rare = r["plain"], r["pk_batches"], r["rare_class_batches"]
    key = "rarer classes' examples with a positive"
    assert pk[key] == 1.0 and plain[key] < 0.2  # K = 4: every anchor has 3 positives
    assert pk["classes per batch (min, max)"] == [16, 16]
    assert pk["L1 of the class mix to uniform"] < plain["L1 of the class mix to uniform"] - 0.5
    assert rare["batches holding every rare class"] == 1.0 and plain["batches holding every rare class"] < 0.1
    assert np.isfinite(r["fit loss"])


def check_live_rebalancing(r):
    erm_bacc, erm_rare = r["ERM"]  # [balanced accuracy, recall of the 3 rarest classes]
    for run in ("fixed weight", "DRW", "progressive sigma"):
        assert r[run][0] > erm_bacc + 0.1 and r[run][1] > erm_rare + 0.3, run
    assert r["recall-driven (CDB)"][0] > erm_bacc + 0.02  # CDB moves the target towards the lagging classes


CHECKS = {name[len("check_"):]: fn for name, fn in globals().items() if name.startswith("check_")}
# Examples whose claims are checked in a test file of their own.
CHECKED_ELSEWHERE = {"label_shift": "test_examples_label_shift.py", "multi_output_weights": "test_examples_multi_output.py"}


def test_every_example_is_checked():
    names = {p[:-3] for p in os.listdir(os.path.join(ROOT, "examples")) if p.endswith(".py")}
    assert names == set(CHECKS) | set(CHECKED_ELSEWHERE)
    here = os.path.dirname(os.path.abspath(__file__))
    for name, test_file in CHECKED_ELSEWHERE.items():
        with open(os.path.join(here, test_file)) as handle:
            assert f'"{name}.py"' in handle.read(), (name, test_file)


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_example_shows_its_claim(name):
    CHECKS[name](run_example(name))

