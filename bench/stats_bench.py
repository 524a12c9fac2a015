"""Benchmark of the class-statistics job against its practical limits.

Generates N examples once (100 long-tailed classes at 1:1000, in S shards) as
TFRecord, Parquet and CSV in a temp dir, then times, each in a fresh process:

  (a) single-process read + batched label parse + bincount
      (tf.data for TFRecord, pyarrow for Parquet and CSV): the practical limit;
  (b) naive Beam: ReadFromTFRecord -> Map(parse) -> Count.PerElement (TFRecord);
  (c) our job, DirectRunner, 1 worker;
  (d) our job, DirectRunner, 2 multi_processing workers.

It prints medians, the ratios (c)/(a), (b)/(c), (c)/(d) and peak RSS, then
the peak RSS of (c) on N and on ``--memory_factor`` x N TFRecord examples.

``--dask`` compares, on TFRecord only, (a), (c) and the job on a warm Dask
``LocalCluster`` (workers started and TensorFlow imported before the clock
starts) of 1 worker x 1 thread and 2 workers x 1 thread, taking turns in one
process, with the peak RSS of each worker and a check that the tables are
equal; then the per-worker peak RSS of 2 workers at each ``--rss_sizes``.
Its data is generated once and kept under ``--keep`` (default
/tmp/tf_rebalance_bench), one directory per size and shard count.

  python bench/stats_bench.py                      # N = 1M, 3 repeats
  python bench/stats_bench.py --n 200000 --repeats 1 --memory_factor 0
  python bench/stats_bench.py --dask --n 8000000 --shards 8 --repeats 3

``--strings`` measures string labels instead (~100k classes, Zipf-like; 1M and
10M records; Parquet, CSV and TFRecord): see ``bench/_string_labels.py``.

  python bench/stats_bench.py --strings --sizes 1000000,10000000 --repeats 3
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CLASSES = 100
BATCH = 8192


# ------------------------------------------------------------------ data
def make_labels(n: int, seed: int = 0) -> np.ndarray:
    """Long-tailed labels: class frequencies fall geometrically from 1000 to 1."""
    freq = 1000.0 ** (-np.arange(CLASSES) / (CLASSES - 1))
    return np.random.default_rng(seed).choice(CLASSES, size=n, p=freq / freq.sum())


def generate(directory: str, n: int, shards: int, formats: list[str]) -> None:
    """Writes the dataset once; each record also carries an 8-float feature."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq
    import tensorflow as tf

    labels = make_labels(n)
    rng = np.random.default_rng(1)
    x = rng.random((CLASSES, 8)).astype(np.float32)
    for fmt in formats:
        os.makedirs(os.path.join(directory, fmt), exist_ok=True)
    for s in range(shards):
        part = labels[s::shards]
        if "tfrecord" in formats:
            templates = [tf.train.Example(features=tf.train.Features(feature={
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[c])),
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[c])),
            })).SerializeToString() for c in range(CLASSES)]
            with tf.io.TFRecordWriter(os.path.join(directory, "tfrecord", f"part-{s:05d}")) as w:
                for y in part.tolist():
                    w.write(templates[y])
        columns = {"label": pa.array(part), "x": pa.array(x[part, 0])}
        if "parquet" in formats:
            pq.write_table(pa.table(columns), os.path.join(directory, "parquet", f"part-{s:05d}.parquet"),
                           row_group_size=128 * 1024)
        if "csv" in formats:
            pa_csv.write_csv(pa.table(columns), os.path.join(directory, "csv", f"part-{s:05d}.csv"))


# -------------------------------------------------------------- variants
def limit_tfrecord(directory: str) -> np.ndarray:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(os.path.join(directory, "tfrecord", "*")))
    spec = {"label": tf.io.FixedLenFeature([], tf.int64)}
    dataset = (tf.data.TFRecordDataset(files).batch(BATCH)
               .map(lambda s: tf.io.parse_example(s, spec)["label"], num_parallel_calls=tf.data.AUTOTUNE)
               .prefetch(tf.data.AUTOTUNE))
    counts = np.zeros(CLASSES)
    for labels in dataset:
        counts += np.bincount(labels.numpy(), minlength=CLASSES)
    return counts


