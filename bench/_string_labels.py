"""``stats_bench.py --strings``: string labels, ~100k classes with a Zipf-like tail.

For each size (``--sizes``, default 1M and 10M records) the data is generated
once under ``--keep`` (default /tmp/tf_rebalance_strings): 8 files per format,
Parquet row groups of 256k rows, each record a string label and one float.
Then, per format and size, in one fresh process, the limit and the job take
turns ``--repeats`` times (medians; imports excluded):

* limit, Parquet and CSV: ``pyarrow.parquet.read_table(columns=["label"])``
  (``pyarrow.csv.read_csv``, label column only) + ``pyarrow.compute.value_counts``
  per file, merged with one Arrow ``group_by().aggregate``;
* limit, TFRecord: ``tf.data.TFRecordDataset(files).batch(8192)``, a parallel
  ``map`` of ``tf.io.parse_example`` + ``tf.unique_with_counts``, merged in TF;
* job: ``pipelines.run_class_stats`` (``rebalance stats``), DirectRunner in
  process, default flags.

The job's table is checked against the limit's counts (every class, exactly).
The job's peak RSS (VmHWM) is taken in a separate fresh process per format
and size, one run each. ``--profile FORMAT`` prints the job's top functions
(cProfile, cumulative) at the largest size instead.
"""

from __future__ import annotations

import contextlib
import cProfile
import io
import json
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

CLASSES = 100_000
FILES = 8
ROW_GROUP = 256 * 1024
BATCH = 8192
FORMATS = ("parquet", "csv", "tfrecord")


# ------------------------------------------------------------------ data
def vocabulary() -> list[str]:
    """Distinct labels of varied length (6-25 characters), a few non-ASCII."""
    rng = np.random.default_rng(7)
    stems = ["cat", "dog", "truck", "ville", "über", "café", "naïve", "猫", "mountain-bike", "x"]
    return [f"{stems[i % len(stems)]}-{i:06d}{'-' * int(rng.integers(0, 12))}" for i in range(CLASSES)]


def class_ids(n: int, seed: int = 0) -> np.ndarray:
    """Zipf-like (s = 1) class ids over ``CLASSES`` ranks."""
    freq = 1.0 / np.arange(1, CLASSES + 1)
    return np.random.default_rng(seed).choice(CLASSES, size=n, p=freq / freq.sum())


def generate(directory: str, n: int) -> None:
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import tensorflow as tf

    names = vocabulary()
    ids = class_ids(n)
    x = np.random.default_rng(1).random(CLASSES).astype(np.float32)
    templates = [tf.train.Example(features=tf.train.Features(feature={
        "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[names[c].encode()])),
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x[c]])),
    })).SerializeToString() for c in range(CLASSES)]
    for fmt in FORMATS:
        os.makedirs(os.path.join(directory, fmt), exist_ok=True)
    labels = pa.array(names)
    for f in range(FILES):
        part = ids[f::FILES]
        table = pa.table({"label": labels.take(pa.array(part)), "x": pa.array(x[part])})
        pq.write_table(table, os.path.join(directory, "parquet", f"part-{f:05d}.parquet"), row_group_size=ROW_GROUP)
        pa_csv.write_csv(table, os.path.join(directory, "csv", f"part-{f:05d}.csv"))
        with tf.io.TFRecordWriter(os.path.join(directory, "tfrecord", f"part-{f:05d}.tfrecord")) as writer:
            for c in part.tolist():
                writer.write(templates[c])


def kept(root: str, n: int) -> str:
    directory = os.path.join(root, f"strings_n{n}")
    if not os.path.exists(os.path.join(directory, "DONE")):
        shutil.rmtree(directory, ignore_errors=True)
        start = time.perf_counter()
        generate(directory, n)
        open(os.path.join(directory, "DONE"), "w").close()
        print(f"Generated {n:,} records x {FORMATS} in {FILES} files under {directory} "
              f"({time.perf_counter() - start:.0f} s)", flush=True)
    return directory


# -------------------------------------------------------------- variants
def limit_arrow(directory: str, fmt: str) -> dict[str, int]:
    import pyarrow as pa
    import pyarrow.compute as pc
    from stats_bench import label_columns

    parts = []
    for column in label_columns(directory, fmt, text=True):
        counts = pc.value_counts(column)
        parts.append(pa.table({"label": counts.field("values"), "n": counts.field("counts")}))
    merged = pa.concat_tables(parts).group_by("label").aggregate([("n", "sum")])
    return dict(zip(merged.column("label").to_pylist(), merged.column("n_sum").to_pylist(), strict=True))


