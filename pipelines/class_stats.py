"""Beam job: count every class of a dataset exactly and write a ``WeightTable``.

Usage::

  python -m pipelines.class_stats --input 'data/train-*.tfrecord' --label label \\
      --output table.json [--runner DirectRunner --direct_num_workers 2 ...]

With several ``--label`` flags (the heads of a multi-output model) the data is
read once and ``--output`` is a directory of one table per label plus
``index.json`` (see ``pipelines.heads_job``); per-label options are spelled
``--label_form b=one_hot``.

The job's own flags are parsed here; every other flag goes to Beam's
``PipelineOptions`` (``--runner``, ``--project``, ``--temp_location``, ...).
The same job runs as ``rebalance stats``. See docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable, Sequence

import numpy as np
from apache_beam.options.pipeline_options import PipelineOptions

from balance import fileio
from balance.errors import invalid
from balance.schemes import SCHEMES
from balance.table import TASKS, WeightTable
from pipelines import _dask, heads_job
from pipelines._config import COMPRESSIONS, FORMATS, LABEL_DTYPES, StatsConfig
from pipelines._flags import beam_parser, flags_of, refuse_unknown
from pipelines._heads import heads_from_args, per_label_type
from pipelines._job import auto_read_threads as _auto_read_threads
from pipelines._job import counters as _counters
from pipelines._job import number as _number
from pipelines._job import progress_of, run_to_end
from pipelines._job import raise_reported as _raise_reported
from pipelines._job import reports_metrics as _reports_metrics
from pipelines.transforms import ComputeClassStats, WriteWeightTable

BEAM_NOTE = """\
Beam's pipeline options are accepted too and passed to Beam unchanged: --runner
(default DirectRunner; dask, DataflowRunner, FlinkRunner, SparkRunner, PortableRunner),
--direct_num_workers, --direct_running_mode, --project, --region, --temp_location, ...
A flag neither the job nor Beam knows is refused. See "Runners" in docs/pipelines.md."""

EXAMPLES = """\
examples:
  rebalance stats --input 'data/train-*.tfrecord' --label label --output table.json
  rebalance stats --input data/train.csv --format csv --label species --label_dtype string \\
      --scheme effective_number --output table.json
  rebalance stats --input 'data/*.parquet' --format parquet --label a --label b \\
      --task b=multilabel --num_classes b=20 --output tables/"""


def group(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The argument group of ``parser`` titled ``title``, created if new (``rebalance sample`` adds to them)."""
    for existing in parser._action_groups:
        if existing.title == title:
            return existing
    return parser.add_argument_group(title)


