"""Construction-time checks shared by every loss, in the project's error style.

Weights are checked once, when a loss is built, never inside ``call``. They
are stored as plain Python lists so that ``get_config`` is JSON-ready.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

from balance import schemes as schemes_lib
from balance.errors import invalid, invalid_choice, short_repr
from balance.table import WeightTable

SCALAR_CLASS_WEIGHT_HINT = (
    "A single number multiplies every example's loss by the same factor: it only rescales "
    "the loss and its gradient, much like changing the learning rate, and does nothing for "
    "class imbalance. Pass one weight per class (e.g. WeightTable.class_weights('balanced')), "
    "and keep per-batch weighting in model.fit(sample_weight=...)"
)


def weight_vector(
    name: str,
    values: Any,
    *,
    num_classes: int | None = None,
    allow_scalar: bool = False,
    scalar_hint: str = SCALAR_CLASS_WEIGHT_HINT,
    allow_negative: bool = False,
    require_positive_sum: bool = True,
) -> list[float] | float:
    """Validates per-class (or per-label) weights; returns a list (or a float).

    Args:
      name: the argument name, for the error message.
      values: a sequence or array of numbers (or a number if ``allow_scalar``).
      num_classes: the expected length, where known.
      allow_scalar: accept a single number (e.g. a ``pos_weight`` ratio).
      scalar_hint: why a scalar is refused, when it is.
      allow_negative: accept negative values (log-priors, not weights).
      require_positive_sum: refuse all-zero weights, which make the loss 0.

    Raises:
      ValueError: for strings, non-numbers, wrong shapes or lengths, NaN or
        infinite values, negative weights, or all-zero weights.
    """
    if isinstance(values, WeightTable):
        raise invalid(
            name, "numbers", values, hint="To build a loss from a table use Loss.from_table(table)"
        )
    if isinstance(values, (str, bytes)) or values is None:
        raise invalid(
            name,
            "a sequence of numbers, one per class",
            values,
            hint="Strings such as 'auto' or 'balanced' are schemes: use "
            "Loss.from_table(table, scheme='balanced') or WeightTable.class_weights(scheme)",
        )
    if hasattr(values, "numpy") and callable(values.numpy):  # eager tensors
        values = values.numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a sequence of numbers", values) from None
    if np.asarray(values).dtype == bool:
        raise invalid(name, "numbers, not booleans", values)
    if array.ndim == 0:
        if not allow_scalar:
            raise invalid(name, "one weight per class (a 1-D sequence)", values, hint=scalar_hint)
        array = array.reshape(1)
    elif array.ndim != 1 or array.size == 0:
        raise invalid(name, "a non-empty 1-D sequence of numbers", f"shape {array.shape}")
    if num_classes is not None and array.size != num_classes:
        raise invalid(
            name,
            f"{num_classes} values, one per class",
            f"{array.size} values {short_repr(array.tolist())}",
        )
    bad = np.flatnonzero(~np.isfinite(array) | (False if allow_negative else array < 0))
    if bad.size:
        what = "finite numbers" if allow_negative else "finite weights >= 0"
        raise invalid(
            name, what, f"{array[bad[0]]} at index {bad[0]}", hint=f"{bad.size} bad value(s)"
        )
    if require_positive_sum and not allow_negative and not np.any(array > 0):
        raise invalid(
            name,
            "at least one weight > 0",
            short_repr(array.tolist()),
            hint="All-zero weights make the loss identically 0",
        )
    if np.ndim(values) == 0:
        return float(array[0])
    return array.tolist()


def square_matrix(name: str, values: Any) -> list[list[float]]:
    """Validates a K x K (K >= 2) matrix of finite, non-negative numbers."""
    if isinstance(values, (str, bytes)) or values is None:
        raise invalid(name, "a K x K matrix of numbers", values)
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "a K x K matrix of numbers", values) from None
    if array.ndim != 2 or array.shape[0] != array.shape[1] or array.shape[0] < 2:
        raise invalid(
            name,
            "a square K x K matrix with K >= 2 (C[i, j] = cost of predicting j for truth i)",
            f"shape {array.shape}",
        )
    bad = np.argwhere(~np.isfinite(array) | (array < 0))
    if bad.size:
        i, j = bad[0]
        raise invalid(name, "finite entries >= 0", f"{array[i, j]} at [{i}, {j}]")
    if not np.any(array > 0):
        raise invalid(
            name,
            "at least one entry > 0",
            "an all-zero matrix",
            hint="An all-zero matrix makes the loss identically 0",
        )
    return array.tolist()


def nonnegative_number(
    name: str, value: Any, *, upper: float | None = None, positive: bool = False
) -> float:
    """A finite float >= 0 (or > 0 if ``positive``), optionally <= ``upper``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise invalid(name, "a number", value)
    value = float(value)
    low_ok = value > 0 if positive else value >= 0
    if not math.isfinite(value) or not low_ok or (upper is not None and value > upper):
        bounds = ("> 0" if positive else ">= 0") + (f" and <= {upper}" if upper is not None else "")
        raise invalid(name, f"a finite number {bounds}", value)
    return value


def flag(name: str, value: Any) -> bool:
    """A bool; ``"no"`` or ``0`` would silently mean True or False under ``bool()``."""
    if not isinstance(value, (bool, np.bool_)):
        raise invalid(name, "True or False", value)
    return bool(value)


def choice(name: str, value: Any, choices: Sequence[str]) -> str:
    if value not in choices:
        raise invalid_choice(name, choices, value)
    return value


def check_table(
    table: Any, tasks: Sequence[str], loss: str, hint: str | None = None
) -> WeightTable:
    """Refuses anything but a ``WeightTable`` of one of ``tasks``."""
    if not isinstance(table, WeightTable):
        raise invalid("table", "a balance.WeightTable", type(table).__name__)
    if table.task not in tasks:
        raise invalid(
            "table",
            f"a table with task in {list(tasks)} for {loss}",
            f"a {table.task!r} table",
            hint=hint,
        )
    return table


def check_last_dim(name: str, length: int, y_pred: Any, *, allow_one: bool = False) -> None:
    """Checks the weights' length against ``y_pred``'s class axis at trace time.

    A short weight vector would otherwise be gathered out of range, which is an
    error on CPU but silently 0 on GPU.
    """
    k = y_pred.shape[-1] if len(y_pred.shape) else None
    if k is None or length == k or (allow_one and length == 1):
        return
    raise invalid(
        name, f"{k} values to match y_pred's last axis (the number of classes)", f"{length} values"
    )


def scheme_params_for(loss: str, scheme_params: Any, loss_options: dict[str, Any]) -> dict[str, Any]:
    """``from_table``'s ``scheme_params`` as a dict; a scheme option among the loss's options is refused.

    Scheme options (``normalize``, ``beta``, ...) go in ``scheme_params``, the
    loss's own options (``from_logits``, ``gamma``, ...) as keyword arguments,
    so neither is mistaken for the other.
    """
    params = schemes_lib.check_scheme_params(scheme_params)
    misplaced = sorted(set(loss_options) & set(schemes_lib.option_names()))
    if misplaced:
        name = misplaced[0]
        raise invalid(name, f"no such option of {loss}", loss_options[name],
                      hint=f"It is a scheme option: pass scheme_params={{{name!r}: {loss_options[name]!r}}}")
    return params