def limit_tfrecord(directory: str) -> dict[str, int]:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(directory, "tfrecord", "*")))
    spec = {"label": tf.io.FixedLenFeature([], tf.string)}

    def count(serialized):
        unique = tf.unique_with_counts(tf.io.parse_example(serialized, spec)["label"])
        return unique.y, tf.cast(unique.count, tf.int64)

    def merge(values, counts):
        unique = tf.unique(tf.concat(values, 0))
        return unique.y, tf.math.unsorted_segment_sum(tf.concat(counts, 0), unique.idx, tf.size(unique.y))

    dataset = (tf.data.TFRecordDataset(files, buffer_size=8 << 20).batch(BATCH)
               .map(count, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    values, counts = [], []
    for y, c in dataset:
        values.append(y)
        counts.append(c)
        if len(values) == 64:  # keeps memory O(classes)
            y, c = merge(values, counts)
            values, counts = [y], [c]
    y, c = merge(values, counts)
    return {k.decode(): int(v) for k, v in zip(y.numpy().tolist(), c.numpy().tolist(), strict=True)}


def job(directory: str, fmt: str) -> dict[str, int]:
    from pipelines import run_class_stats as run

    out = os.path.join(directory, f"table-{fmt}.json")
    with contextlib.redirect_stdout(io.StringIO()):
        table = run(["--input", os.path.join(directory, fmt, "*"), "--format", fmt, "--output", out])
    return dict(zip(table.class_names, (int(c) for c in table.counts), strict=True))


def _imports() -> None:
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401
    import tensorflow  # noqa: F401

    from pipelines.jobs.flags import beam_parser

    beam_parser()  # imports the runners' option modules (Dask's too), as the job's first run would


def worker(variant: str, directory: str, repeats: int) -> None:
    """``FMT:turns`` (limit and job in turn), ``FMT:rss`` (the job once) or ``FMT:profile``."""
    fmt, kind = variant.split(":")
    _imports()
    limit = (lambda: limit_tfrecord(directory)) if fmt == "tfrecord" else (lambda: limit_arrow(directory, fmt))
    if kind == "rss":
        start = time.perf_counter()
        job(directory, fmt)
        print(json.dumps({"time": time.perf_counter() - start, "rss_mb": _peak_rss_mb()}))
        return
    if kind == "profile":
        profiler = cProfile.Profile()
        profiler.runcall(job, directory, fmt)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
        print(json.dumps({}))
        return
    times: dict[str, list[float]] = {"limit": [], "job": []}
    loads, results = [], {}
    for _ in range(repeats):
        for name, call in (("limit", limit), ("job", lambda: job(directory, fmt))):
            start = time.perf_counter()
            results[name] = call()
            times[name].append(time.perf_counter() - start)
            loads.append(os.getloadavg()[0])
    print(json.dumps({"times": times, "loads": loads, "classes": len(results["job"]),
                      "equal": results["job"] == results["limit"]}))


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def measure(script: str, root_dir: str, variant: str, directory: str, repeats: int) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=root_dir)
    proc = subprocess.run([sys.executable, script, "--strings", "--worker", variant, "--data", directory,
                           "--repeats", str(repeats)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    if variant.endswith(":profile"):
        print(proc.stderr[-12000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(args, script: str, root_dir: str) -> None:
    if args.worker:
        worker(args.worker, args.data, args.repeats)
        return
    root = args.keep or "/tmp/tf_rebalance_strings"
    sizes = [int(s) for s in args.sizes.split(",")]
    formats = [f for f in args.formats.split(",") if f in FORMATS]
    directories = {n: kept(root, n) for n in sizes}
    if args.profile:
        measure(script, root_dir, f"{args.profile}:profile", directories[sizes[-1]], 1)
        return
    print(f"{os.cpu_count()} CPUs; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    rows = []
    for fmt in formats:
        rss = {n: measure(script, root_dir, f"{fmt}:rss", directories[n], 1)["rss_mb"] for n in sizes}
        big = sizes[-1]
        res = measure(script, root_dir, f"{fmt}:turns", directories[big], args.repeats)
        med = {k: statistics.median(v) for k, v in res["times"].items()}
        print(f"{fmt} at {big:,}: limit {[round(t, 2) for t in res['times']['limit']]} s, job "
              f"{[round(t, 2) for t in res['times']['job']]} s; {res['classes']:,} classes, tables equal to "
              f"the limit's counts: {res['equal']}; load average after each run "
              f"{[round(x, 1) for x in res['loads']]}; job peak RSS "
              + ", ".join(f"{rss[n]:.0f} MB at {n:,}" for n in sizes), flush=True)
        rows.append((fmt, med, rss, res))
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("\n| input | records | classes | limit | job (DirectRunner, in process) | job / limit | job peak RSS "
          + " / ".join(f"{n / 1e6:g}M" for n in sizes) + " | tables equal |")
    print("|---|---|---|---|---|---|---|---|")
    for fmt, med, rss, res in rows:
        print(f"| {fmt} | {sizes[-1] / 1e6:g}M | {res['classes']:,} | {med['limit']:.2f} s | {med['job']:.2f} s "
              f"| {med['job'] / med['limit']:.2f}x | " + " / ".join(f"{rss[n]:.0f}" for n in sizes)
              + f" MB | {res['equal']} |")
