"""What the stream does to each head: sampling rates, sample weights, and the plan behind them.

``HeadRates`` is the one place these live. ``rates_for`` derives them from
``rebalance``'s options (one value for all heads, or a mapping by head) with
``balance.targets.sampling_plan``; ``attach_sample_weights`` builds them from
a weighting scheme. ``balance._stream.build_stream`` only reads them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from balance._heads import Head, Heads
from balance._labels import Labels
from balance.errors import InvalidArgumentError, invalid, short_repr
from balance.targets import SamplingPlan, sampling_plan

PER_HEAD = ("target", "scheme", "repeat_threshold")


@dataclasses.dataclass(frozen=True)
class HeadRates:
    """What the stream does for one head, fixed before any data flows.

    The arrays may also be ``tf.Variable``s: the stream reads them inside its
    map functions, so assigning new values changes the stream from the next
    block on.

    Attributes:
      factors: the sampling rates: per class, the mean number of copies of
        an example (for multi-hot labels per label; an example takes the max
        over its positives). None: this head does not drive the sampler.
        With several heads driving it, an example takes the max over heads.
      weights: per class, the sample weight (residual weights ``q / s``, or a
        scheme's weights); for multi-hot labels a pair ``(pos, neg)``. None:
        no weight for this head (weight 1 if another head has weights).
      plan: the ``SamplingPlan`` (target q, sampled mix s) they come from.
    """

    factors: Any = None
    weights: Any = None
    plan: SamplingPlan | None = None


def rates_for(
    heads: Heads,
    *,
    method: str,
    target: Any,
    scheme: Any,
    scheme_params: Mapping[str, Any] | None,
    sampling_strength: float,
    epoch_size: Any,
    repeat_threshold: Any,
    resample_on: Any,
) -> tuple[HeadRates, ...]:
    """One ``HeadRates`` per head for ``rebalance``'s options.

    ``target``, ``scheme`` and ``repeat_threshold`` are one value for every
    head that can use it, or (several heads) a mapping by head name. With
    several heads, the sampler follows ``resample_on`` (default: every head
    with a table, an example taking the max of its heads' factors).
    """
    with_table = [h.name for h in heads.with_table]
    if resample_on is not None and resample_on not in with_table:
        raise invalid("resample_on", f"one of the heads with a table {short_repr(with_table)}", resample_on)
    sampled = {h.name: method != "weight" and h.labels is not None and resample_on in (None, h.name)
               for h in heads.heads}
    values = {name: _per_head(name, value, heads, method, sampled)
              for name, value in (("target", target), ("scheme", scheme), ("repeat_threshold", repeat_threshold))}
    rates, params_used = [], False
    for i, head in enumerate(heads.heads):
        if head.labels is None:
            rates.append(HeadRates())
            continue
        # scheme_params go with a scheme; multilabel weights have one by default ("balanced").
        with_params = values["scheme"][i] is not None or (
            head.labels.table.task == "multilabel" and method == "weight")
        params_used |= with_params
        try:
            rates.append(head_rates(
                head.labels, method=method, sampled=sampled[head.name], target=values["target"][i],
                scheme=values["scheme"][i], scheme_params=scheme_params if with_params else None,
                sampling_strength=sampling_strength, epoch_size=epoch_size,
                repeat_threshold=values["repeat_threshold"][i]))
        except InvalidArgumentError as err:
            if not heads.several:
                raise
            raise type(err)(f"{err} (head {head.name!r})", *err.args[1:]) from None
    if scheme_params and not params_used:
        raise invalid("scheme_params", "None unless `scheme` is given", scheme_params)
    return tuple(rates)


def head_rates(
    labels: Labels,
    *,
    method: str,
    sampled: bool,
    target: Any = None,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    sampling_strength: float = 1.0,
    epoch_size: Any = None,
    repeat_threshold: float | None = None,
) -> HeadRates:
    """The rates of one head: ``sampled`` says whether it drives the sampler.

    Single-label: the plan's factors (if sampled) and residual weights
    ``q / s`` (unless ``method="resample"``). A head that is only weighted
    uses sampling strength 0, so its weights are ``q / p``. Multilabel:
    repeat factors when resampling, ``table.label_weights(scheme)`` when
    weighting (``"balanced"`` by default).
    """
    table = labels.table
    if table.task == "multilabel":
        return _multilabel_rates(labels, method, sampled, target, scheme, scheme_params, sampling_strength,
                                 epoch_size, repeat_threshold)
    plan = sampling_plan(table, target, scheme=scheme, scheme_params=scheme_params,
                         sampling_strength=sampling_strength if sampled else 0.0, epoch_size=epoch_size or "keep",
                         repeat_threshold=repeat_threshold)
    return HeadRates(factors=plan.factors if sampled else None,
                     weights=None if method == "resample" else plan.weights, plan=plan)


def _multilabel_rates(labels, method, sampled, target, scheme, scheme_params, sampling_strength, epoch_size,
                      repeat_threshold) -> HeadRates:
    if method == "both":
        raise invalid(
            "method", "'resample' or 'weight' for a multilabel table", method,
            hint="Exact composition needs one class per example; with several labels per row the "
            "sampled label mix depends on co-occurrence. Use method='resample' (repeat factors) "
            "with a pos_weight loss, or method='weight'",
        )
    if target is not None:
        raise invalid("target", "None for a multilabel table", target,
                      hint="Multi-label sampling uses repeat factors; set repeat_threshold")
    if method == "weight":
        if repeat_threshold is not None:
            raise invalid("repeat_threshold", "None for method='weight' (it does not resample)", repeat_threshold)
        pos, neg = labels.table.label_weights(scheme or "balanced", **dict(scheme_params or {}))
        return HeadRates(weights=(np.asarray(pos), np.asarray(neg)))
    if scheme is not None:
        raise invalid("scheme", "None for method='resample' on a multilabel table", scheme,
                      hint="Repeat factors come from label frequencies; set repeat_threshold")
    if not sampled:
        return HeadRates()
    plan = sampling_plan(labels.table, sampling_strength=sampling_strength, epoch_size=epoch_size or "keep_all",
                         repeat_threshold=repeat_threshold)
    return HeadRates(factors=plan.factors, plan=plan)


def _uses(option: str, head: Head, method: str, sampled: bool) -> bool:
    """Whether ``head`` can use ``option`` under ``method``."""
    if head.labels is None:
        return False
    multilabel = head.labels.table.task == "multilabel"
    if option == "repeat_threshold":
        return multilabel and sampled
    if option == "scheme" and multilabel:
        return method == "weight"
    return not multilabel and (sampled or method != "resample")


def _per_head(option: str, value: Any, heads: Heads, method: str, sampled: dict[Any, bool]) -> list[Any]:
    """``option``'s value for each head.

    One head takes the value as it is (``head_rates`` refuses what it cannot
    use). Several heads: a mapping gives each head its own value (a head it
    cannot use refuses it); one value goes to every head that can use it,
    and is refused if none can.
    """
    if not heads.several:
        return [value]
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(heads.names), key=str)
        if unknown:
            raise invalid(option, f"one value for all heads, or a mapping keyed by the heads "
                          f"{short_repr(list(heads.names))}", short_repr(dict(value)),
                          hint=f"No head named {unknown}")
        out = []
        for head in heads.heads:
            own = value.get(head.name)
            if own is not None and not _uses(option, head, method, sampled[head.name]):
                raise invalid(f"{option}[{head.name!r}]", f"None for this head with method={method!r}", own,
                              hint="It has no table, or does not use this option (see docs/tfdata.md)")
            out.append(own)
        return out
    if value is None:
        return [None] * len(heads.heads)
    users = [_uses(option, h, method, sampled[h.name]) for h in heads.heads]
    if not any(users):
        raise invalid(option, f"None: no head uses it with method={method!r}", value)
    return [value if use else None for use in users]
