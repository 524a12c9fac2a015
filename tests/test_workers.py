"""Rebalancing under MultiWorkerMirroredStrategy: two real worker processes.

The workers (tests/_two_workers.py) run on 127.0.0.1 with TF_CONFIG, each
reading its shard through ``balance.rebalance_for_worker``. Checked: the union
of their epochs has the target (weighted) mix, the streams share no example,
both ran the same number of steps, and a short ``model.fit`` finished on both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 150  # seconds for both workers; a hung collective op fails the test


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_two_workers(tmp_path) -> list[tuple[dict, dict]]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    procs = []
    try:
        for index in range(2):
            env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": "",
                   "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
            log = open(tmp_path / f"worker{index}.log", "w")
            procs.append(subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "_two_workers.py"),
                                           str(tmp_path / f"w{index}")], env=env, cwd=ROOT, stdout=log,
                                          stderr=subprocess.STDOUT))
        for proc in procs:
            proc.wait(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.fail("a worker did not finish in time (a collective op hung?)\n"
                    + (tmp_path / "worker0.log").read_text()[-2000:])
    finally:
        for proc in procs:  # ours only, by handle
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for index, proc in enumerate(procs):
        assert proc.returncode == 0, (tmp_path / f"worker{index}.log").read_text()[-3000:]
    out = []
    for index in range(2):
        info = json.loads((tmp_path / f"w{index}.json").read_text())
        arrays = dict(np.load(tmp_path / f"w{index}.npz"))
        out.append((info, arrays))
    return out


def weighted_mix(labels: np.ndarray, weights: np.ndarray, k: int) -> np.ndarray:
    mix = np.bincount(labels, weights=weights, minlength=k)
    return mix / mix.sum()


def test_two_workers_draw_the_target_mix_together(tmp_path):
    (info0, a0), (info1, a1) = run_two_workers(tmp_path)
    assert info0["task"] == 0 and info1["task"] == 1
    # Same number of steps, and a collective sum of the step counts agrees.
    assert info0["steps"] == info1["steps"] == 157
    assert info0["steps_sum"] == info1["steps_sum"] == 2 * 157
    # A short model.fit finished on both, with a finite loss.
    assert len(info0["loss"]) == len(info1["loss"]) == 1 and np.isfinite(info0["loss"] + info1["loss"]).all()
    # The streams share no example (disjoint shards, own seeds) and every batch is full.
    assert len(a0["labels"]) == len(a1["labels"]) == 157 * 128
    assert not set(a0["ids"]) & set(a1["ids"])
    assert np.all(a0["ids"] % 2 == 0) and np.all(a1["ids"] % 2 == 1)  # shard = every 2nd example
    # Together: the weighted class mix of the epoch is the target (uniform).
    labels = np.concatenate([a0["labels"], a1["labels"]])
    weights = np.concatenate([a0["weights"], a1["weights"]])
    assert np.abs(weighted_mix(labels, weights, 4) - 0.25).sum() < 0.02
    # Each example's label is its own (nothing mixed up between workers).
    rng = np.random.default_rng(0)
    y = rng.choice(4, size=40_000, p=[0.7, 0.2, 0.07, 0.03])
    np.testing.assert_array_equal(y[np.concatenate([a0["ids"], a1["ids"]])], labels)
