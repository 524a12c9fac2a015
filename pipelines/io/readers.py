"""One reader per input format: a shard in, label batches out (and, when asked, the records themselves).

* TFRecord (and TFDS file slices): ``tf.data.TFRecordDataset(...).batch(B)`` +
  ``tf.io.parse_example`` of only the label (and weight) features, as ragged
  tensors; a shard with bad records is read again, classifying them.
* CSV: ``pyarrow.csv.open_csv``, streaming only the label (and weight) columns,
  or every column as text when the records are asked for.
* Parquet: ``pyarrow.parquet`` per row group, only the needed columns, or
  every column when the records are asked for.

A reader reads a shard once for every label config (``heads``) and hands
what it reads to a ``Sink``: ``start`` (again if the shard is re-read, which
forgets what was added), ``add`` for each ``Batch`` and ``bad`` for records set
aside (counted as records read). The counting DoFn's sink counts the batches
(``pipelines.counting.count``); the sample job's sink also keeps some of the
records (``pipelines.sampling.decide``), which is why a reader given
``records=True`` adds each batch's records (serialized bytes or an Arrow table
of its rows) and their hashes (``pipelines.io.hashing``). Heavy imports happen
in ``setup()``, so the readers pickle as their configs.
"""

from __future__ import annotations

import difflib
import threading
from collections.abc import Collection, Sequence
from typing import Any, NamedTuple, Protocol

import numpy as np

from balance.errors import invalid
from pipelines.config import Shard, StatsConfig
from pipelines.io.arrow import arrow_labels, arrow_weights
from pipelines.io.files import FORMAT_NAMES, arrow_file, is_gzip, sniff, sniff_file
from pipelines.io.hashing import HASH_BUCKETS, row_hashes
from pipelines.io.split import csv_range, not_parquet
from pipelines.io.tfrecord_check import check_complete

_DETECT_RECORDS = 1000
_PARSERS: dict = {}
_PARSERS_LOCK = threading.Lock()


class Batch(NamedTuple):
    """Consecutive records of a shard, for some of the heads.

    Attributes:
      labels: ``(head index, values, lengths, wrong_type)`` of each head the
        batch is for: the ragged labels ``pipelines.counting.shard`` counts.
      weights: one weight per record (NaN where missing or unreadable), or None.
      records: with ``records=True``: the records, a string tensor of
        serialized ``tf.train.Example`` (TFRecord) or a ``pyarrow.Table``.
      hashes: with ``records=True``: each record's keyed hash (uint64).
    """

    labels: tuple[tuple[int, Any, np.ndarray, np.ndarray | None], ...]
    weights: np.ndarray | None
    records: Any = None
    hashes: np.ndarray | None = None


class Sink(Protocol):
    """What a reader hands a shard's contents to."""

    def start(self, first_record: int | None, names: Sequence[str] | None) -> None:
        """The shard is (re)started: forget anything added. ``first_record``: the index of the shard's first
        record in its file (None: unknown, a CSV byte range); ``names``: with ``records=True``, the columns or
        features of the records."""

    def add(self, batch: Batch) -> None:
        """One batch of records."""

    def bad(self, kind: str, count: int, head: int | None = None) -> None:
        """``count`` records of ``kind`` set aside, for one head (None: every head)."""


class Reader:
    """Base: reads shards of one format for ``heads``.

    Args:
      heads: the label configs (they share every read option).
      records: also hand over each batch's records and their hashes.
      hash_key: the key of the record hashes (with ``records``).
    """

    def __init__(self, heads: Sequence[StatsConfig], *, records: bool = False,
                 hash_key: tuple[int, int] | None = None) -> None:
        self.heads = tuple(heads)
        self.config = self.heads[0]
        self.records = records
        self.hash_key = hash_key
        if records and hash_key is None:
            raise invalid("hash_key", "a key for the record hashes when records are read", None)

    def setup(self) -> None:
        """Heavy imports, once per worker."""

    def read(self, shard: Shard, sink: Sink) -> None:
        raise NotImplementedError


