"""Sampling plans: from a weight table and a target class mix to repeat factors
and residual weights. Pure numpy; no TensorFlow.

Notation (single-label tasks): ``p_c = n_c / n`` is the data's class mix,
``q_c`` the target mix, ``s_c`` the mix the sampler produces and ``sigma`` the
sampling strength in [0, 1].

* The sampler aims at ``s_c ∝ p_c^(1 - sigma) · q_c^sigma`` (geometric
  interpolation; sigma = 0 leaves the data alone, sigma = 1 samples all the
  way to q; for q uniform this is ``s ∝ n_c^(1 - sigma)``).
* Each example of class c is emitted ``r_c = scale · s_c / p_c`` times on
  average (stochastic rounding). ``scale`` fixes the epoch size:
  ``"keep"`` gives ``sum_c n_c r_c = n``; ``"keep_all"`` gives ``min r_c = 1``
  (no example dropped); an int E gives ``sum_c n_c r_c = E``.
* Residual weights ``w_c = q_c / s_c`` then make the *weighted* class mix of
  the sampled stream exactly q: ``s_c w_c = q_c``. Because ``sum_c q_c = 1``
  they already have mean one per example: ``sum_c s_c w_c = 1``.

Multi-label tasks use repeat-factor sampling (Gupta et al., LVIS 2019):
``r_l = max(1, sqrt(t / f_l))`` with ``f_l`` the fraction of examples where
label l is positive; an example's factor is the max over its positive labels.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balance.errors import invalid, invalid_choice, short_repr
from balance.table import WeightTable

Target = str | float | Mapping[Any, float] | Sequence[float] | np.ndarray | None
EpochSize = str | int
TARGET_NAMES = ("uniform", "original")
EPOCH_SIZES = ("keep", "keep_all")


@dataclasses.dataclass(frozen=True)
class SamplingPlan:
    """What the sampler and the weights will do, computed before any data flows.

    Attributes:
      target: q, the class mix training should see (sums to 1). For
        multilabel, None.
      sampled: s, the expected class mix after sampling (sums to 1). None for
        multilabel.
      factors: r, the mean number of copies per example of each class (per
        label for multilabel; an example takes the max over its positives).
      weights: residual weights ``q / s`` (mean one per sampled example);
        zeros where ``s_c = 0``. None for multilabel.
      expected_epoch_size: expected examples per pass over the input (an upper
        bound for multilabel, exact when no example has two positive labels).
      input_size: examples in the input, ``table.num_examples``.
    """

    target: np.ndarray | None
    sampled: np.ndarray | None
    factors: np.ndarray
    weights: np.ndarray | None
    expected_epoch_size: float
    input_size: float

    def steps_per_epoch(self, batch_size: int) -> int:
        """``ceil(expected_epoch_size / batch_size)``, for ``model.fit(steps_per_epoch=...)``."""
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise invalid("batch_size", "a positive int", batch_size)
        return max(1, math.ceil(self.expected_epoch_size / batch_size))


def resolve_target(
    table: WeightTable,
    target: Target = None,
    *,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
) -> np.ndarray:
    """The target class mix q (float64, sums to 1) for a single-label table.

    Args:
      table: a ``"multiclass"`` or ``"binary"`` table.
      target: ``"uniform"`` (default; classes with no examples get 0),
        ``"original"`` (q = p), a float alpha (q_c ∝ n_c^alpha: 1 is the data,
        0 is uniform), or shares as a dict ``{class id or name: share}``
        (missing classes get 0) or an array of K shares. Shares are
        normalised to sum to 1.
      scheme: instead of ``target``, a weighting scheme whose weights define
        the mix: ``q_c ∝ n_c · w_c`` (``"balanced"`` gives uniform,
        ``"inverse_sqrt"`` gives alpha = 0.5).
      scheme_params: options for ``table.class_weights(scheme, ...)``.

    Raises:
      ValueError: for a bad target, a share on a class with no examples, or
        both ``target`` and ``scheme``.

    Example:
      >>> resolve_target(WeightTable.from_counts([900, 100]), 0.0)
      array([0.5, 0.5])
    """
    if table.task == "multilabel":
        raise invalid(
            "table", "a 'multiclass' or 'binary' table for a target class mix", table.task,
            hint="Multi-label tables resample by repeat factors (repeat_threshold)",
        )
    counts = table.counts
    present = counts > 0
    if scheme is not None:
        if target is not None:
            raise invalid("scheme", "None when `target` is given (pass one of them)", scheme)
        weights = table.class_weights(scheme, zero_count="zero", **dict(scheme_params or {}))
        return _normalised("scheme", counts * weights.astype(np.float64), scheme)
    if scheme_params:
        raise invalid("scheme_params", "None unless `scheme` is given", scheme_params)
    if target is None or (isinstance(target, str) and target == "uniform"):
        return present / present.sum()
    if isinstance(target, str):
        if target == "original":
            return counts / counts.sum()
        raise invalid_choice(
            "target", TARGET_NAMES, target, hint="Or pass a float alpha, a dict or an array of shares"
        )
    if isinstance(target, (float, int, np.floating, np.integer)) and not isinstance(target, bool):
        alpha = float(target)
        if not math.isfinite(alpha):
            raise invalid("target", "a finite float alpha (q_c ∝ n_c^alpha)", target)
        shares = np.zeros_like(counts)
        shares[present] = counts[present] ** alpha
        return _normalised("target", shares, target)
    shares = _shares(table, target)
    empty_wanted = np.flatnonzero(~present & (shares > 0))
    if empty_wanted.size:
        raise invalid(
            "target", "shares only for classes that have examples", short_repr(np.asarray(target).tolist()
            if not isinstance(target, Mapping) else dict(target)),
            hint=f"Classes {short_repr(empty_wanted.tolist())} have no examples and cannot be sampled",
        )
    return _normalised("target", shares, target)


def sampling_plan(
    table: WeightTable,
    target: Target = None,
    *,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    sampling_strength: float = 1.0,
    epoch_size: EpochSize = "keep",
    repeat_threshold: float | None = None,
) -> SamplingPlan:
    """Computes the sampler's factors, the sampled mix and residual weights.

    See the module docstring for the maths.

    Args:
      table: the data's counts.
      target: see ``resolve_target``.
      scheme: see ``resolve_target``.
      scheme_params: see ``resolve_target``.
      sampling_strength: sigma in [0, 1]: 0 means weights only (no sampling),
        1 means sampling only (residual weights all 1).
      epoch_size: ``"keep"`` (as many examples as the input), ``"keep_all"``
        (the smallest factor is 1, so nothing is dropped), or an int.
      repeat_threshold: multilabel only, LVIS's t. Default: the largest label
        frequency, so every label is brought up to ``sqrt(f_max / f_l)``.

    Returns:
      A ``SamplingPlan``.

    Example:
      >>> plan = sampling_plan(WeightTable.from_counts([900, 100]))
      >>> plan.factors, plan.expected_epoch_size
      (array([0.55555556, 5.        ]), 1000.0)
    """
    if table.task == "multilabel":
        return _multilabel_plan(table, target, scheme, sampling_strength, epoch_size, repeat_threshold)
    if repeat_threshold is not None:
        raise invalid("repeat_threshold", "None for a single-label table", repeat_threshold)
    sigma = _unit_interval("sampling_strength", sampling_strength)
    q = resolve_target(table, target, scheme=scheme, scheme_params=scheme_params)
    p = table.counts / table.counts.sum()
    # Geometric interpolation, computed in logs; classes with q_c = 0 get s_c = 0
    # unless sigma = 0 (weights only: the data is left as it is).
    if sigma == 0.0:
        s = p.copy()
    else:
        s = np.zeros_like(p)
        live = (p > 0) & (q > 0)
        s[live] = np.exp((1.0 - sigma) * np.log(p[live]) + sigma * np.log(q[live]))
        s /= s.sum()
    ratio = np.divide(s, p, out=np.zeros_like(p), where=p > 0)
    n = float(table.counts.sum())
    scale = _scale(epoch_size, ratio, n)
    factors = scale * ratio
    weights = np.divide(q, s, out=np.zeros_like(q), where=s > 0)
    return SamplingPlan(
        target=q,
        sampled=s,
        factors=factors,
        weights=weights,
        expected_epoch_size=float(np.dot(table.counts, factors)),
        input_size=float(table.num_examples),
    )


# --------------------------------------------------------------------- helpers
def _multilabel_plan(
    table: WeightTable,
    target: Target,
    scheme: str | None,
    sampling_strength: float,
    epoch_size: EpochSize,
    repeat_threshold: float | None,
) -> SamplingPlan:
    if target is not None or scheme is not None:
        raise invalid(
            "target", "None for a multilabel table", target if target is not None else scheme,
            hint="Multi-label sampling uses repeat factors; set repeat_threshold instead",
        )
    if epoch_size != "keep_all":
        raise invalid(
            "epoch_size", "'keep_all' for a multilabel table", epoch_size,
            hint="Repeat-factor sampling never drops examples, so the epoch grows",
        )
    sigma = _unit_interval("sampling_strength", sampling_strength)
    freq = table.counts / table.num_examples
    if repeat_threshold is None:
        threshold = float(freq.max())
    else:
        threshold = float(repeat_threshold)
        if isinstance(repeat_threshold, bool) or not 0 < threshold <= 1:
            raise invalid("repeat_threshold", "a float in (0, 1]", repeat_threshold)
    factors = np.ones_like(freq)
    live = freq > 0
    factors[live] = np.maximum(1.0, np.sqrt(threshold / freq[live]))
    # sigma < 1 shortens the way in log space, like the single-label case.
    factors = factors**sigma
    bound = table.num_examples + float(np.dot(table.counts, factors - 1.0))
    return SamplingPlan(
        target=None, sampled=None, factors=factors, weights=None,
        expected_epoch_size=bound, input_size=float(table.num_examples),
    )


def _scale(epoch_size: EpochSize, ratio: np.ndarray, n: float) -> float:
    if isinstance(epoch_size, str):
        if epoch_size == "keep":
            return 1.0  # sum_c n_c s_c / p_c = n sum_c s_c = n
        if epoch_size == "keep_all":
            return 1.0 / ratio[ratio > 0].min()
        raise invalid_choice("epoch_size", EPOCH_SIZES, epoch_size, hint="Or pass an int")
    if isinstance(epoch_size, bool) or not isinstance(epoch_size, (int, np.integer)) or epoch_size < 1:
        raise invalid("epoch_size", "'keep', 'keep_all' or a positive int", epoch_size)
    return float(epoch_size) / n


def _shares(table: WeightTable, target: Any) -> np.ndarray:
    k = table.num_classes
    if isinstance(target, Mapping):
        shares = np.zeros(k)
        names = {name: i for i, name in enumerate(table.class_names or ())}
        for key, value in target.items():
            if isinstance(key, bytes):
                key = key.decode()
            if isinstance(key, str) and key in names:
                index = names[key]
            elif isinstance(key, (int, np.integer)) and not isinstance(key, bool) and 0 <= key < k:
                index = int(key)
            else:
                raise invalid(
                    "target", f"dict keys that are class ids in [0, {k}) or class names", key,
                    hint=f"Known names: {short_repr(list(table.class_names))}" if table.class_names else None,
                )
            shares[index] = _share(value, target)
        return shares
    try:
        shares = np.asarray(target, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(
            "target", "'uniform', 'original', a float alpha, a dict or an array of shares", target
        ) from None
    if shares.shape != (k,):
        raise invalid("target", f"{k} shares, one per class", f"shape {shares.shape}")
    for value in shares:
        _share(value, target)
    return shares


def _share(value: Any, target: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise invalid("target", "numeric shares", target) from None
    if not math.isfinite(value) or value < 0:
        raise invalid("target", "finite shares >= 0", target)
    return value


def _normalised(name: str, shares: np.ndarray, received: Any) -> np.ndarray:
    total = shares.sum()
    if not np.isfinite(total) or total <= 0:
        raise invalid(name, "a mix with a positive share on some class with examples", received)
    return shares / total


def _unit_interval(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise invalid(name, "a float in [0, 1]", value)
    if not 0.0 <= float(value) <= 1.0:
        raise invalid(name, "a float in [0, 1]", value)
    return float(value)

