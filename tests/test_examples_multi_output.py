"""The multi-output example prints Keras's error and the recall gain it claims."""

import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_multi_output_example_prints_the_keras_error_and_a_recall_gain():
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}
    result = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "multi_output_weights.py"), "--smoke"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "class_weight` is only supported for Models with a single output" in result.stdout
    recall = dict(re.findall(r"^(plain|weighted)\s+rare recall \(head a\) ([0-9.]+)", result.stdout, re.M))
    accuracy = dict(re.findall(r"^(plain|weighted)\s+.*accuracy \(head b\) ([0-9.]+)", result.stdout, re.M))
    assert float(recall["weighted"]) > float(recall["plain"]) + 0.3
    assert float(accuracy["weighted"]) > float(accuracy["plain"]) - 0.03