def check_keys(keys: Sequence[tuple[str, str]], present: Collection[str], path: str, where: str) -> None:
    """Refuses the first of ``keys`` (``(flag, key)`` pairs: a label or the weight) that is not ``present``,
    naming the key, the keys present and the closest one ("did you mean").

    Args:
      where: what ``present`` is, for the message (``"the columns of"``).
    """
    for flag, key in keys:
        if key in present:
            continue
        names = sorted(present)
        shown = ", ".join(repr(n) for n in names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        raise invalid(flag, "a feature key or column the input has", key,
                      hint=f"Not among {where} {path!r}: [{shown}]"
                      + (f"; did you mean {close[0]!r}?" if close else ""))


def _keys_of(heads: Sequence[StatsConfig], weight: str | None) -> list[tuple[str, str]]:
    return [("label", h.label) for h in heads] + ([("weight", weight)] if weight else [])


class TFRecordReader(Reader):
    """TFRecord files (or TFDS file slices) of ``tf.train.Example``."""

    def setup(self) -> None:
        import tensorflow as tf

        self._tf = tf

    def read(self, shard: Shard, sink: Sink) -> None:
        tf = self._tf
        compression = "GZIP" if is_gzip(shard.path, self.config.compression) else ""
        try:
            label_dtypes, weight_dtype = self._detect(shard, compression)
            labels = tuple(zip((h.label for h in self.heads), label_dtypes, strict=True))
            parse = self._parser_for(labels, weight_dtype)  # every label in one parse_example
            names = self._first_names(shard, compression) if self.records else None
            sink.start(shard.skip, names)
            try:
                self._fast(shard, compression, parse, sink)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                # UnicodeDecodeError: TF fails to decode its own message about a bad record.
                # A bad record may be bad for one label only, so each label is classified on its own.
                multi = len(self.heads) > 1
                one_each = [self._parser_for((label,), weight_dtype) for label in labels] if multi else [parse]
                sink.start(shard.skip, names)
                self._careful(shard, compression, parse, one_each, sink)
        except tf.errors.DataLossError as err:
            looks = sniff_file(shard.path)
            if looks in ("csv", "parquet"):
                raise invalid("format", f"the format of {shard.path!r}", self.config.format,
                              hint=f"{shard.path!r} is not a TFRecord file: it looks like a {FORMAT_NAMES[looks]} "
                              f"file; pass --format {looks}") from None
            raise invalid(
                "input", "readable TFRecord files", shard.path,
                hint=f"Corrupted or truncated file: {err.message}. If it is compressed, pass "
                "--compression gzip; if it is not TFRecord, pass --format csv or --format parquet",
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

    def _first_names(self, shard: Shard, compression: str) -> list[str]:
        """The feature keys of the shard's first record (none if it does not parse)."""
        for record in self._dataset(shard, compression).take(1):
            try:
                return list(self._tf.train.Example.FromString(record.numpy()).features.feature)
            except Exception:  # noqa: BLE001 (protobuf DecodeError: counted as bad when read)
                return []
        return []

    def _detect(self, shard: Shard, compression: str) -> tuple[tuple[Any, ...], Any]:
        """Every head's label dtype and the weight's: from the flags, else from the first records."""
        tf, config, heads = self._tf, self.config, self.heads
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

    def _parser_for(self, labels: tuple[tuple[str, Any], ...], weight_dtype):
        """A parse function per set of (feature, dtype) pairs, traced once per worker process (not per shard).

        Shared by the readers of a process: the DaskRunner sets up a DoFn per task.
        """
        key = (labels, self.config.weight, weight_dtype)
        with _PARSERS_LOCK:  # shards of a bundle may be read on several threads
            if key not in _PARSERS:
                _PARSERS[key] = self._make_parser(labels, weight_dtype)
            return _PARSERS[key]

    def _make_parser(self, labels: tuple[tuple[str, Any], ...], weight_dtype):
        """Parses a batch into ``(values, lengths)`` of each label in turn, then the weight's, if any."""
        tf, weight = self._tf, self.config.weight
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

    def _hash(self, serialized):
        return self._tf.strings.to_hash_bucket_strong(serialized, HASH_BUCKETS, list(self.hash_key))

    def _batch(self, heads: Sequence[int], parsed, serialized=None, hashes=None) -> Batch:
        """A parsed batch for ``heads`` (in the parse function's label order)."""
        n = 2 * len(heads)
        weights = _one_per_row(parsed[n].numpy(), parsed[n + 1].numpy()) if len(parsed) > n else None
        labels = tuple((head, _label_values(self._tf, parsed[2 * i]), parsed[2 * i + 1].numpy(), None)
                       for i, head in enumerate(heads))
        if not self.records:
            return Batch(labels, weights)
        if hashes is None:
            hashes = self._hash(serialized)
        return Batch(labels, weights, serialized, hashes.numpy().astype(np.uint64))

    def _fast(self, shard: Shard, compression: str, parse, sink: Sink) -> None:
        tf, records_too = self._tf, self.records
        every = range(len(self.heads))

        def sized(serialized):  # record bytes, to check the file was read to its end
            nbytes = tf.reduce_sum(tf.strings.length(serialized, unit="BYTE"))
            if records_too:
                return nbytes, parse(serialized), serialized, self._hash(serialized)
            return nbytes, parse(serialized)

        dataset = (
            self._dataset(shard, compression)
            .batch(self.config.batch_rows(whole_records=records_too))
            .map(sized, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
            .prefetch(tf.data.AUTOTUNE)
        )
        records = payload = 0
        for nbytes, parsed, *rest in dataset:
            if not records:
                self._check_first_batch(shard, compression, parsed)
            records += int(parsed[1].shape[0])
            payload += int(nbytes)
            sink.add(self._batch(every, parsed, *rest))
        check_complete(shard, bool(compression), records, payload)

    def _check_first_batch(self, shard: Shard, compression: str, parsed) -> None:
        """Stops at the first batch if no record of it has a label (or the weight): the key is likely
        mistyped. Costs one ``any`` per label unless that happens; only then are the records looked at."""
        n, weight = len(self.heads), self.config.weight
        empty = [("label", h.label) for i, h in enumerate(self.heads) if not parsed[2 * i + 1].numpy().any()]
        if weight and not parsed[2 * n + 1].numpy().any():
            empty.append(("weight", weight))
        if not empty:
            return
        present: set[str] = set()
        for record in self._dataset(shard, compression).take(self.config.batch_rows(whole_records=self.records)):
            try:
                present.update(self._tf.train.Example.FromString(record.numpy()).features.feature)
            except Exception:  # noqa: BLE001, S112 (protobuf DecodeError: counted when read)
                continue
        check_keys(empty, present, shard.path, "the features of the first batch of records of")

    def _careful(self, shard: Shard, compression: str, parse, one_each: list, sink: Sink) -> None:
        """Re-reads a shard that has bad records, classifying them one by one (for each label on its own)."""
        tf = self._tf
        every = range(len(self.heads))
        records = payload = 0
        for batch in self._dataset(shard, compression).batch(self.config.batch_rows(whole_records=self.records)):
            first = not records
            records += int(batch.shape[0])
            payload += sum(map(len, batch.numpy()))
            try:
                parsed = parse(batch)
                if first:
                    self._check_first_batch(shard, compression, parsed)
                sink.add(self._batch(every, parsed, batch))
                continue
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                pass
            for head, head_parse in enumerate(one_each):
                self._careful_batch(head, batch, head_parse, sink)
        check_complete(shard, bool(compression), records, payload)

    def _careful_batch(self, head: int, batch, parse, sink: Sink) -> None:
        """Hands over one batch for one label, setting its bad records aside."""
        tf = self._tf
        if len(self.heads) > 1:  # the batch may be bad for another label only
            try:
                parsed = parse(batch)
            except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                pass
            else:
                sink.add(self._batch([head], parsed, batch))
                return
        good = [r for r in batch.numpy() if self._classify(head, r, parse.kinds, sink) is None]
        try:
            if good:
                good_batch = tf.constant(good)
                sink.add(self._batch([head], parse(good_batch), good_batch))
        except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
            for record in good:
                one = tf.constant([record])
                try:
                    parsed = parse(one)
                except (tf.errors.InvalidArgumentError, UnicodeDecodeError):
                    sink.bad("unparsable", 1, head)
                    continue
                sink.add(self._batch([head], parsed, one))

    def _classify(self, head: int, record: bytes, kinds: dict, sink: Sink) -> str | None:
        """Sets one record aside for a head and returns its bad kind, or None if it looks valid."""
        try:
            features = self._tf.train.Example.FromString(record).features.feature
        except Exception:  # noqa: BLE001 (protobuf DecodeError)
            bad = "unparsable"
        else:
            label, weight = self.heads[head].label, self.config.weight
            bad = None
            if label in features and features[label].WhichOneof("kind") not in (kinds[label], None):
                bad = "wrong_type"
            elif weight and weight in features and features[weight].WhichOneof("kind") not in (
                kinds[weight], None,
            ):
                bad = "bad_weight"
        if bad:
            sink.bad(bad, 1, head)
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


class _ArrowReader(Reader):
    """Shared by CSV and Parquet: a batch of Arrow columns -> a ``Batch``."""

    def setup(self) -> None:
        import pyarrow as pa

        self._pa = pa

    def _batch(self, table, heads: Sequence[int], column, weight, *, text: bool) -> Batch:
        """``column(name)`` gives a label column, ``weight`` the weight column (None: missing)."""
        weights = None
        if self.config.weight:
            weights = arrow_weights(weight) if weight is not None else np.full(table.num_rows, np.nan)
        labels = tuple((head, *arrow_labels(column(self.heads[head].label), self.heads[head], text=text,
                                            arrow_strings=True)) for head in heads)
        if not self.records:
            return Batch(labels, weights)
        hashes = row_hashes([c.to_pylist() for c in table.columns], self.hash_key)
        return Batch(labels, weights, table, hashes)


class CsvReader(_ArrowReader):
    """One CSV file (with a header) or a byte range of it, streamed by pyarrow.

    Only the label and weight columns are read, unless the records are asked
    for: then every column is read as text, so that the cells are written
    back unchanged, and an empty cell is a missing value.
    """

    def read(self, shard: Shard, sink: Sink) -> None:
        import pyarrow.compute as pc
        import pyarrow.csv as pa_csv

        pa, config = self._pa, self.config
        invalid_rows = [0]

        def skip_invalid(_row) -> str:
            invalid_rows[0] += 1
            return "skip"

        # A byte range (pipelines.io.split) of a big file does not know how many records come before it.
        first = None if shard.end >= 0 else 0
        parse = pa_csv.ParseOptions(delimiter=config.csv_delimiter, invalid_row_handler=skip_invalid,
                                    newlines_in_values=shard.end < 0)
        gzip = shard.end < 0 and is_gzip(shard.path, config.compression)
        wanted = [h.label for h in self.heads] + ([config.weight] if config.weight else [])
        columns = self._first_line(shard.path, gzip, parse)
        if columns is None:  # an empty file
            sink.start(first, [] if self.records else None)
            return
        self._check_columns(shard.path, columns)
        if self.records:
            names = self._header(shard.path, gzip, parse)
            if names is None:  # an empty file
                sink.start(first, [])
                return
            convert = pa_csv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False,
                                            quoted_strings_can_be_null=False, null_values=[])
        else:
            names = None
            convert = pa_csv.ConvertOptions(
                include_columns=wanted, include_missing_columns=True,
                column_types={c: pa.string() for c in wanted},
                strings_can_be_null=True, quoted_strings_can_be_null=True, null_values=[""],
            )
        sink.start(first, names)
        every = range(len(self.heads))
        with arrow_file(shard.path) as handle:
            stream, header = handle, None
            if shard.end >= 0:  # a byte range of a big file, see pipelines.io.split
                stream, header = csv_range(handle, shard, config.csv_delimiter, handle.size())
            elif gzip:
                stream = pa.CompressedInputStream(stream, "gzip")
            try:
                reader = pa_csv.open_csv(
                    stream, read_options=pa_csv.ReadOptions(block_size=4 << 20, column_names=header),
                    parse_options=parse, convert_options=convert)
                for batch in reader:
                    if self.records:
                        table = pa.Table.from_batches([batch])
                        def column(name, table=table):
                            return _cells(pc, table, name, names)
                        weight = column(config.weight) if config.weight else None
                        sink.add(self._batch(table, every, column, weight, text=True))
                    else:
                        weight = batch.column(config.weight) if config.weight else None
                        sink.add(self._batch(batch, every, batch.column, weight, text=True))
            except pa.ArrowInvalid as err:
                if self.records or "Empty CSV file" not in str(err):
                    raise invalid("input", "readable CSV files with a header row", shard.path,
                                  hint=str(err)) from None
        sink.bad("unparsable", invalid_rows[0])

    def _first_line(self, path: str, gzip: bool, parse) -> list[str] | None:
        """The column names of a CSV file from its first line (a cheap read of its first 64 KiB); None if it is
        empty. A file that is not CSV (binary content) is refused here, saying which format it looks like."""
        import pyarrow.csv as pa_csv

        pa = self._pa
        with arrow_file(path) as handle:
            stream = pa.CompressedInputStream(handle, "gzip") if gzip else handle
            try:
                head = stream.read(1 << 16)
            except OSError as err:
                raise invalid("input", "readable CSV files with a header row", path, hint=str(err)) from None
        if not head:
            return None
        looks = sniff(head)
        if looks != "csv":
            raise invalid("format", f"the format of {path!r}", "csv",
                          hint=f"{path!r} is not a CSV file" + (f": it looks like a {FORMAT_NAMES[looks]} file; "
                          f"pass --format {looks}" if looks else " (binary content)"))
        end = head.find(b"\n")
        if end < 0 and len(head) == 1 << 16:  # the header goes on past the bytes read
            return self._header(path, gzip, parse)
        try:
            return pa_csv.read_csv(pa.BufferReader(head if end < 0 else head[:end + 1]),
                                   parse_options=pa_csv.ParseOptions(delimiter=self.config.csv_delimiter)
                                   ).column_names
        except pa.ArrowInvalid:  # a header with a quoted newline
            return self._header(path, gzip, parse)

    def _check_columns(self, path: str, columns: list[str]) -> None:
        """Every label (and the weight) is a column, named once by the header."""
        keys = _keys_of(self.heads, self.config.weight)
        for flag, key in keys:
            if columns.count(key) > 1:
                raise invalid(flag, "a column the header names once", key,
                              hint=f"The header of {path!r} names {key!r} {columns.count(key)} times; "
                              "which one holds the labels is ambiguous: rename the other")
        check_keys(keys, columns, path, "the columns in the header of")

    def _header(self, path: str, gzip: bool, parse) -> list[str] | None:
        """The column names of a CSV file; None if it is empty."""
        import pyarrow.csv as pa_csv

        pa = self._pa
        with arrow_file(path) as handle:
            stream = pa.CompressedInputStream(handle, "gzip") if gzip else handle
            try:
                return pa_csv.open_csv(stream, read_options=pa_csv.ReadOptions(block_size=4 << 20),
                                       parse_options=parse).schema.names
            except pa.ArrowInvalid as err:
                if "Empty CSV file" in str(err):
                    return None
                raise invalid("input", "readable CSV files with a header row", path, hint=str(err)) from None


def _cells(pc, table, name: str, names: list[str]):
    """A text column with empty cells as nulls (missing), as the label columns alone are read."""
    import pyarrow as pa

    if name not in names:
        return pa.nulls(table.num_rows, pa.string())
    cells = table.column(name)
    return pc.if_else(pc.equal(cells, ""), pa.scalar(None, pa.string()), cells)


class ParquetReader(_ArrowReader):
    """One Parquet row group: only the label and weight columns, or every column (and the schema) when the
    records are asked for."""

    def setup(self) -> None:
        super().setup()
        import pyarrow.parquet as pq

        self._pq = pq

    def read(self, shard: Shard, sink: Sink) -> None:
        config = self.config
        with arrow_file(shard.path, memory_map=True) as handle:  # the column chunks are read without a copy
            try:
                parquet = self._pq.ParquetFile(handle)
            except Exception as err:  # noqa: BLE001 (pyarrow raises several types)
                raise not_parquet(shard.path, err) from None
            first = sum(parquet.metadata.row_group(i).num_rows for i in range(shard.row_group))
            listed = parquet.schema_arrow.names
            keys = _keys_of(self.heads, config.weight)
            for flag, key in keys:
                if listed.count(key) > 1:
                    raise invalid(flag, "a column the file names once", key,
                                  hint=f"{shard.path!r} has {listed.count(key)} columns named {key!r}")
            check_keys(keys, listed, shard.path, "the columns of")
            names = set(listed)
            sink.start(first, sorted(names) if self.records else None)
            present = list(range(len(self.heads)))
            weight_present = bool(config.weight)
            columns = None if self.records else [key for _, key in keys]
            # Arrow's own threads cost more than they give here: the DoFn reads shards on its threads.
            for batch in parquet.iter_batches(batch_size=config.batch_rows(whole_records=self.records),
                                              row_groups=[shard.row_group], columns=columns, use_threads=False):
                table = self._pa.Table.from_batches([batch]) if self.records else batch
                weight = table.column(config.weight) if config.weight and weight_present else None
                sink.add(self._batch(table, present, table.column, weight, text=False))


READERS = {"tfrecord": TFRecordReader, "tfds": TFRecordReader, "csv": CsvReader, "parquet": ParquetReader}


def reader_for(heads: Sequence[StatsConfig], *, records: bool = False,
               hash_key: tuple[int, int] | None = None) -> Reader:
    """The reader of ``heads[0].format`` (every head shares the read options)."""
    return READERS[heads[0].format](heads, records=records, hash_key=hash_key)
