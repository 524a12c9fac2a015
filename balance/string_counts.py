"""String-label counts kept in Arrow: a hash pass per batch, never a Python object per value.

``StringCounts`` is a multiset of ``(label, count)`` pairs: Arrow string
labels and a numpy count per label. Adding counts appends them; they are
compacted once enough are pending, so memory stays O(classes):

* int64 counts (unweighted; exact in any order): one Arrow
  ``group_by().aggregate(sum)`` of the concatenated labels;
* float64 sums (weighted, per shard): ``pyarrow.compute.dictionary_encode``,
  then ``numpy.bincount``, which adds a label's sums in the order they were
  appended, starting from 0, so a sum is the same as adding them one by one;
* Python ints (exact fixed-point sums): ``dictionary_encode``, then
  ``numpy.add.at``.

It reads as a ``Mapping`` from label to count (built on first use, once),
which is all the table-building code needs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from balance.errors import invalid_data

# Compaction waits for this many pending labels and for _GROWTH times the compacted
# ones: each label is hashed a few times at most, and memory stays O(classes).
_COMPACT_AT = 1 << 18
_GROWTH = 4
_LARGE = (1 << 31) - (1 << 24)  # string bytes beyond which int32 offsets would overflow


class StringCounts(Mapping):
    """Counts by string label (see the module docstring).

    Args:
      labels: distinct or repeated labels (Arrow string-like, valid UTF-8).
      counts: one count per label, or None for 1 each.
      dtype: of the counts: int64, float64 or object (Python ints).
    """

    def __init__(self, labels: pa.Array | None = None, counts: np.ndarray | None = None,
                 *, dtype: Any = np.int64) -> None:
        self._dtype = np.dtype(dtype)
        self._parts: list[tuple[pa.Array, np.ndarray | None]] = []
        self._pending = 0
        self._compacted = 0
        self._dict: dict[str, Any] | None = None
        if labels is not None and len(labels):
            self._append(labels, counts)

    # ------------------------------------------------------------ building
    def add(self, other: StringCounts) -> StringCounts:
        """Appends ``other``'s counts (in place) and returns self."""
        if not self._parts:
            self._compacted = other._compacted
        for labels, counts in other._parts:
            self._append(labels, counts)
        return self

    def _append(self, labels: pa.Array, counts: np.ndarray | None) -> None:
        if not (pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type)):
            labels = labels.cast(pa.string() if labels.nbytes < _LARGE else pa.large_string())
        self._parts.append((labels, counts))
        self._pending += len(labels)
        self._dict = None
        if self._pending > max(_COMPACT_AT, _GROWTH * self._compacted):
            self.compact()

    def compact(self) -> StringCounts:
        """Merges equal labels into one entry each (in place); returns self."""
        if not (len(self._parts) > 1 or (self._parts and self._parts[0][1] is None)):
            return self
        parts = self._parts
        labels = _concat([p[0] for p in parts])
        counts = np.concatenate([np.ones(len(p[0]), self._dtype) if p[1] is None else p[1] for p in parts])
        if self._dtype == np.int64 and pa.types.is_string(labels.type):  # Arrow's grouper is slow on large_string
            grouped = pa.table({"label": labels, "n": counts}).group_by("label", use_threads=False).aggregate(
                [("n", "sum")])
            labels, counts = grouped.column("label").combine_chunks(), grouped.column("n_sum").to_numpy()
        else:
            encoded = pc.dictionary_encode(labels)
            codes = encoded.indices.to_numpy(zero_copy_only=False)
            labels = encoded.dictionary
            if self._dtype == np.float64:
                counts = np.bincount(codes, weights=counts, minlength=len(labels))
            else:
                summed = np.zeros(len(labels), dtype=self._dtype)  # object zeros are Python int 0s
                np.add.at(summed, codes, counts)
                counts = summed
        self._parts = [(labels, counts)]
        self._pending = self._compacted = len(labels)
        return self

    def map_counts(self, convert) -> StringCounts:
        """A compacted copy whose counts are ``convert(counts)`` (float sums <-> exact ints)."""
        self.compact()
        if not self._parts:
            return StringCounts(dtype=convert(np.zeros(0)).dtype)
        labels, counts = self._parts[0]
        exact = convert(counts)
        out = StringCounts(dtype=exact.dtype)
        out._parts, out._pending, out._compacted = [(labels, exact)], len(labels), len(labels)
        return out

    # -------------------------------------------------------------- reading
    @property
    def labels(self) -> pa.Array:
        self.compact()
        return self._parts[0][0] if self._parts else pa.array([], pa.string())

    @property
    def counts(self) -> np.ndarray:
        self.compact()
        return self._parts[0][1] if self._parts else np.zeros(0, self._dtype)

    def sorted(self) -> tuple[list[str], np.ndarray]:
        """Labels sorted by code point (UTF-8 byte order, as Arrow sorts) and their counts."""
        order = pc.sort_indices(self.labels)
        return self.labels.take(order).to_pylist(), self.counts[order.to_numpy()]

    def _as_dict(self) -> dict[str, Any]:
        if self._dict is None:
            self._dict = dict(zip(self.labels.to_pylist(), self.counts.tolist(), strict=True))
        return self._dict

    def __getitem__(self, label: str) -> Any:
        return self._as_dict()[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self._as_dict())

    def __len__(self) -> int:
        return len(self._as_dict())

    def items(self):
        return self._as_dict().items()

    def __repr__(self) -> str:
        return f"StringCounts({self._as_dict()!r})"

    def __getstate__(self) -> dict:
        self.compact()
        return {"dtype": self._dtype, "parts": self._parts, "size": self._compacted}

    def __setstate__(self, state: dict) -> None:
        self._dtype, self._parts, self._dict = state["dtype"], state["parts"], None
        self._pending = self._compacted = state["size"]


