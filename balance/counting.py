"""Vectorised label counting, shared by ``WeightTable.from_labels`` and the Beam job.

Both paths call the same kernels here on batches of labels, so an in-memory
table and a Beam-built table agree exactly on the same data.

Label forms (``label_form``):

* ``"sparse"``: one id or string per example, shape ``(N,)``.
* ``"one_hot"``: ``(N, K)`` rows with a single 1 (multiclass); counted by argmax.
* ``"multi_hot"``: ``(N, L)`` 0/1 rows (multilabel); each positive counts once.
* ``"id_lists"``: a list of id lists, one per example (multilabel); duplicate
  ids within one example count once.
* ``"dense"``: ``(N, T)`` or ``(N, H, W)`` ids (tokens, pixels); every element
  is counted, except those equal to ``ignore_value``.

``"auto"`` picks: 1-D -> sparse; multilabel 2-D -> multi_hot, ragged ->
id_lists; multiclass 2-D float -> one_hot (as Keras ``to_categorical`` makes);
integer arrays of rank >= 2 -> dense. Pass ``label_form`` to override.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from balance._errors import invalid, invalid_choice, short_repr
from balance.table import TASKS, WeightTable

LABEL_FORMS = ("auto", "sparse", "one_hot", "multi_hot", "id_lists", "dense")


WHOLE_IDS = "integer class ids (a float label must be a whole number: 1.0 is class 1)"
_EXACT_FLOAT = 2.0**53  # floats beyond this are not exact integers


def whole_ids(values: np.ndarray, where: str | None = None) -> np.ndarray:
    """Labels as int64 ids; float labels must be whole numbers.

    The rule (the same in ``from_labels``, the Beam job and the tf.data layer):
    a float label that is integral (``1.0``) is the class id it equals; a
    fractional value (``1.5``), NaN or +-inf fails, naming the first such value.

    Args:
      values: int, bool or float labels of any shape.
      where: appended to the error, e.g. ``"Found in file 'a.tfrecord'"``.
    """
    values = np.asarray(values)
    if values.dtype.kind == "f":
        bad = not_whole(values)
        if bad.any():
            raise invalid("labels", WHOLE_IDS, float(values[bad].flat[0]), hint=where)
    return values.astype(np.int64, copy=False)


def not_whole(values: np.ndarray) -> np.ndarray:
    """Mask of float values that are not exact whole numbers (fractional, NaN, inf, beyond 2**53)."""
    with np.errstate(invalid="ignore"):
        return ~np.isfinite(values) | (values != np.floor(values)) | (np.abs(values) >= _EXACT_FLOAT)


def count_ids(ids: np.ndarray, num_classes: int, weights: np.ndarray | None = None) -> np.ndarray:
    """``bincount`` of integer ids in ``[0, num_classes)`` as float64.

    Raises a ``ValueError`` naming the first id out of range.
    """
    ids = np.asarray(ids).ravel()
    if ids.size:
        low, high = ids.min(), ids.max()
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise invalid(
                "labels", f"class ids in [0, {num_classes})", int(bad),
                hint="Pass num_classes or check the label column",
            )
    counts = np.bincount(ids.astype(np.int64), weights=weights, minlength=num_classes)
    return counts.astype(np.float64)


def count_strings(values: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """Counts of each distinct string (bytes are decoded as UTF-8)."""
    values = np.asarray([_as_str(v) for v in np.asarray(values, dtype=object).ravel()], dtype=object)
    if values.size == 0:
        return {}
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniques))
    return {str(u): float(c) for u, c in zip(uniques, counts, strict=False)}


def vocabulary_counts(
    string_counts: dict[str, float], class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str]]:
    """Orders string counts by ``class_names`` or, if None, sorted (deterministic)."""
    names = list(class_names) if class_names is not None else sorted(string_counts)
    unknown = sorted(set(string_counts) - set(names))
    if unknown:
        raise invalid(
            "labels", f"names from class_names {short_repr(names)}", f"unknown {short_repr(unknown)}"
        )
    return np.array([string_counts.get(n, 0.0) for n in names], dtype=np.float64), names


def count_labels(
    labels: Any,
    *,
    task: str = "multiclass",
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    label_form: str = "auto",
    sample_weight: Any = None,
    ignore_value: int | None = None,
    label_key: str | None = None,
) -> WeightTable:
    """Builds a ``WeightTable`` from labels in memory (numpy arrays or lists).

    Args:
      labels: see the module docstring for accepted forms.
      task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
      num_classes: K; inferred as ``max id + 1`` (or from ``class_names``,
        or from the one-hot width) when None.
      class_names: names for the classes; required order for string labels
        (otherwise the discovered vocabulary is sorted).
      label_form: one of ``LABEL_FORMS``.
      sample_weight: optional ``(N,)`` example weights, giving weighted counts.
      ignore_value: for dense labels, an id not to count (e.g. 255 in masks).
      label_key: recorded in the table's label spec.

    Returns:
      A ``WeightTable``.

    Example:
      >>> WeightTable.from_labels(np.array([0, 0, 1, 2])).counts
      array([2., 1., 1.])
    """
    if task not in TASKS:
        raise invalid_choice("task", TASKS, task)
    if label_form not in LABEL_FORMS:
        raise invalid_choice("label_form", LABEL_FORMS, label_form)
    if ignore_value is not None and (isinstance(ignore_value, bool) or not isinstance(ignore_value, (int, np.integer))):
        raise invalid("ignore_value", "an int class id", ignore_value)
    if class_names is not None and num_classes is None:
        if isinstance(class_names, (str, bytes)) or not hasattr(class_names, "__len__"):
            raise invalid("class_names", "a list of names, one per class", class_names)
        num_classes = len(class_names)
    array, ragged = _as_array(labels)
    num_examples_unweighted = len(array) if not ragged else len(labels)
    if num_examples_unweighted == 0:
        raise invalid("labels", "at least one example", "an empty array")
    weights = _check_weights(sample_weight, num_examples_unweighted)
    form = _resolve_form(label_form, task, array, ragged)
    num_examples = float(num_examples_unweighted if weights is None else weights.sum())
    num_elements = None
    label_dtype = "int"

    if form == "id_lists":
        if task != "multilabel":
            raise invalid("label_form", "'id_lists' only with task='multilabel'", label_form)
        lists = [np.unique(_list_ids(row, i)) for i, row in enumerate(labels)]
        flat = np.concatenate(lists) if lists else np.zeros(0, np.int64)
        size = _infer_num_classes(num_classes, flat)
        per_id_weights = None if weights is None else np.repeat(weights, [len(r) for r in lists])
        counts = count_ids(flat, size, per_id_weights)
    elif form == "multi_hot":
        counts, size = _count_multi_hot(array, task, num_classes, weights)
    elif form == "one_hot":
        counts, size = _count_one_hot(array, num_classes, weights)
    elif array.dtype.kind in "OUS":
        if form == "dense":
            raise invalid("label_form", "'sparse' for string labels", label_form)
        counts, class_names = vocabulary_counts(count_strings(array, weights), class_names)
        size = len(class_names)
        if num_classes is not None and num_classes != size:
            raise invalid("num_classes", f"{size}, the number of class names", num_classes)
        label_dtype = "string"
    else:
        if task == "binary" and array.ndim == 2 and array.shape[1] == 1 and form != "dense":
            array = array[:, 0]
        _check_integral(array)
        ids = array.astype(np.int64)
        element_weights = None
        if weights is not None:
            element_weights = np.broadcast_to(
                weights.reshape((-1,) + (1,) * (ids.ndim - 1)), ids.shape
            ).ravel()
        ids = ids.ravel()
        if ignore_value is not None and form != "dense":
            raise invalid("ignore_value", "None unless label_form='dense'", ignore_value)
        if ignore_value is not None:
            keep = ids != ignore_value
            ids = ids[keep]
            element_weights = None if element_weights is None else element_weights[keep]
        elif form == "sparse" and array.ndim != 1:
            raise invalid("labels", "shape (N,) for label_form='sparse'", array.shape)
        size = 2 if task == "binary" and num_classes is None else _infer_num_classes(num_classes, ids)
        counts = count_ids(ids, size, element_weights)
        if form == "dense":
            num_elements = float(counts.sum())

    if task == "multilabel" and form not in ("multi_hot", "id_lists"):
        raise invalid(
            "labels", "multi-hot rows (N, L) or lists of ids for task='multilabel'", form
        )
    return WeightTable.from_counts(
        counts,
        task=task,
        num_classes=size,
        class_names=class_names,
        num_examples=num_examples,
        num_elements=num_elements,
        label_key=label_key,
        label_dtype=label_dtype,
        inputs=["<in-memory labels>"],
        fingerprint=_fingerprint(labels, array, ragged),
    )


# --------------------------------------------------------------------- helpers
def _as_str(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


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


def _check_integral(array: np.ndarray) -> None:
    if array.dtype.kind not in "iubf":
        raise invalid("labels", "integer class ids or strings", f"dtype {array.dtype}")
    if array.dtype.kind == "f":
        bad = np.argwhere(not_whole(array))
        hint = None if not bad.size else f"Found at index {tuple(int(i) for i in bad[0])}" + (
            "; for one-hot or soft labels pass label_form='one_hot'" if array.ndim == 2 else "")
        whole_ids(array, hint)


def _list_ids(row: Any, index: int) -> np.ndarray:
    """One example's id list as int64 ids, by the whole-number rule."""
    values = np.asarray(row).ravel()
    if values.dtype.kind not in "iubf" and values.size:
        raise invalid("labels", "lists of integer class ids", short_repr(values.tolist()),
                      hint=f"Found in example {index}")
    return whole_ids(values if values.size else values.astype(np.int64), f"Found in example {index}")


