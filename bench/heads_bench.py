"""Benchmark: several labels in one pass of the stats job against one run per label.

Generates N records once, each with two labels (``a``: 100 long-tailed classes
at 1:1000; ``b``: 10 classes) and an 8-float feature, in S shards of TFRecord
and Parquet, then times in one process, taking turns (DirectRunner, in process):

  (1) ``rebalance stats --label a --label b`` (one pass, two tables);
  (2) ``rebalance stats --label a`` (one label);
  (3) (2) plus ``rebalance stats --label b``: two passes, the alternative to (1).

Prints the median of each and the ratios (1)/(2) and (1)/(3), and checks that
the one-pass tables equal the single-label ones.

  python bench/heads_bench.py --n 1000000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import tempfile
import time

import numpy as np


def generate(directory: str, n: int, shards: int) -> dict[str, str]:
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf

    rng = np.random.default_rng(0)
    freq = 1000.0 ** (-np.arange(100) / 99)
    a = rng.choice(100, size=n, p=freq / freq.sum())
    b = rng.integers(0, 10, n)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    for fmt in ("tfrecord", "parquet"):
        os.makedirs(f"{directory}/{fmt}", exist_ok=True)
    for s in range(shards):
        rows = slice(s * n // shards, (s + 1) * n // shards)
        with tf.io.TFRecordWriter(f"{directory}/tfrecord/part-{s:05d}.tfrecord") as writer:
            for ya, yb, xs in zip(a[rows], b[rows], x[rows], strict=True):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "a": tf.train.Feature(int64_list=tf.train.Int64List(value=[ya])),
                    "b": tf.train.Feature(int64_list=tf.train.Int64List(value=[yb])),
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=xs)),
                })).SerializeToString())
        pq.write_table(pa.table({"a": a[rows], "b": b[rows], "x": pa.array(list(x[rows]))}),
                       f"{directory}/parquet/part-{s:05d}.parquet", row_group_size=1 << 17)
    return {"tfrecord": f"{directory}/tfrecord/*.tfrecord", "parquet": f"{directory}/parquet/*.parquet"}


def timed(job, flags: list[str]):
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        result = job(flags)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="tfrecord,parquet")
    parser.add_argument("--keep", help="keep the generated data here (reused when present)")
    args = parser.parse_args()

    import pipelines

    with tempfile.TemporaryDirectory() as tmp:
        data = args.keep or tmp
        done = os.path.exists(f"{data}/parquet/part-{args.shards - 1:05d}.parquet")
        inputs = ({"tfrecord": f"{data}/tfrecord/*.tfrecord", "parquet": f"{data}/parquet/*.parquet"} if done
                  else generate(data, args.n, args.shards))
        for fmt in args.formats.split(","):
            common = ["--input", inputs[fmt], "--format", fmt]
            times: dict[str, list[float]] = {"one pass, 2 labels": [], "label a alone": [], "a, then b": []}
            for r in range(args.repeats):
                both, tables = timed(pipelines.run_head_stats,
                                     [*common, "--label", "a", "--label", "b", "--output", f"{tmp}/out-{fmt}-{r}"])
                single = pipelines.run_class_stats
                alone_a, table_a = timed(single, [*common, "--label", "a", "--output", f"{tmp}/a.json"])
                alone_b, table_b = timed(single, [*common, "--label", "b", "--output", f"{tmp}/b.json"])
                assert tables["a"].content_equal(table_a) and tables["b"].content_equal(table_b)
                times["one pass, 2 labels"].append(both)
                times["label a alone"].append(alone_a)
                times["a, then b"].append(alone_a + alone_b)
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"{fmt}, {args.n:,} records, {args.shards} shards, medians of {args.repeats}:")
            for name, value in med.items():
                print(f"  {name:<20} {value:7.2f} s   (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
            print(f"  one pass / one label: {med['one pass, 2 labels'] / med['label a alone']:.2f}x; "
                  f"one pass / two runs: {med['one pass, 2 labels'] / med['a, then b']:.2f}x; tables equal: yes")


if __name__ == "__main__":
    main()
