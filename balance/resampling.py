"""Single-pass, streaming, vectorised resampling of a ``tf.data`` pipeline.

The input is cut into blocks of ``mixing_window`` examples. In each block,
every example is emitted ``floor(r) + Bernoulli(frac(r))`` times, where r is
its class's repeat factor (``SamplingPlan.factors``; for multi-label rows the
max over positive labels). This is one ``tf.repeat`` of indices and one gather
per component per block, so it runs at the speed of the plain pipeline.

Spreading duplicates. Copies of one example are placed evenly across the
block's output (copy j of an example with k copies sorts at ``(j + u) / k``,
u uniform; examples with one copy land uniformly at random, which shuffles
the block). An example with r copies then shows up about
``r · batch_size / mixing_window`` times in a batch; a bigger window spreads
copies further but holds ``mixing_window`` examples in memory and delays the
first batch. Blocks are sized to split the table's ``num_examples`` evenly
(see ``even_block_size``), so the last block is not a short one.
Randomness comes from ``Dataset.random(seed)``: the same seed gives the same
stream, and each new iteration (epoch) draws afresh unless
``redraw_each_epoch=False``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from balance._errors import invalid
from balance._labels import (
    LabelFn,
    LabelReader,
    check_dataset,
    get_label,
    label_key_for,
    label_spec,
)
from balance.table import WeightTable
from balance.targets import EpochSize, Target, sampling_plan

DEFAULT_MIXING_WINDOW = 8192


def resample(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    target: Target = None,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    label_fn: LabelFn | None = None,
    label_key: str | None = None,
    label_form: str = "auto",
    seed: int | None = None,
    epoch_size: EpochSize = "keep",
    repeat_threshold: float | None = None,
    mixing_window: int = DEFAULT_MIXING_WINDOW,
    batched: bool | None = None,
    batch_size: int | None = None,
    redraw_each_epoch: bool = True,
    on_unknown: str = "error",
) -> tf.data.Dataset:
    """Resamples a dataset toward a target class mix in one streaming pass.

    Elements keep their structure (tuples, dicts, TFDS ``as_supervised``).

    Batched or unbatched input: unbatched input gives unbatched output (batch
    it yourself, or pass ``batch_size``). Batched input gives batches of
    ``batch_size``, by default the input's static batch size (use
    ``drop_remainder=True`` or pass ``batch_size``). Whether the input is
    batched is read from the label's rank (a scalar id or a ``(1,)`` label
    per example; ``(K,)`` one-/multi-hot rows); pass ``batched`` to override.
    Dense labels (tokens, pixels) have no per-example class: weight them with
    ``attach_sample_weights`` instead.

    Args:
      dataset: the input.
      table: its counts (e.g. from the Beam job or ``WeightTable.from_labels``).
      target: the class mix wanted: ``"uniform"`` (default), ``"original"``,
        a float alpha (q_c ∝ n_c^alpha), or shares (dict or array). See
        ``balance.targets``. Multilabel tables use repeat-factor sampling.
      scheme: alternatively, the mix that weighting by this scheme yields.
      scheme_params: options for ``scheme``.
      label_fn: gets the label from an element (or a block of them); default
        the second item of a tuple, or ``element[label_key]`` for dicts.
      label_key: dict key of the label; default the table's or ``"label"``.
      label_form: ``"auto"``, ``"sparse"``, ``"one_hot"`` or ``"multi_hot"``.
      seed: same seed, same stream. With per-worker input, use a different
        seed per worker (e.g. ``seed + ctx.input_pipeline_id``).
      epoch_size: ``"keep"`` (default: as many examples as the input),
        ``"keep_all"`` (no example dropped; required for multilabel) or an int.
      repeat_threshold: multilabel only, LVIS's t; see ``sampling_plan``.
      mixing_window: examples per block over which copies are spread.
      batched: whether the input is batched; inferred when None.
      batch_size: output batch size (see above).
      redraw_each_epoch: if False every iteration repeats the same draw.
      on_unknown: ``"error"`` or ``"default_weight"`` (unknown labels are kept
        once).

    Returns:
      The resampled dataset. ``balance.expected_epoch_size`` tells its size.

    Example:
      >>> ds = balance.resample(ds, table, target="uniform", seed=0).batch(64)
    """
    plan = sampling_plan(
        table, target, scheme=scheme, scheme_params=scheme_params, epoch_size=epoch_size,
        repeat_threshold=repeat_threshold,
    )
    return apply_factors(
        dataset, table, plan.factors, label_fn=label_fn, label_key=label_key, label_form=label_form,
        seed=seed, mixing_window=mixing_window, batched=batched, batch_size=batch_size,
        redraw_each_epoch=redraw_each_epoch, on_unknown=on_unknown,
    )


def apply_factors(
    dataset: tf.data.Dataset,
    table: WeightTable,
    factors: np.ndarray,
    *,
    label_fn: LabelFn | None = None,
    label_key: str | None = None,
    label_form: str = "auto",
    seed: int | None = None,
    mixing_window: int = DEFAULT_MIXING_WINDOW,
    batched: bool | None = None,
    batch_size: int | None = None,
    redraw_each_epoch: bool = True,
    on_unknown: str = "error",
) -> tf.data.Dataset:
    """Emits each example ``factors[class]`` times on average; see ``resample``."""
    check_dataset(dataset)
    _positive_int("mixing_window", mixing_window)
    if batch_size is not None:
        _positive_int("batch_size", batch_size)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))):
        raise invalid("seed", "an int or None", seed)
    key = label_key_for(dataset.element_spec, table, label_key)
    spec = label_spec(dataset, label_fn, key)
    reader = LabelReader.create(table, spec, label_form, on_unknown)
    batched = _is_batched(spec, reader.form, batched)
    factors_t = tf.constant(np.asarray(factors, np.float32))

    def factor_of(labels: tf.Tensor) -> tf.Tensor:
        if reader.form == "multi_hot":
            # LVIS: the max over positive labels; rows with none keep factor 1.
            return tf.reduce_max(tf.where(tf.cast(labels, tf.float32) > 0.5, factors_t, 1.0), axis=-1)
        ids, valid = reader.class_ids(labels)
        with tf.control_dependencies(reader.guard(valid, labels)):
            per_example = tf.where(valid, tf.gather(factors_t, ids), 1.0)
        return tf.reshape(per_example, [-1])

    def resample_block(block: Any, seed_pair: tf.Tensor) -> Any:
        r = factor_of(get_label(block, label_fn, key))
        seeds = tf.random.experimental.stateless_split(seed_pair, 2)
        u = tf.random.stateless_uniform(tf.shape(r), seeds[0])
        v = tf.random.stateless_uniform(tf.shape(r), seeds[1])
        base = tf.floor(r)
        copies = tf.cast(base, tf.int32) + tf.cast(u < r - base, tf.int32)  # stochastic rounding
        index = tf.repeat(tf.range(tf.size(copies)), copies)
        copy_no = tf.range(tf.size(index)) - tf.repeat(tf.cumsum(copies, exclusive=True), copies)
        spread = (tf.cast(copy_no, tf.float32) + tf.gather(v, index)) / tf.cast(
            tf.gather(copies, index), tf.float32
        )
        index = tf.gather(index, tf.argsort(spread))
        return tf.nest.map_structure(lambda t: tf.gather(t, index), block)

    block = even_block_size(mixing_window, table.num_examples)
    if batched:
        out_batch = batch_size or _static_batch(spec)
        blocks = dataset.rebatch(block)
    else:
        blocks = dataset.batch(block)
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=redraw_each_epoch).batch(2)
    out = tf.data.Dataset.zip((blocks, seeds)).map(
        resample_block, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(1)  # overlap the next block's gathers with re-batching this one
    if batched:
        return out.rebatch(out_batch)
    out = out.unbatch()
    return out.batch(batch_size) if batch_size else out


def even_block_size(window: int, num_examples: float) -> int:
    """The block size <= ``window`` that splits ``num_examples`` into equal blocks.

    A short last block would crowd its rare examples' copies into a few
    batches; equal blocks avoid that when the input holds the table's
    examples (with sharded input the last block may still be short).
    """
    blocks = max(1, math.ceil(num_examples / window))
    return max(1, math.ceil(num_examples / blocks))


def _is_batched(spec: tf.TensorSpec, form: str, batched: bool | None) -> bool:
    rank = spec.shape.rank
    per_example_rank = 1 if form in ("one_hot", "multi_hot") else 0
    if form == "dense":
        raise invalid(
            "label_form", "per-example labels for resampling", form,
            hint="Dense labels (tokens, pixels) have no single class per example; use "
            "method='weight' / attach_sample_weights",
        )
    if rank is None:
        if batched is None:
            raise invalid("batched", "True or False when the label's rank is unknown", None)
        return batched
    if per_example_rank == 0 and rank >= 1 and spec.shape[-1] == 1:
        per_example_rank = 1  # a (1,) label per example, as for sigmoid outputs
        if batched is None and rank == 1:
            return False
    inferred = rank - per_example_rank
    if inferred not in (0, 1):
        raise invalid(
            "label", f"{form} labels with one class per example, unbatched or batched",
            f"shape {spec.shape}",
            hint="Dense labels (tokens, pixels) cannot be resampled per example; use "
            "method='weight' / attach_sample_weights",
        )
    if batched is None:
        return inferred == 1
    if batched and rank == 0:
        raise invalid("batched", "False for scalar labels", batched)
    return batched


def _static_batch(spec: tf.TensorSpec) -> int:
    size = spec.shape[0] if spec.shape.rank else None
    if size is None:
        raise invalid(
            "batch_size", "an int for batched input whose batch size is not static", None,
            hint="Pass batch_size=..., or batch the input with drop_remainder=True",
        )
    return int(size)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise invalid(name, "a positive int", value)
