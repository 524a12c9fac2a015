"""Benchmark of ``rebalance sample`` against the stats job, and of training epochs
over the sample against online resampling of the full data.

Data: the stats benchmark's data (``bench/stats_bench.py``: its labels, 100
classes at 1:1000, and its records, a ``tf.train.Example`` with an int label and
8 floats per class) plus a unique int64 ``id`` per record, as TFRecord in S
shards, generated once into ``--keep`` and reused. The ``id`` matters: the
stats benchmark writes one identical record per class, and identical records
share one keep decision, so without it a class would be kept or dropped whole.

Two measurements, each in one fresh process whose variants take turns,
repeat after repeat (the machine may be shared), medians reported:

  jobs:   (a) the stats job (``pipelines.run_class_stats``) vs
          (b) ``rebalance sample --table T --max_ratio 10`` on the same input,
          both DirectRunner in-process with default flags; ratio (b)/(a).
  epochs: (c) one tf.data epoch over the sample vs
          (d) one ``balance.rebalance(method="resample")`` epoch over the full
          data at the sample's class mix and size; records read per second,
          examples delivered per second, and the epoch-time ratio (d)/(c).

  python bench/sample_bench.py --n 10000000 --keep /tmp/sample_bench_10m
  python bench/sample_bench.py --n 1000000 --keep /tmp/sample_bench_1m --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

from stats_bench import CLASSES, make_labels, peak_rss_mb  # noqa: E402

BATCH = 256
PARSE_BATCH = 1024


def generate(directory: str, n: int, shards: int) -> None:
    """The stats benchmark's labels and records, each made unique by an ``id`` feature.

    The id is appended as a serialized one-feature Example (protobuf merges
    concatenated messages), so only that small message is encoded per record.
    """
    import numpy as np
    import tensorflow as tf

    labels = make_labels(n)
    x = np.random.default_rng(1).random((CLASSES, 8)).astype(np.float32)
    templates = [tf.train.Example(features=tf.train.Features(feature={
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[c])),
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[c])),
    })).SerializeToString() for c in range(CLASSES)]
    ident = tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(int64_list=tf.train.Int64List(value=[0]))}))
    value = ident.features.feature["id"].int64_list.value
    os.makedirs(os.path.join(directory, "tfrecord"), exist_ok=True)
    for s in range(shards):
        with tf.io.TFRecordWriter(os.path.join(directory, "tfrecord", f"part-{s:05d}")) as writer:
            for i in range(s, n, shards):
                value[0] = i
                writer.write(templates[labels[i]] + ident.SerializeToString())


def _files(directory: str) -> list[str]:
    return sorted(os.path.join(directory, n) for n in os.listdir(directory) if n.startswith("part-"))


# ------------------------------------------------------------------ jobs
def jobs(data: str, repeats: int, max_ratio: float) -> dict:
    import tensorflow  # noqa: F401 (imported before timing: times measure work, not imports)

    from pipelines import run_class_stats as stats
    from pipelines import run_sample as sample

    source = os.path.join(data, "tfrecord", "*")
    table_path, out = os.path.join(data, "source.json"), os.path.join(data, "sample")
    times: dict[str, list[float]] = {"stats": [], "sample": []}
    for _ in range(repeats):
        for name in ("stats", "sample"):
            flags = ["--input", source]
            flags += (["--output", table_path] if name == "stats" else
                      ["--table", table_path, "--output", out, "--max_ratio", str(max_ratio), "--overwrite"])
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                table = (stats if name == "stats" else sample)(flags)
            times[name].append(time.perf_counter() - start)
            if name == "sample":
                kept, read = table.num_examples, table.provenance["sample"]["source"]["num_examples"]
    return {"times": times, "kept": kept, "read": read, "rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------- epochs
def epochs(data: str, repeats: int) -> dict:
    import numpy as np
    import tensorflow as tf

    import balance

    spec = {"label": tf.io.FixedLenFeature([], tf.int64), "x": tf.io.FixedLenFeature([8], tf.float32)}

    def parsed(files):
        ds = tf.data.TFRecordDataset(files, num_parallel_reads=len(files))
        return ds.batch(PARSE_BATCH).map(lambda b: tf.io.parse_example(b, spec), num_parallel_calls=tf.data.AUTOTUNE)

    sample_table = balance.WeightTable.load(os.path.join(data, "sample", "_table.json"))
    source_table = balance.WeightTable.load(os.path.join(data, "source.json"))
    sample_files = _files(os.path.join(data, "sample"))
    full_files = sorted(tf.io.gfile.glob(os.path.join(data, "tfrecord", "*")))
    size = int(sample_table.num_examples)
    mix = sample_table.counts / sample_table.counts.sum()

    def over_sample():
        return parsed(sample_files).rebatch(BATCH)

    def resample_full():
        return balance.rebalance(parsed(full_files), source_table, method="resample", target=mix.tolist(),
                                 epoch_size=size, seed=0, batch_size=BATCH, label="label")

    builds = {"sample": (over_sample, size), "resample": (resample_full, int(source_table.num_examples))}
    results: dict[str, list] = {name: [] for name in builds}
    for _ in range(repeats):
        for name, (build, read) in builds.items():
            labels = []
            start = time.perf_counter()
            for element in build().prefetch(tf.data.AUTOTUNE).as_numpy_iterator():
                labels.append((element[1] if isinstance(element, tuple) else element["label"]).ravel())
            seconds = time.perf_counter() - start
            y = np.concatenate(labels)
            got = np.bincount(y, minlength=len(mix)) / len(y)
            results[name].append({"seconds": seconds, "read": read, "delivered": int(len(y)),
                                  "l1_to_mix": float(np.abs(got - mix).sum())})
    return {"results": results, "rss_mb": peak_rss_mb()}


def measure(kind: str, data: str, repeats: int, max_ratio: float) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, __file__, "--worker", kind, "--keep", data, "--repeats", str(repeats),
                           "--max_ratio", str(max_ratio)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max_ratio", type=float, default=10.0)
    parser.add_argument("--keep", required=True, help="Directory for the generated data (reused when present).")
    parser.add_argument("--only", choices=("jobs", "epochs"), help="Run one of the two measurements.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        call = jobs if args.worker == "jobs" else epochs
        result = call(args.keep, args.repeats, args.max_ratio) if args.worker == "jobs" else call(
            args.keep, args.repeats)
        print(json.dumps(result))
        return

    marker = os.path.join(args.keep, f"done-{args.n}-{args.shards}")
    if not os.path.exists(marker):
        start = time.perf_counter()
        generate(args.keep, args.n, args.shards)
        open(marker, "w").close()
        print(f"Generated {args.n:,} records in {args.shards} shards ({time.perf_counter() - start:.0f} s) "
              f"under {args.keep}")
    print(f"{args.n:,} TFRecord records, {os.cpu_count()} CPUs (shared machine); {args.repeats} repeats, medians",
          flush=True)
    if args.only != "epochs":
        job = measure("jobs", args.keep, args.repeats, args.max_ratio)
        a, b = (statistics.median(job["times"][k]) for k in ("stats", "sample"))
        print(f"jobs: stats {job['times']['stats']}, sample {job['times']['sample']}", flush=True)
        print(f"\nkept {job['kept']:,.0f} of {job['read']:,.0f} records ({job['kept'] / job['read']:.2%}) "
              f"with --max_ratio {args.max_ratio:g}; peak RSS of the jobs' process {job['rss_mb']:.0f} MB")
        print("\n| step | median time | ratio |")
        print("|---|---:|---:|")
        print(f"| (a) rebalance stats | {a:.2f} s | |")
        print(f"| (b) rebalance sample --max_ratio {args.max_ratio:g} --table | {b:.2f} s | (b)/(a) = {b / a:.2f} |")
    if args.only != "jobs":
        epoch = measure("epochs", args.keep, args.repeats, args.max_ratio)
        rows = {}
        for name, runs in epoch["results"].items():
            seconds = statistics.median(r["seconds"] for r in runs)
            rows[name] = (seconds, runs[-1]["read"] / seconds, runs[-1]["delivered"] / seconds,
                          runs[-1]["l1_to_mix"])
        print(f"epochs: {json.dumps(epoch['results'])}", flush=True)
        print("\n| epoch | median time | records read/s | examples delivered/s | L1 to the mix |")
        print("|---|---:|---:|---:|---:|")
        for label, name in (("(c) tf.data over the sample", "sample"),
                            ("(d) rebalance(method='resample') over the full data", "resample")):
            seconds, read, delivered, l1 = rows[name]
            print(f"| {label} | {seconds:.2f} s | {read:,.0f} | {delivered:,.0f} | {l1:.4f} |")
        print(f"\n(d)/(c) epoch time: {rows['resample'][0] / rows['sample'][0]:.1f}x; "
              f"peak RSS of the epochs' process {epoch['rss_mb']:.0f} MB")

if __name__ == "__main__":
    main()
