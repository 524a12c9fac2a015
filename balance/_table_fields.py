"""Field checks and small helpers for ``balance.table.WeightTable``."""

from __future__ import annotations

import datetime
import hashlib
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balance import schemes as schemes_lib
from balance._errors import invalid, invalid_choice, short_repr
from balance._version import __version__


def finite_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid(name, "a number", value)
    if not math.isfinite(float(value)):
        raise invalid(name, "a finite number", value)
    return float(value)


def json_numbers(name: str, values: Any) -> list[float]:
    if not isinstance(values, list) or not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in values
    ):
        raise invalid(name, "a JSON list of numbers", short_repr(values) if isinstance(values, list) else values)
    return values


def check_class_names(class_names: Any, num_classes: int) -> tuple[str, ...]:
    """``num_classes`` unique, non-empty str names (a single str is refused, not split)."""
    if isinstance(class_names, (str, bytes)) or not isinstance(class_names, (Sequence, np.ndarray)):
        raise invalid("class_names", "a list of names, one per class", class_names)
    names = tuple(class_names)
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise invalid("class_names", "non-empty str names", short_repr(names), hint=f"Not a name: {bad[0]!r}")
    if len(names) != num_classes:
        raise invalid("class_names", f"{num_classes} names, one per class", f"{len(names)} names")
    if len(set(names)) != len(names):
        seen: set[str] = set()
        dupes = sorted({n for n in names if n in seen or seen.add(n)})
        raise invalid("class_names", "unique names", f"duplicates {short_repr(dupes)}")
    return tuple(str(n) for n in names)


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


def parse_constant(name: str) -> float:
    # NaN/Infinity are not JSON; parse them so validation can name the field.
    return float(name)


def counts_from_mapping(
    counts: Mapping[Any, float], num_classes: int | None, class_names: Sequence[str] | None
) -> tuple[np.ndarray, list[str] | None, bool]:
    keys = list(counts)
    if all(isinstance(k, (int, np.integer)) and not isinstance(k, bool) for k in keys):
        ids = [int(k) for k in keys]
        if min(ids, default=0) < 0:
            raise invalid("counts", "class ids >= 0 as dict keys", min(ids))
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
        raise ValueError(
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
    except (TypeError, ValueError):
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