def count_strings(values: Any, rows: np.ndarray, weights: np.ndarray | None, where) -> StringCounts:
    """Counts of one batch of string labels (Arrow or numpy), UTF-8 checked.

    Args:
      values: an Arrow binary or string array, or a numpy array of bytes/str.
      rows: the record of each value, for errors.
      weights: one weight per value, or None.
      where: a ``balance.counting.Where``, for errors.

    Raises:
      balance.errors.InvalidDataError: invalid UTF-8, naming the first such record.
    """
    labels = _text(_as_arrow(values), rows, where)
    if labels.null_count:
        row = int(np.flatnonzero(labels.is_null().to_numpy(zero_copy_only=False))[0])
        raise invalid_data("labels", "a str or bytes label in every place", "None", path=where.path,
                           record=where.record(int(rows[row])), hint="A missing label is not a class")
    if weights is None:  # int64 counts, 1 each, summed when compacted
        return StringCounts(labels)
    encoded = pc.dictionary_encode(labels)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    sums = np.bincount(codes, weights=weights, minlength=len(encoded.dictionary))
    return StringCounts(encoded.dictionary, sums, dtype=np.float64)


def string_array(values: Any) -> bool:
    """Whether ``values`` are string labels: an Arrow string-like array or a numpy str/bytes/object array."""
    if isinstance(values, (pa.Array, pa.ChunkedArray)):
        dtype = values.type
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or pa.types.is_binary(
            dtype) or pa.types.is_large_binary(dtype)
    return np.asarray(values).dtype.kind in "OSU"


def _as_arrow(values: Any) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    values = np.asarray(values).ravel()
    if values.dtype.kind in "SU":
        return pa.array(values)
    try:  # bytes and str (as UTF-8)
        return pa.array(values, type=pa.large_binary())
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        # Other objects count by their text, as str() gives it; written by hand: Arrow has no such cast.
        return pa.array([v if isinstance(v, (bytes, str)) else str(v) for v in values.tolist()], pa.large_binary())


def _concat(labels: list[pa.Array]) -> pa.Array:
    if len(labels) == 1:
        return labels[0]
    large = sum(a.nbytes for a in labels) >= _LARGE or any(pa.types.is_large_string(a.type) for a in labels)
    return pa.concat_arrays([a.cast(pa.large_string()) if large else a for a in labels])


def _text(labels: pa.Array, rows: np.ndarray, where) -> pa.Array:
    """Labels as Arrow strings; invalid UTF-8 fails, naming its first record."""
    try:
        if pa.types.is_string(labels.type) or pa.types.is_large_string(labels.type):
            labels.validate(full=True)
            return labels
        return labels.cast(pa.string() if labels.nbytes < _LARGE else pa.large_string())
    except pa.ArrowInvalid:
        pass
    for index, value in enumerate(labels.cast(pa.large_binary()).to_pylist()):  # the error path only
        try:
            value.decode("utf-8")
        except UnicodeDecodeError as err:
            raise invalid_data("labels", "UTF-8 text", value, path=where.path, record=where.record(int(rows[index])),
                               hint=f"Invalid UTF-8 at byte {err.start}") from None
    raise invalid_data("labels", "UTF-8 text", "text Arrow refuses", path=where.path)
