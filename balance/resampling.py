"""Single-pass, streaming, vectorised resampling of a ``tf.data`` pipeline.

The input is grouped into blocks of ``mixing_window`` examples. In each block,
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

How the stream is cut (``build_stream``, also used for weights only): the
only per-element steps are tf.data's own ``batch``, ``rebatch`` and
``unbatch``; everything else runs once per block or batch.

| input | with ``batch_size`` | without |
|---|---|---|
| unbatched | ``batch(block)`` → map → ``rebatch(batch_size)`` | ``batch(block)`` → map → ``unbatch()`` |
| batched | ``rebatch(block)`` → map → ``rebatch(batch_size)`` | same, at the input's static batch size |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from balance._labels import Label, Labels, OnUnknown, unpack
from balance.errors import invalid
from balance.table import WeightTable
from balance.targets import Target, sampling_plan

DEFAULT_MIXING_WINDOW = 8192
Finish = Callable[[Any], Any]
FactorFn = Callable[[Any], tf.Tensor]


@dataclasses.dataclass(frozen=True)
class SamplerOptions:
    """How the sampler draws; validated when built.

    Attributes:
      seed: same seed, same stream (None: nondeterministic).
      mixing_window: examples per block over which copies are spread.
      redraw_each_epoch: False repeats the same draw every iteration.
    """

    seed: int | None = None
    mixing_window: int = DEFAULT_MIXING_WINDOW
    redraw_each_epoch: bool = True

    def __post_init__(self) -> None:
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer))):
            raise invalid("seed", "an int or None", self.seed)
        positive_int("mixing_window", self.mixing_window)
        if not isinstance(self.redraw_each_epoch, bool):
            raise invalid("redraw_each_epoch", "True or False", self.redraw_each_epoch)


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
      The resampled dataset. ``balance.expected_epoch_size`` tells its size.

    Example:
      >>> ds = balance.resample(ds, table, target="uniform", seed=0, batch_size=64)
    """
    labels = Labels.resolve(dataset, table, label=label, label_form=label_form, on_unknown=on_unknown)
    if table.task == "multilabel" and epoch_size == "keep":
        epoch_size = "keep_all"  # repeat factors never drop examples
    plan = sampling_plan(table, target, scheme=scheme, scheme_params=scheme_params, epoch_size=epoch_size,
                         repeat_threshold=repeat_threshold)
    options = SamplerOptions(seed=seed, mixing_window=mixing_window, redraw_each_epoch=redraw_each_epoch)
    return build_stream(dataset, labels, factor_of=factor_fn(labels, plan.factors), finish=None,
                        batch_size=batch_size, options=options)


def build_stream(
    dataset: tf.data.Dataset,
    labels: Labels,
    *,
    factor_of: FactorFn | None,
    finish: Finish | None,
    batch_size: int | None,
    options: SamplerOptions | None = None,
) -> tf.data.Dataset:
    """Resamples by ``factor_of`` (labels -> copies per example; None: no
    resampling), applies ``finish`` to every block or batch, and cuts the
    output as the module docstring says."""
    if batch_size is not None:
        positive_int("batch_size", batch_size)
    options = options or SamplerOptions()
    finish = finish or (lambda element: element)
    if labels.batched is None:
        if factor_of is not None:
            raise invalid("label", "labels with one class per example, unbatched or batched, for resampling",
                          f"{labels.form} labels of shape {labels.spec.shape}",
                          hint="Dense labels (tokens, pixels) have no single class per example; use method='weight'")
        if batch_size is not None:
            raise invalid("batch_size", "None for dense labels (batch the input yourself)", batch_size,
                          hint="Tokens and pixel maps may differ in shape between examples")
        return dataset.map(lambda *e: finish(unpack(e)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    block = even_block_size(options.mixing_window, labels.table.num_examples)

    if factor_of is None:
        if labels.batched:
            ds = dataset if batch_size is None else dataset.rebatch(batch_size)
        else:
            ds = dataset.batch(batch_size or block)
        out = ds.map(lambda *e: finish(unpack(e)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return out if labels.batched or batch_size else out.unbatch()

    out_batch = batch_size or (_static_batch(labels.spec) if labels.batched else None)
    resample_block = _block_sampler(labels, factor_of)
    blocks = dataset.rebatch(block) if labels.batched else dataset.batch(block)
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=options.redraw_each_epoch).batch(2)
    out = tf.data.Dataset.zip((blocks, seeds)).map(
        lambda b, s: finish(resample_block(b, s)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(1)  # overlap the next block's gathers with cutting this one
    return out.rebatch(out_batch) if out_batch else out.unbatch()


def factor_fn(labels: Labels, factors: np.ndarray) -> FactorFn:
    """labels -> the mean number of copies of each example (shape ``(B,)``)."""
    factors_t = tf.constant(np.asarray(factors, np.float32))

    def factor_of(y: tf.Tensor) -> tf.Tensor:
        if labels.form == "multi_hot":
            # LVIS: the max over positive labels; rows with none keep factor 1.
            y = tf.reshape(y, [tf.shape(y)[0], -1])
            return tf.reduce_max(tf.where(tf.cast(y, tf.float32) > 0.5, factors_t, 1.0), axis=-1)
        ids, known, whole = labels.class_ids(y)
        with tf.control_dependencies(labels.guards(y, known, whole)):
            per_example = tf.where(known, tf.gather(factors_t, ids), 1.0)
        return tf.reshape(per_example, [-1])

    return factor_of


def _block_sampler(labels: Labels, factor_of: FactorFn) -> Callable[[Any, tf.Tensor], Any]:
    def resample_block(block: Any, seed_pair: tf.Tensor) -> Any:
        r = factor_of(labels.get(block))
        seeds = tf.random.experimental.stateless_split(seed_pair, 2)
        u = tf.random.stateless_uniform(tf.shape(r), seeds[0])
        v = tf.random.stateless_uniform(tf.shape(r), seeds[1])
        base = tf.floor(r)
        copies = tf.cast(base, tf.int32) + tf.cast(u < r - base, tf.int32)  # stochastic rounding
        index = tf.repeat(tf.range(tf.size(copies)), copies)
        copy_no = tf.range(tf.size(index)) - tf.repeat(tf.cumsum(copies, exclusive=True), copies)
        spread = (tf.cast(copy_no, tf.float32) + tf.gather(v, index)) / tf.cast(tf.gather(copies, index), tf.float32)
        index = tf.gather(index, tf.argsort(spread))
        return tf.nest.map_structure(lambda t: tf.gather(t, index), block)

    return resample_block


def even_block_size(window: int, num_examples: float) -> int:
    """The block size <= ``window`` that splits ``num_examples`` into equal blocks.

    A short last block would crowd its rare examples' copies into a few
    batches; equal blocks avoid that when the input holds the table's
    examples (with sharded input the last block may still be short).
    """
    blocks = max(1, math.ceil(num_examples / window))
    return max(1, math.ceil(num_examples / blocks))


def _static_batch(spec: tf.TensorSpec) -> int:
    size = spec.shape[0] if spec.shape.rank else None
    if size is None:
        raise invalid("batch_size", "an int for batched input whose batch size is not static", None,
                      hint="Pass batch_size=..., or batch the input with drop_remainder=True")
    return int(size)


def positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise invalid(name, "a positive int", value)
