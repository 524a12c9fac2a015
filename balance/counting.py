"""The one label-counting core: numpy kernels shared by ``WeightTable.from_labels`` and the Beam job.

Both paths hand ``count_batch`` the same ragged form of a batch of records:
``values`` (every label value of the batch, flat), ``lengths`` (values per
record) and optional ``weights`` (one per record). ``count_batch`` applies
every rule that decides what a label means, so an in-memory table and a
Beam-built table agree exactly on the same data:

* label forms (``balance.vocabulary.LABEL_FORMS``): ``sparse`` (one id or
  string per record), ``one_hot`` (0/1 rows with exactly one 1, counted by
  its position), ``multi_hot`` (0/1 rows, each positive counts),
  ``id_lists`` (ids of a record count once each), ``dense`` (every element
  counts, except ``ignore_value``);
* dtypes: ints and bools are ids; a float is the id it equals if it is a
  whole number (``1.0`` is class 1), anything else fails (``whole_ids``);
* the binary rule: a binary task has two classes, ids 0 and 1;
* strings: bytes are decoded as UTF-8, strictly: invalid UTF-8 fails, naming
  the file and record (``decode_labels``), rather than being replaced, which
  would merge distinct labels into one class;
* weights: each record's weight multiplies every value it counts;
* the id bound: without ``num_classes`` the counts grow to ``max id + 1``,
  so an id of ``MAX_INFERRED_CLASSES`` or more is refused (an id of 2**40
  would allocate terabytes): such ids are identifiers, better counted as
  strings, unless ``num_classes`` says there really are that many classes.

Errors are ``balance.errors.InvalidDataError``s that say where the bad value
is: ``Found in file 'a.tfrecord', record 7`` or ``Found in example 7``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balance.string_counts import StringCounts, count_strings, string_array
from balance.errors import invalid, invalid_data, short_repr

WHOLE_IDS = "integer class ids (a float label must be a whole number: 1.0 is class 1)"
_EXACT_FLOAT = 2.0**53  # floats beyond this are not exact integers
MAX_INFERRED_CLASSES = 2**24  # a count vector of 128 MiB


@dataclasses.dataclass
class LabelCounts:
    """Counts of one batch (float64; sums of record weights when weighted).

    Attributes:
      ids: counts by class id; length ``num_classes``, or ``max id + 1``
        when the number of classes is not known.
      names: counts by string label (decoded), for string labels; a
        ``balance.string_counts.StringCounts`` (a mapping).
      examples: records counted (their total weight when weighted).
      elements: label elements counted (what ``num_elements`` records for
        dense labels).
      width: the multi-hot row length, for ``multi_hot``.
      kind: ``"int"`` or ``"string"``; None for an empty batch.
    """

    ids: np.ndarray
    names: Mapping[str, float]
    examples: float
    elements: float
    width: int | None = None
    kind: str | None = None


@dataclasses.dataclass(frozen=True)
class Where:
    """Where a batch comes from, for error messages.

    Attributes:
      path: the file (None for labels held in memory).
      records: the record index in the file of each row of the batch; None
        for labels in memory (the row is the example index) or when a file's
        record indices are not known (errors then name the file only).
    """

    path: str | None = None
    records: np.ndarray | None = None

    def record(self, row: int) -> int | None:
        if self.records is not None:
            return int(self.records[row])
        return None if self.path is not None else int(row)


def count_batch(
    values: np.ndarray,
    lengths: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    task: str,
    form: str,
    num_classes: int | None = None,
    ignore_value: int | None = None,
    where: Where = Where(),
) -> LabelCounts:
    """Decodes and counts one batch of records whose shape is already valid.

    Args:
      values: all label values of the batch, flat: ints, bools, floats, or
        strings (``bytes`` or ``str``; or an Arrow string or binary array).
      lengths: values per record; for ``sparse`` each is 1, for
        ``one_hot`` and ``multi_hot`` each is the row width.
      weights: one weight (finite, >= 0) per record, or None.
      task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
      form: ``"sparse"``, ``"one_hot"``, ``"multi_hot"``, ``"id_lists"`` or ``"dense"``.
      num_classes: K; ids must be in ``[0, K)``. For a binary task K is 2.
        If None, ids must be >= 0 and ``ids`` grows to ``max id + 1``.
      ignore_value: for ``dense``, an id not to count.
      where: the file and record indices, for errors.

    Returns:
      The batch's ``LabelCounts``.

    Raises:
      balance.errors.InvalidDataError: a fractional float, an id out of
        range, a multi-hot value other than 0/1, strings where ids are
        needed, or invalid UTF-8, naming the first such record.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    rows = np.repeat(np.arange(lengths.size), lengths)
    examples = float(lengths.size) if weights is None else float(np.sum(weights))
    value_weights = None if weights is None else np.asarray(weights, dtype=np.float64)[rows]
    size = num_classes if num_classes is not None else (2 if task == "binary" else None)
    if string_array(values):
        if form != "sparse":
            raise invalid_data("labels", f"int class ids for label_form={form!r}", "strings",
                               path=where.path, record=where.record(0) if lengths.size else None,
                               hint="String labels are supported with one label per example")
        names = decode_labels(values, rows, value_weights, where)
        return LabelCounts(np.zeros(size or 0), names, examples, float(len(values)), kind="string")
    values = np.asarray(values).ravel()
    ids = whole_ids(values, rows, where)
    width = None
    if form in ("multi_hot", "one_hot"):
        width = int(lengths[0]) if lengths.size else (num_classes or 0)
        _check_zero_one(ids, rows, width, where)
        matrix = ids.reshape(-1, width)
        if form == "multi_hot":
            matrix = matrix.astype(np.float64)
            counts = matrix.sum(axis=0) if weights is None else np.asarray(weights, np.float64) @ matrix
            return LabelCounts(counts, {}, examples, float(counts.sum()), width=width, kind="int")
        _check_one_hot(matrix, where)
        ids, rows, size = np.argmax(matrix, axis=1), np.arange(lengths.size), width
        value_weights = None if weights is None else np.asarray(weights, dtype=np.float64)
    if form == "id_lists" and ids.size:  # an id counts once per record
        first = _first_per_row(ids, rows)
        ids, rows = ids[first], rows[first]
        value_weights = None if value_weights is None else value_weights[first]
    if form == "dense" and ignore_value is not None:
        keep = ids != ignore_value
        ids, rows = ids[keep], rows[keep]
        value_weights = None if value_weights is None else value_weights[keep]
    _check_range(ids, rows, size, where)
    if size is None:
        check_inferred_ids(ids, rows, where)
    length = size if size is not None else (int(ids.max()) + 1 if ids.size else 0)
    counts = count_ids(ids, length, value_weights)
    return LabelCounts(counts, {}, examples, float(counts.sum()), width=width, kind="int")


