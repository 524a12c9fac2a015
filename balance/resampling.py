"""Resampling a ``tf.data`` pipeline toward a target class mix, keeping its elements.

Single pass, streaming and vectorised: see ``balance._stream`` for how blocks
are drawn, how duplicates are spread and how the stream is cut.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from balance._heads import Heads
from balance._labels import Label, OnUnknown
from balance._rates import rates_for
from balance._stream import DEFAULT_MIXING_WINDOW, SamplerOptions, build_stream
from balance.table import WeightTable
from balance.targets import Target

__all__ = ["DEFAULT_MIXING_WINDOW", "resample"]


def resample(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    target: Target = None,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    label: Label = None,
    label_form: str = "auto",
    on_unknown: OnUnknown = "error",
    epoch_size: str | int = "keep",
    repeat_threshold: float | None = None,
    mixing_window: int = DEFAULT_MIXING_WINDOW,
    redraw_each_epoch: bool = True,
) -> tf.data.Dataset:
    """Resamples a dataset toward a target class mix in one streaming pass.

    Elements keep their structure (tuples, dicts, TFDS ``as_supervised``);
    ``balance.rebalance`` gives ``(x, y)`` tuples for ``model.fit`` instead.

    Batched or unbatched input: whether the input is batched is read from
    the label's rank (a scalar id or a ``(1,)`` label per example; ``(K,)``
    one-/multi-hot rows). With ``batch_size`` the output is batches of that
    size, cut from the resampled blocks (the fast path for unbatched input).
    Without it, unbatched input gives unbatched output and batched input
    keeps its static batch size.

    Args:
      dataset: the input.
      table: its counts (e.g. from the Beam job or ``WeightTable.from_labels``).
      target: the class mix wanted: ``"uniform"`` (default), ``"original"``,
        a float alpha (q_c ∝ n_c^alpha), or shares (dict or array). See
        ``balance.targets``. Multilabel tables use repeat-factor sampling.
      scheme: alternatively, the mix that weighting by this scheme yields.
      scheme_params: options for ``scheme``.
      batch_size: output batch size (see above).
      seed: same seed, same stream. With per-worker input, use a different
        seed per worker (e.g. ``seed + ctx.input_pipeline_id``).
      label: the dict key of the label (default the table's ``label_key`` or
        ``"label"``) or a function ``element -> label``; tuples use their
        second item.
      label_form: ``"auto"``, ``"sparse"``, ``"one_hot"`` or ``"multi_hot"``.
      on_unknown: ``"error"`` (default), or a float: labels outside the table
        are then kept once.
      epoch_size: ``"keep"`` (default: as many examples as the input),
        ``"keep_all"`` (no example dropped; required for multilabel) or an int.
      repeat_threshold: multilabel only, LVIS's t; see ``sampling_plan``.
      mixing_window: examples per block over which copies are spread.
      redraw_each_epoch: if False every iteration repeats the same draw.

    Returns:
      The resampled dataset; ``balance.sampling_plan(...).expected_epoch_size`` tells its size.

    Example:
      >>> ds = balance.resample(ds, table, target="uniform", seed=0, batch_size=64)
    """
    heads = Heads.resolve(dataset, table, label=label, label_form=label_form, on_unknown=on_unknown)
    options = SamplerOptions(seed=seed, mixing_window=mixing_window, redraw_each_epoch=redraw_each_epoch)
    rates = rates_for(heads, method="resample", target=target, scheme=scheme, scheme_params=scheme_params,
                      sampling_strength=1.0, epoch_size=None if epoch_size == "keep" else epoch_size,
                      repeat_threshold=repeat_threshold, resample_on=None)
    return build_stream(dataset, heads, rates, batch_size=batch_size, options=options, keep_elements=True)
