"""Checks that a TFRecord shard was read to its end.

``tf.data.TFRecordDataset`` stops silently at a partial record header (1 to 11
stray bytes at the end of a file, as an interrupted copy leaves) and at a GZIP
stream cut in its trailer, so the job would count part of a file as all of it.
tf.data offers no check for this, hence these few lines.
"""

from __future__ import annotations

import gzip
import zlib

from balance import fileio
from balance.errors import invalid
from pipelines.config import Shard

FRAMING_BYTES = 16  # per record: uint64 length, uint32 CRC of the length, uint32 CRC of the data


def check_complete(shard: Shard, compressed: bool, records: int, payload: int) -> None:
    """Fails, naming the file and byte offset, unless the reader consumed the whole shard.

    A whole file is ``sum(len + 16)`` bytes, so an uncompressed file costs one
    stat. For GZIP the trailer's size field is compared, and only if it differs
    (e.g. several gzip members) is the stream decompressed again. A TFDS slice
    with ``take`` must yield ``take`` records.

    Args:
      shard: the shard read.
      compressed: whether it is GZIP-compressed.
      records: records read.
      payload: their total length in bytes.
    """
    if shard.take >= 0:
        if records < shard.take:
            raise invalid("input", "complete TFRecord files", shard.path,
                          hint=f"Truncated: expected {shard.take} records after skipping {shard.skip}, "
                          f"the file ended after {records}")
        return
    if shard.skip:
        return  # the skipped records' sizes are unknown; nothing cheap to compare
    end = payload + FRAMING_BYTES * records
    if compressed:
        problem = _gzip_problem(shard.path, end)
        if problem:
            raise invalid("input", "complete GZIP TFRecord files", shard.path,
                          hint=f"{problem} (after {records} whole record(s))")
        return
    size = fileio.size(shard.path)
    if size != end:
        raise invalid("input", "complete TFRecord files", shard.path,
                      hint=f"Torn tail: the last whole record ends at byte offset {end} but the file has "
                      f"{size} bytes ({size - end} stray bytes, e.g. from an interrupted copy)")


def _gzip_problem(path: str, end: int) -> str | None:
    """None if the GZIP stream ends cleanly and holds exactly ``end`` bytes."""
    size = fileio.size(path)
    with fileio.open_binary(path) as handle:
        handle.seek(max(0, size - 4))
        if size >= 18 and int.from_bytes(handle.read(4), "little") == end % (1 << 32):
            return None
    total = 0
    try:
        with fileio.open_binary(path) as raw, gzip.GzipFile(fileobj=raw) as stream:
            while chunk := stream.read(8 << 20):
                total += len(chunk)
    except (EOFError, OSError, zlib.error) as err:
        return f"The GZIP stream does not end cleanly: {err}"
    if total != end:
        return (f"Torn tail: the decompressed stream has {total} bytes, the last whole record ends at "
                f"decompressed byte offset {end}")
    return None
