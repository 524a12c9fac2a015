"""The stats job on Flink and Spark beside the DirectRunner and Dask: start-up and per-record rate.

Generates N TFRecord examples once (``stats_bench.generate``: 100 long-tailed classes, S shards)
and a tiny copy (S shards of 100 examples), then runs ``rebalance stats`` on each variant, each
run in a fresh process (so every job starts its own job server or local cluster), taking turns:

  direct         DirectRunner in process, the project's Beam (the reference)
  direct262      the same on the engines' Beam (2.62.0)
  dask1, dask2   --runner dask, a local cluster of 1 or 2 worker processes that the job starts
                 (the project's Beam: the job's Dask set-up needs Beam 2.77's DaskOptions)
  flink1, flink2 --runner FlinkRunner, embedded cluster, --parallelism 1 or 2
  spark1, spark2 --runner SparkRunner on a standalone master with 1 or 2 workers (1 core each),
                 started before the clock (its start-up is printed apart)

Flink and Spark run their SDK workers in loopback mode: threads of the command's process,
sharing its GIL (``--experiments=use_loopback_process_worker``, which makes them processes,
did not finish a job here in 6 minutes). Start-up is the median wall time of the job on the tiny copy; the
per-record rate is N / (median wall time on N - start-up). Every table is checked equal to the
DirectRunner's. Run it with the engines venv's Python (Beam of the job servers, see
requirements-engines.txt); ``--main_python`` is the project's venv, for direct and dask::

  .venv-engines/bin/python bench/engines_bench.py --n 2000000 --shards 8 --repeats 3 --main_python .venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, ROOT]

VARIANTS = {
    "direct": [],
    "direct262": [],
    "dask1": ["--runner", "dask", "--dask_workers", "1"],
    "dask2": ["--runner", "dask", "--dask_workers", "2"],
    "flink1": ["--runner", "FlinkRunner", "--parallelism", "1"],
    "flink2": ["--runner", "FlinkRunner", "--parallelism", "2"],
    "spark1": ["--runner", "SparkRunner", "--environment_type", "LOOPBACK"],
    "spark2": ["--runner", "SparkRunner", "--environment_type", "LOOPBACK"],
}


def one_run(flags: list[str]) -> None:
    """In a fresh process: the job once; prints its wall time (the call, not the interpreter's start)."""
    import contextlib
    import io

    from pipelines import run_class_stats

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        run_class_stats(flags + ["--quiet"])
    print(json.dumps({"seconds": time.perf_counter() - start}))


MAIN_VENV = ("direct", "dask1", "dask2")  # run with --main_python


def timed(python: str, flags: list[str]) -> float:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=ROOT, SPARK_LOCAL_IP="127.0.0.1")
    done = subprocess.run([python, __file__, "--one", json.dumps(flags)], env=env, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{flags}: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def data(root: str, n: int, shards: int) -> str:
    from stats_bench import generate

    directory = os.path.join(root, f"n{n}_s{shards}")
    if not os.path.exists(os.path.join(directory, "DONE")):
        start = time.perf_counter()
        generate(directory, n, shards, ["tfrecord"])
        open(os.path.join(directory, "DONE"), "w").close()
        print(f"generated {n:,} examples in {shards} shards under {directory} ({time.perf_counter() - start:.1f} s)",
              flush=True)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2_000_000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--keep", default="/tmp/tf_rebalance_bench", help="Directory of the generated data.")
    parser.add_argument("--main_python", default=os.path.join(ROOT, ".venv", "bin", "python"),
                        help="Python of the project's venv (its Beam), for direct and dask.")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        one_run(json.loads(args.one))
        return
    from apache_beam import version

    from balance.table import WeightTable
    from pipelines.jobs.local_spark import LocalSparkCluster

    names = args.variants.split(",")
    big, tiny = data(args.keep, args.n, args.shards), data(args.keep, 100 * args.shards, args.shards)
    out = tempfile.mkdtemp(prefix="engines-bench-")
    main_beam = subprocess.run([args.main_python, "-c", "import apache_beam; print(apache_beam.__version__)"],
                               capture_output=True, text=True, check=True).stdout.strip()
    print(f"Beam {main_beam} (direct, dask), {version.__version__} (the rest); {args.n:,} records in "
          f"{args.shards} TFRecord shards; {args.repeats} repeat(s); load: {os.getloadavg()}", flush=True)
    clusters, flags = {}, {}
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # stop the Spark clusters on kill too
    try:
        for name in names:
            flags[name] = list(VARIANTS[name])
            if name.startswith("spark"):
                start = time.perf_counter()
                clusters[name] = LocalSparkCluster(int(name[-1])).start()
                print(f"{name}: standalone cluster up in {time.perf_counter() - start:.1f} s", flush=True)
                flags[name] += ["--spark_master_url", clusters[name].master_url]
        times = {(name, size): [] for name in names for size in ("tiny", "big")}
        for repeat in range(args.repeats):
            for name in names:  # taking turns, so that load drifts hit every variant alike
                for size, directory in (("tiny", tiny), ("big", big)):
                    output = os.path.join(out, f"{name}-{size}.json")
                    python = args.main_python if name in MAIN_VENV else sys.executable
                    seconds = timed(python, ["--input", os.path.join(directory, "tfrecord", "*"), "--output", output,
                                     *flags[name]])
                    times[name, size].append(seconds)
                    print(f"  repeat {repeat + 1} {name} {size}: {seconds:.2f} s", flush=True)
    finally:
        for cluster in clusters.values():
            cluster.stop()
    reference = WeightTable.load(os.path.join(out, "direct-big.json")) if "direct" in names else None
    print(f"\nload after: {os.getloadavg()}\n")
    print("| variant | start-up (tiny input) | wall time, N records | per-record rate | rate vs direct | "
          "table equal to direct |")
    print("|---|---|---|---|---|---|")
    rates = {}
    for name in names:
        startup, wall = statistics.median(times[name, "tiny"]), statistics.median(times[name, "big"])
        # A job on N records that is not slower than on the tiny copy: the rate is lost in the noise.
        rates[name] = args.n / (wall - startup) if wall > startup else None
        ratio = (f"{rates[name] / rates['direct']:.2f}x" if rates[name] and rates.get("direct") else "n/a")
        equal = ("yes" if WeightTable.load(os.path.join(out, f"{name}-big.json")).content_equal(reference) else "NO"
                 ) if reference is not None else "n/a"
        rate = f"{rates[name]:,.0f} records/s" if rates[name] else "n/a (N not slower than tiny)"
        print(f"| {name} | {startup:.1f} s | {wall:.1f} s | {rate} | {ratio} | {equal} |")


if __name__ == "__main__":
    main()
