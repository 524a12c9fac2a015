"""Turning what users actually have into a valid Keras ``class_weight`` dict."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from balance.errors import invalid, short_repr


def to_keras_class_weight(class_weight: Any, *, num_classes: int | None = None) -> dict[int, float]:
    """Converts class weights to the ``dict[int, float]`` that ``model.fit`` needs.

    Accepts a numpy array or list (scikit-learn's ``compute_class_weight``
    output), or a dict keyed by ints, numpy ints or digit strings. The result
    covers every class ``0 .. K-1``: Keras silently gives weight 1.0 to any
    class missing from the dict, so a dict that misses classes is refused.

    Args:
      class_weight: the weights.
      num_classes: K, when known (e.g. the model's number of outputs); checked
        against the weights.

    Raises:
      ValueError: for strings such as ``"auto"`` (never a valid Keras value),
        dicts that miss classes or name unknown ones, and negative, NaN or
        infinite weights.

    Example:
      >>> to_keras_class_weight(np.array([0.5, 2.0]))
      {0: 0.5, 1: 2.0}
    """
    if isinstance(class_weight, (str, bytes)):
        raise invalid(
            "class_weight", "a dict {class_id: weight}, an array or a list", class_weight,
            hint="Strings such as 'auto' or 'balanced' were never valid Keras values (older Keras "
            "ignored them silently). Use WeightTable.keras_class_weight('balanced') or "
            "sklearn's compute_class_weight",
        )
    if isinstance(class_weight, Mapping):
        weights = _from_mapping(class_weight, num_classes)
    else:
        try:
            weights = np.asarray(class_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise invalid("class_weight", "a dict, an array or a list of numbers", class_weight) from None
        if weights.ndim != 1 or weights.size == 0:
            raise invalid("class_weight", "a 1-D sequence with one weight per class", f"shape {weights.shape}")
    if num_classes is not None and len(weights) != num_classes:
        raise invalid("class_weight", f"{num_classes} weights, one per class", f"{len(weights)} weights")
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        raise invalid("class_weight", "finite weights >= 0", f"{weights[bad[0]]} for class {bad[0]}")
    return {i: float(w) for i, w in enumerate(weights)}


def _from_mapping(class_weight: Mapping[Any, Any], num_classes: int | None) -> np.ndarray:
    ids = {}
    for key, value in class_weight.items():
        if isinstance(key, (bool, np.bool_)):
            raise invalid("class_weight", "integer class ids as keys", key)
        if isinstance(key, (int, np.integer)):
            ids[int(key)] = value
        elif isinstance(key, str) and key.strip().lstrip("-").isdigit():
            ids[int(key)] = value
        else:
            raise invalid(
                "class_weight", "integer class ids (or digit strings) as keys", key,
                hint="Map class names to ids first, e.g. with WeightTable.class_names",
            )
    size = num_classes if num_classes is not None else max(ids) + 1 if ids else 0
    unknown = sorted(k for k in ids if k < 0 or k >= size)
    if unknown:
        raise invalid("class_weight", f"class ids in [0, {size})", short_repr(unknown))
    missing = sorted(set(range(size)) - set(ids))
    if missing:
        raise invalid(
            "class_weight", f"a weight for every class 0..{size - 1}", f"missing {short_repr(missing)}",
            hint="Keras would silently give the missing classes weight 1.0",
        )
    try:
        return np.array([float(ids[i]) for i in range(size)], dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid("class_weight", "numeric weights", short_repr(list(ids.values()))) from None
