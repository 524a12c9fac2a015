"""The class-count accumulator and its ``CombineFn``.

Every reader DoFn emits one ``ClassCounts`` per shard (a TFRecord file, a
Parquet row group, a CSV file); ``CountCombineFn`` merges them. The
accumulator is O(classes): a count vector (int ids) or Arrow string counts
(string labels, merged vectorised: ``balance.string_counts``),
plus totals and bad-record counters, never anything per example.

Exactness and determinism: unweighted counts are int64, so merging is exact in
any order. Weighted counts are kept as exact fixed-point Python ints (each
shard's float64 sum scaled by ``2**FIXED_POINT_BITS``), so the merged total is
the same whatever the runner, the worker count or the shard order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import apache_beam as beam
import numpy as np

from balance.string_counts import StringCounts
from balance.errors import RebalanceError, invalid, invalid_data
from pipelines.outcome import first_error

FIXED_POINT_BITS = 64
BAD_KINDS = ("missing_label", "wrong_type", "wrong_shape", "unparsable", "bad_weight")


@dataclasses.dataclass
class ClassCounts:
    """Partial or merged class counts.

    Attributes:
      weighted: True when counts are fixed-point sums of example weights.
      ids: counts of integer class ids; int64, or object (Python ints) when
        weighted. Its length is ``num_classes`` or ``max id + 1`` so far.
      names: counts of string labels (a ``StringCounts`` mapping; int64, or
        Python ints when weighted).
      examples: valid examples (fixed-point weight sum when weighted).
      elements: counted label elements (dense labels).
      records: records read, valid or not (never weighted).
      bad: bad-record counts by kind (see ``BAD_KINDS``).
      bad_files: for each bad kind, the smallest file name where it occurred.
      kinds: label kinds seen, ``"int"`` and/or ``"string"``.
      width: one-hot or multi-hot vector width seen (None for other forms).
      shards: number of shards read.
      error: the job's error met while reading, carried to the last step
        (see ``pipelines.outcome``); the first by file and record.
    """

    weighted: bool = False
    ids: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, np.int64))
    names: StringCounts = dataclasses.field(default_factory=lambda: StringCounts(dtype=np.int64))
    examples: int = 0
    elements: int = 0
    records: int = 0
    bad: dict[str, int] = dataclasses.field(default_factory=dict)
    bad_files: dict[str, str] = dataclasses.field(default_factory=dict)
    kinds: frozenset = frozenset()
    width: int | None = None
    shards: int = 0
    error: RebalanceError | None = None

    @property
    def scale(self) -> int:
        return 1 << FIXED_POINT_BITS if self.weighted else 1

    def total_bad(self) -> int:
        return sum(self.bad.values())


def to_exact(values: np.ndarray, weighted: bool) -> np.ndarray:
    """float64 shard sums -> int64 counts, or fixed-point Python ints when weighted."""
    values = np.asarray(values, dtype=np.float64)
    if not weighted:
        return np.rint(values).astype(np.int64)
    scaled = np.floor(values * float(1 << FIXED_POINT_BITS))
    out = np.empty(scaled.shape, dtype=object)
    out[:] = [int(v) for v in scaled.tolist()]
    return out


def scalar_to_exact(value: float, weighted: bool) -> int:
    return int(to_exact(np.array([value]), weighted)[0])


def from_exact(value: Any, weighted: bool) -> Any:
    """Inverse of ``to_exact`` (correctly rounded float64)."""
    if isinstance(value, np.ndarray):
        if not weighted:
            return value.astype(np.float64)
        return np.array([from_exact(int(v), True) for v in value], dtype=np.float64)
    return float(value) if not weighted else int(value) / (1 << FIXED_POINT_BITS)


def _add_vectors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if len(a) < len(b):
        a, b = b, a
    out = a.copy()
    out[: len(b)] += b
    return out


def _names(counts: ClassCounts) -> StringCounts:
    if isinstance(counts.names, StringCounts):
        return counts.names
    import pyarrow as pa

    dtype = object if counts.weighted else np.int64
    return StringCounts(pa.array(list(counts.names), pa.large_string()), np.array(list(counts.names.values()), dtype),
                        dtype=dtype)


def merge_counts(accumulators: Iterable[ClassCounts]) -> ClassCounts:
    """Merges accumulators; associative and commutative. A width clash becomes ``error``.

    String counts are appended, then merged vectorised once enough are pending
    (``StringCounts``), not label by label.
    """
    merged: ClassCounts | None = None
    for acc in accumulators:
        if merged is None:
            merged = dataclasses.replace(
                acc, ids=acc.ids.copy(), names=StringCounts(dtype=object if acc.weighted else np.int64),
                bad=dict(acc.bad), bad_files=dict(acc.bad_files),
            )
            merged.names.add(_names(acc))
            continue
        if acc.weighted != merged.weighted:
            raise invalid("accumulators", "class counts that are all weighted or all unweighted",
                          "weighted and unweighted counts", hint="Count every shard with the same weight option")
        merged.ids = _add_vectors(merged.ids, acc.ids)
        merged.names.add(_names(acc))
        merged.examples += acc.examples
        merged.elements += acc.elements
        merged.records += acc.records
        merged.shards += acc.shards
        for kind, count in acc.bad.items():
            merged.bad[kind] = merged.bad.get(kind, 0) + count
        for kind, path in acc.bad_files.items():
            current = merged.bad_files.get(kind)
            merged.bad_files[kind] = path if current is None else min(current, path)
        merged.kinds = merged.kinds | acc.kinds
        if acc.width is not None:
            if merged.width is not None and merged.width != acc.width:
                # Carried, not raised (see pipelines.outcome); the same whatever the merge order.
                low, high = sorted((merged.width, acc.width))
                clash = invalid_data("labels", "label vectors of one length",
                                     f"vectors of length {low} and {high}",
                                     hint="Pass --num_classes to count other lengths as bad records")
                merged.error = first_error(merged.error, clash)
            merged.width = acc.width if merged.width is None else min(merged.width, acc.width)
        merged.error = first_error(merged.error, acc.error)
    return merged if merged is not None else ClassCounts()


class CountCombineFn(beam.CombineFn):
    """Sums per-shard ``ClassCounts`` into one; empty input gives empty counts.

    Args:
      weighted: whether the counts are weighted (for the empty accumulator).
    """

    def __init__(self, weighted: bool = False) -> None:
        self._weighted = weighted

    def create_accumulator(self) -> ClassCounts:
        ids = np.zeros(0, dtype=object if self._weighted else np.int64)
        return ClassCounts(weighted=self._weighted, ids=ids)

    def add_input(self, accumulator: ClassCounts, element: ClassCounts) -> ClassCounts:
        return merge_counts([accumulator, element])

    def merge_accumulators(self, accumulators: Iterable[ClassCounts]) -> ClassCounts:
        accumulators = list(accumulators)
        return merge_counts(accumulators) if accumulators else self.create_accumulator()

    def compact(self, accumulator: ClassCounts) -> ClassCounts:
        accumulator.names.compact()
        return accumulator

    def extract_output(self, accumulator: ClassCounts) -> ClassCounts:
        return accumulator