def label_columns(directory: str, fmt: str, text: bool = False):
    """The ``label`` column of each Parquet or CSV file under ``directory/fmt``, read whole by pyarrow."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    types = {"label": pa.string()} if text else None
    for name in sorted(os.listdir(os.path.join(directory, fmt))):
        path = os.path.join(directory, fmt, name)
        if fmt == "parquet":
            yield pq.read_table(path, columns=["label"]).column(0)
        else:
            yield pa_csv.read_csv(path, convert_options=pa_csv.ConvertOptions(
                include_columns=["label"], column_types=types)).column(0)


def limit_arrow(directory: str, fmt: str) -> np.ndarray:
    counts = np.zeros(CLASSES)
    for column in label_columns(directory, fmt):
        counts += np.bincount(column.to_numpy(), minlength=CLASSES)
    return counts


def _parse_label(record: bytes) -> int:
    import tensorflow as tf

    return tf.train.Example.FromString(record).features.feature["label"].int64_list.value[0]


def naive_beam(directory: str) -> None:
    import apache_beam as beam

    with beam.Pipeline() as p:
        _ = (p | beam.io.ReadFromTFRecord(os.path.join(directory, "tfrecord", "*"))
             | beam.Map(_parse_label) | beam.combiners.Count.PerElement())


def ours(directory: str, fmt: str, workers: int, out: str) -> None:
    from pipelines import run_class_stats as run

    flags = ["--input", os.path.join(directory, fmt, "*"), "--format", fmt, "--output", out]
    if workers > 1:
        flags += [f"--direct_num_workers={workers}", "--direct_running_mode=multi_processing"]
    with contextlib.redirect_stdout(io.StringIO()):
        run(flags)


def _warm_worker() -> None:
    import tensorflow  # noqa: F401

    import pipelines.io.readers  # noqa: F401


def _worker_peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024


def _dask_flags(directory: str, address: str, out: str) -> list[str]:
    return ["--input", os.path.join(directory, "tfrecord", "*"), "--output", out,
            "--runner", "dask", "--dask_address", address]


def _quiet_run(flags: list[str]):
    from pipelines import run_class_stats as run

    with contextlib.redirect_stdout(io.StringIO()):
        return run(flags)


def _local_cluster(workers: int):
    from dask.distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                        dashboard_address=":0")


def on_dask(directory: str, workers: int, out: str, repeats: int) -> dict:
    """The job ``repeats`` times on a fresh, warm LocalCluster of ``workers`` x 1 thread."""
    from dask.distributed import Client

    with _local_cluster(workers) as cluster, Client(cluster) as client:
        client.run(_warm_worker)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            _quiet_run(_dask_flags(directory, cluster.scheduler_address, out))
            times.append(time.perf_counter() - start)
        workers_rss = sorted(client.run(_worker_peak_rss_mb).values())
    return {"times": times, "rss_mb": peak_rss_mb(), "worker_rss_mb": workers_rss}


def interleaved(directory: str, repeats: int) -> dict:
    """(a), (c) and the job on warm 1- and 2-worker clusters, in turn, ``repeats`` rounds.

    Taking turns gives every variant the same share of a busy machine; all four
    run from this process (the clusters' workers are their own processes).
    """
    from dask.distributed import Client

    from balance.table import WeightTable

    out = {k: os.path.join(directory, f"table-{k}.json") for k in ("ours1", "dask1", "dask2")}
    with contextlib.ExitStack() as stack:
        address = {}
        for workers in (1, 2):
            cluster = stack.enter_context(_local_cluster(workers))
            client = stack.enter_context(Client(cluster))
            client.run(_warm_worker)
            address[workers] = (cluster.scheduler_address, client)
        calls = {
            "limit": lambda: limit_tfrecord(directory),
            "ours1": lambda: _quiet_run(["--input", os.path.join(directory, "tfrecord", "*"),
                                         "--output", out["ours1"]]),
            "dask1": lambda: _quiet_run(_dask_flags(directory, address[1][0], out["dask1"])),
            "dask2": lambda: _quiet_run(_dask_flags(directory, address[2][0], out["dask2"])),
        }
        times: dict[str, list[float]] = {k: [] for k in calls}
        loads: list[float] = []
        for _ in range(repeats):
            for kind, call in calls.items():
                start = time.perf_counter()
                call()
                times[kind].append(time.perf_counter() - start)
                loads.append(os.getloadavg()[0])
        rss = {str(w): sorted(client.run(_worker_peak_rss_mb).values()) for w, (_, client) in address.items()}
    direct = WeightTable.load(out["ours1"])
    equal = all(WeightTable.load(out[k]).content_equal(direct) for k in ("dask1", "dask2"))
    return {"times": times, "rss_mb": peak_rss_mb(), "worker_rss_mb": rss, "loads": loads,
            "tables_equal": equal}


def worker(variant: str, directory: str, repeats: int) -> None:
    """Runs one variant ``repeats`` times in this process; prints times and peak RSS."""
    fmt, kind = variant.split(":")
    out = os.path.join(directory, f"table-{fmt}-{kind}.json")
    if kind == "interleaved":
        import tensorflow  # noqa: F401

        import pipelines.jobs.stats  # noqa: F401

        print(json.dumps(interleaved(directory, repeats)))
        return
    if kind.startswith("dask"):
        print(json.dumps(on_dask(directory, int(kind[4:]), out, repeats)))
        return
    call = {
        "limit": lambda: limit_tfrecord(directory) if fmt == "tfrecord" else limit_arrow(directory, fmt),
        "naive": lambda: naive_beam(directory),
        "ours1": lambda: ours(directory, fmt, 1, out),
        "ours2": lambda: ours(directory, fmt, 2, out),
    }[kind]
    # Import what the variant needs first, so that times measure work, not imports.
    if kind != "limit" or fmt == "tfrecord":
        import tensorflow  # noqa: F401
    if kind != "limit":
        import apache_beam  # noqa: F401

        import pipelines.jobs.stats  # noqa: F401
    import pyarrow.csv
    import pyarrow.parquet  # noqa: F401

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    print(json.dumps({"times": times, "rss_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM, fresh after exec, unlike ru_maxrss); for
    multi_processing runs, plus the largest worker's peak (an upper bound: a
    worker's ru_maxrss includes its parent's RSS at fork)."""
    with open("/proc/self/status") as status:
        own = next(int(line.split()[1]) for line in status if line.startswith("VmHWM"))
    return (own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 1024


def measure(variant: str, directory: str, repeats: int) -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, __file__, "--worker", variant, "--data", directory,
                           "--repeats", str(repeats)], capture_output=True, text=True, env=env, check=False)
    if proc.returncode:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if isinstance(result["times"], list):
        result["median"] = statistics.median(result["times"])
    return result


