"""Writing the sample: one file per output shard, counted as it is written, then
published (``pipelines.io.publish``) with the table last.

Files are written inside the hidden staging directory of the output. Only
when every shard is written, the source counts match the table and the
sample's table is built is the staging directory published, with
``_table.json`` as its marker (then the manifest). A killed job leaves at most the staging
directory; an output without ``_table.json`` is incomplete by construction.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import numpy as np

from balance import fileio
from balance.errors import invalid
from balance.table import SAMPLE_TABLE_NAME, WeightTable
from pipelines.config import Shard
from pipelines.counting.combiners import ClassCounts
from pipelines.counting.shard import ShardCounter
from pipelines.counting.table import build_table
from pipelines.io.plan import fingerprint
from pipelines.io.publish import publish, rename
from pipelines.sampling.decide import KeptBatch
from pipelines.sampling.rates import SampleSpec

EXTENSIONS = {"tfrecord": ".tfrecord", "parquet": ".parquet", "csv": ".csv"}
# Names that start with "_" are skipped by whole-directory readers (Arrow, Spark, Hive, pandas) and by rebalance's.
TABLE_NAME = SAMPLE_TABLE_NAME
SOURCE_TABLE_NAME = "_source_table.json"


def _open_arrow(path: str):
    import pyarrow as pa

    if fileio.is_remote(path):
        import tensorflow as tf  # noqa: PLC0415 (remote paths only)

        return pa.PythonFile(tf.io.gfile.GFile(path, "wb"), mode="w")
    return pa.OSFile(path, "wb")


# ---------------------------------------------------------------- writing
class WriteShard(beam.DoFn):
    """Writes the kept batches of one output shard and emits their exact counts."""

    def __init__(self, spec: SampleSpec, staging: str) -> None:
        self._spec = spec
        self._staging = staging

    def process(self, element: tuple[int, Iterable[KeptBatch]]) -> Iterator[ClassCounts]:
        bucket, batches = element
        fmt = self._spec.config.format
        path = f"{self._staging}/part-{bucket:05d}{EXTENSIONS[fmt]}"
        counter = ShardCounter(self._spec.config, path)
        partial = f"{path}.partial"  # a retried bundle overwrites it; the rename is the commit
        write = {"tfrecord": self._tfrecord, "parquet": self._parquet, "csv": self._csv}[fmt]
        write(partial, batches, counter)
        rename(partial, path)
        yield counter.finish()

    @staticmethod
    def _count(counter: ShardCounter, batch: KeptBatch) -> None:
        counter.add(batch.values, batch.lengths, batch.weights)

    def _tfrecord(self, path: str, batches: Iterable[KeptBatch], counter: ShardCounter) -> None:
        import tensorflow as tf

        with tf.io.TFRecordWriter(path) as writer:
            for batch in batches:
                for record in batch.payload:
                    writer.write(record)
                self._count(counter, batch)

    def _parquet(self, path: str, batches: Iterable[KeptBatch], counter: ShardCounter) -> None:
        import pyarrow.parquet as pq

        writer = None
        with _open_arrow(path) as sink:
            for batch in batches:
                if writer is None:
                    writer = pq.ParquetWriter(sink, batch.payload.schema)
                writer.write_table(batch.payload)
                self._count(counter, batch)
            if writer is not None:
                writer.close()

    def _csv(self, path: str, batches: Iterable[KeptBatch], counter: ShardCounter) -> None:
        import pyarrow.csv as pa_csv

        options = pa_csv.WriteOptions(delimiter=self._spec.config.csv_delimiter, quoting_style="needed")
        writer = None
        with _open_arrow(path) as sink:
            for batch in batches:
                if writer is None:
                    writer = pa_csv.CSVWriter(sink, batch.payload.schema, write_options=options)
                writer.write_table(batch.payload)
                self._count(counter, batch)
            if writer is not None:
                writer.close()


# ------------------------------------------------------------- publishing
@dataclasses.dataclass(frozen=True)
class Publisher:
    """The job's last step: check, build the sample's table, publish. Picklable.

    Attributes:
      spec: the sampling spec.
      source: the source table the keep rates came from.
      staging: the staging directory the shards were written to.
      output: the final directory.
      overwrite: replace an existing output.
      target: how the keep rates were chosen, for the provenance.
    """

    spec: SampleSpec
    source: WeightTable
    staging: str
    output: str
    overwrite: bool
    target: dict[str, Any]

    def __call__(self, written: ClassCounts, source_counts: ClassCounts) -> WeightTable:
        config, output = self.spec.config, self.output.rstrip("/")
        read = build_table(source_counts, config, [], "")
        self._check_source(read)
        names = sorted(n for n in fileio.listdir(self.staging) if n.startswith("part-") and not n.endswith(".partial"))
        ext = EXTENSIONS[config.format]
        final = [f"part-{i:05d}-of-{len(names):05d}{ext}" for i in range(len(names))]
        for old, new in zip(names, final, strict=True):
            rename(f"{self.staging}/{old}", f"{self.staging}/{new}")
        paths = [f"{output}/{n}" for n in final]
        sizes = [fileio.size(f"{self.staging}/{n}") for n in final]
        table = build_table(dataclasses.replace(written, shards=len(final)),
                            config, paths, fingerprint([Shard(p) for p in paths], sizes))
        table = dataclasses.replace(table, provenance={**table.provenance, "sample": self._provenance()})
        # _table.json last (then the manifest): its presence marks a complete sample.
        publish(self.staging, output, overwrite=self.overwrite, complete=lambda out: table.save(f"{out}/{TABLE_NAME}"))
        return table

    def _check_source(self, read: WeightTable) -> None:
        """The table must describe this input: the pass counted it again, exactly."""
        mine, theirs = read.counts, self.source.counts
        same = np.array_equal(mine, theirs) if not self.spec.config.weighted else np.allclose(mine, theirs, rtol=1e-9)
        if not same or read.class_names != self.source.class_names:
            diff = np.flatnonzero(~np.isclose(mine, theirs, rtol=1e-9))
            detail = (f"class {diff[0]}: table {theirs[diff[0]]:g}, input {mine[diff[0]]:g}" if diff.size
                      else "class names differ")
            raise invalid("table", "the counts of this input (the stats job's table for the same files)",
                          self.source.provenance.get("inputs"),
                          hint=f"The input holds other counts ({detail}); nothing was published. "
                          "Omit --table to count the input first")

    def _provenance(self) -> dict[str, Any]:
        source = self.source
        return {
            "seed": self.spec.seed,
            "target": self.target,
            "keep_rates": list(self.spec.keep),
            "negative_keep_rate": self.spec.negative_keep if source.task == "multilabel" else None,
            "weight_feature": self.spec.weight_feature,
            "decision": "keyed 64-bit hash of the record < keep rate; multi-label records take the largest "
                        "rate among their positive labels",
            "source": {
                "fingerprint": source.provenance.get("fingerprint"),
                "inputs": source.provenance.get("inputs"),
                "counts": source.counts.tolist(),
                "num_examples": source.num_examples,
            },
        }


def publish_sample(written: ClassCounts, source_counts: ClassCounts, publisher: Publisher) -> WeightTable:
    """``beam.Map`` entry point of ``Publisher``."""
    return publisher(written, source_counts)
