"""Splits big inputs into independent shards, so that one file does not pin a job to one worker.

* Parquet: one shard per row group; the row-group counts come from the files'
  footers, read (on a thread pool) where the pipeline is constructed.
* CSV: byte ranges of about ``csv_split_bytes``, cut at line boundaries when
  they are read: a range owns the lines that start inside it, so consecutive
  ranges cover every line once. The header is read once per range (only its
  column names); compressed files are read whole.
* TFRecord has no sync markers to find a record boundary from an offset, so a
  TFRecord file (or TFDS file slice) is one shard.

Byte ranges cannot see quotes: a quoted value holding a newline would be cut
in two. Each range counts the quote characters of its lines and fails with a
clear error on a line with an odd number of them; ``--csv_split_bytes 0``
reads each file whole instead (pyarrow then parses quoted newlines).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from balance.errors import invalid
from pipelines.config import Shard, StatsConfig
from pipelines.io.files import FORMAT_NAMES, arrow_file, is_gzip, sniff_file

_SCAN_BYTES = 64 << 10
_QUOTE, _NEWLINE = ord('"'), ord("\n")  # pyarrow's default quote character
_FOOTER_THREADS = 32


def split_shards(config: StatsConfig, files: Sequence[Shard], sizes: Sequence[int]) -> tuple[Shard, ...]:
    """Files (or TFDS slices) -> the shards the job reads, one task each."""
    if config.format == "parquet":
        with ThreadPoolExecutor(max(1, min(_FOOTER_THREADS, len(files)))) as pool:
            counts = list(pool.map(parquet_row_groups, [f.path for f in files]))
        return tuple(Shard(f.path, row_group=g) for f, n in zip(files, counts, strict=True) for g in range(n))
    if config.format == "csv" and config.csv_split_bytes:
        return tuple(s for f, size in zip(files, sizes, strict=True)
                     for s in csv_ranges(f.path, size, config.csv_split_bytes, config.compression))
    return tuple(files)


def parquet_row_groups(path: str) -> int:
    """The number of row groups of a Parquet file, from its footer."""
    import pyarrow.parquet as pq


    with arrow_file(path) as handle:
        try:
            return pq.ParquetFile(handle).num_row_groups
        except Exception as err:  # noqa: BLE001 (pyarrow raises several types)
            raise not_parquet(path, err) from None


def not_parquet(path: str, err: Exception):
    """The error for a file that pyarrow cannot open as Parquet: another format's file if it looks like one."""
    looks = sniff_file(path)
    if looks not in (None, "parquet"):
        return invalid("format", f"the format of {path!r}", "parquet",
                       hint=f"{path!r} is not a Parquet file: it looks like a {FORMAT_NAMES[looks]} file; "
                       f"pass --format {looks}")
    return invalid("input", "readable Parquet files", path, hint=str(err))


def csv_ranges(path: str, size: int, split_bytes: int, compression: str) -> list[Shard]:
    """About ``size / split_bytes`` equal byte ranges; one whole-file shard if small or compressed."""

    if size <= split_bytes or is_gzip(path, compression):
        return [Shard(path)]
    count = math.ceil(size / split_bytes)
    bounds = [i * size // count for i in range(count + 1)]
    return [Shard(path, start=a, end=b) for a, b in zip(bounds, bounds[1:], strict=False)]


def line_start(handle: Any, offset: int, size: int) -> int:
    """The first line start at or after ``offset``: 0, or just after a newline."""
    if offset <= 0:
        return 0
    position = offset - 1
    handle.seek(position)
    while position < size:
        chunk = handle.read(_SCAN_BYTES)
        if not chunk:
            break
        found = chunk.find(b"\n")
        if found >= 0:
            return position + found + 1
        position += len(chunk)
    return size


def csv_range(handle: Any, shard: Shard, delimiter: str, size: int) -> tuple[Any, list[str] | None]:
    """A pyarrow stream over the lines ``shard`` owns, and the header's column names.

    The names are None for the first range, whose stream starts with the header.
    """
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = None
    if shard.start > 0:
        header_end = line_start(handle, 1, size)
        handle.seek(0)
        header = _QuoteCheckedRange(handle, 0, header_end, shard.path).read()
        names = pa_csv.read_csv(pa.BufferReader(header),
                                parse_options=pa_csv.ParseOptions(delimiter=delimiter)).column_names
    start, stop = line_start(handle, shard.start, size), line_start(handle, shard.end, size)
    handle.seek(start)
    return pa.PythonFile(_QuoteCheckedRange(handle, start, stop, shard.path), mode="r"), names


class _QuoteCheckedRange(io.RawIOBase):
    """Reads ``[start, stop)`` of a file and fails on a line with an odd number of quotes.

    pyarrow cannot parse CSV from a byte offset in the middle of a quoted value,
    and nothing in pyarrow reports that a range was cut there; this check is the
    vectorised parity test that makes such a split fail instead of miscounting.
    """

    def __init__(self, handle: Any, start: int, stop: int, path: str) -> None:
        super().__init__()
        self._handle, self._left, self._path = handle, stop - start, path
        self._odd = 0  # quote parity of the current (unfinished) line

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        wanted = self._left if size is None or size < 0 else min(size, self._left)
        data = self._handle.read(wanted) if wanted else b""
        self._left -= len(data)
        if len(data) < wanted:  # end of file
            self._left = 0
        self._check(data)
        return data

    def _check(self, data: bytes) -> None:
        buffer = np.frombuffer(data, dtype=np.uint8)
        quotes = buffer == _QUOTE
        if quotes.any() or self._odd:
            parity = (np.cumsum(quotes, dtype=np.int64) + self._odd) % 2
            ends = np.flatnonzero(buffer == _NEWLINE)
            if parity[ends].any() or (self._left == 0 and parity.size and parity[-1]):
                raise invalid(
                    "csv_split_bytes", "CSV files without newlines inside quoted values, to split "
                    "them into byte ranges", f"a quoted newline in {self._path!r}",
                    hint="Pass --csv_split_bytes 0 to read each CSV file whole, as one task")
            self._odd = int(parity[-1]) if parity.size else self._odd
