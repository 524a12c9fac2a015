"""Schedules for ``balance.live.LiveRebalancer``: plain functions ``epoch -> update``.

A schedule maps an epoch (0-based; a float between epochs when applied every
N steps) to the keyword arguments of ``LiveRebalancer.update``. In a custom
loop call ``live.update(**schedule(epoch))`` before each epoch; with
``model.fit`` pass ``balance.live_callbacks.Schedule(live, schedule)``.
Schedules hold no state, so a run resumed at epoch E (``keras.callbacks.
BackupAndRestore``) continues them where they were.

Pure numpy; no TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from balance.errors import invalid
from balance.table import WeightTable
from balance.targets import Target, resolve_target

Update = dict[str, Any]
ScheduleFn = Callable[[float], Update]


def deferred_reweighting(start_epoch: int, scheme: str = "effective_number", *,
                         scheme_params: Mapping[str, Any] | None = None) -> ScheduleFn:
    """Deferred re-weighting (DRW; Cao et al. 2019, "Learning Imbalanced Datasets with
    Label-Distribution-Aware Margin Loss"): no re-weighting before ``start_epoch``, then
    ``scheme``'s class weights.

    Before: ``target="original"`` (weights 1 with ``method="weight"``; with
    ``"both"`` also no sampling). From ``start_epoch`` on: the target is the mix
    that ``scheme``'s weights give, ``q_c ∝ n_c · w_c``; with ``method="weight"``
    each example is weighted ``q_c / p_c ∝ w_c`` (mean one per example). The
    paper's recipe is ``scheme="effective_number"`` (Cui et al. 2019, beta 0.9999
    on CIFAR-LT) switched on at 80% of training (epoch 160 of 200).

    Example:
      >>> drw = deferred_reweighting(160, "effective_number", scheme_params={"beta": 0.9999})
      >>> drw(0), drw(160)
      ({'target': 'original'}, {'scheme': 'effective_number', 'scheme_params': {'beta': 0.9999}})
    """
    _epoch("start_epoch", start_epoch)
    if not isinstance(scheme, str):
        raise invalid("scheme", "a weighting scheme name (see balance.SCHEMES)", scheme)
    params = dict(scheme_params or {})

    def schedule(epoch: float) -> Update:
        if epoch < start_epoch:
            return {"target": "original"}
        return {"scheme": scheme, "scheme_params": params or None}

    return schedule


def progressive_strength(start_epoch: float, end_epoch: float, *, start: float = 0.0,
                         end: float = 1.0) -> ScheduleFn:
    """The sampling strength sigma moved linearly from ``start`` (until ``start_epoch``)
    to ``end`` (from ``end_epoch`` on).

    With ``method="both"`` the weighted mix stays exactly the target while the
    work moves from the weights (sigma 0) to the sampler (sigma 1). With
    ``method="resample"`` the stream's mix itself moves from the data's mix
    towards the target, along ``s ∝ p^(1-sigma) q^sigma`` (geometric); for
    the linear mix of progressive-balanced sampling use ``progressive_target``.

    Example:
      >>> ramp = progressive_strength(0, 10)
      >>> ramp(0), ramp(5), ramp(12)
      ({'sampling_strength': 0.0}, {'sampling_strength': 0.5}, {'sampling_strength': 1.0})
    """
    _epoch("start_epoch", start_epoch)
    _epoch("end_epoch", end_epoch)
    if end_epoch <= start_epoch:
        raise invalid("end_epoch", f"an epoch after start_epoch={start_epoch}", end_epoch)
    for name, value in (("start", start), ("end", end)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise invalid(name, "a sampling strength in [0, 1]", value)

    def schedule(epoch: float) -> Update:
        t = min(1.0, max(0.0, (epoch - start_epoch) / (end_epoch - start_epoch)))
        return {"sampling_strength": float(start + t * (end - start))}

    return schedule


def progressive_target(table: WeightTable, start_epoch: float, end_epoch: float, *,
                       start: Target = "original", end: Target = "uniform") -> ScheduleFn:
    """The target moved linearly from ``start``'s mix to ``end``'s:
    ``q(t) = (1 - t) q_start + t q_end``, t going from 0 at ``start_epoch`` to 1 at
    ``end_epoch``.

    With ``method="resample"`` (sigma 1) and the defaults this is
    progressive-balanced sampling (Kang et al. 2020, "Decoupling Representation
    and Classifier for Long-Tailed Recognition"), where t is the fraction of
    training done: instance-balanced to class-balanced.

    Example:
      >>> pb = progressive_target(WeightTable.from_counts([900, 100]), 0, 10)
      >>> pb(5)["target"]
      array([0.7, 0.3])
    """
    _epoch("start_epoch", start_epoch)
    _epoch("end_epoch", end_epoch)
    if end_epoch <= start_epoch:
        raise invalid("end_epoch", f"an epoch after start_epoch={start_epoch}", end_epoch)
    q0, q1 = resolve_target(table, start), resolve_target(table, end)

    def schedule(epoch: float) -> Update:
        t = min(1.0, max(0.0, (epoch - start_epoch) / (end_epoch - start_epoch)))
        return {"target": (1.0 - t) * q0 + t * q1}

    return schedule


def by_epoch(*, target: Callable[[float], Any] | None = None,
             sampling_strength: Callable[[float], float] | None = None) -> ScheduleFn:
    """A schedule from your own functions ``epoch -> target`` and/or ``epoch -> sigma``.

    Example:
      >>> warm_then_uniform = by_epoch(target=lambda e: "original" if e < 3 else "uniform")
      >>> warm_then_uniform(4)
      {'target': 'uniform'}
    """
    if target is None and sampling_strength is None:
        raise invalid("target", "a function epoch -> target (or pass sampling_strength=)", None)
    for name, fn in (("target", target), ("sampling_strength", sampling_strength)):
        if fn is not None and not callable(fn):
            raise invalid(name, "a function epoch -> value", fn)

    def schedule(epoch: float) -> Update:
        update = {}
        if target is not None:
            update["target"] = target(epoch)
        if sampling_strength is not None:
            update["sampling_strength"] = sampling_strength(epoch)
        return update

    return schedule


def difficulty_target(table: WeightTable, recall: Any, *, tau: float | str = "dynamic",
                      min_difficulty: float = 0.05, base: Target = "original") -> np.ndarray:
    """The target that class-wise difficulty-balanced weights give (CDB; Sinha, Ohashi and
    Nakamura 2020, "Class-Wise Difficulty-Balanced Loss for Solving Class-Imbalance").

    Each class's difficulty is ``d_c = 1 - recall_c`` (its recall, i.e. per-class
    accuracy, on validation data) and its CDB weight ``w_c = d_c^tau``. The
    target is the mix those weights give on the training data,
    ``q_c ∝ n_c · w_c``; with ``method="weight"`` the stream then weights each
    example ``q_c / p_c ∝ w_c``, CDB's weights up to a constant (ours have mean
    one per example; CDB's sum to K over classes).

    Args:
      table: the training counts n.
      recall: K per-class recalls in [0, 1] (``balance.per_class_recall``). A
        class with no validation examples (NaN) gets the mean difficulty.
      tau: the exponent, a float >= 0, or ``"dynamic"``: CDB's
        ``tau = sigmoid((1 - min_c d_c) / (1 - max_c d_c + 0.01))``, larger when
        the best and worst classes are far apart.
      min_difficulty: our floor on d_c (not in the paper), so that a class
        with recall 1 keeps some weight and stays in training.
      base: the mix the weights apply to, ``q_c ∝ base_c · w_c``. ``"original"``
        (default, the training data's mix n) is CDB. ``"uniform"`` is our
        combination, not the paper's: CDB's weights on top of the
        class-balanced mix, so lagging classes get more than an equal share.

    Example:
      >>> difficulty_target(WeightTable.from_counts([900, 100]), [0.95, 0.5], tau=1.0).round(3)
      array([0.474, 0.526])
    """
    if table.task == "multilabel":
        raise invalid("table", "a 'multiclass' or 'binary' table", table.task)
    k = table.num_classes
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    if r.shape != (k,):
        raise invalid("recall", f"{k} per-class recalls, one per class", f"shape {r.shape}")
    known = ~np.isnan(r)
    if not known.any() or np.any((r[known] < 0) | (r[known] > 1)):
        raise invalid("recall", "recalls in [0, 1] (NaN for a class without validation examples)", r.tolist())
    if isinstance(min_difficulty, bool) or not isinstance(min_difficulty, (int, float)) or not (
            0.0 < min_difficulty <= 1.0):
        raise invalid("min_difficulty", "a float in (0, 1]", min_difficulty)
    d = np.where(known, 1.0 - r, np.mean(1.0 - r[known]))
    if isinstance(tau, str):
        if tau != "dynamic":
            raise invalid("tau", "a float >= 0 or 'dynamic'", tau)
        exponent = 1.0 / (1.0 + math.exp(-(1.0 - d.min()) / (1.0 - d.max() + 0.01)))
    elif isinstance(tau, bool) or not isinstance(tau, (int, float)) or not (math.isfinite(tau) and tau >= 0):
        raise invalid("tau", "a float >= 0 or 'dynamic'", tau)
    else:
        exponent = float(tau)
    weights = np.maximum(d, min_difficulty) ** exponent
    shares = resolve_target(table, base) * weights
    return shares / shares.sum()


def _epoch(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise invalid(name, "an epoch >= 0", value)
