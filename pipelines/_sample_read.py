"""Per-format DoFns of the down-sampling job: read a shard, decide, emit kept batches.

Each DoFn reads one shard with the stats job's native readers (tf.data for
TFRecord, pyarrow for CSV and Parquet), counts every record into a
``ShardCounter`` exactly as the stats job does (emitted as
``(SOURCE_KEY, ClassCounts)``, to check the table against the data), and emits
the kept records as ``(output_shard, KeptBatch)`` pairs: whole batches, never
single records. One output of pairs, not tagged outputs: Beam's DaskRunner
mixes tagged outputs into one collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from balance.errors import invalid
from pipelines._arrow import arrow_labels, arrow_weights
from pipelines._config import Shard
from pipelines._progress import note_shard
from pipelines._read_ahead import ReadAhead
from pipelines._sampling import HASH_BUCKETS, SampleSpec, record_rates, row_hashes, uniform_from_hash, valid_rows
from pipelines._shard import ShardCounter
from pipelines._split import csv_range
from pipelines.combiners import ClassCounts
from pipelines.readers import ReadTFRecordCounts, _arrow_file, _one_per_row, is_gzip

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


class _Decider:
    """Counts a shard's records and keeps those whose hash falls under their rate."""

    def __init__(self, spec: SampleSpec, path: str, names: dict[str, int] | None) -> None:
        self.spec, self.names = spec, names
        self.path = path
        self.reset()

    def reset(self) -> None:
        """Forgets what was read (before a shard is read again)."""
        self.source = ShardCounter(self.spec.config, self.path)
        self.kept: list[tuple[int, KeptBatch]] = []

    def add(self, values, lengths, weights, wrong, hashes: np.ndarray, take) -> None:
        """``take(indices, rates)`` returns the payload of the kept rows."""
        lengths = np.asarray(lengths, dtype=np.int64)
        values = np.asarray(values)
        self.source.add(values, lengths, weights, wrong)  # raises on ids outside the table
        ok = valid_rows(self.spec, lengths, wrong, weights)
        rates = record_rates(self.spec, values, lengths, ok, self.names)
        keep = uniform_from_hash(hashes) < rates
        if not keep.any():
            return
        rows = np.flatnonzero(keep)
        buckets = (hashes[rows] % np.uint64(self.spec.num_shards)).astype(np.int64)
        payload_rows = take(rows, rates[rows])
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


class _SampleShards(beam.DoFn):
    """Base: reads shards (``read_threads`` at a time: ``pipelines._read_ahead``), emits kept batches
    and source counts."""

    def __init__(self, spec: SampleSpec, names: tuple[str, ...] | None, progress_dir: str | None = None) -> None:
        self._spec = spec
        self._names = names
        self._progress_dir = progress_dir

    def setup(self) -> None:
        self._records = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records")
        self._written = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "kept")
        self._lookup = {n: i for i, n in enumerate(self._names)} if self._names else None

    def start_bundle(self) -> None:
        self.teardown()  # threads left by a failed bundle
        self._ahead = ReadAhead(self._read, self._spec.config.read_threads)

    def process(self, shard: Shard) -> Iterator[Any]:
        for decider in self._ahead.add(Shard(*shard)):
            yield from self._emit(decider)

    def finish_bundle(self) -> Iterator[Any]:
        for decider in self._ahead.drain():
            for out in self._emit(decider):
                yield WindowedValue(out, MIN_TIMESTAMP, (GlobalWindow(),))
        self._ahead.close()

    def teardown(self) -> None:
        if hasattr(self, "_ahead"):
            self._ahead.close()

    def _emit(self, decider: _Decider) -> list[Any]:
        """A read shard's kept batches, then its source counts."""
        counts: ClassCounts = decider.source.finish()
        self._records.inc(counts.records)
        self._written.inc(sum(len(b.lengths) for _, b in decider.kept))
        note_shard(self._progress_dir, counts.records)
        return [*decider.kept, (SOURCE_KEY, counts)]

    def _read(self, shard: Shard) -> _Decider:
        decider = _Decider(self._spec, shard.path, self._lookup)
        self.read(shard, decider)
        return decider

    def read(self, shard: Shard, decider: _Decider) -> None:
        raise NotImplementedError

    def _refuse_existing(self, names, path: str) -> None:
        name = self._spec.weight_feature
        if name and name in names:
            raise invalid("weight_feature", "a feature or column name not already in the input", name,
                          hint=f"{path!r} has it; pick another name")


