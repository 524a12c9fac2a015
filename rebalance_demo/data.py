"""Generated long-tailed classification data for the demo, examples and tests.

Each class is a Gaussian blob in ``num_features`` dimensions. The class means
are close enough that the blobs overlap: a rare class is learnable, but a model
trained on the raw mix is pulled towards the common classes and misses it.
Nothing is downloaded; the same seed gives the same data.

Stand-in data for trying the commands (the README's quickstart)::

  python -m rebalance_demo.data data --largest 2000   # data/train-0000{0..3}-of-00004.tfrecord
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from collections.abc import Sequence

import numpy as np

from pipelines import console

PROG = "python -m rebalance_demo.data"
FEATURE_KEY = "x"
LABEL_KEY = "label"


@dataclasses.dataclass(frozen=True)
class DemoData:
    """Arrays and the TFRecord shards written for them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    train_files: tuple[str, ...]


def long_tail_counts(num_classes: int, largest: int, imbalance: float) -> np.ndarray:
    """Exponentially decaying counts from ``largest`` down to ``largest / imbalance``."""
    decay = (1.0 / imbalance) ** (np.arange(num_classes) / max(num_classes - 1, 1))
    return np.maximum(1, np.round(largest * decay)).astype(np.int64)


def sample_blobs(
    counts: np.ndarray, *, num_features: int, separation: float, rng: np.random.Generator,
    means: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draws ``counts[c]`` points around each class mean; returns (x, y, means)."""
    if means is None:
        means = rng.normal(scale=separation, size=(len(counts), num_features))
    y = np.repeat(np.arange(len(counts)), counts)
    x = means[y] + rng.normal(size=(len(y), num_features))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order].astype(np.int64), means


def write_tfrecord_shards(x: np.ndarray, y: np.ndarray, out_dir: str, num_shards: int) -> tuple[str, ...]:
    """Writes ``tf.train.Example`` records with float feature ``x`` and int64 ``label``."""
    import tensorflow as tf  # noqa: PLC0415

    tf.io.gfile.makedirs(out_dir)
    paths = []
    for shard in range(num_shards):
        path = os.path.join(out_dir, f"train-{shard:05d}-of-{num_shards:05d}.tfrecord")
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(shard, len(y), num_shards):
                example = tf.train.Example(features=tf.train.Features(feature={
                    FEATURE_KEY: tf.train.Feature(float_list=tf.train.FloatList(value=x[i])),
                    LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[y[i]])),
                }))
                writer.write(example.SerializeToString())
        paths.append(path)
    return tuple(paths)


def make_demo_data(
    out_dir: str,
    *,
    num_classes: int = 10,
    largest: int = 12000,
    imbalance: float = 100.0,
    num_features: int = 16,
    separation: float = 0.6,
    test_largest: int = 5000,
    num_shards: int = 4,
    seed: int = 0,
) -> DemoData:
    """Generates the demo's train shards and a test set with the same long tail.

    The test set keeps the training imbalance (its largest class has
    ``test_largest`` examples), so plain accuracy rewards ignoring rare classes
    while balanced accuracy (mean per-class recall) shows whether they were
    learned.
    """
    rng = np.random.default_rng(seed)
    counts = long_tail_counts(num_classes, largest, imbalance)
    x_train, y_train, means = sample_blobs(counts, num_features=num_features, separation=separation, rng=rng)
    x_test, y_test, _ = sample_blobs(
        long_tail_counts(num_classes, test_largest, imbalance), num_features=num_features, separation=separation,
        rng=rng, means=means,
    )
    files = write_tfrecord_shards(x_train, y_train, out_dir, num_shards)
    return DemoData(x_train, y_train, x_test, y_test, files)


def main(argv: Sequence[str] | None = None) -> int:
    """Writes the demo's train shards into a directory and says what it wrote (a command as
    ``pipelines.console`` runs them: ``argv`` None is the program's own)."""
    return console.run(PROG, _write, sys.argv[1:] if argv is None else argv, process=argv is None)


def _write(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, allow_abbrev=False,
                                     description="Write long-tailed demo data as TFRecord shards of "
                                     f"tf.train.Example (float feature {FEATURE_KEY!r}, int64 {LABEL_KEY!r}).")
    parser.add_argument("out_dir", help="directory of the shards (created if missing)")
    parser.add_argument("--largest", type=int, default=12000, help="examples of the largest class (default 12000)")
    parser.add_argument("--seed", type=int, default=0)
    console.add_verbose_flag(parser)
    args = parser.parse_args(argv)
    data = make_demo_data(args.out_dir, largest=args.largest, seed=args.seed)
    print(f"Wrote {len(data.y_train):,} examples of {data.x_train.shape[1]} features and "
          f"{len(set(data.y_train.tolist()))} classes to {len(data.train_files)} shards: {data.train_files[0]} ...")
    return 0


if __name__ == "__main__":
    sys.exit(main())
