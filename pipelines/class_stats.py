"""Beam job: count every class of a dataset exactly and write a ``WeightTable``.

Usage::

  python -m pipelines.class_stats --input 'data/train-*.tfrecord' --label label \\
      --output table.json [--runner DirectRunner --direct_num_workers 2 ...]

The job's own flags are parsed here; every other flag goes to Beam's
``PipelineOptions`` (``--runner``, ``--project``, ``--temp_location``, ...).
The same job runs as ``rebalance stats``. See docs/pipelines.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from balance import fileio
from balance.errors import RebalanceError, invalid
from balance.schemes import SCHEMES
from balance.table import TASKS, WeightTable
from pipelines import _dask
from pipelines._config import COMPRESSIONS, FORMATS, LABEL_DTYPES, LABEL_FORMS, StatsConfig
from pipelines._flags import beam_parser, flags_of, refuse_unknown
from pipelines._outcome import FAILED_COUNTER, METRICS_NAMESPACE, job_failure
from pipelines.transforms import ComputeClassStats, WriteWeightTable


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """Adds the job's flags to ``parser`` (a new one if None); ``rebalance stats`` reuses it."""
    # No abbreviations: ``--lab x`` must not silently mean ``--label x``.
    parser = parser or argparse.ArgumentParser(
        prog="python -m pipelines.class_stats", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    add = parser.add_argument
    add("--input", action="append", default=[],
        help="File glob, file, directory or comma-separated list; may repeat.")
    add("--format", choices=FORMATS, default="tfrecord")
    add("--label", default="label", help="Feature key or column of the label (default: label).")
    add("--task", choices=TASKS, default="multiclass")
    add("--num_classes", type=int, help="K; ids outside [0, K) fail the job. Inferred if omitted.")
    add("--class_names", help="Comma-separated class names, in class order.")
    add("--label_form", choices=LABEL_FORMS, default="auto",
        help="sparse (one label per example), one_hot (a 0/1 vector per example), id_lists or "
        "multi_hot (multilabel), dense "
        "(every element counted). auto: id_lists for multilabel, else sparse.")
    add("--label_dtype", choices=LABEL_DTYPES, default="auto")
    add("--weight", help="Example-weight feature or column, for weighted counts.")
    add("--csv_delimiter", default=",")
    add("--csv_split_bytes", type=int, default=64 << 20,
        help="CSV files larger than this are read as byte ranges of about this size, one task each "
        "(default 64 MiB); 0 reads each file whole (needed for newlines inside quoted values).")
    add("--label_delimiter", default="|", help="Separator of ids inside one CSV cell (list forms).")
    add("--ignore_value", type=int, help="Dense-label id not to count (e.g. 255).")
    add("--compression", choices=COMPRESSIONS, default="auto",
        help="TFRecord/CSV compression; auto detects GZIP by its magic bytes.")
    add("--max_bad_fraction", type=float, default=0.0,
        help="Fraction of bad records allowed (skipped and reported); default 0.")
    add("--batch_size", type=int, default=8192)
    add("--read_threads", type=int, default=0,
        help="Shards one worker thread reads at once. 0 (default): all cores for the local "
        "in-process runner, cores / workers for local multi-process runs, 1 elsewhere (cloud "
        "runners already run one DoFn thread per core).")
    add("--scheme", choices=SCHEMES, help="Also store this scheme's weights in the table.")
    add("--tfds_name", help="A prepared TFDS dataset (with --format tfds).")
    add("--tfds_data_dir")
    add("--tfds_split", default="train")
    add("--output", required=True, help="Where to write the table (local or gs://).")
    _dask.add_dask_flags(parser)
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
    """A validated ``StatsConfig`` from parsed flags."""
    names = tuple(n.strip() for n in args.class_names.split(",")) if args.class_names else None
    return StatsConfig(
        input=tuple(args.input), format=args.format, label=args.label, task=args.task,
        num_classes=args.num_classes if args.num_classes is not None else (
            len(names) if names else None),
        class_names=names, label_form=args.label_form, label_dtype=args.label_dtype,
        weight=args.weight, csv_delimiter=args.csv_delimiter, csv_split_bytes=args.csv_split_bytes,
        label_delimiter=args.label_delimiter,
        ignore_value=args.ignore_value, compression=args.compression,
        max_bad_fraction=args.max_bad_fraction, batch_size=args.batch_size,
        read_threads=args.read_threads or read_threads, scheme=args.scheme,
        tfds_name=args.tfds_name, tfds_data_dir=args.tfds_data_dir, tfds_split=args.tfds_split,
    )


def job_error(err: BaseException) -> BaseException:
    """The job's own error if the runner raised it wrapped (in-process runners), else ``err``.

    The job reports its own errors as data (see ``pipelines._outcome``), so
    this only matters for a ``ComputeClassStats(on_error="raise")`` pipeline.
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, RebalanceError):
            return cause
        cause = cause.__cause__ or cause.__context__
    return err


def run(argv: Sequence[str] | None = None) -> WeightTable:
    """Runs the job; returns the table written to ``--output``.

    Raises:
      ValueError: bad flags, empty or bad input. Nothing is written then.
    """
    args, beam_args = parse_flags(argv)
    if not args.output or fileio.isdir(args.output):
        raise invalid("output", "a file path for the table (not a directory)", args.output)
    options = PipelineOptions(beam_args)
    dask = _dask.resolve(args, options)  # --runner dask
    config = config_from_args(args, read_threads=_auto_read_threads(options))
    stats = ComputeClassStats(config, on_error="report" if _reports_metrics(options) else "raise")
    plan = stats.plan  # fails fast on an empty input, before any worker starts
    logging.getLogger(__name__).info("Counting %r in %d shard(s) of %s", config.label, len(plan.shards), plan.inputs)
    start = time.monotonic()
    previous = fileio.read_bytes(args.output) if fileio.exists(args.output) else None
    with _dask.cluster(dask, options):
        pipeline = beam.Pipeline(runner=_local_runner(options), options=options)
        _ = pipeline | "ComputeClassStats" >> stats | "WriteTable" >> WriteWeightTable(args.output)
        result = None
        try:
            result = pipeline.run()
            state = result.wait_until_finish()
        except Exception as err:
            raise job_error(err) from err
        finally:
            _dask.close_client(result)
    if state not in (PipelineState.DONE, None):
        raise RuntimeError(f"The class-statistics job ended in state {state}")
    counters = _counters(result)
    _raise_reported(result, counters, previous, args.output)
    table = WeightTable.load(args.output)
    print(summary(table, counters, time.monotonic() - start, args.output))
    return table


def _raise_reported(result, counters: dict[str, int], previous: bytes | None, output: str) -> None:
    """Raises the error the job reported (typed), or fails if it wrote no new table."""
    failure = job_failure(result)
    if failure is not None:
        raise failure
    if counters.get(FAILED_COUNTER):
        raise RuntimeError("The class-statistics job failed on a worker and this runner does not report "
                           "its error; see the worker log")
    if not fileio.exists(output) or (not counters and previous == fileio.read_bytes(output)):
        raise RuntimeError(f"The class-statistics job finished without writing a new table to {output!r}")


def _reports_metrics(options: PipelineOptions) -> bool:
    """False for Beam's DaskRunner, which reports no metrics. There the job's errors are raised on
    the workers instead, and Dask hands them back pickled, with their type and fields."""
    return "dask" not in str(options.view_as(StandardOptions).runner or "").lower()


def _is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


def _auto_read_threads(options: PipelineOptions) -> int:
    """Cores per local worker: the in-process runner runs a bundle on one thread,
    so without this a 2-core machine reads one shard at a time. Cloud runners
    already run a DoFn thread per core, so they keep 1."""
    if not _is_local(options):
        return 1
    direct = options.view_as(DirectOptions)
    cores = os.cpu_count() or 1
    workers = 1 if direct.direct_running_mode == "in_memory" else (direct.direct_num_workers or cores)
    return max(1, cores // workers)


def _local_runner(options: PipelineOptions):
    """The FnApiRunner for DirectRunner jobs; None (the options decide) otherwise.

    Beam's DirectRunner first tries the PrismRunner, which downloads a binary
    from the internet at run time, and falls back to the FnApiRunner when that
    fails. This batch job needs nothing Prism adds, so local runs go straight
    to the runner DirectRunner would end up with (it honours
    ``--direct_num_workers`` and ``--direct_running_mode``).
    """
    if not _is_local(options):
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: PLC0415

    return FnApiRunner()


def _counters(result) -> dict[str, int]:
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE))
    except Exception:  # noqa: BLE001 (some runners do not report metrics)
        return {}
    totals: dict[str, int] = {}
    for counter in found.get("counters", []):
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def summary(table: WeightTable, counters: dict[str, int], seconds: float, output: str) -> str:
    """The end-of-job report: examples, classes, extremes, imbalance, bad records, time."""
    order = sorted(range(table.num_classes), key=lambda c: (-table.counts[c], c))
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


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6g}"


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


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the stats job."""
    return run_as_command(run, argv)


if __name__ == "__main__":
    sys.exit(main())
