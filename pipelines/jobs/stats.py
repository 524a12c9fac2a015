"""The stats job: count every class of a dataset exactly and write a ``WeightTable`` per label.

Usage::

  rebalance stats --input 'data/train-*.tfrecord' --label label \\
      --output table.json [--runner DirectRunner --direct_num_workers 2 ...]

One ``--label`` writes one table file. With several ``--label`` flags (the
heads of a multi-output model) the data is read once and ``--output`` is a
directory of one table per label plus ``index.json``, published at once (see
``pipelines.io.publish``); per-label options are spelled ``--label_form
b=one_hot`` (one label) or ``--label_form one_hot`` (every label). One label
is the one-head case of several: one transform (``ComputeHeadStats``), one
run, one summary; only where the tables go differs (``_layout``).

The job's own flags are parsed here; every other flag goes to Beam's
``PipelineOptions`` (``--runner``, ``--project``, ``--temp_location``, ...).
See docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence

import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from balance import fileio
from balance.errors import invalid
from balance.schemes import SCHEMES
from balance.table import WeightTable
from balance.table_set import INDEX_NAME, load_tables, table_file_names
from pipelines.counting.count import bad_counter_name
from pipelines.counting.transforms import ComputeClassStats, ComputeHeadStats, WriteWeightTable, WriteWeightTables
from pipelines.io.publish import check_apart, check_table_output, check_tables_output
from pipelines.jobs.flags import BEAM_NOTE, add_read_flags, group, heads_from_args, one_label, parse_flags
from pipelines.jobs.runner import (
    auto_read_threads,
    counters,
    number,
    progress_of,
    raise_reported,
    reports_metrics,
    resolve_runner,
    run_as_command,
    run_to_end,
)

_LOG = logging.getLogger(__name__)

EXAMPLES = """\
examples:
  rebalance stats --input 'data/train-*.tfrecord' --label label --output table.json
  rebalance stats --input data/train.csv --format csv --label species --label_dtype string \\
      --scheme effective_number --output table.json
  rebalance stats --input 'data/*.parquet' --format parquet --label a --label b \\
      --task b=multilabel --num_classes b=20 --output tables/"""



def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The job's flags, in groups, on ``parser`` (a new ``rebalance stats`` parser if None)."""
    # No abbreviations: ``--lab x`` must not silently mean ``--label x``.
    parser = parser or argparse.ArgumentParser(
        prog="rebalance stats", usage="rebalance stats --input PATTERN --output TABLE.json [flags] [Beam options]",
        description="Count every class of a dataset exactly (Apache Beam) and write a weight table.",
        allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter, epilog=f"{BEAM_NOTE}\n\n{EXAMPLES}")
    add_read_flags(parser)
    add = group(parser, "output").add_argument
    add("--output", required=True, help="Where to write the table (local or gs://); with several --label, a "
        "new or empty directory.")
    add("--overwrite", action="store_true", help="With several --label: replace a non-empty --output directory "
        "that rebalance wrote (its _rebalance_manifest.json lists exactly its files); other files are refused.")
    add("--scheme", action="append", help=f"Also store this scheme's weights ({sorted(SCHEMES)}) in the table; "
        "LABEL=VALUE sets one --label's value (repeatable).")
    return parser


def _layout(args: argparse.Namespace, directory: bool | None) -> bool:
    """Whether the tables go to a directory (else one table file): the one place that decides.

    ``directory`` None: a directory for several ``--label``, a file for one.
    A file path is checked here, before anything else.
    """
    if directory is None:
        directory = len(args.label or ()) > 1
    if not directory:
        if not args.output or fileio.isdir(args.output):
            raise invalid("output", "a file path for the table (not a directory)", args.output)
        if args.overwrite:
            raise invalid("overwrite", "not set with one --label (the table file is replaced)", True,
                          hint="--overwrite replaces the directory of tables written for several labels")
    return directory


