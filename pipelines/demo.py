"""`rebalance demo`: the whole chain on generated long-tailed data.

1. Data: sharded TFRecord with 10 long-tailed classes (1:100).
2. Counts: a weight table from the labels, shown and plotted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Sequence

from balance import WeightTable
from balance.report import format_table, plot_table
from pipelines.demo_data import LABEL_KEY, make_demo_data


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rebalance demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="demo_out", help="output directory (default: demo_out)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    print(f"[1/2] generating long-tailed TFRecord shards in {args.out}/data ...")
    data = make_demo_data(os.path.join(args.out, "data"), seed=args.seed)
    print(f"      {len(data.y_train):,} training examples in {len(data.train_files)} shards")
    print("[2/2] counting classes ...")
    table = WeightTable.from_labels(data.y_train, label_key=LABEL_KEY)
    table_path = table.save(os.path.join(args.out, "table.json"))
    print(format_table(table))
    plot_table(table, os.path.join(args.out, "table.png"))
    print(f"table: {table_path}; plot: {os.path.join(args.out, 'table.png')}")
    print(f"done in {time.perf_counter() - start:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
