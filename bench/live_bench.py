"""Benchmark: the live rebalancer (rates in a tf.Variable) against the fixed one, shapes A-D.

The same data, input shapes and bare consumer as ``bench/tfdata_bench.py``
(see there): for each shape and method, ``balance.rebalance`` (rates fixed
when built) and ``balance.LiveRebalancer(...).dataset`` (rates read from one
variable per block) with the same options. Variants take turns within each
repeat, so they share the machine's load alike. Reported: examples/s
(median of ``--repeats``), live / fixed in wall time and in process CPU time
(examples per CPU second, less sensitive to other jobs on a shared machine),
and the L1 of the (weighted) class mix to the target for the live stream.

Usage:
  python bench/live_bench.py                          # 1M examples, 3 repeats
  python bench/live_bench.py --examples 200000 --repeats 3 --shapes A,B
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import balance
from bench.tfdata_bench import BATCH, METHODS, SHUFFLE, bare_pass, build_shapes


def variants(source, mode: str, table: balance.WeightTable):
    """[(method, fixed builder, live builder)] for one input shape."""
    out = []
    for method in METHODS:
        def kwargs(method=method):
            kw = {} if mode == "after" else {"batch_size": BATCH}
            if method != "weight":
                kw["seed"] = 0
            return kw

        def prepared(method=method):
            ds = source()
            return ds.shuffle(SHUFFLE, seed=0) if method == "weight" and mode != "batched" else ds

        def finish(ds):
            return ds.batch(BATCH) if mode == "after" else ds

        out.append((method,
                    lambda m=method, kw=kwargs, p=prepared: finish(balance.rebalance(p(), table, method=m, **kw())),
                    lambda m=method, kw=kwargs, p=prepared: finish(
                        balance.LiveRebalancer(p(), table, method=m, **kw()).dataset)))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--many_classes", type=int, default=100_000, help="the second class count of E and F")
    parser.add_argument("--imbalance", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shapes", default="A,B,C,D", help="any of A,B,C,D,E,F (see tfdata_bench.py)")
    parser.add_argument("--data_dir", default=None, help="default: a temp dir")
    args = parser.parse_args(argv)

    chosen = args.shapes.split(",")
    print(f"{args.examples:,} examples, {args.classes} classes at 1:{args.imbalance:g}; batch {BATCH}; "
          f"{os.cpu_count()} CPUs; target uniform; repeats {args.repeats}; bare consumer; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    rows = []
    for key, shape in build_shapes(args, chosen).items():
        if key[0] not in chosen:
            continue
        source_name, source = next(iter(shape.sources.items()))  # the same source for fixed and live
        k = shape.table.num_classes
        for method, fixed, live in variants(source, shape.mode, shape.table):
            times = {"fixed": [], "live": []}
            cpu = {"fixed": [], "live": []}
            last = None
            for _ in range(args.repeats):
                for name, build in (("fixed", fixed), ("live", live)):
                    result = bare_pass(build())
                    times[name].append(len(result[1]) / result[0])
                    cpu[name].append(len(result[1]) / result[3])
                    last = result if name == "live" else last
            _, y, w, _ = last
            mix = np.bincount(y, weights=w, minlength=k)
            l1 = float(np.abs(mix / mix.sum() - 1.0 / k).sum())
            f, lv = statistics.median(times["fixed"]), statistics.median(times["live"])
            cpu_ratio = statistics.median(cpu["live"]) / statistics.median(cpu["fixed"])
            rows.append((shape.name, method, f, lv, lv / f, cpu_ratio, l1))
            print(f"  {shape.name} ({source_name}) {method}: fixed {f:,.0f}/s live {lv:,.0f}/s ({lv / f:.2f}x, "
                  f"CPU time {cpu_ratio:.2f}x) L1 {l1:.4f}", flush=True)
    print(f"\nload average at the end {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    print("\n| shape | method | fixed ex/s | live ex/s | live vs fixed | same, CPU time | L1 to target (live) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name, method, f, lv, ratio, cpu_ratio, l1 in rows:
        print(f"| {name} | {method} | {f:,.0f} | {lv:,.0f} | {ratio:.2f}x | {cpu_ratio:.2f}x | {l1:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
