"""`rebalance demo`: the whole chain on generated long-tailed data.

1. Data: sharded TFRecord, 10 classes long-tailed at 1:100, generated here.
2. Counts: the Beam class-statistics job (DirectRunner) writes a weight table,
   shown by `rebalance show` and plotted.
3. Training: one small Keras model trained five ways on the same data and
   budget: plain, class weights, resampling, both, and the logit-adjusted loss.
4. Report: accuracy, balanced accuracy, macro-F1, recall on the rarest
   classes and throughput, printed and charted; also saved as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence

from balance import WeightTable
from balance.errors import invalid
from balance.recall_report import plot_recall_by_frequency
from balance.report import format_table, plot_table
from pipelines import console
from pipelines.jobs.flags import flags_of, refuse_unknown
from rebalance_demo.data import FEATURE_KEY, LABEL_KEY, make_demo_data

RUNS = ("plain", "class weights", "resample", "both", "logit-adjusted")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rebalance demo", description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    parser.add_argument("--seed", type=int, default=0, help="data and training seed")
    parser.add_argument("--epochs", type=int, default=6, help="training epochs per run (default: 6)")
    parser.add_argument("--largest", type=int, default=12000,
                        help="examples in the largest class; the rarest has 1/100 of it (default: 12000)")
    parser.add_argument("--quiet", action="store_true", help="no Keras progress bars (used by the tests)")
    console.add_verbose_flag(parser)
    args, unknown = parser.parse_known_args(argv)
    refuse_unknown(unknown, flags_of(parser))
    if args.epochs < 1:
        raise invalid("epochs", "an int >= 1", args.epochs)
    if args.largest < 100:
        raise invalid("largest", "an int >= 100 (the rarest class has 1/100 of it)", args.largest)
    verbose = 0 if args.quiet else (1 if sys.stdout.isatty() else 2)  # bars on a terminal
    results = run_demo(args.out, seed=args.seed, epochs=args.epochs, largest=args.largest, verbose=verbose)
    return 0 if results else 1


def run_demo(out: str, *, seed: int = 0, epochs: int = 6, largest: int = 12000, verbose: int = 2) -> dict:
    """Runs the four steps; returns ``{run: metrics}`` (also in ``out/results.json``)."""
    from pipelines import run_class_stats  # noqa: PLC0415 (Beam)
    from rebalance_demo.train import compare_runs, plot_results, results_table  # noqa: PLC0415 (TF)

    os.makedirs(out, exist_ok=True)
    start = time.perf_counter()
    print(f"[1/4] Generating long-tailed TFRecord shards in {out}/data ...", flush=True)
    data = make_demo_data(os.path.join(out, "data"), largest=largest, seed=seed)
    print(f"      {len(data.y_train):,} training examples in {len(data.train_files)} shards; "
          f"{len(data.y_test):,} test examples with the same long tail")

    table_path = os.path.join(out, "table.json")
    print("[2/4] Counting classes with the Beam job (DirectRunner) ...", flush=True)
    table = run_class_stats([
        "--input", os.path.join(out, "data", "train-*.tfrecord"), "--format", "tfrecord",
        "--label", LABEL_KEY, "--output", table_path, "--runner", "DirectRunner", *(["--quiet"] if not verbose else []),
    ])
    print(f"\n$ rebalance show {table_path} --plot {out}/table.png")
    print(format_table(WeightTable.load(table_path)))
    pictures = _Pictures(out)
    pictures.draw("table.png", lambda path: plot_table(table, path))

    print(f"\n[3/4] Training the same model {len(RUNS)} ways, {epochs} epochs each ...", flush=True)
    results = compare_runs(data, table, FEATURE_KEY, LABEL_KEY, epochs=epochs, seed=seed, verbose=verbose)

    print("\n[4/4] Results on the held-out test set (same long tail as training):\n")
    print(results_table(results))
    with open(os.path.join(out, "results.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    pictures.draw("results.png", lambda path: plot_results(results, path))
    recalls = {name: m["per_class_recall"] for name, m in results.items()}
    if pictures.draw("recall_by_class.png", lambda path: plot_recall_by_frequency(
            table, recalls, path, title="Per-class recall on the test set, by training count")):
        print(f"\nPer-class recall against class frequency: {out}/recall_by_class.png")
    written = [name for name in ("table.json", "table.png", "results.json", "results.png", "recall_by_class.png")
               if name not in pictures.skipped]
    print(f"\nWrote {out}/{', '.join(written)} in {time.perf_counter() - start:.0f}s")
    if pictures.skipped:
        print(f"Skipped {', '.join(pictures.skipped)}: {pictures.reason}")
    return results


class _Pictures:
    """The demo's charts: drawn when matplotlib is installed, else skipped and named at the end."""

    def __init__(self, out: str) -> None:
        self.out, self.skipped, self.reason = out, [], ""

    def draw(self, name: str, plot) -> bool:
        """Writes ``out/name`` with ``plot(path)``; False (and ``name`` skipped) without matplotlib."""
        try:
            plot(os.path.join(self.out, name))
        except ImportError as err:  # balance.report.pyplot: matplotlib is missing; says how to install it
            self.skipped.append(name)
            self.reason = str(err)
            return False
        return True


if __name__ == "__main__":
    sys.exit(main())