def run(argv: Sequence[str] | None = None, *,
        directory: bool | None = None) -> WeightTable | dict[str, WeightTable]:
    """Runs the job: one ``--label`` -> the table written to ``--output``; several -> ``{label: table}``,
    as ``balance.load_tables(output)`` reads them back.

    Args:
      argv: the command-line flags.
      directory: True: ``--output`` is a directory of tables even for one
        label; False: one table file (several ``--label`` are refused); None:
        a directory for several labels.

    Raises:
      ValueError: bad flags (an ``--output`` that is not the kind ``directory``
        says, or a non-empty directory without ``--overwrite``), empty or bad
        input, too many bad records for a label (the error names it). Nothing
        is written then.
    """
    args, beam_args = parse_flags(argv, build_parser())
    directory = _layout(args, directory)
    options = PipelineOptions(beam_args)
    dask = resolve_runner(args, options)  # Dask, Flink, Spark
    heads = heads_from_args(args, read_threads=auto_read_threads(options))
    output = args.output.rstrip("/") if directory else args.output
    if directory:
        check_tables_output(output, args.overwrite)
    else:
        one_label(heads)
    progress = progress_of(args, options, dask)
    on_error = "report" if reports_metrics(options) else "raise"
    if directory:
        stats = ComputeHeadStats(heads, on_error=on_error, progress_dir=progress.directory)
        plan = stats.plan[0]
        write = WriteWeightTables(output, overwrite=args.overwrite)
        marker = f"{output}/{INDEX_NAME}"
    else:
        stats = ComputeClassStats(heads.base, on_error=on_error, progress_dir=progress.directory)
        plan = stats.plan
        write, marker = WriteWeightTable(output), output
    # The plan fails fast on an empty input, before any worker starts.
    check_apart(output, sorted({s.path for s in plan.shards}), directory=directory)
    if not directory:
        check_table_output(output)
    _LOG.info("Counting %s in one pass over %d shard(s) of %s", ", ".join(map(repr, heads.labels)),
              len(plan.shards), ", ".join(plan.inputs))
    previous = fileio.read_bytes(marker) if fileio.exists(marker) else None
    start = time.monotonic()

    def attach(pipeline):
        _ = pipeline | "ComputeStats" >> stats | "Write" >> write

    result = run_to_end(options, dask, progress, len(plan.shards), attach)
    found = counters(result)
    raise_reported(result, found, previous, marker)
    tables = load_tables(output) if directory else {heads.base.label: WeightTable.load(output)}
    print(summary(tables, found, time.monotonic() - start, output, directory))
    return tables if directory else tables[heads.base.label]


def run_class_stats(argv: Sequence[str] | None = None) -> WeightTable:
    """Runs the job for one ``--label``; returns the table written to ``--output`` (a file)."""
    return run(argv, directory=False)


def run_head_stats(argv: Sequence[str] | None = None) -> dict[str, WeightTable]:
    """Counts every ``--label`` (one or more) in one pass; ``--output`` is a directory of tables.

    Returns ``{label: WeightTable}``, as ``balance.load_tables(output)`` reads them back.
    """
    return run(argv, directory=True)


def summary(tables: dict[str, WeightTable], counters: dict[str, int], seconds: float, output: str,
            directory: bool) -> str:
    """The end-of-job report. One table file: examples, classes, extremes, imbalance, bad records, time;
    a directory: records read, then per label its file, examples, classes, imbalance, bad records."""
    if not directory:
        (table,) = tables.values()
        return _table_summary(table, counters, seconds, output)
    files = table_file_names(list(tables))
    lines = [
        f"Wrote {output}/: {len(tables)} table(s), one per label, and {INDEX_NAME}",
        f"  records read: {counters.get('records', 'n/a')}, shards: {counters.get('shards', 'n/a')}, "
        f"wall time: {seconds:.2f} s",
    ]
    for label, table in tables.items():
        order = sorted(range(table.num_classes), key=lambda c: (-table.counts[c], c))
        names = table.class_names or [str(c) for c in range(table.num_classes)]
        prefix = bad_counter_name("", label)
        bad = {name[len(label) + 1:]: v for name, v in sorted(counters.items()) if name.startswith(prefix) and v}
        lines += [
            f"  label {label!r} -> {files[label]}: {number(table.num_examples)} examples, "
            f"{table.num_classes} classes ({table.task}), imbalance ratio {table.imbalance_ratio():.4g}",
            f"    largest {names[order[0]]}: {number(table.counts[order[0]])}, smallest {names[order[-1]]}: "
            f"{number(table.counts[order[-1]])}; bad records: {bad or 'none'}",
        ]
    return "\n".join(lines)


def _table_summary(table: WeightTable, counters: dict[str, int], seconds: float, output: str) -> str:
    order = np.lexsort((np.arange(table.num_classes), -table.counts)).tolist()  # by count, then class
    def name(c):
        return table.class_names[c] if table.class_names else str(c)
    top = ", ".join(f"{name(c)}: {number(table.counts[c])}" for c in order[:3])
    low = ", ".join(f"{name(c)}: {number(table.counts[c])}" for c in order[::-1][:3])
    bad = {k: v for k, v in sorted(counters.items()) if k.startswith("bad_") and v}
    lines = [
        f"Wrote {output}",
        f"  examples: {number(table.num_examples)}" + (
            f" ({number(table.num_elements)} labelled elements)" if table.num_elements else ""),
        f"  classes: {table.num_classes} ({table.task}, label {table.label_key!r})",
        f"  largest: {top}",
        f"  smallest: {low}",
        f"  imbalance ratio: {table.imbalance_ratio():.4g}",
        f"  records read: {counters.get('records', 'n/a')}, shards: {counters.get('shards', 'n/a')}",
        f"  bad records: {bad or 'none'}",
        f"  wall time: {seconds:.2f} s",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the stats job (one label or several)."""
    return run_as_command("rebalance stats", run, argv)


if __name__ == "__main__":
    sys.exit(main())