# ------------------------------------------------------------------ dask
def kept_data(root: str, n: int, shards: int) -> str:
    """TFRecord data of ``n`` examples in ``shards`` files, generated once under ``root``."""
    directory = os.path.join(root, f"n{n}_s{shards}")
    if not os.path.exists(os.path.join(directory, "DONE")):
        shutil.rmtree(directory, ignore_errors=True)
        start = time.perf_counter()
        generate(directory, n, shards, ["tfrecord"])
        open(os.path.join(directory, "DONE"), "w").close()
        print(f"Generated {n:,} examples in {shards} shards under {directory} "
              f"({time.perf_counter() - start:.1f} s)", flush=True)
    return directory


def dask_main(args: argparse.Namespace) -> None:
    root = args.keep or "/tmp/tf_rebalance_bench"
    directory = kept_data(root, args.n, args.shards)
    print(f"{args.n:,} TFRecord examples in {args.shards} shards; {os.cpu_count()} CPUs; "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    res = measure("tfrecord:interleaved", directory, args.repeats)
    times, rss = res["times"], res["worker_rss_mb"]
    med = {k: statistics.median(v) for k, v in times.items()}
    for kind, values in times.items():
        print(f"  {kind}: median {med[kind]:.2f} s of {[round(t, 2) for t in values]}", flush=True)
    print(f"  load average after each run: {[round(x, 1) for x in res['loads']]}")
    print(f"  peak RSS: this process {res['rss_mb']:.0f} MB; workers: 1-worker cluster "
          f"{rss['1'][0]:.0f} MB, 2-worker cluster {' / '.join(f'{m:.0f}' for m in rss['2'])} MB")
    print(f"  Dask tables equal to the DirectRunner's: {res['tables_equal']}")
    print("\n| input | (a) tf.data limit | (c) DirectRunner in process | Dask 1 worker x 1 thread "
          "| Dask 2 workers x 1 thread | 1 -> 2 workers | 2 workers / (c) | peak RSS per worker (1 / 2 workers) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.n / 1e6:g}M TFRecord, {args.shards} shards | {med['limit']:.2f} s | {med['ours1']:.2f} s "
          f"| {med['dask1']:.2f} s | {med['dask2']:.2f} s | {med['dask1'] / med['dask2']:.2f}x "
          f"| {med['dask2'] / med['ours1']:.2f} | {rss['1'][0]:.0f} / {' + '.join(f'{m:.0f}' for m in rss['2'])} MB |")
    sizes = [int(x) for x in args.rss_sizes.split(",") if x]
    if sizes:
        print("\nPeak RSS per worker, fresh warm cluster of 2 workers x 1 thread (1 run each):")
    for n in sizes:
        r = measure("tfrecord:dask2", kept_data(root, n, args.shards), 1)
        print(f"  N={n:,}: {' / '.join(f'{m:.0f}' for m in r['worker_rss_mb'])} MB "
              f"({r['median']:.2f} s; load {os.getloadavg()[0]:.2f})", flush=True)


# ------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--formats", default="tfrecord,parquet,csv")
    parser.add_argument("--memory_factor", type=int, default=10,
                        help="Also measure (c)'s peak RSS on factor x N TFRecord examples; 0 skips.")
    parser.add_argument("--keep", help="Directory for the generated data (default: a temp dir; "
                        "with --dask, /tmp/tf_rebalance_bench).")
    parser.add_argument("--dask", action="store_true",
                        help="TFRecord on a warm Dask LocalCluster (1 and 2 workers) beside (a) and (c).")
    parser.add_argument("--rss_sizes", default="1000000,10000000",
                        help="With --dask: sizes at which to measure the per-worker peak RSS (2 workers).")
    parser.add_argument("--strings", action="store_true",
                        help="String labels (~100k classes) against the pyarrow / tf.data limit; "
                        "data kept under --keep (default /tmp/tf_rebalance_strings).")
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="With --strings: record counts; times at the largest, peak RSS at each.")
    parser.add_argument("--profile", help="With --strings: cProfile the job on this format at the largest size.")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.strings:
        import _string_labels

        _string_labels.main(args, os.path.abspath(__file__), ROOT)
        return
    if args.worker:
        worker(args.worker, args.data, args.repeats)
        return
    if args.dask:
        dask_main(args)
        return

    formats = args.formats.split(",")
    directory = args.keep or tempfile.mkdtemp(prefix="stats_bench_")
    try:
        start = time.perf_counter()
        generate(directory, args.n, args.shards, formats)
        print(f"Generated {args.n:,} examples x {formats} in {args.shards} shards "
              f"({time.perf_counter() - start:.1f} s) under {directory}; {os.cpu_count()} CPUs")
        rows = []
        for fmt in formats:
            kinds = ["limit", "naive", "ours1", "ours2"] if fmt == "tfrecord" else ["limit", "ours1", "ours2"]
            res = {k: measure(f"{fmt}:{k}", directory, args.repeats) for k in kinds}
            rows.append((fmt, res))
            line = "  ".join(f"{k}={r['median']:.2f}s/{r['rss_mb']:.0f}MB" for k, r in res.items())
            print(f"{fmt}: {line}", flush=True)
        print("\n| input | (a) limit | (b) naive Beam | (c) ours, 1 worker | (d) ours, 2 workers "
              "| (c)/(a) | (b)/(c) | (c)/(d) | peak RSS (a) / (c) / (d) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for fmt, res in rows:
            a, c, d = (res[k]["median"] for k in ("limit", "ours1", "ours2"))
            b = res["naive"]["median"] if "naive" in res else None
            print(f"| {fmt} | {a:.2f} s | {f'{b:.2f} s' if b else 'n/a'} | {c:.2f} s | {d:.2f} s "
                  f"| {c / a:.2f} | {f'{b / c:.2f}' if b else 'n/a'} | {c / d:.2f} "
                  f"| {res['limit']['rss_mb']:.0f} / {res['ours1']['rss_mb']:.0f} / "
                  f"{res['ours2']['rss_mb']:.0f} MB |")
        if args.memory_factor and "tfrecord" in formats:
            big = os.path.join(directory, "big")
            generate(big, args.n * args.memory_factor, args.shards, ["tfrecord"])
            small = rows[0][1]
            large = {k: measure(f"tfrecord:{k}", big, 1) for k in ("limit", "ours1", "ours2")}
            print(f"\nTFRecord at N={args.n * args.memory_factor:,} (1 run each): "
                  + "  ".join(f"{k}={r['median']:.2f}s/{r['rss_mb']:.0f}MB" for k, r in large.items()))
            print(f"Peak RSS of (c): {small['ours1']['rss_mb']:.0f} MB at N={args.n:,} vs "
                  f"{large['ours1']['rss_mb']:.0f} MB at N={args.n * args.memory_factor:,}; "
                  f"at that size (c)/(a) = {large['ours1']['median'] / large['limit']['median']:.2f}, "
                  f"(c)/(d) = {large['ours1']['median'] / large['ours2']['median']:.2f}")
    finally:
        if not args.keep:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