def _infer_num_classes(num_classes: int | None, ids: np.ndarray) -> int:
    if num_classes is not None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise invalid("num_classes", "a positive int", num_classes)
        return int(num_classes)
    if ids.size == 0:
        raise invalid("labels", "at least one labelled element", "none", hint="Pass num_classes")
    if ids.min() < 0:
        raise invalid("labels", "class ids >= 0", int(ids.min()))
    return int(ids.max()) + 1


def _check_binary_matrix(array: np.ndarray, form: str) -> None:
    if array.ndim != 2:
        raise invalid("labels", f"a 0/1 matrix (N, K) for label_form={form!r}", f"shape {array.shape}")
    bad = np.argwhere(~((array == 0) | (array == 1)))
    if bad.size:
        row, col = (int(i) for i in bad[0])
        value = array[row, col]
        raise invalid("labels", f"a 0/1 matrix (N, K) for label_form={form!r}",
                      value.item() if hasattr(value, "item") else value, hint=f"Found at row {row}, column {col}")


def _count_one_hot(array: np.ndarray, num_classes: int | None, weights: np.ndarray | None):
    _check_binary_matrix(array, "one_hot")
    row_sums = array.sum(axis=1)
    if not np.all(row_sums == 1):
        bad = int(np.flatnonzero(row_sums != 1)[0])
        raise invalid(
            "labels", "one-hot rows with exactly one 1", f"row {bad} = {array[bad].tolist()}",
            hint="For multi-hot rows use task='multilabel'",
        )
    size = array.shape[1]
    if num_classes is not None and num_classes != size:
        raise invalid("num_classes", f"the one-hot width {size}", num_classes)
    return count_ids(np.argmax(array, axis=1), size, weights), size


def _count_multi_hot(array: np.ndarray, task: str, num_classes: int | None, weights: np.ndarray | None):
    if task != "multilabel":
        raise invalid("label_form", "'multi_hot' only with task='multilabel'", "multi_hot")
    _check_binary_matrix(array, "multi_hot")
    size = array.shape[1]
    if num_classes is not None and num_classes != size:
        raise invalid("num_classes", f"the multi-hot width {size}", num_classes)
    matrix = array.astype(np.float64)
    counts = matrix.sum(axis=0) if weights is None else weights @ matrix
    return counts, size


def _fingerprint(labels: Any, array: np.ndarray, ragged: bool) -> str:
    digest = hashlib.sha256()
    if ragged:
        for row in labels:
            digest.update(np.asarray(row, dtype=np.int64).tobytes() + b"|")
    elif array.dtype.kind in "OUS":
        for value in array.ravel():
            digest.update(_as_str(value).encode() + b"\0")
    else:
        digest.update(str(array.shape).encode() + np.ascontiguousarray(array).tobytes())
    return "sha256:" + digest.hexdigest()
