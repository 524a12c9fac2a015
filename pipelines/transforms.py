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

from balance.table import WeightTable
from pipelines._config import Plan, StatsConfig, plan_inputs
from pipelines._dask import one_task_per_shard
from pipelines._table import build_table
from pipelines.combiners import CountCombineFn
from pipelines.readers import reader_for


class ComputeClassStats(beam.PTransform):
    """Reads a dataset and produces a PCollection holding one ``WeightTable``.

    Shards (files, Parquet row groups, CSV byte ranges, TFDS file slices) are
    spread over the workers, one task each; each is read and counted with vectorised readers, and the partial
    counts are merged by ``CountCombineFn``. The last step validates the
    counts (bad records, empty input) and fails the pipeline on error.

    Args:
      config: what to read and count.
    """

    def __init__(self, config: StatsConfig) -> None:
        super().__init__()
        self._config = config
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
            | "CountShards" >> beam.ParDo(reader_for(config))
            | "MergeCounts" >> beam.CombineGlobally(CountCombineFn(config.weighted))
            | "BuildTable" >> beam.Map(build_table, config, inputs, fingerprint)
        )


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
