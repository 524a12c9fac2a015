"""Small data writers for the Beam job tests (TFRecord, CSV, Parquet)."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import tensorflow as tf


def feature(values: Any) -> tf.train.Feature:
    """A ``tf.train.Feature`` from ints, floats, bytes or str (scalar or list)."""
    values = list(np.atleast_1d(np.asarray(values, dtype=object)))
    if values and isinstance(values[0], (bytes, str)):
        data = [v.encode() if isinstance(v, str) else v for v in values]
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=data))
    if values and isinstance(values[0], (float, np.floating)):
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def example(**features: Any) -> bytes:
    """A serialized ``tf.train.Example``; a None value leaves the feature out."""
    return tf.train.Example(features=tf.train.Features(feature={
        k: feature(v) for k, v in features.items() if v is not None})).SerializeToString(deterministic=True)


def write_tfrecords(
    directory: Path, records: Sequence[bytes], shards: int = 3, *, gzip_files: bool = False,
    prefix: str = "part",
) -> list[str]:
    """Writes records round-robin into ``shards`` files; returns the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    options = tf.io.TFRecordOptions(compression_type="GZIP" if gzip_files else "")
    paths = [str(directory / f"{prefix}-{i:05d}.tfrecord") for i in range(shards)]
    writers = [tf.io.TFRecordWriter(p, options) for p in paths]
    for i, record in enumerate(records):
        writers[i % shards].write(record)
    for writer in writers:
        writer.close()
    return paths


def write_csv(path: Path, columns: dict[str, Sequence[Any]], *, delimiter: str = ",",
              gzip_file: bool = False) -> str:
    """Writes a CSV file with a header via pyarrow."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({k: pa.array(list(v)) for k, v in columns.items()})
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(table, sink, pa_csv.WriteOptions(delimiter=delimiter))
    data = sink.getvalue().to_pybytes()
    path.write_bytes(gzip.compress(data) if gzip_file else data)
    return str(path)


def write_parquet(path: Path, columns: dict[str, Any], *, row_group_size: int = 1000) -> str:
    """Writes a Parquet file with several row groups."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), str(path), row_group_size=row_group_size)
    return str(path)


def same_counts(table, reference) -> bool:
    """Tables equal apart from provenance (inputs, fingerprint, time)."""
    mine, theirs = table.to_dict(), reference.to_dict()
    mine.pop("provenance"), theirs.pop("provenance")
    return mine == theirs
