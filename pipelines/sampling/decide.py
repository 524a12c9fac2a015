"""The sampling DoFn: read a shard, decide which records are kept, emit them in batches.

``SampleShards`` reads each shard with the format's reader
(``pipelines.io.readers``, asked for the records and their hashes), counts
every record into a ``ShardCounter`` exactly as the stats job does (emitted as
``(SOURCE_KEY, ClassCounts)``, to check the table against the data), and emits
the kept records as ``(output_shard, KeptBatch)`` pairs: whole batches, never
single records. One output of pairs, not tagged outputs: Beam's DaskRunner
mixes tagged outputs into one collection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np

from balance.errors import invalid
from pipelines.config import Shard
from pipelines.counting.combiners import ClassCounts
from pipelines.counting.shard import ShardCounter
from pipelines.io.hashing import uniform_from_hash
from pipelines.io.read_ahead import ReadShards
from pipelines.io.readers import Batch, reader_for
from pipelines.progress import note_shard
from pipelines.sampling.rates import SampleSpec, record_rates, valid_rows

METRICS_NAMESPACE = "tf_rebalance.sample"
SOURCE_KEY = -1  # the key of the source counts; output shards are 0, 1, ...


class KeptBatch(NamedTuple):
    """Kept records of one batch bound for one output shard, with their labels.

    ``payload`` is a list of serialized records (TFRecord) or a ``pyarrow.Table``.
    """

    payload: Any
    values: np.ndarray
    lengths: np.ndarray
    weights: np.ndarray | None


class Decider:
    """A reader's sink (``pipelines.io.readers.Sink``): counts a shard's records and keeps those whose hash
    falls under their rate.

    Args:
      spec: the sampling spec.
      path: the shard's file.
      names: string class names -> ids (None for int labels).
      take: ``take(batch, rows, rates)``, the payload of a batch's kept rows.
    """

    def __init__(self, spec: SampleSpec, path: str, names: dict[str, int] | None, take) -> None:
        self.spec, self.names, self.path, self.take = spec, names, path, take
        self.start(0, None)

    def start(self, first_record: int | None, names: Sequence[str] | None) -> None:
        feature = self.spec.weight_feature
        if feature and names is not None and feature in names:
            raise invalid("weight_feature", "a feature or column name not already in the input", feature,
                          hint=f"{self.path!r} has it; pick another name")
        self.source = ShardCounter(self.spec.config, self.path, first_record)
        self.kept: list[tuple[int, KeptBatch]] = []

    def bad(self, kind: str, count: int, head: int | None = None) -> None:
        self.source.add_bad(kind, count)

    def add(self, batch: Batch) -> None:
        ((_, values, lengths, wrong),) = batch.labels
        if not isinstance(values, np.ndarray):  # Arrow strings: the keep rates look names up one by one
            values = values.to_numpy(zero_copy_only=False).astype(object)
        weights, hashes = batch.weights, batch.hashes
        lengths = np.asarray(lengths, dtype=np.int64)
        self.source.add(values, lengths, weights, wrong)  # raises on ids outside the table
        ok = valid_rows(self.spec, lengths, wrong, weights)
        rates = record_rates(self.spec, values, lengths, ok, self.names)
        keep = uniform_from_hash(hashes) < rates
        if not keep.any():
            return
        rows = np.flatnonzero(keep)
        buckets = (hashes[rows] % np.uint64(self.spec.num_shards)).astype(np.int64)
        payload_rows = self.take(batch, rows, rates[rows])
        for bucket in np.unique(buckets).tolist():
            mine = buckets == bucket
            picked = rows[mine]
            mask = np.zeros(lengths.size, dtype=bool)
            mask[picked] = True
            part = payload_rows.take(np.flatnonzero(mine)) if hasattr(payload_rows, "take") else [
                payload_rows[i] for i in np.flatnonzero(mine).tolist()]
            self.kept.append((bucket, KeptBatch(
                part, values[np.repeat(mask, lengths)], lengths[picked],
                None if weights is None else np.asarray(weights)[picked])))


class SampleShards(ReadShards):
    """Reads shards (``read_threads`` at a time), emits their kept batches and source counts.

    TFRecord: SipHash of the serialized bytes decides; with ``weight_feature``,
    ``1 / keep`` is added to each kept Example by appending a serialized
    one-feature Example to its bytes (protobuf merges concatenated messages, so
    the record is not re-encoded). CSV and Parquet: BLAKE2b of each row's
    values decides; every column is kept (the schema too), and
    ``weight_feature`` is a new column.

    Args:
      spec: the sampling spec.
      names: the table's class names, for string labels (None for int labels).
      progress_dir: a local directory where each read shard is noted (see ``pipelines.progress``).
    """

    def __init__(self, spec: SampleSpec, names: tuple[str, ...] | None, progress_dir: str | None = None) -> None:
        super().__init__(spec.config.read_threads)
        self._spec = spec
        self._names = names
        self._progress_dir = progress_dir
        self._reader = reader_for((spec.config,), records=True, hash_key=spec.hash_key)

    def setup(self) -> None:
        self._reader.setup()
        self._records = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records")
        self._written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "kept")
        self._lookup = {n: i for i, n in enumerate(self._names)} if self._names else None
        if self._spec.config.format in ("tfrecord", "tfds"):
            import tensorflow as tf

            self._tf = tf
            self._suffixes: dict[float, bytes] = {}
            self._take = self._take_records
        else:
            import pyarrow as pa

            self._pa = pa
            self._take = self._take_rows

    def read_shard(self, shard: Shard) -> Decider:
        decider = Decider(self._spec, shard.path, self._lookup, self._take)
        self._reader.read(shard, decider)
        return decider

    def emit(self, decider: Decider) -> list[Any]:
        """A read shard's kept batches, then its source counts."""
        counts: ClassCounts = decider.source.finish()
        self._records.inc(counts.records)
        self._written.inc(sum(len(b.lengths) for _, b in decider.kept))
        note_shard(self._progress_dir, counts.records)
        return [*decider.kept, (SOURCE_KEY, counts)]

    def _take_records(self, batch: Batch, rows: np.ndarray, rates: np.ndarray) -> list[bytes]:
        records = self._tf.gather(batch.records, rows).numpy().tolist()  # only the kept records become bytes
        if not self._spec.weight_feature:
            return records
        return [record + self._suffix(r) for record, r in zip(records, rates.tolist(), strict=True)]

    def _suffix(self, rate: float) -> bytes:
        suffix = self._suffixes.get(rate)
        if suffix is None:
            tf = self._tf
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0 / rate]))
            suffix = tf.train.Example(features=tf.train.Features(
                feature={self._spec.weight_feature: feature})).SerializeToString()
            self._suffixes[rate] = suffix
        return suffix

    def _take_rows(self, batch: Batch, rows: np.ndarray, rates: np.ndarray):
        pa, name = self._pa, self._spec.weight_feature
        kept = batch.records.take(pa.array(rows))
        return kept.append_column(pa.field(name, pa.float64()), pa.array(1.0 / rates)) if name else kept
