"""Per-format DoFns: read one shard with a native vectorised reader, emit its counts.

* TFRecord: ``tf.data.TFRecordDataset(...).batch(B)`` + ``tf.io.parse_example``
  of only the label (and weight) feature, as ragged tensors.
* CSV: ``pyarrow.csv.open_csv`` streaming only the label (and weight) column.
* Parquet: ``pyarrow.parquet`` per row group, only the needed columns.

Each DoFn emits one ``ClassCounts`` per shard. Given several label configs
(``heads``, see ``pipelines._heads``), a DoFn reads the shard once, parses every
label feature or column in the same step and emits a tuple of ``ClassCounts``,
one per label. Heavy imports happen in ``setup()``; the DoFns carry only
``StatsConfig`` values, so they pickle without ``save_main_session``. Bad
records are counted (per label), with Beam metrics counters.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from balance.errors import invalid
from pipelines._arrow import arrow_labels, arrow_weights
from pipelines._config import Shard, StatsConfig
from pipelines._count_base import CountShards as _CountShards
from pipelines._files import arrow_file as _arrow_file
from pipelines._files import is_gzip
from pipelines._shard import ShardCounter
from pipelines._split import csv_range
from pipelines._tfrecord_check import check_complete

_DETECT_RECORDS = 1000
_PARSERS: dict = {}
_PARSERS_LOCK = threading.Lock()


class ReadTFRecordCounts(_CountShards):
    """Counts the labels of one TFRecord file (or TFDS file slice) of ``tf.train.Example``."""

    def setup(self) -> None:
        super().setup()
        import tensorflow as tf

        self._tf = tf
        # Shared by the DoFn instances of a process: the DaskRunner sets up a DoFn per task.
        self._parsers, self._parsers_lock = _PARSERS, _PARSERS_LOCK

    def count_heads(self, shard: Shard) -> list[ShardCounter]:
        tf, config = self._tf, self._config
        compression = "GZIP" if is_gzip(shard.path, config.compression) else ""
        try:
            label_dtypes, weight_dtype = self._detect_all(shard, compression)
            labels = tuple(zip((h.label for h in self._heads), label_dtypes, strict=True))
            parse = self._parser_for(labels, weight_dtype)  # every label in one parse_example
            try:
                return self._fast(shard, compression, parse)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                # UnicodeDecodeError: TF fails to decode its own message about a bad record.
                # A bad record may be bad for one label only, so each label is classified on its own.
                one_each = [self._parser_for((label,), weight_dtype) for label in labels] if self._multi else [parse]
                return self._careful(shard, compression, parse, one_each)
        except tf.errors.DataLossError as err:
            raise invalid(
                "input", "readable TFRecord files", shard.path,
                hint=f"Corrupted or truncated file: {err.message}. If it is compressed, pass "
                "--compression gzip",
            ) from None

    def _dataset(self, shard: Shard, compression: str):
        dataset = self._tf.data.TFRecordDataset(shard.path, compression, buffer_size=8 << 20)
        # tf.data's autotuner costs more than it finds here (shards are read a few at once, each
        # parse is one op per batch): without it, AUTOTUNE parallelism stays at min(16, cores).
        # 10M records on 2 cores: 21.2 s with it, 15.9 s without.
        options = self._tf.data.Options()
        options.autotune.enabled = False
        dataset = dataset.with_options(options)
        if shard.skip:
            dataset = dataset.skip(shard.skip)
        if shard.take >= 0:
            dataset = dataset.take(shard.take)
        return dataset

    def _detect_dtypes(self, shard: Shard, compression: str) -> tuple[Any, Any]:
        """The (first) label's dtype and the weight's: from the flags, else from the first records."""
        label_dtypes, weight_dtype = self._detect_all(shard, compression)
        return label_dtypes[0], weight_dtype

    def _detect_all(self, shard: Shard, compression: str) -> tuple[tuple[Any, ...], Any]:
        """Every head's label dtype and the weight's: from the flags, else from the first records."""
        tf, config, heads = self._tf, self._config, self._heads
        # Int labels may be stored as whole-number floats (float_list), so int is detected too.
        label_kinds = ["bytes_list" if h.label_dtype == "string" else None for h in heads]
        weight_kind = None
        if None in label_kinds or config.weight:
            for record in self._dataset(shard, compression).take(_DETECT_RECORDS):
                try:
                    features = tf.train.Example.FromString(record.numpy()).features.feature
                except Exception:  # noqa: BLE001, S112 (protobuf DecodeError; counted later)
                    continue
                for i, head in enumerate(heads):
                    if label_kinds[i] is None and head.label in features:
                        kind = features[head.label].WhichOneof("kind")
                        if head.label_dtype == "int" and kind == "bytes_list":
                            kind = "int64_list"  # strings are then wrong_type records
                        label_kinds[i] = kind if kind in ("int64_list", "bytes_list", "float_list") else None
                if config.weight and weight_kind is None and config.weight in features:
                    weight_kind = features[config.weight].WhichOneof("kind")
                if None not in label_kinds and (weight_kind or not config.weight):
                    break
        label_dtypes = tuple({"bytes_list": tf.string, "float_list": tf.float32}.get(k, tf.int64) for k in label_kinds)
        weight_dtype = tf.int64 if weight_kind == "int64_list" else tf.float32
        return label_dtypes, weight_dtype

    def _parser(self, label_dtype, weight_dtype):
        """The parse function of the (first) label and the weight; see ``_parser_for``."""
        return self._parser_for(((self._config.label, label_dtype),), weight_dtype)

    def _parser_for(self, labels: tuple[tuple[str, Any], ...], weight_dtype):
        """A parse function per set of (feature, dtype) pairs, traced once per worker process (not per shard)."""
        key = (labels, self._config.weight, weight_dtype)
        with self._parsers_lock:  # shards of a bundle may be read on several threads
            if key not in self._parsers:
                self._parsers[key] = self._make_parser(labels, weight_dtype)
            return self._parsers[key]

    def _make_parser(self, labels: tuple[tuple[str, Any], ...], weight_dtype):
        """Parses a batch into ``(values, lengths)`` of each label in turn, then the weight's, if any."""
        tf, weight = self._tf, self._config.weight
        spec = {label: tf.io.RaggedFeature(dtype, row_splits_dtype=tf.int64) for label, dtype in labels}
        if weight:
            spec[weight] = tf.io.RaggedFeature(weight_dtype, row_splits_dtype=tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)], autograph=False)
        def parse(serialized):
            parsed = tf.io.parse_example(serialized, spec)
            out = ()
            for label, _ in labels:
                out += (parsed[label].flat_values, parsed[label].row_lengths())
            if weight:
                out += (tf.cast(parsed[weight].flat_values, tf.float64), parsed[weight].row_lengths())
            return out

        parse.kinds = {label: _kind_of(dtype) for label, dtype in labels}
        if weight:
            parse.kinds[weight] = _kind_of(weight_dtype)
        return parse

    def _add(self, counters: list[ShardCounter], parsed) -> None:
        """Counts one parsed batch; ``counters`` are in the parse function's label order."""
        n = 2 * len(counters)
        weights = _one_per_row(parsed[n].numpy(), parsed[n + 1].numpy()) if len(parsed) > n else None
        for i, counter in enumerate(counters):
            self._add_head(counter, _label_values(self._tf, parsed[2 * i]), parsed[2 * i + 1].numpy(), weights)

    def _fast(self, shard: Shard, compression: str, parse) -> list[ShardCounter]:
        tf = self._tf
        counters = self._counters(shard.path, shard.skip)

        def sized(serialized):  # record bytes, to check the file was read to its end
            return tf.reduce_sum(tf.strings.length(serialized, unit="BYTE")), parse(serialized)

        dataset = (
            self._dataset(shard, compression)
            .batch(self._config.batch_rows())
            .map(sized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        records = payload = 0
        for nbytes, parsed in dataset:
            records += int(parsed[1].shape[0])
            payload += int(nbytes)
            self._add(counters, parsed)
        check_complete(shard, bool(compression), records, payload)
        return counters

    def _careful(self, shard: Shard, compression: str, parse, one_each: list) -> list[ShardCounter]:
        """Re-reads a shard that has bad records, classifying them one by one (for each label on its own)."""
        tf = self._tf
        counters = self._counters(shard.path, shard.skip)
        records = payload = 0
        for batch in self._dataset(shard, compression).batch(self._config.batch_rows()):
            records += int(batch.shape[0])
            payload += sum(map(len, batch.numpy()))
            try:
                self._add(counters, parse(batch))
                continue
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                pass
            for counter, head_parse in zip(counters, one_each, strict=True):
                self._careful_batch(counter, batch, head_parse)
        check_complete(shard, bool(compression), records, payload)
        return counters

    def _careful_batch(self, counter: ShardCounter, batch, parse) -> None:
        """Counts one batch for one label, setting its bad records aside."""
        tf = self._tf
        if self._multi:  # the batch may be bad for another label only
            try:
                parsed = parse(batch)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                pass
            else:
                self._add([counter], parsed)
                return
        good = [r for r in batch.numpy() if self._classify(counter, r, parse.kinds) is None]
        try:
            if good:
                self._add([counter], parse(tf.constant(good)))
        except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
            for record in good:
                try:
                    self._add([counter], parse(tf.constant([record])))
                except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                    counter.add_bad("unparsable", 1)

    def _classify(self, counter: ShardCounter, record: bytes, kinds: dict) -> str | None:
        """Counts and returns the bad kind of one record for ``counter``'s label, or None if it looks valid."""
        try:
            features = self._tf.train.Example.FromString(record).features.feature
        except Exception:  # noqa: BLE001 (protobuf DecodeError)
            bad = "unparsable"
        else:
            label, weight = counter.config.label, self._config.weight
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

    def count_heads(self, shard: Shard) -> list[ShardCounter]:
        pa, pa_csv, config = self._pa, self._csv, self._config
        # A byte range of a big file does not know how many records come before it.
        counters = self._counters(shard.path, None if shard.end >= 0 else 0)
        invalid_rows = [0]

        def skip_invalid(_row) -> str:
            invalid_rows[0] += 1
            return "skip"

        columns = [h.label for h in self._heads] + ([config.weight] if config.weight else [])
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
                    weights = arrow_weights(batch.column(config.weight)) if config.weight else None
                    for counter in counters:
                        head = counter.config
                        values, lengths, wrong = arrow_labels(batch.column(head.label), head, text=True,
                                                              arrow_strings=True)
                        self._add_head(counter, values, lengths, weights, wrong)
            except pa.ArrowInvalid as err:
                if "Empty CSV file" not in str(err):
                    raise invalid("input", "readable CSV files with a header row", shard.path,
                                  hint=str(err)) from None
        for counter in counters:
            counter.add_bad("unparsable", invalid_rows[0])
        return counters


class ReadParquetCounts(_CountShards):
    """Counts the label column of one Parquet row group."""

    def setup(self) -> None:
        super().setup()
        import pyarrow.parquet as pq

        self._pq = pq

    def count_heads(self, shard: Shard) -> list[ShardCounter]:
        config = self._config
        with _arrow_file(shard.path, memory_map=True) as handle:  # the column chunks are read without a copy
            try:
                parquet = self._pq.ParquetFile(handle)
            except Exception as err:  # noqa: BLE001 (pyarrow raises several types)
                raise invalid("input", "readable Parquet files", shard.path, hint=str(err)) from None
            first = sum(parquet.metadata.row_group(i).num_rows for i in range(shard.row_group))
            counters = self._counters(shard.path, first)
            names = set(parquet.schema_arrow.names)
            present = [c for c in counters if c.config.label in names]
            for counter in counters:
                if counter not in present:  # a label column missing from the file
                    counter.add_bad("missing_label", parquet.metadata.row_group(shard.row_group).num_rows)
            if not present:
                return counters
            columns = [c.config.label for c in present] + ([config.weight] if config.weight in names else [])
            # Arrow's own threads cost more than they give here: the DoFn reads shards on its threads.
            for batch in parquet.iter_batches(batch_size=config.batch_rows(),
                                              row_groups=[shard.row_group], columns=columns, use_threads=False):
                weights = None
                if config.weight:
                    weights = (arrow_weights(batch.column(config.weight)) if config.weight in names
                               else np.full(batch.num_rows, np.nan))
                for counter in present:
                    values, lengths, wrong = arrow_labels(batch.column(counter.config.label), counter.config,
                                                          text=False, arrow_strings=True)
                    self._add_head(counter, values, lengths, weights, wrong)
        return counters


def reader_for(config: StatsConfig, progress_dir: str | None = None, *,
               heads: tuple[StatsConfig, ...] | None = None) -> _CountShards:
    """The DoFn that counts shards of ``config.format`` (noting each in ``progress_dir``, if given; for
    each of ``heads``, in one read, if given)."""
    return {"tfrecord": ReadTFRecordCounts, "tfds": ReadTFRecordCounts, "csv": ReadCsvCounts,
            "parquet": ReadParquetCounts}[config.format](config, progress_dir, heads)
