"""Opening input files: pyarrow handles for local or remote paths, GZIP sniffing, and what format a file's
first bytes look like (for the message when its content does not match ``--format``)."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from balance import fileio


def arrow_file(path: str, memory_map: bool = False) -> Any:
    """A pyarrow file: native for local paths (memory-mapped if asked), else a ``tf.io.gfile`` handle (gs://...)."""
    import pyarrow as pa

    if not fileio.is_remote(path):
        return pa.memory_map(path, "r") if memory_map else pa.OSFile(path, "r")
    return pa.PythonFile(fileio.open_binary(path), mode="r")


def is_gzip(path: str, compression: str) -> bool:
    """``compression`` is ``auto`` (sniff the GZIP magic bytes), ``gzip`` or ``none``."""
    if compression != "auto":
        return compression == "gzip"
    with fileio.open_binary(path) as handle:
        return handle.read(2) == b"\x1f\x8b"


FORMAT_NAMES = {"csv": "CSV", "parquet": "Parquet", "tfrecord": "TFRecord"}
_SNIFF_BYTES = 1 << 16


def sniff(head: bytes) -> str | None:
    """The format the first bytes of a (decompressed) file look like: ``parquet`` (its ``PAR1`` magic),
    ``tfrecord`` (a plausible record length, then a ``tf.train.Example``'s first field tag), ``csv``
    (text without NUL bytes, in any 8-bit encoding: a Latin-1 CSV with ASCII labels is read as before);
    None otherwise. A guess for messages, never a decision."""
    if head.startswith(b"PAR1"):
        return "parquet"
    if len(head) >= 13 and 0 < int.from_bytes(head[:8], "little") < (1 << 40) and head[12] == 0x0A:
        return "tfrecord"
    return None if b"\x00" in head else "csv"


def sniff_file(path: str) -> str | None:
    """``sniff`` of a file's first 64 KiB (decompressed if it is GZIP); None if it cannot be read."""
    try:
        with fileio.open_binary(path) as handle:
            head = handle.read(_SNIFF_BYTES)
        if head[:2] == b"\x1f\x8b":
            with fileio.open_binary(path) as raw, gzip.GzipFile(fileobj=raw) as stream:
                head = stream.read(_SNIFF_BYTES)
    except (OSError, EOFError, zlib.error):
        return None
    return sniff(head)
