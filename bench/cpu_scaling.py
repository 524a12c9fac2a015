"""How much faster two processes are than one on this machine: the ceiling of any 1 -> 2 worker speed-up.

Runs a fixed CPU-bound task (a pure-Python loop, and a NumPy sort that stays in
cache) in one process, then in two processes at once, and prints the medians
and the throughput ratio ``2 * t1 / t2``: 2.0 on two full cores; about 1.2-1.6
when the two vCPUs are hyperthreads of one physical core (common on cloud VMs,
which report them as separate cores). Run it on a quiet machine.

With ``--tfrecord DIR`` it also times the stats job's own TFRecord reader (one
reader thread per process, as on a Dask worker of 1 thread) over DIR's shards:
one process reading all of them, then two processes reading half each.

  python bench/cpu_scaling.py --repeats 5
  python bench/cpu_scaling.py --repeats 3 --tfrecord /tmp/tf_rebalance_bench/n8000000_s8/tfrecord
"""

from __future__ import annotations

import argparse
import statistics
import time
from multiprocessing import Pool


def python_loop(n: int = 6_000_000) -> float:
    start = time.perf_counter()
    total = 0
    for i in range(n):
        total += (i * i) % 7
    return time.perf_counter() - start


def numpy_sort(rounds: int = 60) -> float:
    import numpy as np

    values = np.random.default_rng(0).random(200_000)
    start = time.perf_counter()
    for _ in range(rounds):
        np.sort(values, kind="quicksort")
    return time.perf_counter() - start


def read_shards(files: list[str]) -> float:
    """Our reader, one shard after the other on one thread (a Dask worker of 1 thread)."""
    from pipelines.config import Shard, StatsConfig
    from pipelines.counting.count import CountShards

    reader = CountShards(StatsConfig(input=tuple(files), read_threads=1))
    reader.setup()
    reader.start_bundle()
    start = time.perf_counter()
    for path in files:
        for _ in reader.process(Shard(path)):
            pass
    return time.perf_counter() - start


def reader_ratio(files: list[str], repeats: int) -> tuple[float, float, float]:
    half = len(files) // 2
    with Pool(2) as pool:
        pool.map(read_shards, [files[:1], files[1:2]])  # import TensorFlow in both workers
        one = [pool.apply(read_shards, (files,)) for _ in range(repeats)]
        two = [max(pool.map(read_shards, [files[:half], files[half:]])) for _ in range(repeats)]
    t1, t2 = statistics.median(one), statistics.median(two)
    return t1, t2, t1 / t2


def ratio(task, repeats: int) -> tuple[float, float, float]:
    with Pool(2) as pool:
        pool.apply(task)  # warm both workers
        one = [pool.apply(task) for _ in range(repeats)]
        two = [max(pool.map(_call, [task, task])) for _ in range(repeats)]
    t1, t2 = statistics.median(one), statistics.median(two)
    return t1, t2, 2 * t1 / t2


def _call(task):
    return task()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tfrecord", help="A directory of TFRecord shards to read with our reader too.")
    args = parser.parse_args()
    for name, task in (("python loop", python_loop), ("numpy sort", numpy_sort)):
        t1, t2, speedup = ratio(task, args.repeats)
        print(f"{name:12s} one process {t1:.3f} s, two at once {t2:.3f} s each: "
              f"two processes do {speedup:.2f}x the work of one")
    if args.tfrecord:
        import glob
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        files = sorted(glob.glob(os.path.join(args.tfrecord, "*")))
        t1, t2, speedup = reader_ratio(files, args.repeats)
        print(f"our reader   one process {t1:.2f} s for {len(files)} shards, two processes {t2:.2f} s "
              f"(half each): {speedup:.2f}x faster")


if __name__ == "__main__":
    main()
