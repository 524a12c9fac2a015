"""How much faster two processes are than one on this machine: the ceiling of any 1 -> 2 worker speed-up.

Runs a fixed CPU-bound task (a pure-Python loop, and a NumPy sort that stays in
cache) in one process, then in two processes at once, and prints the medians
and the throughput ratio ``2 * t1 / t2``: 2.0 on two full cores; about 1.2-1.6
when the two vCPUs are hyperthreads of one physical core (common on cloud VMs,
which report them as separate cores). Run it on a quiet machine.

  python bench/cpu_scaling.py --repeats 5
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
    args = parser.parse_args()
    for name, task in (("python loop", python_loop), ("numpy sort", numpy_sort)):
        t1, t2, speedup = ratio(task, args.repeats)
        print(f"{name:12s} one process {t1:.3f} s, two at once {t2:.3f} s each: "
              f"two processes do {speedup:.2f}x the work of one")


if __name__ == "__main__":
    main()