class SampleTFRecord(_SampleShards):
    """TFRecord of ``tf.train.Example``: SipHash of the serialized bytes decides.

    Reading and label parsing are the stats job's (``ReadTFRecordCounts``).
    With ``weight_feature``, ``1 / keep`` is added to each kept Example by
    appending a serialized one-feature Example to its bytes: protobuf merges
    concatenated messages, so the record is not re-encoded.
    """

    def setup(self) -> None:
        super().setup()
        self._reader = ReadTFRecordCounts(self._spec.config)
        self._reader.setup()
        self._tf = self._reader._tf
        self._suffixes: dict[float, bytes] = {}

    def read(self, shard: Shard, decider: _Decider) -> None:
        tf, reader = self._tf, self._reader
        compression = "GZIP" if is_gzip(shard.path, self._spec.config.compression) else ""
        key = list(self._spec.hash_key)

        def with_hash(serialized):
            return serialized, tf.strings.to_hash_bucket_strong(serialized, HASH_BUCKETS, key)

        try:
            parse = reader._parser(*reader._detect_dtypes(shard, compression))
            for record in reader._dataset(shard, compression).take(1):
                try:
                    features = tf.train.Example.FromString(record.numpy()).features.feature
                except Exception:  # noqa: BLE001 (protobuf DecodeError: counted as bad below)
                    features = {}
                self._refuse_existing(features, shard.path)
            batches = reader._dataset(shard, compression).batch(self._spec.config.batch_rows(whole_records=True))
            try:  # parse in the tf.data pipeline, in parallel, as the stats job does
                fast = batches.map(lambda s: (s, with_hash(s)[1], parse(s)), num_parallel_calls=tf.data.AUTOTUNE,
                                   deterministic=True)
                for serialized, hashes, parsed in fast.prefetch(tf.data.AUTOTUNE):
                    self._add(decider, serialized, hashes, parsed)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                decider.reset()  # a bad record: read the shard again, batch by batch
                for serialized, hashes in batches.map(with_hash).prefetch(tf.data.AUTOTUNE):
                    self._add_careful(decider, serialized, hashes, parse)
        except tf.errors.DataLossError as err:
            raise invalid("input", "readable TFRecord files", shard.path,
                          hint=f"Corrupted or truncated file: {err.message}. If it is compressed, pass "
                          "--compression gzip") from None

    def _add_careful(self, decider: _Decider, serialized, hashes, parse) -> None:
        tf = self._tf
        try:
            parsed = parse(serialized)
        except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
            # Parse one by one; drop and count the unparsable records.
            records, good = serialized.numpy(), []
            for i, record in enumerate(records):
                try:
                    parse(tf.constant([record]))
                    good.append(i)
                except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                    decider.source.add_bad("unparsable", 1)
            if not good:
                return
            serialized, hashes = tf.constant(records[good]), tf.gather(hashes, good)
            parsed = parse(serialized)
        self._add(decider, serialized, hashes, parsed)

    def _add(self, decider: _Decider, serialized, hashes, parsed) -> None:
        values, lengths = parsed[0].numpy(), parsed[1].numpy()
        weights = _one_per_row(parsed[2].numpy(), parsed[3].numpy()) if len(parsed) > 2 else None

        def take(rows, rates):  # only the kept records become Python bytes
            records = self._tf.gather(serialized, rows).numpy().tolist()
            if not self._spec.weight_feature:
                return records
            return [record + self._suffix(r) for record, r in zip(records, rates.tolist(), strict=True)]

        decider.add(values, lengths, weights, None, hashes.numpy().astype(np.uint64), take)

    def _suffix(self, rate: float) -> bytes:
        suffix = self._suffixes.get(rate)
        if suffix is None:
            tf = self._tf
            feature = tf.train.Feature(float_list=tf.train.FloatList(value=[1.0 / rate]))
            suffix = tf.train.Example(features=tf.train.Features(
                feature={self._spec.weight_feature: feature})).SerializeToString()
            self._suffixes[rate] = suffix
        return suffix


class _SampleArrow(_SampleShards):
    """Shared by CSV and Parquet: BLAKE2b of each row's values decides."""

    def setup(self) -> None:
        super().setup()
        import pyarrow as pa

        self._pa = pa

    def _add_table(self, decider: _Decider, table, *, text: bool, label, weight) -> None:
        config = self._spec.config
        values, lengths, wrong = arrow_labels(label, config, text=text)
        weights = None
        if config.weight:
            weights = arrow_weights(weight) if weight is not None else np.full(table.num_rows, np.nan)
        hashes = row_hashes([c.to_pylist() for c in table.columns], self._spec.hash_key)
        pa, name = self._pa, self._spec.weight_feature

        def take(rows, rates):
            kept = table.take(pa.array(rows))
            return kept.append_column(pa.field(name, pa.float64()), pa.array(1.0 / rates)) if name else kept

        decider.add(values, lengths, weights, wrong, hashes, take)


