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
from balance.workers import pipeline_seed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 240  # seconds for both workers (35-86 s seen on 2 busy cores); a hung collective op fails the test


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


SHARD_MIXES = ([0.85, 0.1, 0.04, 0.01], [0.4, 0.3, 0.2, 0.1])


def union_of_shards(per_shard_tables: bool, n: int = 20_000) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of two input pipelines whose shards have different mixes, as the
    strategy would run them; returns the union's (labels, weights)."""
    rng = np.random.default_rng(3)
    shards = [rng.choice(4, size=n, p=mix) for mix in SHARD_MIXES]
    global_table = WeightTable.from_labels(np.concatenate(shards))
    tables = [WeightTable.from_labels(y) for y in shards] if per_shard_tables else global_table
    steps = balance.worker_steps_per_epoch(tables, 256)
    labels, weights = [], []
    for index, y in enumerate(shards):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        ds = tf.data.Dataset.from_tensor_slices((np.zeros((n, 1), "float32"), y))
        out = balance.rebalance_for_worker(ctx, ds, tables, global_batch_size=256, seed=1, shard=False)
        for _, yb, wb in out.take(steps):
            labels.append(yb.numpy())
            weights.append(wb.numpy())
    return np.concatenate(labels), np.concatenate(weights)


def test_shards_with_different_mixes_need_a_table_each():
    per_shard = weighted_mix(*union_of_shards(per_shard_tables=True), 4)
    assert np.abs(per_shard - 0.25).sum() < 0.02
    # The global table over-weights the shard that yields fewer examples per pass.
    shared = weighted_mix(*union_of_shards(per_shard_tables=False), 4)
    assert np.abs(shared - 0.25).sum() > 0.05


def test_worker_arguments_are_checked():
    ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=0, num_replicas_in_sync=2)
    table = WeightTable.from_counts([10, 5])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((15, 1), "float32"), np.repeat([0, 1], [10, 5])))
    with pytest.raises(ValueError, match="one WeightTable per input pipeline"):
        balance.rebalance_for_worker(ctx, ds, [table], global_batch_size=8, seed=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        balance.rebalance_for_worker(ctx, ds, table, global_batch_size=8, seed=0, batch_size=4)
    with pytest.raises(ValueError, match="`input_context`"):
        balance.rebalance_for_worker(None, ds, table, global_batch_size=8, seed=0)
    with pytest.raises(ValueError, match="`global_batch_size`"):
        balance.worker_steps_per_epoch(table, 0)
    assert balance.worker_steps_per_epoch([table, table], 8) == 4  # 30 examples over both shards
    _, yb, wb = next(iter(balance.rebalance_for_worker(ctx, ds, table, global_batch_size=8, seed=0, method="weight")))
    assert yb.shape == wb.shape == (4,)
    assert pipeline_seed(0, 0) != pipeline_seed(0, 1) and pipeline_seed(None, 1) is None
