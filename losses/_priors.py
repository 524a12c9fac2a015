"""Class priors given as a table, as shares, or as ``"uniform"``, checked once.

Shared by ``shift_logits`` and the label-shift estimators. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from balance.errors import invalid, short_repr
from balance.table import WeightTable

PRIOR_FORMS = "a WeightTable, K shares (or counts) >= 0, or 'uniform'"


def class_shares(name: str, prior: Any, num_classes: int | None = None, *, allow_zero: bool = False) -> np.ndarray:
    """Resolves a prior to K float64 shares that sum to 1.

    Args:
      name: the argument name, for error messages.
      prior: a multiclass or binary ``WeightTable`` (its counts over their
        sum), a sequence of K shares or counts (divided by their sum), or
        ``"uniform"`` (``1/K``, which needs ``num_classes``).
      num_classes: the expected K, where known.
      allow_zero: accept shares of 0 (a class absent from the mix).

    Returns:
      A float64 vector of K shares summing to 1.

    Raises:
      ValueError: for multilabel tables, other strings, wrong lengths, NaN,
        negative, all-zero or (unless ``allow_zero``) zero shares.
    """
    if isinstance(prior, WeightTable):
        if prior.task == "multilabel":
            raise invalid(
                name,
                "a multiclass or binary table (one class per example)",
                "a 'multilabel' table",
                hint="Multilabel prevalences do not form one prior over classes",
            )
        values = prior.counts
    elif isinstance(prior, str):
        if prior != "uniform":
            raise invalid(name, PRIOR_FORMS, prior)
        if num_classes is None:
            raise invalid(name, "a table or K shares when K is not known", prior)
        values = np.ones(num_classes)
    elif prior is None or isinstance(prior, bytes):
        raise invalid(name, PRIOR_FORMS, prior)
    else:
        if hasattr(prior, "numpy") and callable(prior.numpy):  # eager tensors
            prior = prior.numpy()
        try:
            values = np.asarray(prior, dtype=np.float64)
        except (TypeError, ValueError):
            raise invalid(name, PRIOR_FORMS, short_repr(prior) if isinstance(prior, (list, tuple)) else prior) from None
        if values.ndim != 1 or values.size < 2:
            raise invalid(name, "a 1-D sequence of at least 2 shares", f"shape {values.shape}")
    values = np.asarray(values, dtype=np.float64)
    if num_classes is not None and values.size != num_classes:
        raise invalid(name, f"{num_classes} shares, one per class", f"{values.size} values")
    bad = np.flatnonzero(~np.isfinite(values) | (values < 0))
    if bad.size:
        raise invalid(name, "finite shares >= 0", f"{values[bad[0]]} at class {bad[0]}")
    total = values.sum()
    if total <= 0:
        raise invalid(name, "at least one share > 0", short_repr(values.tolist()))
    if not allow_zero and np.any(values == 0):
        empty = np.flatnonzero(values == 0)
        raise invalid(
            name,
            "shares > 0 for every class (log(0) is -inf)",
            f"0 for classes {short_repr(empty.tolist())}",
            hint="Give absent classes a small positive share, or add a pseudo-count to the table",
        )
    return values / total
