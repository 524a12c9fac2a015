"""Beam job: count several label keys (the heads of a multi-output model) in one pass, one table each.

Usage::

  rebalance stats --input 'data/*.parquet' --format parquet --label a --label b \\
      --task b=multilabel --label_form b=multi_hot --output tables/

The input is read once: each shard is parsed for every label at once (one
``tf.io.parse_example`` of all label features, or one read of all label
columns) and counted into one accumulator per label, merged by a tuple of
``CountCombineFn``. ``--output`` is a directory: ``DIR/a.json``, ``DIR/b.json``
(normal tables) and ``DIR/index.json``. The tables are written to a hidden
staging directory, which becomes ``DIR`` only when every table is built;
``index.json`` is written last, so a failed job never leaves a directory that
looks complete. A non-empty ``DIR`` is refused unless ``--overwrite``.

Per-label options (``pipelines._heads.PER_LABEL``) are ``--task b=multilabel``
for one label or ``--task multiclass`` for every label; bad records are counted
and reported per label, and ``--max_bad_fraction`` applies to each label on its
own. From Python: ``pipelines.run_head_stats(argv)`` returns ``{label: table}``;
``ComputeHeadStats(HeadsConfig.of(...)) | WriteWeightTables(DIR)`` in a pipeline
of your own; ``balance.load_tables(DIR)`` reads the directory back.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from balance import fileio
from balance.errors import RebalanceError, invalid, invalid_choice
from balance.table import WeightTable
from balance.table_set import INDEX_NAME, index_json, load_tables, table_file_names
from pipelines import _dask
from pipelines._count_base import bad_counter_name
from pipelines._dask import one_task_per_shard
from pipelines._heads import HeadsConfig, heads_from_args
from pipelines._job import (
    auto_read_threads,
    counters,
    number,
    progress_of,
    raise_reported,
    reports_metrics,
    run_to_end,
)
from pipelines._outcome import for_label, report
from pipelines._plan import Plan, plan_inputs
from pipelines._sample_write import is_nonempty_dir, makedirs, rename, rmtree, staging_dir
from pipelines._table import build_table
from pipelines.combiners import ClassCounts, CountCombineFn
from pipelines.readers import reader_for
from pipelines.transforms import ON_ERROR

_LOG = logging.getLogger(__name__)


class ComputeHeadStats(beam.PTransform):
    """Reads a dataset once and produces a PCollection holding one ``{label: WeightTable}`` dict.

    As ``ComputeClassStats``, for every label of ``heads``: shards are read
    and counted once for all labels, the counts of each label are merged on
    their own, and the last step validates each label's counts (bad records
    against that label's ``max_bad_fraction``, empty input). On error (naming
    the label) it raises (``on_error="raise"``) or reports the error in the
    job's metrics and emits nothing (``"report"``).

    Args:
      heads: the labels and their options.
      on_error: ``"raise"`` (default) or ``"report"``.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines._progress``).
    """

    def __init__(self, heads: HeadsConfig, *, on_error: str = "raise", progress_dir: str | None = None) -> None:
        super().__init__()
        if not isinstance(heads, HeadsConfig):
            raise invalid("heads", "a HeadsConfig (HeadsConfig.of(labels, ...))", type(heads).__name__)
        if on_error not in ON_ERROR:
            raise invalid_choice("on_error", ON_ERROR, on_error)
        self._heads = heads
        self._on_error = on_error
        self._progress_dir = progress_dir
        self._plan: tuple[Plan, HeadsConfig] | None = None

    @property
    def plan(self) -> tuple[Plan, HeadsConfig]:
        """Inputs resolved to shards, and the heads (completed from TFDS ``ClassLabel`` features)."""
        if self._plan is None:
            plan, heads = plan_inputs(self._heads.base), self._heads
            if heads.base.format == "tfds":
                heads = HeadsConfig((plan.config, *(plan_inputs(h).config for h in heads.heads[1:])))
            self._plan = (plan, heads)
        return self._plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        plan, heads = self.plan
        one_task_per_shard(pbegin.pipeline, len(plan.shards))  # as ComputeClassStats
        merge = beam.combiners.TupleCombineFn(*(CountCombineFn(h.weighted) for h in heads.heads))
        return (
            pbegin
            | "ListShards" >> beam.Create(plan.shards)
            | "CountShards" >> beam.ParDo(reader_for(heads.base, self._progress_dir, heads=heads.heads))
            | "MergeCounts" >> beam.CombineGlobally(merge)
            | "BuildTables" >> beam.FlatMap(_build_all, heads, plan.inputs, plan.fingerprint, self._on_error)
        )


def _build_all(counts: tuple[ClassCounts, ...], heads: HeadsConfig, inputs, fingerprint: str, on_error: str):
    """Every label's table, or (all labels checked in order) the first label's error."""
    tables = {}
    try:
        for head, head_counts in zip(heads.heads, counts, strict=True):
            if head_counts.error is not None:
                raise head_counts.error  # met while reading; it names the label if it is one label's
            try:
                tables[head.label] = build_table(head_counts, head, inputs, fingerprint)
            except RebalanceError as err:
                raise for_label(err, head.label) from None
    except RebalanceError as err:
        if on_error == "raise":
            raise
        report(err)
        return
    yield tables


class WriteWeightTables(beam.PTransform):
    """Publishes the ``{label: WeightTable}`` dict as a directory: one file per label, ``index.json`` last.

    Args:
      directory: the output directory (local or ``gs://``); it must be new or
        empty unless ``overwrite``.
      overwrite: replace a non-empty directory.
    """

    def __init__(self, directory: str, *, overwrite: bool = False) -> None:
        super().__init__()
        check_output(directory, overwrite)
        self._directory = directory.rstrip("/")
        self._overwrite = overwrite

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        return tables | "Publish" >> beam.Map(publish_tables, self._directory, self._overwrite)


def check_output(directory: str, overwrite: bool) -> None:
    """Refuses a file, and a non-empty directory unless ``overwrite``."""
    if not isinstance(directory, str) or not directory.rstrip("/"):
        raise invalid("output", "a directory for the tables", directory)
    if fileio.exists(directory) and not fileio.isdir(directory):
        raise invalid("output", "a directory for one table per label (not a file)", directory,
                      hint="With several --label the output is a directory holding LABEL.json files and "
                      f"{INDEX_NAME}")
    if not overwrite and is_nonempty_dir(directory):
        raise invalid("output", "a new or empty directory", directory, hint="Pass --overwrite to replace it")


def publish_tables(tables: dict[str, WeightTable], directory: str, overwrite: bool = False) -> str:
    """Writes the tables into a staging directory, makes it ``directory``, then writes ``index.json``.

    Returns the directory. On failure the staging directory is removed and
    ``directory`` is left as it was (or, if it was being replaced, without an
    index).
    """
    output = directory.rstrip("/")
    files = table_file_names(list(tables))
    first = next(iter(tables.values()))
    staging = staging_dir(output)
    try:
        makedirs(staging)
        for label, table in tables.items():
            table.save(f"{staging}/{files[label]}")
        check_output(output, overwrite)
        if fileio.exists(output):
            old = staging_dir(output).replace(".incomplete-", ".replaced-")
            rename(output, old)
            rename(staging, output)
            rmtree(old)
        else:
            parent = output.rsplit("/", 1)[0] if "/" in output else "."
            makedirs(parent)
            rename(staging, output)
    except BaseException:
        rmtree(staging)
        raise
    # Last: only a directory holding an index is complete (balance.load_tables refuses one without).
    fingerprints = {t.provenance.get("fingerprint") for t in tables.values()}
    fileio.write_text_atomically(f"{output}/{INDEX_NAME}", index_json(
        files, first.provenance.get("inputs") or [], fingerprints.pop() if len(fingerprints) == 1 else None))
    return output


def run_parsed(args: argparse.Namespace, beam_args: Sequence[str]) -> dict[str, WeightTable]:
    """Runs the job for every ``--label`` (one or more) of the stats job's parsed flags (see
    ``pipelines.class_stats.run_heads``); returns ``{label: table}`` as written to ``--output``.

    Raises:
      ValueError: bad flags (a per-label flag naming no ``--label``, an
        ``--output`` that is a file or a non-empty directory without
        ``--overwrite``), empty or bad input, or too many bad records for a
        label (the error names it). Nothing is published then.
    """
    options = PipelineOptions(beam_args)
    dask = _dask.resolve(args, options)  # --runner dask
    heads = heads_from_args(args, read_threads=auto_read_threads(options))
    output = args.output.rstrip("/")
    check_output(output, args.overwrite)
    progress = progress_of(args, options, dask)
    stats = ComputeHeadStats(heads, on_error="report" if reports_metrics(options) else "raise",
                             progress_dir=progress.directory)
    plan, _ = stats.plan  # fails fast on an empty input, before any worker starts
    _LOG.info("Counting %s in one pass over %d shard(s) of %s", list(heads.labels), len(plan.shards), plan.inputs)
    index = f"{output}/{INDEX_NAME}"
    previous = fileio.read_bytes(index) if fileio.exists(index) else None
    start = time.monotonic()
    def attach(pipeline):
        _ = (pipeline | "ComputeHeadStats" >> stats
             | "WriteTables" >> WriteWeightTables(output, overwrite=args.overwrite))

    result = run_to_end(options, dask, progress, len(plan.shards), attach)
    found = counters(result)
    raise_reported(result, found, previous, index)
    tables = load_tables(output)
    print(summary(tables, found, time.monotonic() - start, output))
    return tables


def summary(tables: dict[str, WeightTable], counters: dict[str, int], seconds: float, output: str) -> str:
    """The end-of-job report: records read, then per label its file, examples, classes, imbalance, bad records."""
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