def add_read_flags(parser: argparse.ArgumentParser) -> None:
    """The input, labels, progress, performance and Dask flags: what ``rebalance stats`` and ``rebalance sample``
    share."""
    for title in ("input", "labels", "output", "performance"):  # the order --help lists them in
        group(parser, title)
    add = group(parser, "input").add_argument
    add("--input", action="append", default=[],
        help="File glob, file, directory or comma-separated list; may repeat.")
    add("--format", choices=FORMATS, default="tfrecord")
    add("--compression", choices=COMPRESSIONS, default="auto",
        help="TFRecord/CSV compression; auto detects GZIP by its magic bytes.")
    add("--csv_delimiter", default=",")
    # Per-label flags: VALUE for every label, LABEL=VALUE for one (repeatable); see pipelines._heads.
    per = "; LABEL=VALUE sets one --label's value (repeatable)."
    add("--max_bad_fraction", action="append", type=per_label_type(float),
        help=f"Fraction of bad records allowed (skipped and reported), per label; default 0{per}")
    add("--tfds_name", help="A prepared TFDS dataset (with --format tfds).")
    add("--tfds_data_dir")
    add("--tfds_split", default="train")
    add = group(parser, "labels").add_argument
    add("--label", action="append", help="Feature key or column of the label (default: label). Repeat it to "
        "count several labels in one pass (rebalance stats: one table each, --output is then a directory).")
    add("--task", action="append", help=f"One of {list(TASKS)} (default: multiclass){per}")
    add("--num_classes", action="append", type=per_label_type(int),
        help=f"K; ids outside [0, K) fail the job. Inferred if omitted{per}")
    add("--class_names", action="append", help=f"Comma-separated class names, in class order{per}")
    add("--label_form", action="append",
        help="sparse (one label per example), one_hot (a 0/1 vector per example), id_lists or "
        "multi_hot (multilabel), dense "
        f"(every element counted). auto (default): id_lists for multilabel, else sparse{per}")
    add("--label_dtype", action="append", help=f"One of {list(LABEL_DTYPES)} (default: auto){per}")
    add("--weight", help="Example-weight feature or column, for weighted counts.")
    add("--label_delimiter", default="|", help="Separator of ids inside one CSV cell (list forms).")
    add("--ignore_value", action="append", type=per_label_type(int),
        help=f"Dense-label id not to count (e.g. 255){per}")
    group(parser, "output").add_argument(
        "--quiet", action="store_true",
        help="No progress lines on stderr (local runners print one every ~15 s while reading).")
    add = group(parser, "performance").add_argument
    add("--batch_size", type=int,
        help="Records parsed and counted per vectorised step. Default: 8192 TFRecord/TFDS records; "
        "65536 Parquet rows (8192 when the sample job reads whole rows). CSV is read in blocks of 4 MiB.")
    add("--read_threads", type=int, default=0,
        help="Shards one worker thread reads at once. 0 (default): all cores for the local "
        "in-process runner, cores / workers for local multi-process runs, 1 elsewhere (cloud "
        "runners already run one DoFn thread per core).")
    add("--csv_split_bytes", type=int, default=64 << 20,
        help="CSV files larger than this are read as byte ranges of about this size, one task each "
        "(default 64 MiB); 0 reads each file whole (needed for newlines inside quoted values).")
    _dask.add_dask_flags(parser)


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
    add("--overwrite", action="store_true", help="With several --label: replace a non-empty --output directory.")
    add("--scheme", action="append", help=f"Also store this scheme's weights ({sorted(SCHEMES)}) in the table; "
        "LABEL=VALUE sets one --label's value (repeatable).")
    return parser


def parse_flags(argv: Sequence[str] | None = None,
                parser: argparse.ArgumentParser | None = None) -> tuple[argparse.Namespace, list[str]]:
    """The job's flags (``parser``, default the stats job's) and Beam's; a flag neither
    knows is refused before any data is read.

    Raises:
      ValueError: naming the unknown flag and the closest known one.
    """
    parser = parser or build_parser()
    args, rest = parser.parse_known_args(argv)
    beam, missing = beam_parser()
    _, unknown = beam.parse_known_args(rest)
    refuse_unknown(unknown, flags_of(parser) + flags_of(beam), missing)
    return args, rest


def config_from_args(args: argparse.Namespace, read_threads: int = 1) -> StatsConfig:
    """A validated ``StatsConfig`` of the one ``--label`` from parsed flags (see ``pipelines._heads``).

    Raises:
      ValueError: bad flags, or several ``--label`` (``heads_from_args`` reads those).
    """
    heads = heads_from_args(args, read_threads)
    if len(heads.heads) > 1:
        raise invalid("label", "one --label here", list(heads.labels),
                      hint="Several labels are counted by `rebalance stats` (pipelines.run_head_stats), "
                      "into a directory of tables")
    return heads.base