def count_ids(ids: np.ndarray, num_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """``bincount`` of int ids already checked to be in ``[0, num_classes)``, as float64."""
    return np.bincount(np.asarray(ids, np.int64).ravel(), weights=weights, minlength=num_classes).astype(np.float64)


def whole_ids(values: np.ndarray, rows: np.ndarray | None = None, where: Where = Where()) -> np.ndarray:
    """Labels as int64 ids; a float label must be a whole number (``1.0`` is class 1).

    A fractional value (``1.5``), NaN, +-inf or a float beyond 2**53 fails,
    naming the first such value and its record.
    """
    values = np.asarray(values)
    if values.dtype.kind == "f":
        bad = np.flatnonzero(not_whole(values.ravel()))
        if bad.size:
            row = int(rows[bad[0]]) if rows is not None else int(bad[0])
            raise invalid_data("labels", WHOLE_IDS, float(values.ravel()[bad[0]]), path=where.path,
                               record=where.record(row))
    elif values.dtype.kind not in "iub":
        raise invalid("labels", "integer class ids or strings", f"dtype {values.dtype}")
    return values.astype(np.int64, copy=False)


def not_whole(values: np.ndarray) -> np.ndarray:
    """Mask of float values that are not exact whole numbers (fractional, NaN, inf, beyond 2**53)."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(values) | (values != np.floor(values)) | (np.abs(values) >= _EXACT_FLOAT)


def decode_labels(
    values: Any, rows: np.ndarray, weights: np.ndarray | None, where: Where = Where()
) -> StringCounts:
    """Counts of each distinct string label; bytes are decoded as strict UTF-8.

    ``values`` are an Arrow binary or string array (as the readers give them)
    or a numpy array of bytes or str (labels in memory). They are counted in
    Arrow, never as a Python object per value: see ``balance.string_counts``.
    """
    return count_strings(values, rows, weights, where)


def vocabulary_counts(
    string_counts: Mapping[str, float], class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Orders string counts by ``class_names`` or, if None, sorted by code point (deterministic).

    ``StringCounts`` are sorted in Arrow (``StringCounts.sorted``): UTF-8 byte
    order is code point order, the order ``sorted`` gives.
    """
    if class_names is None and isinstance(string_counts, StringCounts):
        names, counts = string_counts.sorted()
        return np.asarray(counts, dtype=np.float64), names
    names = list(class_names) if class_names is not None else sorted(string_counts)
    unknown = sorted(set(string_counts) - set(names))
    if unknown:
        raise invalid(
            "labels", f"names from class_names {short_repr(names)}", f"unknown {short_repr(unknown)}"
        )
    return np.array([string_counts.get(n, 0.0) for n in names], dtype=np.float64), names


def _first_per_row(ids: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Mask keeping the first occurrence of each (row, id) pair."""
    order = np.lexsort((ids, rows))
    first_sorted = np.ones(ids.size, dtype=bool)
    first_sorted[1:] = (ids[order][1:] != ids[order][:-1]) | (rows[order][1:] != rows[order][:-1])
    first = np.zeros(ids.size, dtype=bool)
    first[order[first_sorted]] = True
    return first


def _check_range(ids: np.ndarray, rows: np.ndarray, size: int | None, where: Where) -> None:
    if not ids.size:
        return
    bad = ids < 0 if size is None else (ids < 0) | (ids >= size)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        expected = "class ids >= 0" if size is None else f"class ids in [0, {size})"
        raise invalid_data("labels", expected, int(ids[first]), path=where.path, record=where.record(int(rows[first])),
                           hint=None if where.path else "Pass num_classes or check the label column")


def check_inferred_ids(ids: np.ndarray, rows: np.ndarray | None = None, where: Where = Where()) -> None:
    """Refuses an id >= ``MAX_INFERRED_CLASSES`` when the number of classes is not given."""
    if not ids.size or int(ids.max()) < MAX_INFERRED_CLASSES:
        return
    first = int(np.flatnonzero(ids >= MAX_INFERRED_CLASSES)[0])
    row = int(rows[first]) if rows is not None else first
    raise invalid_data(
        "labels", f"class ids < {MAX_INFERRED_CLASSES:,} when the number of classes is not given", int(ids[first]),
        path=where.path, record=where.record(row),
        hint="Counting ids up to this one would need a vector of that many counts. If there really are that many "
        "classes, pass num_classes= (--num_classes on the command line); if the ids are identifiers rather "
        "than class indices, count them as strings (label_dtype string, --label_dtype string)")


def _check_one_hot(matrix: np.ndarray, where: Where) -> None:
    ones = matrix.sum(axis=1)
    if not np.all(ones == 1):
        row = int(np.flatnonzero(ones != 1)[0])
        raise invalid_data("labels", "one-hot rows with exactly one 1", matrix[row].tolist(), path=where.path,
                           record=where.record(row), hint="For multi-hot rows use task='multilabel'")


def _check_zero_one(ids: np.ndarray, rows: np.ndarray, width: int, where: Where) -> None:
    bad = np.flatnonzero((ids != 0) & (ids != 1))
    if bad.size:
        first = int(bad[0])
        raise invalid_data("labels", "0/1 values in multi-hot vectors", int(ids[first]), path=where.path,
                           record=where.record(int(rows[first])), hint=f"at position {first % max(width, 1)}")
