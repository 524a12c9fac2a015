"""Benchmark: tf.data rebalancing against the plain pipeline and tf.data's built-ins.

Data: N ``tf.train.Example`` records (default 1M) in 4 TFRecord shards, K
classes (default 100) long-tailed at 1:1000, generated once into a temp dir
(or ``--data_dir``, reused when present). Every variant reads the shards the
same way (interleaved), parses batches of 1024, shuffles those batches, and
yields batches of 256, prefetched:

* plain: nothing else;
* ours resample / ours both: ``balance.rebalance`` to uniform (default window,
  and resample with a larger window to show the spreading trade-off);
* rejection_resample to uniform, run for a bounded time (it is very slow);
* filter per class + sample_from_datasets (streams repeated), on a 10-class
  subset, run for a bounded time.

Reported per variant: examples/s (median over repeats), the ratio to plain,
the L1 distance between the achieved class mix (weighted where weights apply)
and the target, and the most copies of one example in one batch.

Usage:
  python bench/tfdata_bench.py                      # full size
  python bench/tfdata_bench.py --examples 100000 --repeats 1   # quick
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import balance
from balance.resampling import DEFAULT_MIXING_WINDOW

BATCH = 256
PARSE_BATCH = 1024
FEATURES = 8


def long_tail(num_examples: int, num_classes: int, imbalance: float) -> np.ndarray:
    shares = imbalance ** (-np.arange(num_classes) / (num_classes - 1))
    counts = np.floor(shares / shares.sum() * num_examples).astype(np.int64)
    counts[0] += num_examples - counts.sum()
    return counts


def generate(data_dir: str, num_examples: int, num_classes: int, imbalance: float, shards: int = 4) -> None:
    """Writes shuffled records {id, label, x} once; reused when present."""
    marker = os.path.join(data_dir, f"done-{num_examples}-{num_classes}-{imbalance:g}")
    if os.path.exists(marker):
        return
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(num_classes), long_tail(num_examples, num_classes, imbalance))
    labels = rng.permutation(labels)
    x = rng.normal(size=(num_examples, FEATURES)).astype(np.float32)
    start = time.perf_counter()
    for s in range(shards):
        with tf.io.TFRecordWriter(os.path.join(data_dir, f"data-{s:05d}.tfrecord")) as writer:
            for i in range(s, num_examples, shards):
                example = tf.train.Example(features=tf.train.Features(feature={
                    "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[i])),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[labels[i]])),
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[i])),
                }))
                writer.write(example.SerializeToString())
    open(marker, "w").close()
    print(f"generated {num_examples:,} records in {time.perf_counter() - start:.0f}s into {data_dir}")


SPEC = {
    "id": tf.io.FixedLenFeature([], tf.int64),
    "label": tf.io.FixedLenFeature([], tf.int64),
    "x": tf.io.FixedLenFeature([FEATURES], tf.float32),
}


def parsed(data_dir: str) -> tf.data.Dataset:
    """The user-side pipeline every variant shares: batches of parsed dicts."""
    files = sorted(tf.io.gfile.glob(os.path.join(data_dir, "*.tfrecord")))
    ds = tf.data.TFRecordDataset(files, num_parallel_reads=len(files))
    ds = ds.batch(PARSE_BATCH).map(lambda b: tf.io.parse_example(b, SPEC), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.shuffle(16, seed=0)


def variants(data_dir: str, table: balance.WeightTable, subset: list[int], big_window: int):
    def base():
        return parsed(data_dir)

    def plain():
        return base().rebatch(BATCH)

    def ours(method, window=DEFAULT_MIXING_WINDOW):
        def build():
            return balance.rebalance(base(), table, method=method, seed=0, batch_size=BATCH,
                                     mixing_window=window, sampling_strength=None)
        return build

    def rejection():
        k = table.num_classes
        ds = base().unbatch().rejection_resample(
            lambda e: tf.cast(e["label"], tf.int32), target_dist=[1.0 / k] * k,
            initial_dist=table.prior().tolist(), seed=0)
        return ds.map(lambda _, e: e).batch(BATCH)

    def per_class():
        flat = base().unbatch()
        streams = [flat.filter(lambda e, c=c: e["label"] == c) for c in subset]
        sub = balance.WeightTable.from_counts(table.counts[subset])
        # repeat=True keeps the mix (the default stops when the rarest class runs dry).
        return balance.sample_per_class(streams, sub, seed=0, repeat=True).batch(BATCH)

    return [
        ("plain", plain, None),
        ("ours resample (window 8192)", ours("resample"), None),
        ("ours both, strength 0.5", ours("both"), None),
        (f"ours resample (window {big_window})", ours("resample", big_window), None),
        ("rejection_resample", rejection, "time"),
        ("filter + sample_from_datasets (10 classes)", per_class, "subset+time"),
    ]


def run(build, time_limit: float | None):
    """One timed pass: returns (seconds, labels, weights or None, worst copies per batch)."""
    labels, weights, worst = [], [], 0
    start = time.perf_counter()
    for element in build().prefetch(tf.data.AUTOTUNE).as_numpy_iterator():  # same user-side prefetch
        if isinstance(element, dict):
            x, y, w = element, element["label"], None
        else:
            x, y, w = element if len(element) == 3 else (*element, None)
        labels.append(y)
        if w is not None:
            weights.append(w)
        worst = max(worst, int(np.unique(x["id"], return_counts=True)[1].max()))
        if time_limit is not None and time.perf_counter() - start > time_limit:
            break
    seconds = time.perf_counter() - start
    y = np.concatenate(labels)
    return seconds, y, np.concatenate(weights) if weights else None, worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--imbalance", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per variant (median)")
    parser.add_argument("--time_limit", type=float, default=20.0,
                        help="seconds for the slow built-ins (rejection, per-class filter)")
    parser.add_argument("--big_window", type=int, default=65536)
    parser.add_argument("--data_dir", default=None, help="default: a temp dir")
    parser.add_argument("--only", default=None, help="comma-separated variant name prefixes")
    args = parser.parse_args(argv)

    data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), "tfdata_bench")
    generate(data_dir, args.examples, args.classes, args.imbalance)
    counts = long_tail(args.examples, args.classes, args.imbalance)
    table = balance.WeightTable.from_counts(counts.astype(float))
    subset = list(np.linspace(0, args.classes - 1, 10).round().astype(int))
    print(f"{args.examples:,} examples, {args.classes} classes at 1:{args.imbalance:g} "
          f"(largest {counts.max():,}, smallest {counts.min():,}); batch {BATCH}; "
          f"{os.cpu_count()} CPUs visible")

    chosen = [v for v in variants(data_dir, table, subset, args.big_window)
              if not args.only or any(v[0].startswith(p) for p in args.only.split(","))]
    # Fast variants take turns, repeat after repeat, so they share the machine's
    # load alike (it may be shared); the slow built-ins run once, time-bounded.
    results = {name: [] for name, _, _ in chosen}
    for _ in range(args.repeats):
        for name, build, mode in chosen:
            if not mode:
                results[name].append(run(build, None))
    for name, build, mode in chosen:
        if mode:
            results[name].append(run(build, args.time_limit))

    rows, plain_rate = [], None
    for name, _, mode in chosen:
        rate = statistics.median(len(r[1]) / r[0] for r in results[name])
        _, y, w, worst = results[name][-1]
        k = 10 if mode and "subset" in mode else args.classes
        if mode and "subset" in mode:
            y = np.searchsorted(subset, y)
        mix = np.bincount(y, weights=w, minlength=k)
        l1 = float(np.abs(mix / mix.sum() - 1.0 / k).sum())
        plain_rate = plain_rate or rate
        rows.append((name, rate, rate / plain_rate, l1, worst, len(y)))
        print(f"  {name}: {rate:,.0f} ex/s, L1 {l1:.4f}, max copies/batch {worst}, {len(y):,} examples",
              flush=True)

    print("\n| variant | examples/s | vs plain | L1 to uniform | max copies of one example per batch | examples seen |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, rate, ratio, l1, worst, n in rows:
        print(f"| {name} | {rate:,.0f} | {ratio:.2f}x | {l1:.4f} | {worst} | {n:,} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
