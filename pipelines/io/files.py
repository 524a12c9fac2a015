"""Opening input files: pyarrow handles for local or remote paths, GZIP sniffing."""

from __future__ import annotations

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
