"""Field checks and small helpers for ``balance.table.WeightTable``."""

from __future__ import annotations

import datetime
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balance import schemes as schemes_lib
from balance._version import __version__
from balance.counting import MAX_INFERRED_CLASSES
from balance.errors import InvalidArgumentError, invalid, invalid_choice, short_repr
from balance.vocabulary import LABEL_DTYPES, TASKS


def finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid(name, "a number", value)
    try:
        finite = math.isfinite(float(value))
    except OverflowError:  # an int beyond the float range (its digits may be too many to print)
        raise invalid(name, "a finite number", f"an int of {int(value).bit_length()} bits") from None
    if not finite:
        raise invalid(name, "a finite number", value)
    return float(value)


def json_numbers(name: str, values: Any) -> list[float]:
    if not isinstance(values, list) or not (set(map(type, values)) <= {int, float} or all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values  # subclasses, such as np.float64
    )):
        raise invalid(name, "a JSON list of numbers", short_repr(values) if isinstance(values, list) else values)
    return values


def check_class_names(class_names: Any, num_classes: int) -> tuple[str, ...]:
    """``num_classes`` unique, non-empty str names (a single str is refused, not split)."""
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, (Sequence, np.ndarray)):
        raise invalid("class_names", "a list of names, one per class", class_names)
    names = tuple(class_names)
    exact = set(map(type, names)) <= {str}  # the common case, checked at C speed (tables may hold 1M names)
    bad = [n for n in names if not isinstance(n, str) or not n] if not exact or "" in names else []
    if bad:
        raise invalid("class_names", "non-empty str names", short_repr(names), hint=f"Not a name: {bad[0]!r}")
    unique = set(names)
    if len(names) != num_classes:
        raise invalid("class_names", f"{num_classes} names, one per class", f"{len(names)} names")
    if len(unique) != len(names):
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        raise invalid("class_names", "unique names", f"duplicates {short_repr(dupes)}")
    return names if exact else tuple(str(n) for n in names)


def check_label_field(label: Any) -> Mapping[str, Any]:
    """The table's ``label`` object: only ``key`` and ``dtype``."""
    if not isinstance(label, Mapping):
        raise invalid("label", "an object with 'key' and 'dtype'", label)
    unknown = sorted(set(label) - {"key", "dtype"})
    if unknown:
        raise invalid("label", "only the fields ['key', 'dtype']", dict(label), hint=f"Unknown field {unknown[0]!r}")
    return label


def check_path(name: str, path: Any) -> None:
    if not isinstance(path, str) or not path:
        raise invalid(name, "a non-empty path string (local, gs://, ram://)", path)


def counts_from_mapping(
    counts: Mapping[Any, float], num_classes: int | None, class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str] | None, bool]:
    keys = list(counts)
    if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        ids = [int(k) for k in keys]
        if min(ids, default=0) < 0:
            raise invalid("counts", "class ids >= 0 as dict keys", min(ids))
        if num_classes is None and max(ids, default=0) >= MAX_INFERRED_CLASSES:
            raise invalid("counts", f"class ids < {MAX_INFERRED_CLASSES:,} as dict keys when num_classes is not "
                          "given", max(ids), hint="Pass num_classes if there really are that many classes")
        size = num_classes if num_classes is not None else max(ids, default=-1) + 1
        if ids and max(ids) >= size:
            raise invalid("counts", f"class ids < num_classes ({size})", max(ids))
        vector = np.zeros(size, dtype=np.float64)
        for k, v in counts.items():
            vector[int(k)] = count_value(k, v)
        return vector, list(class_names) if class_names is not None else None, False
    if all(isinstance(k, (str, bytes)) for k in keys):
        as_str = {k.decode() if isinstance(k, bytes) else k: v for k, v in counts.items()}
        names = list(class_names) if class_names is not None else sorted(as_str)
        missing = sorted(set(as_str) - set(names))
        if missing:
            raise invalid("counts", f"only names from class_names {short_repr(names)}", short_repr(missing))
        return np.array([count_value(n, as_str.get(n, 0.0)) for n in names], dtype=np.float64), names, True
    raise invalid("counts", "a dict keyed by class ids (int) or class names (str)", short_repr(keys))