def run(argv: Sequence[str] | None = None) -> WeightTable:
    """Runs the job; returns the table written to ``--output``.

    Raises:
      ValueError: bad flags, empty or bad input. Nothing is written then.
    """
    args, beam_args = parse_flags(argv)
    if not args.output or fileio.isdir(args.output):
        raise invalid("output", "a file path for the table (not a directory)", args.output)
    if args.overwrite:
        raise invalid("overwrite", "not set with one --label (the table file is replaced)", True,
                      hint="--overwrite replaces the directory of tables written for several labels")
    options = PipelineOptions(beam_args)
    dask = _dask.resolve(args, options)  # --runner dask
    config = config_from_args(args, read_threads=_auto_read_threads(options))
    progress = progress_of(args, options, dask)
    stats = ComputeClassStats(config, on_error="report" if _reports_metrics(options) else "raise",
                              progress_dir=progress.directory)
    plan = stats.plan  # fails fast on an empty input, before any worker starts
    logging.getLogger(__name__).info("Counting %r in %d shard(s) of %s", config.label, len(plan.shards), plan.inputs)
    start = time.monotonic()
    previous = fileio.read_bytes(args.output) if fileio.exists(args.output) else None
    def attach(pipeline):
        _ = pipeline | "ComputeClassStats" >> stats | "WriteTable" >> WriteWeightTable(args.output)

    result = run_to_end(options, dask, progress, len(plan.shards), attach)
    counters = _counters(result)
    _raise_reported(result, counters, previous, args.output)
    table = WeightTable.load(args.output)
    print(summary(table, counters, time.monotonic() - start, args.output))
    return table


def summary(table: WeightTable, counters: dict[str, int], seconds: float, output: str) -> str:
    """The end-of-job report: examples, classes, extremes, imbalance, bad records, time."""
    order = np.lexsort((np.arange(table.num_classes), -table.counts)).tolist()  # by count, then class
    def name(c):
        return table.class_names[c] if table.class_names else str(c)
    top = ", ".join(f"{name(c)}: {_number(table.counts[c])}" for c in order[:3])
    low = ", ".join(f"{name(c)}: {_number(table.counts[c])}" for c in order[::-1][:3])
    bad = {k: v for k, v in sorted(counters.items()) if k.startswith("bad_") and v}
    lines = [
        f"Wrote {output}",
        f"  examples: {_number(table.num_examples)}" + (
            f" ({_number(table.num_elements)} labelled elements)" if table.num_elements else ""),
        f"  classes: {table.num_classes} ({table.task}, label {table.label_key!r})",
        f"  largest: {top}",
        f"  smallest: {low}",
        f"  imbalance ratio: {table.imbalance_ratio():.4g}",
        f"  records read: {counters.get('records', 'n/a')}, shards: {counters.get('shards', 'n/a')}",
        f"  bad records: {bad or 'none'}",
        f"  wall time: {seconds:.2f} s",
    ]
    return "\n".join(lines)


def run_as_command(job: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None) -> int:
    """Runs a Beam job's ``run(argv)`` for the command line: errors become one line on stderr and exit code 1."""
    logging.getLogger().setLevel(logging.INFO)
    # Beam logs one INFO line per string type hint it meets (our modules use
    # postponed annotations); they say nothing to the user.
    logging.getLogger("apache_beam.typehints.native_type_compatibility").setLevel(logging.WARNING)
    try:
        job(argv)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def run_heads(argv: Sequence[str] | None = None) -> dict[str, WeightTable]:
    """Counts every ``--label`` (one or more) in one pass; ``--output`` is a directory of tables.

    Returns ``{label: WeightTable}``, as ``balance.load_tables(output)``
    reads them back. See ``pipelines.heads_job``.

    Raises:
      ValueError: bad flags, bad input, too many bad records for a label.
        Nothing is published then.
    """
    args, beam_args = parse_flags(argv)
    return heads_job.run_parsed(args, beam_args)


def run_any(argv: Sequence[str] | None = None) -> WeightTable | dict[str, WeightTable]:
    """``run`` for one ``--label`` (a table file); ``run_heads`` for several (a directory of tables)."""
    args, _ = parse_flags(argv)
    return run_heads(argv) if len(args.label or ()) > 1 else run(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the stats job (one label or several)."""
    return run_as_command(run_any, argv)


if __name__ == "__main__":
    sys.exit(main())
