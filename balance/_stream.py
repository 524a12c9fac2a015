"""The one stream builder behind ``rebalance``, ``resample`` and ``attach_sample_weights``.

It reads the heads (``balance._heads``) and, per head, the sampling rates and
weights (``balance._rates.HeadRates``), and nothing else.

Resampling. The input is grouped into blocks of ``mixing_window`` examples.
In each block, every example is emitted ``floor(r) + Bernoulli(frac(r))``
times, where r is its repeat factor (the max over the heads that drive the
sampler; for multi-hot labels the max over positive labels). This is one
draw of indices (``draw_copies``) and one gather per component per block.

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
| unbatched | ``batch(256).rebatch(block)`` → map → ``rebatch(batch_size)`` | ``batch(256).rebatch(block)`` → map → ``unbatch()`` |
| batched | ``rebatch(block)`` → map → ``rebatch(batch_size)`` | same, at the input's static batch size |

Unbatched elements are batched in groups of 256 that ``rebatch`` joins into
blocks: one ``batch(8192)`` costs more per element than ``batch(256)`` and
one concatenation of the groups.
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
GROUP = 256  # unbatched elements are batched this many at a time, then joined into blocks
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

    ``rates`` fixes which heads sample and which are weighted; their values
    come from ``read_rates()``, called once per block (or batch) inside the
    pipeline. By default that is ``rates`` themselves, constants; rates held
    in a ``tf.Variable`` (``balance.live``) are read as the stream runs, one
    consistent snapshot per block, so a block's weights always belong to the
    factors it was sampled with.
    """
    if batch_size is not None:
        positive_int("batch_size", batch_size)
    options = options or SamplerOptions()
    transform = BlockTransform(heads, rates, keep_elements=keep_elements, read_rates=read_rates)
    batched = heads.batched
    if batched is None:
        if transform.samples:
            raise invalid("label", "labels with one class per example, unbatched or batched, for resampling",
                          f"{heads.first.form} labels of shape {heads.first.spec.shape}",
                          hint="Dense labels (tokens, pixels) have no single class per example; use method='weight'")
        if batch_size is not None:
            raise invalid("batch_size", "None for dense labels (batch the input yourself)", batch_size,
                          hint="Tokens and pixel maps may differ in shape between examples")
        return dataset.map(lambda *e: transform(unpack(e)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if batched and batch_size is None and not transform.samples:
        # Weights only, batches kept as they come (whatever their sizes).
        return dataset.map(lambda *e: transform(unpack(e)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)

    sparse = [spec for spec in tf.nest.flatten(dataset.element_spec) if isinstance(spec, tf.SparseTensorSpec)]
    if transform.samples and sparse:  # the sampler gathers copies with tf.gather, which has no sparse form
        raise invalid("dataset", "dense or ragged features for resampling", f"a tf.SparseTensor feature {sparse[0]}",
                      hint="Convert it before rebalance: tf.sparse.to_dense, or tf.RaggedTensor.from_sparse; "
                      "method='weight' takes it as it is")
    # One map per block: its cost per call is spread over `block` examples.
    out_batch = batch_size or (_static_batch(heads.first.spec) if batched else None)
    block = even_block_size(options.mixing_window, heads.first.table.num_examples)
    # The input's own prefetch lets a fast source run ahead while a block is gathered and drawn.
    blocks = (dataset if batched else dataset.batch(min(GROUP, block))).prefetch(tf.data.AUTOTUNE).rebatch(block)
    if transform.samples:
        seeds = tf.data.Dataset.random(seed=options.seed,
                                       rerandomize_each_iteration=options.redraw_each_epoch).batch(2)
        out = tf.data.Dataset.zip((blocks, seeds)).map(
            lambda b, s: transform(b, s), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        out = blocks.map(lambda *e: transform(unpack(e)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    out = out.prefetch(1)  # overlap the next block's work with cutting this one
    out = out.rebatch(out_batch) if out_batch else out.unbatch()
    if not transform.samples and not batched and batch_size:
        # Weights keep every example once: tell Keras the number of batches, as `batch` would.
        n = tf.get_static_value(dataset.cardinality())
        if n is not None and n >= 0:
            out = out.apply(tf.data.experimental.assert_cardinality(-(-int(n) // batch_size)))
    return out


class BlockTransform:
    """A block (or batch) of elements -> its resampled, weighted output.

    Per head, one class-id lookup gives both the factor and the weight of
    each example; the sampler then draws copies by the factors (the max over
    heads) and gathers every component, weights included, once.
    """

    def __init__(self, heads: Heads, rates: Sequence[HeadRates], *, keep_elements: bool = False,
                 read_rates: Callable[[], Sequence[HeadRates]] | None = None) -> None:
        self.heads, self.keep_elements = heads, keep_elements
        self.read_rates = read_rates or (lambda: rates)
        self.samples = any(r.factors is not None for r in rates)
        self.weighted = not keep_elements and any(r.weights is not None for r in rates)

    def __call__(self, element: Any, seed_pair: tf.Tensor | None = None) -> Any:
        heads = self.heads
        if self.keep_elements:
            out, ys = element, heads.labels_of(element)
        else:
            x, labels, existing = heads.split(element)
            ys = heads.unpack(labels)
        lookups = [None if h.labels is None else head_lookup(h.labels, r)
                   for h, r in zip(heads.heads, self.read_rates(), strict=True)]  # one read per block
        looked_up = [(None, None) if lookup is None else lookup(y) for lookup, y in zip(lookups, ys, strict=True)]
        if not self.keep_elements:
            if self.weighted:
                per_head = isinstance(existing, (Mapping, tuple, list)) and heads.several
                olds = heads.unpack(existing) if per_head else [existing] * len(ys)
                weights = [_times(w if w is not None else tf.ones(tf.shape(y)[:1], tf.float32), old)
                           for (_, w), y, old in zip(looked_up, ys, olds, strict=True)]
                out = (x, labels, heads.pack(weights))
            else:
                out = (x, labels) if existing is None else (x, labels, existing)
        if seed_pair is None:
            return out
        factors = [f for f, _ in looked_up if f is not None]
        r = tf.reduce_max(tf.stack(factors), axis=0) if len(factors) > 1 else factors[0]
        index = draw_copies(r, seed_pair)
        return tf.nest.map_structure(lambda t: tf.gather(t, index), out)


def draw_copies(r: tf.Tensor, seed_pair: tf.Tensor) -> tf.Tensor:
    """The indices of a block's output: example i appears ``floor(r_i) + Bernoulli(frac(r_i))`` times.

    Copy j of an example with k copies sorts at ``(j + v) / k`` (v uniform per
    example), which spreads copies evenly and shuffles the rest. Each output
    slot finds its example by counting the examples that end before it (one
    ``bincount`` and one ``cumsum``, linear in the block; no per-copy mask, so
    the cost does not grow with the largest factor).
    """
    u, v = tf.unstack(tf.random.stateless_uniform(tf.stack([2, tf.size(r)]), seed_pair))
    base = tf.floor(r)
    copies = tf.cast(base, tf.int32) + tf.cast(u < r - base, tf.int32)  # stochastic rounding
    ends = tf.cumsum(copies)
    total = tf.reduce_sum(copies)
    index = tf.cumsum(tf.math.bincount(ends, minlength=total, maxlength=total))  # the example of each slot
    copy_no = tf.range(total) - tf.gather(ends - copies, index)
    spread = (tf.cast(copy_no, tf.float32) + tf.gather(v, index)) / tf.cast(tf.gather(copies, index), tf.float32)
    return tf.gather(index, tf.argsort(spread))


# ------------------------------------------------------------------ lookups
HeadLookup = Callable[[tf.Tensor], tuple[tf.Tensor | None, tf.Tensor | None]]


def head_lookup(labels: Labels, rates: HeadRates) -> HeadLookup:
    """labels -> ``(factor per example (B,) or None, weight of the label's shape or None)``.

    One class-id lookup serves both. Unknown labels (with ``on_unknown`` set)
    are kept once and take the default weight.
    """
    has_factors, has_weights = rates.factors is not None, rates.weights is not None
    if not (has_factors or has_weights):
        return lambda y: (None, None)
    if labels.form == "multi_hot":
        factors_t = _tensor(rates.factors) if has_factors else None
        pos_t, neg_t = (_tensor(rates.weights[0]), _tensor(rates.weights[1])) if has_weights else (None, None)
        if has_weights and labels.spec.shape.rank and labels.spec.shape.rank >= 2 and labels.spec.shape[-1] == 1:
            pos_t, neg_t = pos_t[:, None], neg_t[:, None]  # labels shaped (..., L, 1)

        def multi_hot(y: tf.Tensor) -> tuple[tf.Tensor | None, tf.Tensor | None]:
            factor = weight = None
            if has_factors:
                # LVIS: the max over positive labels; rows with none keep factor 1.
                rows = tf.reshape(y, [tf.shape(y)[0], -1])
                factor = tf.reduce_max(tf.where(tf.cast(rows, tf.float32) > 0.5, factors_t, 1.0), axis=-1)
            if has_weights:
                y = tf.cast(y, tf.float32)
                weight = y * pos_t + (1.0 - y) * neg_t
            return factor, weight

        return multi_hot

    factors_t = _tensor(rates.factors) if has_factors else None
    weights_t = _tensor(rates.weights) if has_weights else None
    default = float(labels.default_weight or 0.0)

    def by_class(y: tf.Tensor) -> tuple[tf.Tensor | None, tf.Tensor | None]:
        ids, known, ok = labels.class_ids(y)
        factor = weight = None
        if has_factors:
            factor = tf.gather(factors_t, ids)
            factor = tf.reshape(factor if known is None else tf.where(known, factor, 1.0), [-1])
        if has_weights:
            weight = tf.gather(weights_t, ids)
            weight = weight if known is None else tf.where(known, weight, default)
        checked = iter(labels.checked(y, ok, [t for t in (factor, weight) if t is not None]))
        return (None if factor is None else next(checked)), (None if weight is None else next(checked))

    return by_class


def weight_lookup(labels: Labels, weights: Any) -> WeightFn:
    """labels -> weights of the label's shape (multi-hot: ``weights`` is ``(pos, neg)``)."""
    lookup = head_lookup(labels, HeadRates(weights=weights))
    return lambda y: lookup(y)[1]


def _tensor(values: Any) -> Any:
    """Arrays become float32 constants; tensors and variables are read as they are (at every call)."""
    if isinstance(values, (tf.Tensor, tf.Variable)):
        return values
    return tf.constant(np.asarray(values, np.float32))


def _times(weight: tf.Tensor, existing: tf.Tensor | None) -> tf.Tensor:
    """Ours times an existing sample weight, e.g. (B, 1) times (B,): w gains trailing axes."""
    if existing is None:
        return weight
    existing = tf.cast(existing, tf.float32)
    for _ in range((weight.shape.rank or 0) - (existing.shape.rank or 0)):
        existing = tf.expand_dims(existing, -1)
    return weight * existing


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
