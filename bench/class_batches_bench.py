"""Benchmark: batches of a guaranteed composition against plain shuffle-and-batch.

Data and input shapes from ``bench/tfdata_bench.py`` (N examples, K classes
long-tailed at 1:``--imbalance``): A, TFRecord dicts parsed in batches of
1024 then ``unbatch()``; D, TFDS-style ``(uint8 28x28x1 image, label)``
tuples. Every variant reads the repeated input (``source().repeat()``):

* plain: ``shuffle(10000).batch(256)``;
* pk: ``balance.pk_batches(P=64, K=4)``, batches of 256 (uniform target);
* rare: ``balance.rare_class_batches(batch_size=256, rarest=10,
  min_per_batch=2)``, which shuffles within its blocks of 4096 (no
  ``shuffle(10000)``, as for pk).

Timed: ``--batches`` batches pulled to numpy (labels only) after ``--warmup``
untimed ones, on a fresh iterator per pass; passes interleave the variants,
median of ``--repeats``. Also reported: the class buffers' memory, the share
of P x K batches that waited for a class in the first ``--warmup +
--batches`` batches, the input read before the first rare-class batch, and
the classes per batch (composition check), and the time to draw one
batch's classes at 100, 1,000 and 10,000 classes.

Usage:
  python bench/class_batches_bench.py --only_draw_cost          # the per-batch class draw alone
  python bench/class_batches_bench.py                          # 1M examples, 1,000 classes
  python bench/class_batches_bench.py --examples 200000 --imbalance 100 --repeats 1   # quick
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import balance  # noqa: E402
from balance.class_batches import _pk_stream, _rare_stream, _systematic_draw, buffer_bytes  # noqa: E402
from tfdata_bench import images, make_arrays, parse_batches, write_tfrecords  # noqa: E402

BATCH, P, K, RAREST, M, SHUFFLE = 256, 64, 4, 10, 2, 10_000


def label_of(batch):
    return batch["label"] if isinstance(batch, dict) else batch[1]


def variants(source, table):
    def plain():
        return source().repeat().shuffle(SHUFFLE, seed=0).batch(BATCH)

    def pk():
        return _pk_stream(source().repeat(), table, classes_per_batch=P, examples_per_class=K, target=None,
                          buffer_per_class=None, seed=0, label=None, block_size=4096, max_waiting=64)

    def rare():
        return _rare_stream(source().repeat(), table, batch_size=BATCH, rarest=RAREST,
                            min_per_batch=M, buffer_per_class=None, seed=0, label=None, block_size=4096)

    return {"plain shuffle(10000).batch(256)": plain, f"pk_batches P={P} K={K}": pk,
            f"rare_class_batches rarest={RAREST} m={M}": rare}


def timed_pass(ds, warmup: int, batches: int):
    """(seconds for `batches` batches after `warmup`, the extra outputs of every batch)."""
    extras = []
    iterator = iter(ds.prefetch(tf.data.AUTOTUNE))
    for _ in range(warmup):
        element = next(iterator)
        extras.append(element[1].numpy() if isinstance(element, tuple) and len(element) == 2
                      and not isinstance(element[0], tf.Tensor) else None)
    start = time.perf_counter()
    for _ in range(batches):
        element = next(iterator)
        if isinstance(element, tuple) and len(element) == 2 and not isinstance(element[0], tf.Tensor):
            label_of(element[0]).numpy()
            extras.append(element[1].numpy())
        else:
            label_of(element).numpy()
    return time.perf_counter() - start, extras


def check_composition(ds, rare_ids, batches: int = 50):
    """Distinct classes per pk batch / the fewest rare examples in a rare batch, over `batches` batches."""
    worst = []
    for (batch, _) in ds.take(batches):
        y = label_of(batch).numpy()
        worst.append((len(np.unique(y)), min(int((y == c).sum()) for c in rare_ids)))
    return min(w[0] for w in worst), max(w[0] for w in worst), min(w[1] for w in worst)


def draw_cost(classes: int, batches: int = 16, rounds: int = 200) -> float:
    """Microseconds per batch to draw P classes of ``classes`` (one block's draws per call)."""
    pi = tf.constant(np.full(classes, P / classes))
    draw = tf.function(lambda s: _systematic_draw(pi, tf.constant(batches), P, s, s + 1))
    seed = tf.constant([1, 2], tf.int64)
    draw(seed)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(rounds):
            draw(seed)
        times.append((time.perf_counter() - start) / (rounds * batches) * 1e6)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=1000)
    parser.add_argument("--imbalance", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=200, help="untimed batches per pass")
    parser.add_argument("--batches", type=int, default=1000, help="timed batches per pass")
    parser.add_argument("--shapes", default="A,D")
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--only_draw_cost", action="store_true", help="just the per-batch class draw")
    args = parser.parse_args(argv)
    print("per-batch class draw (P=64, 16 batches per call): " + ", ".join(
        f"{c:,} classes {draw_cost(c):.1f} us" for c in (100, 1000, 10_000)))
    if args.only_draw_cost:
        return 0

    x, labels = make_arrays(args.examples, args.classes, args.imbalance)
    table = balance.WeightTable.from_labels(labels, num_classes=args.classes)
    print(f"{args.examples} examples, {args.classes} classes at 1:{args.imbalance:g}; fewest examples in a class: "
          f"{int(table.counts.min())}; load {os.getloadavg()[0]:.2f}")
    data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), f"class_batches_{args.examples}_{args.classes}")
    sources = {}
    if "A" in args.shapes:
        files = write_tfrecords(data_dir, x, labels)
        sources["A"] = lambda: parse_batches(files, 1024, parallel=True).unbatch()
    if "D" in args.shapes:
        img = images(labels)
        sources["D"] = lambda: tf.data.Dataset.from_tensor_slices((img, labels))
    rare_ids = balance.class_batches.rarest_classes(table, RAREST)

    for shape, source in sources.items():
        found = variants(source, table)
        times = {name: [] for name in found}
        extras = {}
        for _ in range(args.repeats):
            for name, build in found.items():
                seconds, extra = timed_pass(build(), args.warmup, args.batches)
                times[name].append(seconds)
                extras[name] = extra
        plain = statistics.median(times[next(iter(found))])
        print(f"\nshape {shape}: examples/s (median of {args.repeats}), ratio to plain")
        for name in found:
            t = statistics.median(times[name])
            print(f"  {name:45s} {args.batches * BATCH / t:12,.0f}  {plain / t:5.2f}x")
        pk_name, rare_name = list(found)[1:]
        waited = np.array([bool(w) for w in extras[pk_name]])
        print(f"  pk: batches that waited for a class: {waited.sum()} of {len(waited)} "
              f"({waited.mean():.1%}; in the first {args.warmup}: {waited[:args.warmup].mean():.1%}, "
              f"after: {waited[args.warmup:].mean():.1%})")
        print(f"  rare: input read before the first batch: {int(extras[rare_name][0]):,} examples")
        classes = check_composition(found[pk_name](), rare_ids)
        rare_check = check_composition(found[rare_name](), rare_ids)
        print(f"  pk: distinct classes per batch {classes[0]}-{classes[1]} (want {P}); "
              f"rare: fewest examples of a rare class in a batch {rare_check[2]} (want >= {M})")
        spec_ds = source()
        print(f"  buffers: pk {buffer_bytes(spec_ds, args.classes, 4 * K) / 2**20:.2f} MiB "
              f"({args.classes} classes x {4 * K}), rare {buffer_bytes(spec_ds, RAREST, 4 * M) / 2**10:.1f} KiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