class SampleParquet(_SampleArrow):
    """One Parquet row group; every column is kept, the schema too."""

    def read(self, shard: Shard, decider: _Decider) -> None:
        import pyarrow.parquet as pq

        config = self._spec.config
        with _arrow_file(shard.path) as handle:
            parquet = pq.ParquetFile(handle)
            names = set(parquet.schema_arrow.names)
            self._refuse_existing(names, shard.path)
            if config.label not in names:
                decider.source.add_bad("missing_label", parquet.metadata.row_group(shard.row_group).num_rows)
                return
            for batch in parquet.iter_batches(batch_size=config.batch_rows(whole_records=True),
                                              row_groups=[shard.row_group]):
                table = self._pa.Table.from_batches([batch])
                weight = table.column(config.weight) if config.weight and config.weight in names else None
                self._add_table(decider, table, text=False, label=table.column(config.label), weight=weight)


class SampleCsv(_SampleArrow):
    """One CSV file, every column read as text so that the cells are written back unchanged."""

    def read(self, shard: Shard, decider: _Decider) -> None:
        import pyarrow.compute as pc
        import pyarrow.csv as pa_csv

        pa, config = self._pa, self._spec.config
        invalid_rows = [0]

        def skip_invalid(_row) -> str:
            invalid_rows[0] += 1
            return "skip"

        # As the stats job reads them: a byte range of a big file (pipelines._split) or a whole file.
        parse = pa_csv.ParseOptions(delimiter=config.csv_delimiter, invalid_row_handler=skip_invalid,
                                    newlines_in_values=shard.end < 0)
        read = pa_csv.ReadOptions(block_size=4 << 20)
        gzip = shard.end < 0 and is_gzip(shard.path, config.compression)
        names = self._header(shard.path, gzip, parse, read)
        if names is None:
            return
        self._refuse_existing(names, shard.path)
        convert = pa_csv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                        quoted_strings_can_be_null=False, null_values=[])
        with _arrow_file(shard.path) as handle:
            stream = pa.CompressedInputStream(handle, "gzip") if gzip else handle
            if shard.end >= 0:
                stream, header = csv_range(handle, shard, config.csv_delimiter, handle.size())
                read = pa_csv.ReadOptions(block_size=4 << 20, column_names=header)
            try:
                for batch in pa_csv.open_csv(stream, read_options=read, parse_options=parse,
                                             convert_options=convert):
                    table = pa.Table.from_batches([batch])
                    weight = _cells(pc, table, config.weight, names) if config.weight else None
                    self._add_table(decider, table, text=True, label=_cells(pc, table, config.label, names),
                                    weight=weight)
            except pa.ArrowInvalid as err:
                raise invalid("input", "readable CSV files with a header row", shard.path, hint=str(err)) from None
        decider.source.add_bad("unparsable", invalid_rows[0])

    def _header(self, path: str, gzip: bool, parse, read) -> list[str] | None:
        import pyarrow.csv as pa_csv

        pa = self._pa
        with _arrow_file(path) as handle:
            stream = pa.CompressedInputStream(handle, "gzip") if gzip else handle
            try:
                return pa_csv.open_csv(stream, read_options=read, parse_options=parse).schema.names
            except pa.ArrowInvalid as err:
                if "Empty CSV file" in str(err):
                    return None
                raise invalid("input", "readable CSV files with a header row", path, hint=str(err)) from None


def _cells(pc, table, name: str, names: list[str]):
    """A text column with empty cells as nulls (missing), as the stats job reads them."""
    import pyarrow as pa

    if name not in names:
        return pa.nulls(table.num_rows, pa.string())
    cells = table.column(name)
    return pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells)


def sampler_for(spec: SampleSpec, names: tuple[str, ...] | None, progress_dir: str | None = None) -> _SampleShards:
    """The DoFn that samples shards of ``spec.config.format`` (noting each in ``progress_dir``, if given)."""
    sampler = {"tfrecord": SampleTFRecord, "csv": SampleCsv, "parquet": SampleParquet}[spec.config.format]
    return sampler(spec, names, progress_dir)
