"""File access shared by the weight table and the Beam job: the standard
library for local paths, ``tf.io.gfile`` for any ``scheme://`` path
(``gs://``, ``ram://``, ``hdfs://``).

Local paths skip ``tf.io.gfile`` only because importing TensorFlow costs
seconds of CPU, paid by every Beam worker that merely writes a table, by the
planner of a CSV or Parquet job, and by every ``rebalance show``; the
behaviour (glob, atomic rename) is the same.
"""

from __future__ import annotations

import glob as globlib
import os
import uuid
from typing import IO


def is_remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf  # noqa: PLC0415 (heavy; remote paths only)

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path: str) -> bool:
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def listdir(path: str) -> list[str]:
    return _gfile().listdir(path) if is_remote(path) else os.listdir(path)


def glob(pattern: str) -> list[str]:
    return _gfile().glob(pattern) if is_remote(pattern) else globlib.glob(pattern)


def size(path: str) -> int:
    return _gfile().stat(path).length if is_remote(path) else os.path.getsize(path)


def open_binary(path: str) -> IO[bytes]:
    return _gfile().GFile(path, "rb") if is_remote(path) else open(path, "rb")  # noqa: SIM115


def read_bytes(path: str) -> bytes:
    with open_binary(path) as handle:
        return handle.read()


def write_text_atomically(path: str, text: str) -> None:
    """``write_atomically`` for UTF-8 text."""
    write_atomically(path, text.encode("utf-8"))


def write_atomically(path: str, data: bytes) -> None:
    """Writes a temp file beside ``path``, then renames it over ``path``.

    A crash at any point leaves either the old file or the new one, never a
    half-written one; the temp file is removed on failure. The file gets the
    permissions an ordinary write gives: a replaced file keeps its mode, a new
    one gets ``0o666`` less the user's umask (``tempfile.mkstemp`` would make
    it readable by its owner only).
    """
    if is_remote(path):
        gfile = _gfile()
        directory = path.rsplit("/", 1)[0]
        if not gfile.exists(directory):
            gfile.makedirs(directory)
        tmp_path = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with gfile.GFile(tmp_path, "wb") as handle:
                handle.write(data)
            gfile.rename(tmp_path, path, overwrite=True)
        finally:
            if gfile.exists(tmp_path):
                gfile.remove(tmp_path)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp_path = os.path.join(directory, f"{os.path.basename(path)}.tmp-{uuid.uuid4().hex}")
    handle = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as to open()
    try:
        with os.fdopen(handle, "wb") as out:
            if os.path.exists(path):
                os.fchmod(out.fileno(), os.stat(path).st_mode & 0o7777)
            out.write(data)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
