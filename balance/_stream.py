"""The one stream builder behind ``rebalance``, ``resample`` and ``attach_sample_weights``.

It reads the heads (``balance._heads``) and, per head, the sampling rates and
weights (``balance._rates.HeadRates``), and nothing else.

Resampling. The input is grouped into blocks of ``mixing_window`` examples.
In each block, every example is emitted ``floor(r) + Bernoulli(frac(r))``
times, where r is its repeat factor (the max over the heads that drive the
sampler; for multi-hot labels the max over positive labels). This is one
``tf.repeat`` of indices and one gather per component per block.

Spreading duplicates. Copies of one example are placed evenly across the
block's output (copy j of an example with k copies sorts at ``(j + u) / k``,
u uniform; examples with one copy land uniformly at random, which shuffles
the block). An example with r copies then shows up about
``r · batch_size / mixing_window`` times in a batch. Blocks are sized to
split the table's ``num_examples`` evenly (see ``even_block_size``).
Randomness comes from ``Dataset.random(seed)``: the same seed gives the same
stream, and each new iteration (epoch) draws afresh unless
``redraw_each_epoch=False``.

Weights. Each head's weight is looked up from its label and multiplied by
an existing sample weight: ``(x, y, w)`` with one w for every head, or one
per head keyed like the labels; w gains trailing axes to match.

How the stream is cut: the only per-element steps are tf.data's own
``batch``, ``rebatch`` and ``unbatch``; everything else runs once per block
or batch.

| input | with ``batch_size`` | without |
|---|---|---|
| unbatched | ``batch(block)`` → map → ``rebatch(batch_size)`` | ``batch(block)`` → map → ``unbatch()`` |
| batched | ``rebatch(block)`` → map → ``rebatch(batch_size)`` | same, at the input's static batch size |
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from balance._heads import Heads
from balance._labels import Labels, unpack
from balance._rates import HeadRates
from balance.errors import invalid

DEFAULT_MIXING_WINDOW = 8192
WeightFn = Callable[[tf.Tensor], tf.Tensor]


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


def build_stream(
    dataset: tf.data.Dataset,
    heads: Heads,
    rates: Sequence[HeadRates],
    *,
    batch_size: int | None,
    options: SamplerOptions | None = None,
    keep_elements: bool = False,
    read_rates: Callable[[], Sequence[HeadRates]] | None = None,
) -> tf.data.Dataset:
    """Resamples and weights ``dataset`` by ``rates`` (one per head) and cuts it.

    The output is ``(x, y, sample_weight)`` when a head has weights, ``(x, y)``
    (or ``(x, y, w)``) otherwise; ``keep_elements`` keeps the input's
    elements as they are instead (resampling only).

    ``rates`` fixes which heads sample and which are weighted. Their values
    come from ``read_rates()``, called once per block (or batch) inside the
    pipeline: by default ``rates`` themselves, constants; rates held in a
    ``tf.Variable`` (``balance.live``) are read as the stream runs, one
    consistent snapshot per block, so sampling and weights always agree.
    """
    if batch_size is not None:
        positive_int("batch_size", batch_size)
    options = options or SamplerOptions()
    read = read_rates or (lambda: rates)
    factor_of = _factor_fn(heads, rates)
    finish = (lambda element, _: element) if keep_elements else _finisher(heads, rates)
    if heads.batched is None:
        if factor_of is not None:
            raise invalid("label", "labels with one class per example, unbatched or batched, for resampling",
                          f"{heads.first.form} labels of shape {heads.first.spec.shape}",
                          hint="Dense labels (tokens, pixels) have no single class per example; use method='weight'")
        if batch_size is not None:
            raise invalid("batch_size", "None for dense labels (batch the input yourself)", batch_size,
                          hint="Tokens and pixel maps may differ in shape between examples")
        return dataset.map(lambda *e: finish(unpack(e), read()), num_parallel_calls=tf.data.AUTOTUNE,
                           deterministic=True)
    batched = heads.batched
    block = even_block_size(options.mixing_window, heads.first.table.num_examples)

    if factor_of is None:
        if batched:
            ds = dataset if batch_size is None else dataset.rebatch(batch_size)
        else:
            ds = dataset.batch(batch_size or block)
        out = ds.map(lambda *e: finish(unpack(e), read()), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return out if batched or batch_size else out.unbatch()

    out_batch = batch_size or (_static_batch(heads.first.spec) if batched else None)
    resample_block = _block_sampler(factor_of)

    def resample_and_finish(block: Any, seed_pair: tf.Tensor) -> Any:
        current = read()
        return finish(resample_block(block, seed_pair, current), current)

    blocks = dataset.rebatch(block) if batched else dataset.batch(block)
    seeds = tf.data.Dataset.random(seed=options.seed, rerandomize_each_iteration=options.redraw_each_epoch).batch(2)
    out = tf.data.Dataset.zip((blocks, seeds)).map(
        resample_and_finish, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    ).prefetch(1)  # overlap the next block's gathers with cutting this one
    return out.rebatch(out_batch) if out_batch else out.unbatch()


# ------------------------------------------------------------------ lookups
def factor_lookup(labels: Labels, factors: Any) -> WeightFn:
    """labels -> the mean number of copies of each example (shape ``(B,)``)."""
    factors_t = _tensor(factors)

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


def weight_lookup(labels: Labels, weights: Any) -> WeightFn:
    """labels -> weights of the label's shape (multi-hot: ``weights`` is ``(pos, neg)``)."""
    if labels.form == "multi_hot":
        pos_t, neg_t = _tensor(weights[0]), _tensor(weights[1])
        if labels.spec.shape.rank and labels.spec.shape.rank >= 2 and labels.spec.shape[-1] == 1:
            pos_t, neg_t = pos_t[:, None], neg_t[:, None]  # labels shaped (..., L, 1)

        def multi_hot(y: tf.Tensor) -> tf.Tensor:
            y = tf.cast(y, tf.float32)
            return y * pos_t + (1.0 - y) * neg_t

        return multi_hot

    vector_t = _tensor(weights)
    default = tf.constant(labels.default_weight or 0.0, tf.float32)

    def by_class(y: tf.Tensor) -> tf.Tensor:
        ids, known, whole = labels.class_ids(y)
        with tf.control_dependencies(labels.guards(y, known, whole)):
            return tf.where(known, tf.gather(vector_t, ids), default)

    return by_class