def count_value(key: Any, value: Any) -> float:
    """One dict count: a real number (checked for sign and finiteness by the table)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid("counts", "numbers as dict values", f"{key!r}: {value!r}")
    return float(value)


def pos_over_neg(
    negatives: np.ndarray, positives: np.ndarray, zero_count: str, names: Sequence[str] | None
) -> np.ndarray:
    if zero_count not in schemes_lib.ZERO_COUNT_POLICIES:
        raise invalid_choice("zero_count", schemes_lib.ZERO_COUNT_POLICIES, zero_count)
    empty = positives <= 0
    if np.all(empty):
        raise invalid("counts", "at least one label with positives", positives.tolist())
    if np.any(empty) and zero_count == "error":
        idx = np.flatnonzero(empty)
        named = [f"{i} ({names[i]!r})" if names else str(i) for i in idx[:10]]
        raise InvalidArgumentError(
            "Invalid value for argument `zero_count`. pos_weight is undefined for labels with "
            f"no positives: {', '.join(named)}. Received: zero_count='error'. Pass "
            "zero_count='zero' or zero_count='max'."
        )
    weights = np.zeros_like(positives)
    weights[~empty] = negatives[~empty] / positives[~empty]
    if zero_count == "max":
        weights[empty] = weights[~empty].max()
    return weights


def check_precomputed(precomputed: Any, num_classes: int) -> dict[str, Any]:
    if not isinstance(precomputed, Mapping) or set(precomputed) != {"scheme", "options", "weights"}:
        raise invalid("precomputed", "an object with 'scheme', 'options' and 'weights'", precomputed)
    schemes_lib.get_scheme(precomputed["scheme"])
    if not isinstance(precomputed["options"], Mapping):
        raise invalid("precomputed", "'options' as an object of scheme options", precomputed["options"])
    try:
        weights = np.asarray(precomputed["weights"], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise invalid("precomputed", f"{num_classes} finite weights >= 0", precomputed["weights"]) from None
    if weights.shape != (num_classes,) or not np.all(np.isfinite(weights)) or np.any(weights < 0):
        raise invalid(
            "precomputed",
            f"{num_classes} finite weights >= 0",
            short_repr(np.asarray(precomputed["weights"]).ravel().tolist()),
        )
    return {"scheme": precomputed["scheme"], "options": dict(precomputed["options"]),
            "weights": weights.tolist()}


def fingerprint_of(vector: np.ndarray) -> str:
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(vector, dtype=np.float64).tobytes()).hexdigest()


def make_provenance(inputs: Sequence[str], fingerprint: str) -> dict[str, Any]:
    if isinstance(inputs, (str, bytes)) or not isinstance(inputs, (Sequence, np.ndarray)):
        raise invalid("inputs", "a list of input paths or patterns", inputs)
    return {
        "inputs": [str(i) for i in inputs],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "tool_version": __version__,
        "fingerprint": fingerprint,
    }


def counts_arguments(
    counts: Any, task: str, num_classes: int | None, class_names: Any, num_examples: float | None,
    num_elements: float | None, label_dtype: str | None,
) -> tuple[np.ndarray, Any, str, float]:
    """``WeightTable.from_counts``'s arguments -> (counts vector, class names, label dtype, num_examples)."""
    if isinstance(class_names, (str, bytes)):
        raise invalid("class_names", "a list of names, one per class", class_names)
    vector = counts
    if isinstance(counts, Mapping):
        vector, class_names, keyed_by_name = counts_from_mapping(counts, num_classes, class_names)
        if keyed_by_name and label_dtype is None:
            label_dtype = "string"
    try:
        vector = np.asarray(vector, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise invalid("counts", "a sequence of numbers or a dict", short_repr(counts)) from None
    if task == "multilabel" and num_examples is None:
        raise invalid("num_examples", "the number of examples for task='multilabel' (counts are positives per label)",
                      None)
    if num_examples is None:
        if num_elements is not None:
            raise invalid("num_examples", "the number of examples when num_elements is set", None)
        num_examples = float(vector.sum())
    return vector, class_names, label_dtype or "int", num_examples


def checked_fields(table: Any) -> dict[str, Any]:
    """Validates a ``WeightTable``'s fields; returns the normalised values to store."""
    fields: dict[str, Any] = {}
    if table.task not in TASKS:
        raise invalid_choice("task", TASKS, table.task)
    if table.label_dtype not in LABEL_DTYPES:
        raise invalid_choice("label_dtype", LABEL_DTYPES, table.label_dtype)
    try:
        counts = np.asarray(table.counts, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise invalid("counts", "a sequence of numbers", table.counts) from None
    if counts.ndim != 1 or counts.size == 0:
        raise invalid("counts", "a non-empty 1-D sequence of numbers", table.counts)
    bad = np.flatnonzero(~np.isfinite(counts) | (counts < 0))
    if bad.size:
        raise invalid(
            "counts",
            "finite counts >= 0",
            f"{counts[bad[0]]} at class {bad[0]}",
            hint=f"{bad.size} bad count(s)",
        )
    fields["counts"] = _frozen_array(counts, np.float64)
    num_classes = counts.size if table.num_classes is None else table.num_classes
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise invalid("num_classes", "a positive int", table.num_classes)
    if num_classes != counts.size:
        raise invalid(
            "counts", f"one count per class (num_classes={num_classes})", f"{counts.size} counts"
        )
    fields["num_classes"] = int(num_classes)
    if table.task == "binary" and num_classes != 2:
        raise invalid(
            "num_classes",
            "2 for task='binary' (counts are [negatives, positives])",
            num_classes,
            hint="Use task='multilabel' for several independent binary labels",
        )
    if table.class_names is not None:
        fields["class_names"] = check_class_names(table.class_names, num_classes)
    if table.label_key is not None and not isinstance(table.label_key, str):
        raise invalid("label_key", "a feature key or column name (str) or None", table.label_key)
    num_examples = finite_number("num_examples", table.num_examples)
    if num_examples <= 0:
        raise invalid("num_examples", "a positive number", table.num_examples)
    fields["num_examples"] = num_examples
    total = float(counts.sum())
    tolerance = 1e-9 * max(1.0, total)
    if table.task == "multilabel":
        over = np.flatnonzero(counts > num_examples + tolerance)
        if over.size:
            raise invalid(
                "counts",
                f"positives <= num_examples ({num_examples:g}) for every label",
                f"{counts[over[0]]:g} positives for label {over[0]}",
            )
        if table.num_elements is not None:
            raise invalid("num_elements", "None for task='multilabel'", table.num_elements)
    elif table.num_elements is None:
        if abs(total - num_examples) > tolerance:
            raise invalid(
                "num_examples",
                f"the sum of counts ({total:g}) for one label per example",
                num_examples,
                hint="For dense labels (tokens, pixels) set num_elements",
            )
    else:
        num_elements = finite_number("num_elements", table.num_elements)
        if abs(total - num_elements) > tolerance:
            raise invalid("num_elements", f"the sum of counts ({total:g})", num_elements)
        fields["num_elements"] = num_elements
    if not isinstance(table.provenance, Mapping):
        raise invalid("provenance", "a mapping", table.provenance)
    fields["provenance"] = dict(table.provenance)
    if table.precomputed is not None:
        fields["precomputed"] = check_precomputed(table.precomputed, num_classes)
    return fields


def _frozen_array(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype, copy=True)
    array.setflags(write=False)
    return array
