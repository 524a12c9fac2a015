"""Public PTransforms: ``ComputeClassStats`` and ``WriteWeightTable``.

Example:
  >>> import apache_beam as beam
  >>> from pipelines import ComputeClassStats, StatsConfig, WriteWeightTable
  >>> config = StatsConfig(input=("data/train-*.tfrecord",), label="label")
  >>> with beam.Pipeline() as p:  # doctest: +SKIP
  ...     _ = p | ComputeClassStats(config) | WriteWeightTable("table.json")
"""

from __future__ import annotations

import apache_beam as beam

from balance.errors import RebalanceError, invalid_choice
from balance.table import WeightTable
from pipelines._config import StatsConfig
from pipelines._dask import one_task_per_shard
from pipelines._outcome import report
from pipelines._plan import Plan, plan_inputs
from pipelines._table import build_table
from pipelines.combiners import ClassCounts, CountCombineFn
from pipelines.readers import reader_for

ON_ERROR = ("raise", "report")


class ComputeClassStats(beam.PTransform):
    """Reads a dataset and produces a PCollection holding one ``WeightTable``.

    Shards (files, Parquet row groups, CSV byte ranges, TFDS file slices) are
    spread over the workers, one task each; each is read and counted with vectorised readers, and the partial
    counts are merged by ``CountCombineFn``. The last step validates the
    counts (bad records, empty input) and, on error, fails the pipeline with a
    ``balance.errors`` error (``on_error="raise"``) or reports that error in
    the job's metrics and emits no table (``on_error="report"``, what
    ``pipelines.class_stats.run`` uses to raise it, typed, in the caller:
    see ``pipelines._outcome``).

    Args:
      config: what to read and count.
      on_error: ``"raise"`` (default) or ``"report"``.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines._progress``).
    """

    def __init__(self, config: StatsConfig, *, on_error: str = "raise", progress_dir: str | None = None) -> None:
        super().__init__()
        if on_error not in ON_ERROR:
            raise invalid_choice("on_error", ON_ERROR, on_error)
        self._config = config
        self._on_error = on_error
        self._progress_dir = progress_dir
        self._plan: Plan | None = None

    @property
    def plan(self) -> Plan:
        """Inputs resolved to shards; computed once, on first use."""
        if self._plan is None:
            self._plan = plan_inputs(self._config)
        return self._plan

    def expand(self, pbegin: beam.pvalue.PBegin) -> beam.PCollection:
        config, shards, inputs, fingerprint = self.plan
        # Create already reshuffles (a fusion break) when it has several
        # elements, so the shards are spread over the workers without another one;
        # on Dask, where Reshuffle is a no-op, each shard gets a partition of its own.
        one_task_per_shard(pbegin.pipeline, len(shards))
        return (
            pbegin
            | "ListShards" >> beam.Create(shards)
            | "CountShards" >> beam.ParDo(reader_for(config, self._progress_dir))
            | "MergeCounts" >> beam.CombineGlobally(CountCombineFn(config.weighted))
            | "BuildTable" >> beam.FlatMap(_build, config, inputs, fingerprint, self._on_error)
        )


def _build(counts: ClassCounts, config: StatsConfig, inputs, fingerprint: str, on_error: str):
    try:
        yield build_table(counts, config, inputs, fingerprint)
    except RebalanceError as err:
        if on_error == "raise":
            raise
        report(err)


def _save(table: WeightTable, path: str) -> str:
    # Local paths are written without importing TensorFlow, so a worker that only
    # writes the table (every worker, for CSV and Parquet) skips its 3-4 s import.
    return table.save(path)


class WriteWeightTable(beam.PTransform):
    """Writes the single table atomically to a local or gfile path (``gs://...``)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def expand(self, tables: beam.PCollection) -> beam.PCollection:
        return tables | "Save" >> beam.Map(_save, self._path)
