"""Per-format DoFns: read one shard with a native vectorised reader, emit its counts.

* TFRecord: ``tf.data.TFRecordDataset(...).batch(B)`` + ``tf.io.parse_example``
  of only the label (and weight) feature, as ragged tensors.
* CSV: ``pyarrow.csv.open_csv`` streaming only the label (and weight) column.
* Parquet: ``pyarrow.parquet`` per row group, only the needed columns.

Each DoFn emits one ``ClassCounts`` per shard. Heavy imports happen in
``setup()``; the DoFns carry only a ``StatsConfig``, so they pickle without
``save_main_session``. Bad records are counted, with Beam metrics counters.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import apache_beam as beam
import numpy as np
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from balance.errors import RebalanceError, invalid
from pipelines._arrow import arrow_labels, arrow_weights
from pipelines._config import Shard, StatsConfig
from pipelines._files import arrow_file as _arrow_file
from pipelines._files import is_gzip
from pipelines._outcome import METRICS_NAMESPACE, as_data_error
from pipelines._shard import ShardCounter
from pipelines._split import csv_range
from pipelines._tfrecord_check import check_complete
from pipelines.combiners import BAD_KINDS, ClassCounts

_DETECT_RECORDS = 1000
_PARSERS: dict = {}
_PARSERS_LOCK = threading.Lock()


class _CountShards(beam.DoFn):
    """Base: one ``ClassCounts`` per shard, plus metrics counters."""

    def __init__(self, config: StatsConfig) -> None:
        self._config = config

    def setup(self) -> None:
        self._records = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records")
        self._shards = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "shards")
        self._bad = {k: beam.metrics.Metrics.counter(METRICS_NAMESPACE, f"bad_{k}") for k in BAD_KINDS}

    def start_bundle(self) -> None:
        self._pending: list[Shard] = []

    def process(self, shard: Shard) -> Iterator[ClassCounts]:
        if self._config.read_threads == 1:
            yield self._report(self._counts(Shard(*shard)))
            return
        self._pending.append(Shard(*shard))
        if len(self._pending) == self._config.read_threads:
            yield from self._read_pending()

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for counts in self._read_pending():
            yield WindowedValue(counts, MIN_TIMESTAMP, (GlobalWindow(),))

    def _read_pending(self) -> list[ClassCounts]:
        """Reads up to ``read_threads`` shards concurrently.

        The in-process runner hands a DoFn a whole bundle on one thread; the
        native readers (tf.data, pyarrow) release the GIL, so reading a few
        shards at once uses the worker's cores. At most ``read_threads``
        partial counts are held at a time, so memory stays O(classes).
        Errors propagate from ``map``; metrics are reported from this thread.
        """
        if not self._pending:
            return []
        with ThreadPoolExecutor(len(self._pending)) as pool:
            counters = list(pool.map(self._counts, self._pending))
        self._pending = []
        return [self._report(counts) for counts in counters]

    def _counts(self, shard: Shard) -> ClassCounts:
        """The shard's counts; the job's own error, if one is met, travels in them (see ``_outcome``)."""
        try:
            return self.count(shard).finish()
        except RebalanceError as err:
            return ClassCounts(weighted=self._config.weighted, shards=1, error=as_data_error(err, shard.path))

    def _report(self, counts: ClassCounts) -> ClassCounts:
        self._records.inc(counts.records)
        self._shards.inc()
        for kind, count in counts.bad.items():
            self._bad[kind].inc(count)
        return counts

    def count(self, shard: Shard) -> ShardCounter:
        raise NotImplementedError


class ReadTFRecordCounts(_CountShards):
    """Counts the labels of one TFRecord file (or TFDS file slice) of ``tf.train.Example``."""

    def setup(self) -> None:
        super().setup()
        import tensorflow as tf

        self._tf = tf
        # Shared by the DoFn instances of a process: the DaskRunner sets up a DoFn per task.
        self._parsers, self._parsers_lock = _PARSERS, _PARSERS_LOCK

    def count(self, shard: Shard) -> ShardCounter:
        tf, config = self._tf, self._config
        compression = "GZIP" if is_gzip(shard.path, config.compression) else ""
        try:
            parse = self._parser(*self._detect_dtypes(shard, compression))
            try:
                return self._fast(shard, compression, parse)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                # UnicodeDecodeError: TF fails to decode its own message about a bad record.
                return self._careful(shard, compression, parse)
        except tf.errors.DataLossError as err:
            raise invalid(
                "input", "readable TFRecord files", shard.path,
                hint=f"Corrupted or truncated file: {err.message}. If it is compressed, pass "
                "--compression gzip",
            ) from None

    def _dataset(self, shard: Shard, compression: str):
        dataset = self._tf.data.TFRecordDataset(shard.path, compression, buffer_size=8 << 20)
        if shard.skip:
            dataset = dataset.skip(shard.skip)
        if shard.take >= 0:
            dataset = dataset.take(shard.take)
        return dataset

    def _detect_dtypes(self, shard: Shard, compression: str) -> tuple[Any, Any]:
        """Label and weight dtypes: from the flags, else from the first records."""
        tf, config = self._tf, self._config
        # Int labels may be stored as whole-number floats (float_list), so int is detected too.
        label_kind = "bytes_list" if config.label_dtype == "string" else None
        weight_kind = None
        if label_kind is None or config.weight:
            for record in self._dataset(shard, compression).take(_DETECT_RECORDS):
                try:
                    features = tf.train.Example.FromString(record.numpy()).features.feature
                except Exception:  # noqa: BLE001, S112 (protobuf DecodeError; counted later)
                    continue
                if label_kind is None and config.label in features:
                    kind = features[config.label].WhichOneof("kind")
                    if config.label_dtype == "int" and kind == "bytes_list":
                        kind = "int64_list"  # strings are then wrong_type records
                    label_kind = kind if kind in ("int64_list", "bytes_list", "float_list") else None
                if config.weight and weight_kind is None and config.weight in features:
                    weight_kind = features[config.weight].WhichOneof("kind")
                if label_kind and (weight_kind or not config.weight):
                    break
        label_dtype = {"bytes_list": tf.string, "float_list": tf.float32}.get(label_kind, tf.int64)
        weight_dtype = tf.int64 if weight_kind == "int64_list" else tf.float32
        return label_dtype, weight_dtype

    def _parser(self, label_dtype, weight_dtype):
        """A parse function per feature and dtype pair, traced once per worker process (not per shard)."""
        key = (self._config.label, self._config.weight, label_dtype, weight_dtype)
        with self._parsers_lock:  # shards of a bundle may be read on several threads
            if key not in self._parsers:
                self._parsers[key] = self._make_parser(label_dtype, weight_dtype)
            return self._parsers[key]

    def _make_parser(self, label_dtype, weight_dtype):
        tf, label, weight = self._tf, self._config.label, self._config.weight
        spec = {label: tf.io.RaggedFeature(label_dtype, row_splits_dtype=tf.int64)}
        if weight:
            spec[weight] = tf.io.RaggedFeature(weight_dtype, row_splits_dtype=tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def parse(serialized):
            parsed = tf.io.parse_example(serialized, spec)
            out = (parsed[label].flat_values, parsed[label].row_lengths())
            if weight:
                out += (tf.cast(parsed[weight].flat_values, tf.float64), parsed[weight].row_lengths())
            return out

        parse.kinds = {label: _kind_of(label_dtype), weight: _kind_of(weight_dtype)}
        return parse

    def _add(self, counter: ShardCounter, parsed) -> None:
        values, lengths = _label_values(self._tf, parsed[0]), parsed[1].numpy()
        weights = _one_per_row(parsed[2].numpy(), parsed[3].numpy()) if len(parsed) > 2 else None
        counter.add(values, lengths, weights)

    def _fast(self, shard: Shard, compression: str, parse) -> ShardCounter:
        tf = self._tf
        counter = ShardCounter(self._config, shard.path, shard.skip)

        def sized(serialized):  # record bytes, to check the file was read to its end
            return tf.reduce_sum(tf.strings.length(serialized, unit="BYTE")), parse(serialized)

        dataset = (
            self._dataset(shard, compression)
            .batch(self._config.batch_size)
            .map(sized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        records = payload = 0
        for nbytes, parsed in dataset:
            records += int(parsed[1].shape[0])
            payload += int(nbytes)
            self._add(counter, parsed)
        check_complete(shard, bool(compression), records, payload)
        return counter

    def _careful(self, shard: Shard, compression: str, parse) -> ShardCounter:
        """Re-reads a shard that has bad records, classifying them one by one."""
        tf = self._tf
        counter = ShardCounter(self._config, shard.path, shard.skip)
        records = payload = 0
        for batch in self._dataset(shard, compression).batch(self._config.batch_size):
            records += int(batch.shape[0])
            payload += sum(map(len, batch.numpy()))
            try:
                self._add(counter, parse(batch))
                continue
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                pass
            good = [r for r in batch.numpy() if self._classify(counter, r, parse.kinds) is None]
            try:
                if good:
                    self._add(counter, parse(tf.constant(good)))
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                for record in good:
                    try:
                        self._add(counter, parse(tf.constant([record])))
                    except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                        counter.add_bad("unparsable", 1)
        check_complete(shard, bool(compression), records, payload)
        return counter

    def _classify(self, counter: ShardCounter, record: bytes, kinds: dict) -> str | None:
        """Counts and returns the bad kind of one record, or None if it looks valid."""
        try:
            features = self._tf.train.Example.FromString(record).features.feature
        except Exception:  # noqa: BLE001 (protobuf DecodeError)
            bad = "unparsable"
        else:
            label, weight = self._config.label, self._config.weight
            bad = None
            if label in features and features[label].WhichOneof("kind") not in (kinds[label], None):
                bad = "wrong_type"
            elif weight and weight in features and features[weight].WhichOneof("kind") not in (
                kinds[weight], None,
            ):
                bad = "bad_weight"
        if bad:
            counter.add_bad(bad, 1)
        return bad


def _label_values(tf, values):
    """Parsed label values as numpy, or, for bytes, as an Arrow array made from TF's buffer.

    ``.numpy()`` of a string tensor makes a Python object per value; one
    ``reduce_join`` and the value lengths build the Arrow array instead.
    """
    if values.dtype != tf.string:
        return values.numpy()
    import pyarrow as pa

    lengths = tf.strings.length(values, unit="BYTE").numpy()
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = tf.strings.reduce_join(values).numpy()
    if offsets[-1] < 2**31:
        return pa.Array.from_buffers(pa.binary(), lengths.size, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                                  pa.py_buffer(data)])
    return pa.Array.from_buffers(pa.large_binary(), lengths.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _kind_of(dtype) -> str:
    return {"string": "bytes_list", "int64": "int64_list"}.get(dtype.name, "float_list")


def _one_per_row(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """One weight per record; NaN where a record has none or several."""
    weights = np.full(lengths.size, np.nan)
    has_one = lengths == 1
    starts = np.cumsum(lengths) - lengths
    weights[has_one] = values[starts[has_one]]
    return weights


class ReadCsvCounts(_CountShards):
    """Counts the label column of one CSV file (with a header), streamed by pyarrow."""

    def setup(self) -> None:
        super().setup()
        import pyarrow as pa
        import pyarrow.csv as pa_csv

        self._pa, self._csv = pa, pa_csv

    def count(self, shard: Shard) -> ShardCounter:
        pa, pa_csv, config = self._pa, self._csv, self._config
        # A byte range of a big file does not know how many records come before it.
        counter = ShardCounter(config, shard.path, None if shard.end >= 0 else 0)
        invalid_rows = [0]

        def skip_invalid(_row) -> str:
            invalid_rows[0] += 1
            return "skip"

        columns = [config.label] + ([config.weight] if config.weight else [])
        convert = pa_csv.ConvertOptions(
            include_columns=columns, include_missing_columns=True,
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=[""],
        )
        parse = pa_csv.ParseOptions(delimiter=config.csv_delimiter, invalid_row_handler=skip_invalid,
                                    newlines_in_values=shard.end < 0)
        gzip = shard.end < 0 and is_gzip(shard.path, config.compression)
        with _arrow_file(shard.path) as handle:
            stream, names = handle, None
            if shard.end >= 0:  # a byte range of a big file, see pipelines._split
                stream, names = csv_range(handle, shard, config.csv_delimiter, handle.size())
            elif gzip:
                stream = pa.CompressedInputStream(stream, "gzip")
            try:
                reader = pa_csv.open_csv(
                    stream, read_options=pa_csv.ReadOptions(block_size=4 << 20, column_names=names),
                    parse_options=parse, convert_options=convert)
                for batch in reader:
                    values, lengths, wrong = arrow_labels(batch.column(0), config, text=True, arrow_strings=True)
                    weights = arrow_weights(batch.column(1)) if config.weight else None
                    counter.add(values, lengths, weights, wrong)
            except pa.ArrowInvalid as err:
                if "Empty CSV file" not in str(err):
                    raise invalid("input", "readable CSV files with a header row", shard.path,
                                  hint=str(err)) from None
        counter.add_bad("unparsable", invalid_rows[0])
        return counter


class ReadParquetCounts(_CountShards):
    """Counts the label column of one Parquet row group."""

    def setup(self) -> None:
        super().setup()
        import pyarrow.parquet as pq

        self._pq = pq

    def count(self, shard: Shard) -> ShardCounter:
        config = self._config
        counter = ShardCounter(config, shard.path)
        with _arrow_file(shard.path) as handle:
            try:
                parquet = self._pq.ParquetFile(handle)
            except Exception as err:  # noqa: BLE001 (pyarrow raises several types)
                raise invalid("input", "readable Parquet files", shard.path, hint=str(err)) from None
            counter.first_record = sum(parquet.metadata.row_group(i).num_rows for i in range(shard.row_group))
            names = set(parquet.schema_arrow.names)
            if config.label not in names:
                counter.add_bad("missing_label", parquet.metadata.row_group(shard.row_group).num_rows)
                return counter
            columns = [c for c in (config.label, config.weight) if c and c in names]
            for batch in parquet.iter_batches(batch_size=config.batch_size,
                                              row_groups=[shard.row_group], columns=columns):
                values, lengths, wrong = arrow_labels(batch.column(config.label), config, text=False,
                                                       arrow_strings=True)
                weights = None
                if config.weight:
                    weights = (arrow_weights(batch.column(config.weight)) if config.weight in names
                               else np.full(batch.num_rows, np.nan))
                counter.add(values, lengths, weights, wrong)
        return counter


def reader_for(config: StatsConfig) -> _CountShards:
    """The DoFn that counts shards of ``config.format``."""
    return {"tfrecord": ReadTFRecordCounts, "tfds": ReadTFRecordCounts, "csv": ReadCsvCounts,
            "parquet": ReadParquetCounts}[config.format](config)
