"""examples/label_shift.py runs (smoke mode) and the numbers it prints hold."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_label_shift_example_prints_accurate_estimates_and_a_gain():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "examples", "label_shift.py"), "--smoke"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    out = result.stdout
    assert result.returncode == 0, out[-3000:] + result.stderr[-3000:]
    assert "deployment prior [0.9091, 0.0909]" in out
    errors = {m[0]: float(m[1]) for m in re.findall(r"^(em|bbse|bbse soft) estimate .*L1 error ([0-9.]+)$", out, re.M)}
    assert set(errors) == {"em", "bbse", "bbse soft"} and max(errors.values()) < 0.05, out
    line = re.search(r"^accuracy at deployment: (.*)$", out, re.M).group(1)
    accuracy = {name: float(value) for name, value in re.findall(r"([a-z ]+?) ([0-9.]+)(?:, |$)", line)}
    assert min(accuracy["em"], accuracy["bbse"], accuracy["bbse soft"]) >= accuracy["uncorrected"] + 0.05, accuracy
    assert re.search(r'provenance \{"method": "em", "num_unlabeled": 11000.0, "source_fingerprint": "sha256:', out)
    assert "OK:" in out
