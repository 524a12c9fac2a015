"""Public PTransforms: ``ComputeHeadStats`` (one table per label of a ``HeadsConfig``), ``ComputeClassStats``
(its one-label case: one table) and the writers of their results.

Example:
  >>> import apache_beam as beam
  >>> from pipelines import ComputeClassStats, StatsConfig, WriteWeightTable
  >>> config = StatsConfig(input=("data/train-*.tfrecord",), label="label")
  >>> with beam.Pipeline() as p:  # doctest: +SKIP
  ...     _ = p | ComputeClassStats(config) | WriteWeightTable("table.json")
"""

from __future__ import annotations

import apache_beam as beam

from balance.errors import RebalanceError, invalid, invalid_choice
from balance.table import WeightTable
from pipelines.config import HeadsConfig, StatsConfig
from pipelines.counting.combiners import ClassCounts, CountCombineFn
from pipelines.counting.count import CountShards
from pipelines.counting.table import build_table
from pipelines.io.plan import Plan, one_task_per_shard, plan_inputs
from pipelines.io.publish import check_tables_output, publish_tables
from pipelines.outcome import for_label, report

ON_ERROR = ("raise", "report")


class ComputeHeadStats(beam.PTransform):
    """Reads a dataset once and produces a PCollection holding one ``{label: WeightTable}`` dict.

    Shards (files, Parquet row groups, CSV byte ranges, TFDS file slices) are
    spread over the workers, one task each; each is read once for every label
    and counted with vectorised readers, the counts of each label are merged on
    their own by ``CountCombineFn``, and the last step validates each label's
    counts (bad records against that label's ``max_bad_fraction``, empty
    input). On error (naming the label) it fails the pipeline with a
    ``balance.errors`` error (``on_error="raise"``) or reports that error in
    the job's metrics and emits nothing (``on_error="report"``, what the
    ``rebalance stats`` job uses to raise it, typed, in the caller: see
    ``pipelines.outcome``).

    Args:
      heads: the labels and their options.
      on_error: ``"raise"`` (default) or ``"report"``.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines.progress``).
    """

    # Errors and bad-record counters name the label they are about.
    _per_label = True

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
        """Inputs resolved to shards, and the heads (completed from TFDS ``ClassLabel`` features);
        computed once, on first use."""
        return self._resolved()

    def _resolved(self) -> tuple[Plan, HeadsConfig]:
        if self._plan is None:
            plan, heads = plan_inputs(self._heads.base), self._heads
            if heads.base.format == "tfds":
                heads = HeadsConfig((plan.config, *(plan_inputs(h).config for h in heads.heads[1:])))
            self._plan = (plan, heads)
        return self._plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        plan, heads = self._resolved()
        # Create already reshuffles (a fusion break) when it has several
        # elements, so the shards are spread over the workers without another one;
        # on Dask, where Reshuffle is a no-op, each shard gets a partition of its own.
        one_task_per_shard(pbegin.pipeline, len(plan.shards))
        if self._per_label:
            count = CountShards(heads.base, self._progress_dir, heads=heads.heads)
            merge = beam.combiners.TupleCombineFn(*(CountCombineFn(h.weighted) for h in heads.heads))
        else:
            count = CountShards(heads.base, self._progress_dir)
            merge = CountCombineFn(heads.base.weighted)
        return (
            pbegin
            | "ListShards" >> beam.Create(plan.shards)
            | "CountShards" >> beam.ParDo(count)
            | "MergeCounts" >> beam.CombineGlobally(merge)
            | "BuildTables" >> beam.FlatMap(_build, heads, plan.inputs, plan.fingerprint, self._on_error,
                                            self._per_label)
        )


def _build(counts: ClassCounts | tuple[ClassCounts, ...], heads: HeadsConfig, inputs, fingerprint: str,
           on_error: str, per_label: bool):
    """Every label's table, or (all labels checked in order) the first label's error."""
    tables = {}
    try:
        for head, head_counts in zip(heads.heads, counts if per_label else (counts,), strict=True):
            if head_counts.error is not None:
                raise head_counts.error  # met while reading; it names the label if it is one label's
            try:
                tables[head.label] = build_table(head_counts, head, inputs, fingerprint)
            except RebalanceError as err:
                raise (for_label(err, head.label) if per_label else err) from None
    except RebalanceError as err:
        if on_error == "raise":
            raise
        report(err)
        return
    yield tables


class ComputeClassStats(ComputeHeadStats):
    """The one-label case of ``ComputeHeadStats``: a PCollection holding one ``WeightTable``.

    Args:
      config: what to read and count.
      on_error: ``"raise"`` (default) or ``"report"``.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines.progress``).
    """

    _per_label = False

    def __init__(self, config: StatsConfig, *, on_error: str = "raise", progress_dir: str | None = None) -> None:
        super().__init__(HeadsConfig((config,)), on_error=on_error, progress_dir=progress_dir)

    @property
    def plan(self) -> Plan:
        """Inputs resolved to shards; computed once, on first use."""
        return self._resolved()[0]

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        return super().expand(pbegin) | "OneTable" >> beam.Map(_only_table)


def _only_table(tables: dict[str, WeightTable]) -> WeightTable:
    (table,) = tables.values()
    return table


def save_table(table: WeightTable, path: str) -> str:
    # Local paths are written without importing TensorFlow, so a worker that only
    # writes the table (every worker, for CSV and Parquet) skips its 3-4 s import.
    return table.save(path)


class WriteWeightTable(beam.PTransform):
    """Writes the single table atomically to a local or gfile path (``gs://...``)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        return tables | "Save" >> beam.Map(save_table, self._path)


class WriteWeightTables(beam.PTransform):
    """Publishes the ``{label: WeightTable}`` dict as a directory: one file per label, ``index.json`` last
    (see ``pipelines.io.publish``).

    Args:
      directory: the output directory (local or ``gs://``); it must be new or
        empty unless ``overwrite``.
      overwrite: replace a non-empty directory.
    """

    def __init__(self, directory: str, *, overwrite: bool = False) -> None:
        super().__init__()
        check_tables_output(directory, overwrite)
        self._directory = directory.rstrip("/")
        self._overwrite = overwrite

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        return tables | "Publish" >> beam.Map(publish_tables, self._directory, self._overwrite)
