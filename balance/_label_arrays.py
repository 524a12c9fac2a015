"""Labels held in memory -> the ragged batch ``balance.counting.count_batch`` counts.

What ``WeightTable.from_labels`` accepts (``label_form``):

* ``"sparse"``: one id or string per example, shape ``(N,)``.
* ``"one_hot"``: ``(N, K)`` rows with a single 1 (multiclass); counted by argmax.
* ``"multi_hot"``: ``(N, L)`` 0/1 rows (multilabel); each positive counts once.
* ``"id_lists"``: a list of id lists, one per example (multilabel); duplicate
  ids within one example count once.
* ``"dense"``: ``(N, T)`` or ``(N, H, W)`` ids (tokens, pixels); every element
  is counted, except those equal to ``ignore_value``.

A pandas ``Series`` (or ``DataFrame``, for rows) is read as its values; a
``category`` Series with string categories counts its categories as the
class names, in their order (unused categories count 0). pandas is not
imported: a Series is recognised by its attributes (duck typing), so it stays
an optional dependency.

``"auto"`` picks: 1-D -> sparse; multilabel 2-D -> multi_hot, ragged ->
id_lists; multiclass 2-D float -> one_hot (as Keras ``to_categorical`` makes);
integer arrays of rank >= 2 -> dense. Pass ``label_form`` to override.

This module only lays the labels out (and checks what is particular to
arrays: shapes and widths); every rule about label values is in
``balance.counting``, which the Beam job uses too.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from balance.counting import count_batch, vocabulary_counts
from balance.errors import invalid, invalid_choice, invalid_data, short_repr
from balance.vocabulary import LABEL_FORMS, TASKS


@dataclasses.dataclass(frozen=True)
class Tally:
    """What ``WeightTable.from_counts`` needs, counted from labels in memory."""

    counts: np.ndarray
    num_classes: int
    class_names: list[str] | None
    num_examples: float
    num_elements: float | None
    label_dtype: str
    fingerprint: str


def tally_labels(
    labels: Any,
    *,
    task: str = "multiclass",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    label_form: str = "auto",
    sample_weight: Any = None,
    ignore_value: int | None = None,
) -> Tally:
    """Counts labels held in memory; see ``WeightTable.from_labels`` for the arguments."""
    if task not in TASKS:
        raise invalid_choice("task", TASKS, task)
    if label_form not in LABEL_FORMS:
        raise invalid_choice("label_form", LABEL_FORMS, label_form)
    if ignore_value is not None and (isinstance(ignore_value, bool) or not isinstance(ignore_value, (int, np.integer))):
        raise invalid("ignore_value", "an int class id", ignore_value)
    labels, class_names = _from_pandas(labels, class_names)
    if class_names is not None and num_classes is None:
        if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__len__"):
            raise invalid("class_names", "a list of names, one per class", class_names)
        num_classes = len(class_names)
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
    ):
        raise invalid("num_classes", "a positive int", num_classes)
    array, ragged = _as_array(labels)
    n = len(labels) if ragged else len(array)
    if n == 0:
        raise invalid("labels", "at least one example", "an empty array")
    weights = _check_weights(sample_weight, n)
    form = _resolve_form(label_form, task, array, ragged)
    if (task == "multilabel") != (form in ("multi_hot", "id_lists")):
        if task == "multilabel":
            raise invalid("labels", "multi-hot rows (N, L) or lists of ids for task='multilabel'", form)
        raise invalid("label_form", f"{form!r} only with task='multilabel'", label_form)
    if ignore_value is not None and form != "dense":
        raise invalid("ignore_value", "None unless label_form='dense'", ignore_value)
    values, lengths, form, width = _ragged(labels, array, form, task, num_classes)
    size = width if width is not None else num_classes
    counted = count_batch(values, lengths, weights, task=task, form=form, num_classes=size,
                          ignore_value=ignore_value)
    if counted.kind == "string":
        counts, class_names = vocabulary_counts(counted.names, class_names)
        if num_classes is not None and num_classes != len(counts):
            raise invalid("num_classes", f"{len(counts)}, the number of class names", num_classes)
        label_dtype = "string"
    else:
        counts, label_dtype = counted.ids, "int"
        if counts.size == 0:
            raise invalid("labels", "at least one labelled element", "none", hint="Pass num_classes")
    return Tally(
        counts=counts,
        num_classes=len(counts),
        class_names=list(class_names) if class_names is not None else None,
        num_examples=counted.examples,
        num_elements=float(counts.sum()) if form == "dense" else None,
        label_dtype=label_dtype,
        fingerprint=_fingerprint(labels, array, ragged),
    )


def _ragged(labels: Any, array: np.ndarray, form: str, task: str, num_classes: int | None):
    """``(values, lengths, form, width)``: the labels as one ragged batch for ``count_batch``."""
    n = len(labels) if form == "id_lists" else len(array)
    if form == "id_lists":
        rows = [np.asarray(row).ravel() for row in labels]
        for i, row in enumerate(rows):
            if row.size and row.dtype.kind not in "iubf":
                raise invalid_data("labels", "lists of integer class ids", short_repr(row.tolist()), record=i)
        numeric = [row for row in rows if row.size] or [np.zeros(0, np.int64)]
        return np.concatenate(numeric), np.array([row.size for row in rows]), form, None
    if form in ("multi_hot", "one_hot"):
        _check_binary_matrix(array, form)
        width = array.shape[1]
        if num_classes is not None and num_classes != width:
            raise invalid("num_classes", f"the {form.replace('_', '-')} width {width}", num_classes)
        return array.ravel(), np.full(n, width), form, width
    if task == "binary" and array.ndim == 2 and array.shape[1] == 1 and form != "dense":
        array = array[:, 0]
    if array.dtype.kind in "OUS":
        if form == "dense":
            raise invalid("label_form", "'sparse' for string labels", form)
        if array.ndim != 1:
            raise invalid("labels", "shape (N,) for string labels", array.shape)
        return array, np.ones(n, np.int64), form, None
    if form == "sparse":
        if array.ndim != 1:
            raise invalid("labels", "shape (N,) for label_form='sparse'", array.shape)
        return array, np.ones(n, np.int64), form, None
    per_example = int(np.prod(array.shape[1:])) if array.ndim > 1 else 1
    return array.ravel(), np.full(n, per_example), form, None


def _from_pandas(labels: Any, class_names: Sequence[str] | None) -> tuple[Any, Sequence[str] | None]:
    """A pandas Series or DataFrame as a numpy array (and a categorical's categories as the class names)."""
    if type(labels).__module__.split(".")[0] != "pandas" or not hasattr(labels, "to_numpy"):
        return labels, class_names
    missing = np.asarray(labels.isna()).reshape(len(labels), -1).any(axis=1)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise invalid_data("labels", "a label in every example", "a missing value (NaN, None or NA)", record=row,
                           hint="A missing label is not a class: drop or fill those rows first")
    if hasattr(labels, "columns"):  # a DataFrame: one row per example
        return np.asarray(labels.to_numpy()), class_names
    if getattr(labels.dtype, "name", None) == "category":
        categories = labels.cat.categories
        if all(isinstance(c, str) for c in categories):
            return (np.asarray(list(categories), dtype=object)[labels.cat.codes.to_numpy()],
                    list(categories) if class_names is None else class_names)
        return np.asarray(labels.to_numpy()), class_names  # numbered categories: their values are the ids
    numpy_dtype = getattr(labels.dtype, "numpy_dtype", None)  # nullable Int64, boolean (no NA left)
    if not isinstance(numpy_dtype, np.dtype):
        return np.asarray(labels.to_numpy()), class_names
    return labels.to_numpy(dtype=numpy_dtype if numpy_dtype.kind in "iubf" else object), class_names


def _as_array(labels: Any) -> tuple[np.ndarray, bool]:
    """Returns (array, ragged). Ragged lists of lists stay lists."""
    if isinstance(labels, np.ndarray):
        return labels, False
    if hasattr(labels, "numpy"):  # tf.Tensor
        return np.asarray(labels.numpy()), False
    if isinstance(labels, (list, tuple)):
        if labels and all(isinstance(r, (list, tuple, np.ndarray)) for r in labels):
            lengths = {len(r) for r in labels}
            if len(lengths) > 1:
                return np.empty(0), True
        try:
            return np.asarray(labels), False
        except ValueError:
            return np.empty(0), True
    raise invalid("labels", "a numpy array, a tensor or a list", type(labels).__name__)


def _resolve_form(label_form: str, task: str, array: np.ndarray, ragged: bool) -> str:
    if ragged:
        if label_form not in ("auto", "id_lists"):
            raise invalid("labels", f"a rectangular array for label_form={label_form!r}", "ragged lists")
        return "id_lists"
    if label_form != "auto":
        return label_form
    if array.ndim == 1:
        return "sparse"
    if task == "multilabel":
        return "multi_hot" if array.ndim == 2 else "dense"
    if task == "binary" and array.ndim == 2 and array.shape[1] == 1:
        return "sparse"
    if array.ndim == 2 and array.dtype.kind == "f":
        return "one_hot"
    if array.dtype.kind in "iub":
        return "dense"
    raise invalid(
        "labels", "int ids (N,), one-hot floats (N, K), or int dense labels (N, ...)",
        f"dtype {array.dtype} with shape {array.shape}", hint="Pass label_form explicitly",
    )


def _check_weights(sample_weight: Any, n: int) -> np.ndarray | None:
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("sample_weight", "numbers, one weight per example", short_repr(np.ravel(sample_weight))) from None
    if weights.shape != (n,):
        raise invalid("sample_weight", f"shape ({n},), one weight per example", weights.shape)
    if not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise invalid("sample_weight", "finite weights >= 0", short_repr(weights[:8].tolist()))
    return weights


def _check_binary_matrix(array: np.ndarray, form: str) -> None:
    if array.ndim != 2:
        raise invalid("labels", f"a 0/1 matrix (N, K) for label_form={form!r}", f"shape {array.shape}")
    bad = np.argwhere(~((array == 0) | (array == 1)))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        value = array[row, col]
        raise invalid_data("labels", f"a 0/1 matrix (N, K) for label_form={form!r}",
                           value.item() if hasattr(value, "item") else value, record=row, hint=f"at column {col}")


def _fingerprint(labels: Any, array: np.ndarray, ragged: bool) -> str:
    digest = hashlib.sha256()
    if ragged:
        for row in labels:
            digest.update(np.asarray(row, dtype=np.int64).tobytes() + b"|")
    elif array.dtype.kind in "OUS":
        for value in array.ravel():
            digest.update((value if isinstance(value, bytes) else str(value).encode()) + b"\0")
    else:
        digest.update(str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()
