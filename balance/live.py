"""Rebalancing that changes during training, without rebuilding the pipeline.

``LiveRebalancer`` builds the same stream as ``balance.rebalance`` (one path:
``balance._stream.build_stream``), but the sampling rates and residual
weights sit in one ``tf.Variable`` that the running pipeline reads once per
block of ``mixing_window`` examples (once per batch with ``method="weight"``).
``update(target=..., sampling_strength=...)`` recomputes the plan in numpy
(``balance.targets.sampling_plan``) and assigns the variable; ``model.fit`` on
one ``.repeat()``ed dataset, on the same iterator, sees the change.

What can change, per method (the method itself is fixed when built):

* ``"both"``: the target q and the sampling strength sigma. At every setting
  the stream samples ``s ∝ p^(1-sigma) q^sigma`` and weights ``w = q / s``, so
  the weighted mix is exactly q. Factors and weights are read in one snapshot
  per block, so they always belong to the same setting.
* ``"resample"``: the target q and sigma (here the stream's mix is s itself:
  sigma 0 is the data's mix, 1 the target; ``rebalance`` fixes sigma at 1).
* ``"weight"``: the target q; weights ``q / p``. ``target="original"`` means
  weights 1 (the data as it is), a ``scheme`` means that scheme's weights
  (normalised to mean one per example), which is how deferred re-weighting
  switches weights on.

Lag. Blocks already computed when ``update`` runs keep the old setting:
at most ``max_lag_blocks`` blocks (the sampler's parallel calls, its
one-block prefetch and the block being cut), i.e. ``max_lag_examples``
examples; add any buffer of yours after the stream (``.prefetch(k)`` holds k
more batches; tf.data's automatic prefetch injection is switched off on the
stream so that it adds none).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from balance._heads import Heads, Tables
from balance._labels import Label, OnUnknown
from balance._rates import HeadRates, rates_for
from balance._stream import DEFAULT_MIXING_WINDOW, SamplerOptions, build_stream, even_block_size
from balance.composition import DEFAULT_STRENGTH, METHODS
from balance.errors import invalid, invalid_choice
from balance.targets import EpochSize, SamplingPlan, Target

_UNSET = object()  # "not given" in update(), where None is a value (the default target)


@dataclasses.dataclass(frozen=True)
class LiveSetting:
    """What the stream does now (the arguments of the last ``update``).

    Attributes:
      target: the target, as given (None with ``scheme``), or a mapping by head.
      scheme: the scheme whose mix is the target, or None.
      scheme_params: options for ``scheme``.
      sampling_strength: sigma.
    """

    target: Any = None
    scheme: Any = None
    scheme_params: Mapping[str, Any] | None = None
    sampling_strength: float = 0.5


class LiveRebalancer:
    """A ``rebalance`` stream whose target, sampling strength and weights change as it runs.

    Build it once, train on ``.dataset`` (repeat it), and call ``update``
    between epochs (directly in a custom loop, or through the callbacks in
    ``balance.live_callbacks``). Arguments mean what they mean for
    ``balance.rebalance``; single-label tables only (one per head).

    Args:
      dataset: the input, as for ``rebalance``.
      table: its counts (one table per output for several outputs).
      method: ``"resample"``, ``"weight"`` or ``"both"`` (default); fixed.
      target: the starting target (default ``"uniform"``), or a mapping by head.
      scheme: instead of ``target``, a scheme whose mix is the target.
      scheme_params: options for ``scheme``.
      sampling_strength: the starting sigma (default 0.5 for ``"both"``, 1
        for ``"resample"``; ``"weight"`` has none).
      batch_size, seed, label, label_form, on_unknown, mixing_window,
        redraw_each_epoch, resample_on: as for ``rebalance``. ``mixing_window``
        is also the block the rates are read for, so it sets the lag; it is
        taken with ``method="weight"`` too.
      epoch_size: ``"keep"`` (default: the expected pass stays the input's
        size whatever the setting), ``"keep_all"`` (it changes with the
        setting) or an int.

    Example:
      >>> live = balance.LiveRebalancer(ds, table, method="both", sampling_strength=0.0, batch_size=256, seed=0)
      >>> live.update(sampling_strength=0.5)      # the next blocks sample half-way
      >>> model.fit(live.dataset.repeat(), epochs=10, steps_per_epoch=live.steps_per_epoch(256),
      ...           callbacks=[balance.live_callbacks.Schedule(live, balance.schedules.progressive_strength(0, 10))])
    """

    def __init__(
        self,
        dataset: tf.data.Dataset,
        table: Tables,
        *,
        method: str = "both",
        target: Target | Mapping[Any, Target] = None,
        scheme: str | Mapping[Any, str | None] | None = None,
        scheme_params: Mapping[str, Any] | None = None,
        sampling_strength: float | None = None,
        batch_size: int | None = None,
        seed: int | None = None,
        label: Label | Mapping[Any, Label] = None,
        label_form: str = "auto",
        on_unknown: OnUnknown = "error",
        epoch_size: EpochSize | None = None,
        mixing_window: int | None = None,
        redraw_each_epoch: bool | None = None,
        resample_on: Any = None,
    ) -> None:
        if method not in METHODS:
            raise invalid_choice("method", METHODS, method)
        self.method = method
        if method == "weight":
            for name, value in (("seed", seed), ("epoch_size", epoch_size), ("redraw_each_epoch", redraw_each_epoch)):
                if value is not None:
                    raise invalid(name, "None for method='weight' (it does not resample)", value)
        self._heads = Heads.resolve(dataset, table, label=label, label_form=label_form, on_unknown=on_unknown)
        for head in self._heads.with_table:
            if head.labels.table.task == "multilabel":
                raise invalid("table", "single-label tables ('multiclass' or 'binary') for a live target mix",
                              "a 'multilabel' table" + (f" (head {head.name!r})" if self._heads.several else ""),
                              hint="Multi-label rows have no class mix to move; use balance.rebalance")
        if not self._heads.several and resample_on is not None:
            raise invalid("resample_on", "None for a single table (one output)", resample_on)
        self._resample_on = resample_on
        self._epoch_size = epoch_size
        self._setting = LiveSetting()
        rates = self._rates_for(target, scheme, scheme_params,
                                DEFAULT_STRENGTH[method] if sampling_strength is None else sampling_strength)
        self._layout, offset = [], 0
        for r in rates:
            spans = []
            for values in (r.factors, r.weights):
                spans.append(None if values is None else (offset, offset + len(values)))
                offset += 0 if values is None else len(values)
            self._layout.append(tuple(spans))
        with tf.init_scope(), tf.device("/CPU:0"):
            self.variable = tf.Variable(self._flat(rates), trainable=False, name="live_rebalance_rates")
        options = SamplerOptions(
            seed=seed, mixing_window=DEFAULT_MIXING_WINDOW if mixing_window is None else mixing_window,
            redraw_each_epoch=True if redraw_each_epoch is None else redraw_each_epoch)
        self._block = even_block_size(options.mixing_window, self._heads.first.table.num_examples)
        if method == "weight" and self._heads.batched and batch_size is None:  # one map per input batch
            static = self._heads.first.spec.shape[0]
            self._block = int(static) if static else None
        stream = build_stream(dataset, self._heads, rates, batch_size=batch_size, options=options,
                              read_rates=self._read)
        no_injected_prefetch = tf.data.Options()
        no_injected_prefetch.experimental_optimization.inject_prefetch = False
        self.dataset: tf.data.Dataset = stream.with_options(no_injected_prefetch)

    # ---------------------------------------------------------------- state
    def update(self, *, target: Any = _UNSET, scheme: Any = _UNSET, scheme_params: Any = _UNSET,
               sampling_strength: Any = _UNSET) -> tuple[SamplingPlan | None, ...]:
        """Changes the setting; what is not given stays. The next blocks follow it.

        ``target`` and ``scheme`` replace each other (giving one clears the
        other). Validated before anything changes: a bad value leaves the
        stream as it was.

        Returns:
          The new ``SamplingPlan`` of each head (None for a head without a table).
        """
        s = self._setting
        if target is not _UNSET and scheme is not _UNSET and target is not None and scheme is not None:
            raise invalid("scheme", "None when `target` is given (pass one of them)", scheme)
        new_target, new_scheme, new_params = s.target, s.scheme, s.scheme_params
        if target is not _UNSET:
            new_target, new_scheme, new_params = target, None, None
        if scheme is not _UNSET:
            new_target, new_scheme, new_params = None, scheme, None
        if scheme_params is not _UNSET:
            new_params = scheme_params
        strength = s.sampling_strength
        if sampling_strength is not _UNSET:
            if self.method == "weight":
                raise invalid("sampling_strength", "not given for method='weight' (it does not resample)",
                              sampling_strength)
            strength = sampling_strength
        rates = self._rates_for(new_target, new_scheme, new_params, strength)
        self.variable.assign(self._flat(rates))
        return self.plans

    @property
    def setting(self) -> LiveSetting:
        """The current setting."""
        return self._setting

    @property
    def plans(self) -> tuple[SamplingPlan | None, ...]:
        """The current ``SamplingPlan`` of each head (None for a head without a table)."""
        return tuple(r.plan for r in self._rates)

    @property
    def heads(self) -> tuple[Any, ...]:
        """The heads' names (``(None,)`` for a single output)."""
        return self._heads.names

    @property
    def tables(self) -> tuple[Any, ...]:
        """Each head's ``WeightTable`` (None for a head without one)."""
        return tuple(None if h.labels is None else h.labels.table for h in self._heads.heads)

    @property
    def expected_epoch_size(self) -> float:
        """Expected examples per pass over the input at the current setting."""
        sampled = [r.plan for r in self._rates if r.factors is not None]
        if not sampled:
            return float(self._heads.first.table.num_examples)
        return max(p.expected_epoch_size for p in sampled)

    def steps_per_epoch(self, batch_size: int) -> int:
        """Steps of one pass at the current setting; see ``SamplingPlan.steps_per_epoch``.

        With ``epoch_size="keep"`` (default) or an int, this does not change with
        the setting, so it is the ``steps_per_epoch`` for ``model.fit``.
        """
        sampled = [r.plan for r in self._rates if r.factors is not None]
        plans = sampled or [r.plan for r in self._rates if r.plan is not None][:1]
        return max(p.steps_per_epoch(batch_size) for p in plans)

    @property
    def max_lag_blocks(self) -> int:
        """Blocks that may still follow the old setting after ``update``.

        The sampler's parallel calls (tf.data's AUTOTUNE runs at most one per
        CPU core), its one-block prefetch and the block being cut into batches.
        A block is ``mixing_window`` examples (made even, see
        ``balance._stream.even_block_size``); batched input with
        ``method="weight"`` and no ``batch_size`` is weighted batch by batch.
        """
        return (os.cpu_count() or 1) + 2

    @property
    def max_lag_examples(self) -> int | None:
        """``max_lag_blocks`` times the block size.

        None for batched input of no static batch size with ``method="weight"``.
        """
        return None if self._block is None else self.max_lag_blocks * self._block

    # ------------------------------------------------------------ internals
    def _rates_for(self, target, scheme, scheme_params, sampling_strength) -> tuple[HeadRates, ...]:
        if self.method == "both":
            _unit("sampling_strength", sampling_strength)
        rates = rates_for(self._heads, method=self.method, target=target, scheme=scheme,
                          scheme_params=scheme_params, sampling_strength=sampling_strength,
                          epoch_size=self._epoch_size, repeat_threshold=None, resample_on=self._resample_on)
        self._rates = rates
        self._setting = LiveSetting(target=target, scheme=scheme, scheme_params=scheme_params,
                                    sampling_strength=float(sampling_strength))
        return rates

    def _flat(self, rates: tuple[HeadRates, ...]) -> np.ndarray:
        parts = [np.asarray(v, np.float32) for r in rates for v in (r.factors, r.weights) if v is not None]
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def _read(self) -> tuple[HeadRates, ...]:
        """The rates as tensors, from one read of the variable (one consistent snapshot)."""
        flat = self.variable.read_value()
        out = []
        for spans in self._layout:
            factors, weights = (None if span is None else flat[span[0]:span[1]] for span in spans)
            out.append(HeadRates(factors=factors, weights=weights))
        return tuple(out)


def _unit(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            0.0 <= float(value) <= 1.0):
        raise invalid(name, "a float in [0, 1]", value)
