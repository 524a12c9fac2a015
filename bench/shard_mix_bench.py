"""Shards with different class mixes: the union's weighted mix with the global
table against one table per shard.

Two input pipelines, as ``distribute_datasets_from_function`` runs them (the
same ``balance.rebalance_for_worker`` calls, with a
``tf.distribute.InputContext`` per pipeline, in one process): shard 0 holds
the data's mix, shard 1 a mix moved toward uniform by ``h`` (0: the same mix,
1: uniform). Each runs ``worker_steps_per_epoch`` steps of 128 (global batch
256), ``method="both"``, target uniform. Reported: the L1 distance of the
union's weighted class mix to the target, and of each worker's own stream.

Usage:
  python bench/shard_mix_bench.py            # 4 classes, 50,000 examples per shard, seeds 0-2
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import balance  # noqa: E402

BASE = np.array([0.85, 0.1, 0.04, 0.01])


def run(h: float, per_shard: bool, n: int, seed: int):
    rng = np.random.default_rng(seed)
    mixes = [BASE, (1 - h) * BASE + h * 0.25]
    shards = [rng.choice(4, size=n, p=mix) for mix in mixes]
    tables = [balance.WeightTable.from_labels(y) for y in shards] if per_shard else \
        balance.WeightTable.from_labels(np.concatenate(shards))
    steps = balance.worker_steps_per_epoch(tables, 256)
    mixes_out, union = [], np.zeros(4)
    for index, y in enumerate(shards):
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=index, num_replicas_in_sync=2)
        ds = tf.data.Dataset.from_tensor_slices((np.zeros((n, 1), "float32"), y))
        out = balance.rebalance_for_worker(ctx, ds, tables, global_batch_size=256, seed=seed, shard=False)
        mix = np.zeros(4)
        for _, yb, wb in out.take(steps).as_numpy_iterator():
            mix += np.bincount(yb, weights=wb, minlength=4)
        union += mix
        mixes_out.append(np.abs(mix / mix.sum() - 0.25).sum())
    return np.abs(union / union.sum() - 0.25).sum(), mixes_out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=50_000, help="per shard")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"shard 0 mix {BASE.tolist()}; shard 1 moved toward uniform by h; L1 to the target, median of "
          f"{args.seeds} seeds; load {os.getloadavg()[0]:.2f}")
    print(f"{'h':>4} {'tables':>10} {'union L1':>9} {'worker 0':>9} {'worker 1':>9}")
    for h in (0.0, 0.5, 1.0):
        for per_shard in (False, True):
            results = [run(h, per_shard, args.examples, seed) for seed in range(args.seeds)]
            union = np.median([r[0] for r in results])
            w0, w1 = (np.median([r[1][i] for r in results]) for i in range(2))
            print(f"{h:4.1f} {'per shard' if per_shard else 'global':>10} {union:9.4f} {w0:9.4f} {w1:9.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
