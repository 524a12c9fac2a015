"""Record hashes: what decides, with a seed, whether the sample job keeps a record.

A record's hash depends only on the key and the record's content (its
serialized bytes, or its row's values), so identical records share one hash
and no runner, bundle size or order changes it. Values are in
``[0, HASH_BUCKETS)``, which maps exactly onto a float64 ``u = h / 2**53``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

HASH_BUCKETS = 1 << 53


def hash_key(seed: int) -> tuple[int, int]:
    """Two 63-bit keys for SipHash (``tf.strings.to_hash_bucket_strong``), from the seed."""
    digest = hashlib.blake2b(f"tf-rebalance-sample:{seed}".encode(), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") >> 1, int.from_bytes(digest[8:], "little") >> 1


def row_hashes(columns: Sequence[list], key: tuple[int, int]) -> np.ndarray:
    """Keyed 64-bit BLAKE2b of every row of Arrow columns (as Python values), in ``[0, 2**53)``.

    No vectorised row hash is in pyarrow, so each row's values are encoded with
    ``repr`` (stable for ints, floats, strings, bytes, lists and None) and hashed
    by ``hashlib``: about 1-2 us per row, paid only by CSV and Parquet input.
    """
    secret = key[0].to_bytes(8, "little") + key[1].to_bytes(8, "little")
    blake2b, from_bytes = hashlib.blake2b, int.from_bytes
    return np.fromiter(
        (from_bytes(blake2b(repr(row).encode(), digest_size=8, key=secret).digest(), "little") >> 11
         for row in zip(*columns, strict=True)),
        dtype=np.uint64, count=len(columns[0]) if columns else 0)


def uniform_from_hash(hashes: np.ndarray) -> np.ndarray:
    """Hash values in ``[0, 2**53)`` -> u in [0, 1), exactly."""
    return np.asarray(hashes, dtype=np.float64) / float(HASH_BUCKETS)
