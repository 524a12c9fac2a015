"""File access for weight tables: the standard library for local paths,
``tf.io.gfile`` for any ``scheme://`` path (``gs://``, ``ram://``, ``hdfs://``).

Local paths skip ``tf.io.gfile`` only because importing TensorFlow costs
seconds of CPU, paid by every Beam worker that merely writes a table and by
every ``rebalance show``; the behaviour (atomic rename, errors) is the same.
"""

from __future__ import annotations

import os
import tempfile
import uuid


def is_remote(path: str) -> bool:
    return "://" in path


def _gfile():
    import tensorflow as tf  # noqa: PLC0415 (heavy; remote paths only)

    return tf.io.gfile


def exists(path: str) -> bool:
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def read_bytes(path: str) -> bytes:
    if is_remote(path):
        with _gfile().GFile(path, "rb") as handle:
            return handle.read()
    with open(path, "rb") as handle:
        return handle.read()


def write_text_atomically(path: str, text: str) -> None:
    """Writes a temp file beside ``path``, then renames it over ``path``.

    A crash at any point leaves either the old file or the new one, never a
    half-written one; the temp file is removed on failure.
    """
    if is_remote(path):
        gfile = _gfile()
        directory = path.rsplit("/", 1)[0]
        if not gfile.exists(directory):
            gfile.makedirs(directory)
        tmp_path = f"{path}.tmp-{uuid.uuid4().hex}"
        try:
            with gfile.GFile(tmp_path, "w") as handle:
                handle.write(text)
            gfile.rename(tmp_path, path, overwrite=True)
        finally:
            if gfile.exists(tmp_path):
                gfile.remove(tmp_path)
        return
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".tmp-", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