def _tensor(values: Any) -> Any:
    """Arrays become float32 constants; tensors and variables are read as they are."""
    if isinstance(values, (tf.Tensor, tf.Variable)):
        return values
    return tf.constant(np.asarray(values, np.float32))


def _factor_fn(heads: Heads, rates: Sequence[HeadRates]) -> Callable[[Any, Sequence[HeadRates]], tf.Tensor] | None:
    """(block, rates) -> each example's factor (the max over the heads that drive the sampler); None: no sampling."""
    sampled = [i for i, r in enumerate(rates) if r.factors is not None]
    if not sampled:
        return None

    def factor_of(block: Any, current: Sequence[HeadRates]) -> tf.Tensor:
        ys = heads.labels_of(block)
        factors = [factor_lookup(heads.heads[i].labels, current[i].factors)(ys[i]) for i in sampled]
        return tf.reduce_max(tf.stack(factors), axis=0) if len(factors) > 1 else factors[0]

    return factor_of


def _finisher(heads: Heads, rates: Sequence[HeadRates]) -> Callable[[Any, Sequence[HeadRates]], tuple[Any, ...]]:
    """(element or block, rates) -> ``(x, y, sample_weight)``, or ``(x, y[, w])`` when no head has weights."""
    weighted_heads = [r.weights is not None for r in rates]
    weighted = any(weighted_heads)

    def finish(element: Any, current: Sequence[HeadRates]) -> tuple[Any, ...]:
        x, labels, existing = heads.split(element)
        if not weighted:
            return (x, labels) if existing is None else (x, labels, existing)
        ys = heads.unpack(labels)
        per_head = isinstance(existing, (Mapping, tuple, list)) and heads.several
        olds = heads.unpack(existing) if per_head else [existing] * len(ys)
        weights = []
        for head, has_weights, now, y, old in zip(heads.heads, weighted_heads, current, ys, olds, strict=True):
            weight = (weight_lookup(head.labels, now.weights)(y) if has_weights
                      else tf.ones(tf.shape(y)[:1], tf.float32))
            weights.append(weight if old is None else _times(weight, old))
        return x, labels, heads.pack(weights)

    return finish


def _times(weight: tf.Tensor, existing: tf.Tensor) -> tf.Tensor:
    """Ours times an existing sample weight, e.g. (B, 1) times (B,): w gains trailing axes."""
    existing = tf.cast(existing, tf.float32)
    for _ in range((weight.shape.rank or 0) - (existing.shape.rank or 0)):
        existing = tf.expand_dims(existing, -1)
    return weight * existing


# ------------------------------------------------------------------ sampler
def _block_sampler(factor_of: Callable[[Any, Sequence[HeadRates]], tf.Tensor]) -> Callable[..., Any]:
    def resample_block(block: Any, seed_pair: tf.Tensor, current: Sequence[HeadRates]) -> Any:
        r = factor_of(block, current)
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
