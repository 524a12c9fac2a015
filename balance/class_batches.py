"""Batches of a guaranteed class composition, streamed from one dataset.

* ``pk_batches``: every batch holds exactly P classes x K examples (metric
  learning: triplet, contrastive, supervised contrastive losses). The P
  classes of a batch are drawn so that class c is in a batch with
  probability ``P · q_c`` (q the target mix; capped at 1, the rest spread
  over the other classes), so the examples' class mix is q in expectation.
* ``rare_class_batches``: batches of ``batch_size`` from the input stream
  (shuffled within blocks), each topped up with ``min_per_batch`` examples
  of each of the ``rarest`` rarest classes (by the table's counts).

Both read the input once, in blocks, and keep a bounded buffer per class:
the last ``buffer_per_class`` examples of each class seen (a ring). The
examples of a batch's class are drawn from that buffer without replacement
within the batch and with replacement across batches, so rare examples are
reused (oversampled) and common ones overwritten before they are all used
(undersampled). There are no per-class datasets: one ``batch(block)``, one
``scan`` over blocks and one ``unbatch`` of its output batches.

Waiting. A batch can only be emitted once each of its classes has enough
examples buffered (K, or ``min_per_batch``). ``pk_batches`` keeps a drawn
batch waiting (up to ``max_waiting`` of them; while the queue is full no new
batches are drawn) and emits it, unchanged, once its classes have arrived, so
waiting delays batches but does not bend the mix. ``rare_class_batches``
emits nothing until every rare class has ``min_per_batch`` examples; the
examples read meanwhile only fill the buffers. Feed ``dataset.repeat()`` so
this happens once, at the start, and not at every epoch.

Cost. Per block of examples: one sort of the block's class ids, one scatter
into the buffers and, for ``pk_batches``, one random order of the C classes
(systematic sampling, which gives exact inclusion probabilities). Per batch:
a search of P points among the C classes (O(P log C)), O(P ·
buffer_per_class) to pick slots, and one gather of P · K examples.
``rare_class_batches`` does no per-batch work that depends on C.
Memory: ``num_classes · buffer_per_class`` examples (``rarest ·
buffer_per_class`` for ``rare_class_batches``), see ``buffer_bytes``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf

from balance._labels import Label, Labels
from balance.errors import invalid
from balance._stream import positive_int
from balance.table import WeightTable
from balance.targets import Target, resolve_target

DEFAULT_BLOCK = 4096


def pk_batches(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    classes_per_batch: int,
    examples_per_class: int,
    target: Target = None,
    buffer_per_class: int | None = None,
    seed: int | None = None,
    label: Label = None,
    block_size: int = DEFAULT_BLOCK,
    max_waiting: int = 64,
) -> tf.data.Dataset:
    """Batches of exactly P classes x K examples each, streamed.

    Each batch holds ``examples_per_class`` (K) distinct examples of each of
    ``classes_per_batch`` (P) distinct classes, grouped by class (K
    consecutive rows per class). The output has about as many examples as
    the input (one batch per P · K examples read); train with
    ``steps_per_epoch = table.num_examples // (P * K)`` on a repeated input.

    Args:
      dataset: unbatched or batched elements (``(x, y)`` tuples or dicts, as
        for ``balance.rebalance``) with fixed per-example shapes; repeat it
        (``dataset.repeat()``) so the buffers fill once.
      table: the data's counts; every class with a positive target share
        needs at least K examples.
      classes_per_batch: P.
      examples_per_class: K.
      target: the class mix of the batches (see ``balance.resolve_target``;
        default uniform over the classes with examples).
      buffer_per_class: examples kept per class (default 4 · K; at least K).
      seed: same seed, same stream (None: nondeterministic).
      label: the label's dict key or a function ``element -> label``.
      block_size: examples read per step (rounded to a multiple of P · K).
      max_waiting: drawn batches that may wait for their classes at once.

    Returns:
      A ``tf.data.Dataset`` of batches of ``P * K`` elements.

    Example:
      >>> train = balance.pk_batches(ds.repeat(), table, classes_per_batch=8, examples_per_class=4, seed=0)
    """
    return _pk_stream(dataset, table, classes_per_batch=classes_per_batch, examples_per_class=examples_per_class,
                      target=target, buffer_per_class=buffer_per_class, seed=seed, label=label,
                      block_size=block_size, max_waiting=max_waiting).map(lambda batch, waited: batch)


def rare_class_batches(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    batch_size: int,
    rarest: int,
    min_per_batch: int,
    buffer_per_class: int | None = None,
    seed: int | None = None,
    label: Label = None,
    block_size: int = DEFAULT_BLOCK,
) -> tf.data.Dataset:
    """Batches with at least ``min_per_batch`` examples of each of the ``rarest`` rarest classes.

    Each batch is ``rarest · min_per_batch`` examples drawn from the rare
    classes' buffers (first, grouped by class), then ``batch_size - rarest ·
    min_per_batch`` examples of the input: every input example once, in
    random order within blocks of ``block_size`` (as ``rebalance`` shuffles
    within its mixing window; its output can be the input here). The rare classes' share of training rises
    accordingly: class r's expected share is ``(m + rest · p_r) / batch_size``.

    Args:
      dataset: unbatched or batched elements with fixed per-example shapes;
        repeat it so the wait for the rare classes happens once.
      table: the data's counts; the rarest classes are the ``rarest``
        classes with the fewest (positive) counts, ties by class id.
      batch_size: examples per batch.
      rarest: c, how many of the rarest classes every batch holds.
      min_per_batch: m, examples of each of them per batch (distinct).
      buffer_per_class: examples kept per rare class (default 4 · m).
      seed: same seed, same stream.
      label: the label's dict key or a function ``element -> label``.
      block_size: examples read per step (rounded to whole batches).

    Returns:
      A ``tf.data.Dataset`` of batches of ``batch_size`` elements. At the end
      of a finite input, fewer than one batch's worth of input is dropped.

    Example:
      >>> train = balance.rare_class_batches(ds.repeat(), table, batch_size=256, rarest=5, min_per_batch=2)
    """
    return _rare_stream(dataset, table, batch_size=batch_size, rarest=rarest, min_per_batch=min_per_batch,
                        buffer_per_class=buffer_per_class, seed=seed, label=label,
                        block_size=block_size).map(lambda batch, read: batch)


def rarest_classes(table: WeightTable, count: int) -> np.ndarray:
    """The ids of the ``count`` classes with the fewest positive counts (ties by id)."""
    present = np.flatnonzero(table.counts > 0)
    order = present[np.argsort(table.counts[present], kind="stable")]
    return order[:count]


def inclusion_probabilities(target: np.ndarray, per_batch: int) -> np.ndarray:
    """pi_c = min(1, lambda · q_c) with sum pi = per_batch: how often class c is in a batch."""
    q = np.asarray(target, np.float64)
    pi = np.zeros_like(q)
    capped = np.zeros(q.shape, bool)
    for _ in range(len(q)):  # classes wanted more than once per batch are capped at 1
        free = (~capped) & (q > 0)
        pi[capped] = 1.0
        pi[free] = q[free] * (per_batch - capped.sum()) / q[free].sum()
        over = free & (pi > 1.0)
        if not over.any():
            break
        capped |= over
    return pi


def buffer_bytes(dataset: tf.data.Dataset, classes: int, buffer_per_class: int, *, batched: bool = False) -> int:
    """Bytes the class buffers hold for ``classes`` classes (fixed-size dtypes)."""
    per_example = 0
    for spec in tf.nest.flatten(dataset.element_spec):
        shape = spec.shape[1:] if batched else spec.shape
        per_example += int(np.prod(shape.as_list(), dtype=np.int64)) * spec.dtype.size
    return per_example * classes * buffer_per_class


# ------------------------------------------------------------------ streams
def _pk_stream(dataset, table, *, classes_per_batch, examples_per_class, target, buffer_per_class, seed, label,
               block_size, max_waiting) -> tf.data.Dataset:
    """(batch, waited) pairs: ``waited`` is True for a batch that waited for its classes."""
    for name, value in (("classes_per_batch", classes_per_batch), ("examples_per_class", examples_per_class),
                        ("max_waiting", max_waiting), ("block_size", block_size)):
        positive_int(name, value)
    p, k = int(classes_per_batch), int(examples_per_class)
    slots = _buffer_size(buffer_per_class, k, "examples_per_class")
    labels = _labels(dataset, table, label)
    q = resolve_target(table, target)
    wanted = np.flatnonzero(q > 0)
    if len(wanted) < p:
        raise invalid("classes_per_batch", f"at most the {len(wanted)} classes with a positive target share", p)
    short = wanted[table.counts[wanted] < k]
    if short.size:
        raise invalid("examples_per_class", f"at most the examples of every class in the target (fewest: "
                      f"{int(table.counts[short].min())})", k,
                      hint=f"Classes {short[:8].tolist()} have fewer than {k} examples; give them target 0")
    pi = tf.constant(inclusion_probabilities(q, p))
    num_classes = table.num_classes
    buffers = _Buffers(dataset, labels, rows=num_classes, slots=slots, row_of=None)
    batches_per_block = max(1, round(block_size / (p * k)))
    queue = tf.zeros([max_waiting, p], tf.int32)
    check = _stall_check(table, wanted, k)

    def step(state, block_and_seed):
        bufs, seen, waiting, n_waiting, read = state
        block, seed_pair = block_and_seed
        seeds = tf.random.experimental.stateless_split(seed_pair, 3)
        bufs, seen = buffers.insert(bufs, seen, block)
        read += tf.cast(tf.shape(tf.nest.flatten(block)[0])[0], tf.int64)
        with tf.control_dependencies([check(seen, read)]):
            seen = tf.identity(seen)
        fresh = tf.minimum(batches_per_block, max_waiting - n_waiting)
        drawn = _systematic_draw(pi, fresh, p, seeds[0], seeds[1])
        plans = tf.concat([waiting[:n_waiting], drawn], axis=0)
        ready = tf.gather(seen, plans) >= k
        ok = tf.reduce_all(ready, axis=1)
        emit = tf.boolean_mask(plans, ok)
        waited = tf.boolean_mask(tf.range(tf.shape(plans)[0]) < n_waiting, ok)
        still = tf.boolean_mask(plans, ~ok)
        n_still = tf.shape(still)[0]
        waiting = tf.concat([still, tf.zeros([max_waiting - n_still, p], tf.int32)], axis=0)
        batch = buffers.draw(bufs, seen, emit, k, seeds[2])
        return (bufs, seen, waiting, n_still, read), (batch, waited)

    return buffers.run(step, extra_state=(queue, tf.constant(0), tf.constant(0, tf.int64)), seed=seed,
                       block=batches_per_block * p * k)


def _rare_stream(dataset, table, *, batch_size, rarest, min_per_batch, buffer_per_class, seed, label,
                 block_size) -> tf.data.Dataset:
    """(batch, read) pairs: ``read`` is the number of input examples read up to the batch's block."""
    for name, value in (("batch_size", batch_size), ("rarest", rarest), ("min_per_batch", min_per_batch),
                        ("block_size", block_size)):
        positive_int(name, value)
    b, c, m = int(batch_size), int(rarest), int(min_per_batch)
    slots = _buffer_size(buffer_per_class, m, "min_per_batch")
    labels = _labels(dataset, table, label)
    present = int((table.counts > 0).sum())
    if c > present:
        raise invalid("rarest", f"at most the {present} classes with examples", c)
    if c * m >= b:
        raise invalid("min_per_batch", f"rarest · min_per_batch below batch_size ({b})", m,
                      hint=f"{c} classes x {m} examples leave no room for the rest of the batch")
    rare = rarest_classes(table, c)
    if table.counts[rare].min() < m:
        raise invalid("min_per_batch", f"at most the examples of the rarest classes (fewest: "
                      f"{int(table.counts[rare].min())})", m)
    row_of = np.full(table.num_classes, -1, np.int32)
    row_of[rare] = np.arange(c, dtype=np.int32)
    buffers = _Buffers(dataset, labels, rows=c, slots=slots, row_of=row_of)
    rest = b - c * m
    per_block = max(1, round(block_size / rest))
    all_rows = tf.tile(tf.range(c, dtype=tf.int32)[None], [per_block, 1])
    check = _stall_check(table, rare, m, rows=np.arange(c))

    def step(state, block_and_seed):
        bufs, seen, read = state
        block, seed_pair = block_and_seed
        bufs, seen = buffers.insert(bufs, seen, block)
        ready = tf.reduce_all(seen >= m)
        size = tf.shape(tf.nest.flatten(block)[0])[0]
        read += tf.cast(size, tf.int64)
        with tf.control_dependencies([check(seen, read)]):
            ready = tf.identity(ready)
        seeds = tf.random.experimental.stateless_split(seed_pair, 2)
        shuffled = tf.argsort(tf.random.stateless_uniform([size], seeds[0]))  # shuffle within the block
        block = tf.nest.map_structure(lambda t: tf.gather(t, shuffled), block)
        n = tf.where(ready, size // rest, 0)
        picks = buffers.draw(bufs, seen, all_rows[:n], m, seeds[1])
        ordered = tf.nest.map_structure(lambda t: tf.reshape(t[: n * rest], [n, rest, *t.shape[1:]]), block)
        batch = tf.nest.map_structure(lambda r, o: tf.concat([r, o], axis=1), picks, ordered)
        return (bufs, seen, read), (batch, tf.fill([n], read))

    return buffers.run(step, extra_state=(tf.constant(0, tf.int64),), seed=seed, block=per_block * rest)


# ------------------------------------------------------------------ helpers
def _buffer_size(buffer_per_class: int | None, need: int, what: str) -> int:
    if buffer_per_class is None:
        return 4 * need
    positive_int("buffer_per_class", buffer_per_class)
    if buffer_per_class < need:
        raise invalid("buffer_per_class", f"at least {what} ({need})", buffer_per_class)
    return int(buffer_per_class)


def _stall_check(table: WeightTable, classes: np.ndarray, need: int, rows: np.ndarray | None = None):
    """An assertion for ``(seen, read)``: after two passes' worth of input, every class in
    ``classes`` has ``need`` examples, else the stream would wait forever for them."""
    limit = tf.constant(2 * int(table.num_examples), tf.int64)
    ids = tf.constant(classes, tf.int32)
    rows = ids if rows is None else tf.constant(rows, tf.int32)

    def check(seen: tf.Tensor, read: tf.Tensor) -> tf.Operation:
        missing = tf.boolean_mask(ids, tf.gather(seen, rows) < need)
        return tf.debugging.Assert(
            (read <= limit) | (tf.size(missing) == 0),
            [f"Invalid value for argument `dataset`. Expected at least {need} examples of every class the "
             f"batches need (the table has them). Received fewer after reading two passes "
             f"({2 * int(table.num_examples)} examples) of the input; the classes (first few follow). Does the "
             "input match the table (a shard needs its own table)?", missing[:8]], summarize=8)

    return check


def _labels(dataset: tf.data.Dataset, table: WeightTable, label: Label) -> Labels:
    if table.task == "multilabel":
        raise invalid("table", "a 'multiclass' or 'binary' table (one class per example)", table.task)
    labels = Labels.resolve(dataset, table, label=label)
    if labels.batched is None:
        raise invalid("label", "one class per example", f"labels of shape {labels.spec.shape}")
    return labels


def _systematic_draw(pi: tf.Tensor, count: tf.Tensor, per_batch: int, order_seed, offset_seed) -> tf.Tensor:
    """``count`` batches of ``per_batch`` distinct classes, class c in a batch with probability pi_c.

    Systematic sampling: the classes in a random order (one per call, i.e.
    per block) lay their pi_c end to end on [0, per_batch); a batch takes the
    classes under the points u, u + 1, ..., u + per_batch - 1 (u uniform, one
    per batch). As pi_c <= 1, no class is hit twice. The sort is once per
    block; per batch it is a search of per_batch points, O(P log C). No
    library draws a fixed-size sample with given inclusion probabilities,
    hence by hand.
    """
    order = tf.argsort(tf.random.stateless_uniform(tf.shape(pi), order_seed))
    cum = tf.cumsum(tf.gather(pi, order))
    cum = cum * (per_batch / cum[-1])  # exactly per_batch at the end, whatever the rounding
    u = tf.random.stateless_uniform([count, 1], offset_seed, dtype=tf.float64)
    points = u + tf.range(per_batch, dtype=tf.float64)[None]
    hit = tf.reshape(tf.searchsorted(cum[None], tf.reshape(points, [1, -1]), side="right"), [count, per_batch])
    return tf.gather(order, tf.minimum(hit, tf.size(cum) - 1))


class _Buffers:
    """A ring of ``slots`` examples per buffered class, for every component."""

    def __init__(self, dataset: tf.data.Dataset, labels: Labels, *, rows: int, slots: int,
                 row_of: np.ndarray | None) -> None:
        self.dataset, self.labels, self.rows, self.slots = dataset, labels, rows, slots
        self.row_of = None if row_of is None else tf.constant(row_of)
        self.specs = []
        for spec in tf.nest.flatten(dataset.element_spec):
            shape = spec.shape[1:] if labels.batched else spec.shape
            if not shape.is_fully_defined():
                raise invalid("dataset", "elements of fixed shape (every component)", f"spec {spec}",
                              hint="Pad or resize variable-length features before this sampler")
            self.specs.append(tf.TensorSpec(shape, spec.dtype))

    def empty(self) -> tuple[tf.Tensor, ...]:
        return tuple(tf.zeros([self.rows * self.slots, *s.shape], s.dtype) if s.dtype != tf.string
                     else tf.fill([self.rows * self.slots, *s.shape], "") for s in self.specs)

    def insert(self, bufs, seen, block):
        labels = self.labels.get(block)
        ids, _, ok = self.labels.class_ids(labels)
        ids = tf.reshape(self.labels.checked(labels, ok, ids), [-1])
        row = ids if self.row_of is None else tf.gather(self.row_of, ids)
        index = tf.reshape(tf.where(row >= 0), [-1])
        row = tf.gather(row, index)
        order = tf.argsort(row, stable=True)
        row, index = tf.gather(row, order), tf.gather(index, order)
        counts = tf.math.bincount(row, minlength=self.rows, maxlength=self.rows, dtype=tf.int64)
        start = tf.cumsum(counts, exclusive=True)
        rank = tf.range(tf.size(row, out_type=tf.int64)) - tf.gather(start, row)
        keep = rank >= tf.gather(counts, row) - self.slots  # the last `slots` of a class in this block
        row, index, rank = (tf.boolean_mask(t, keep) for t in (row, index, rank))
        slot = (tf.gather(seen, row) + rank) % self.slots
        target = tf.cast(row, tf.int64) * self.slots + slot
        flat = tf.nest.flatten(block)
        bufs = tuple(tf.tensor_scatter_nd_update(buf, target[:, None], tf.gather(part, index))
                     for buf, part in zip(bufs, flat, strict=True))
        return bufs, seen + counts

    def draw(self, bufs, seen, rows, per_row, seed_pair):
        """``per_row`` distinct buffered examples of each row in ``rows`` ([n, r]): [n, r * per_row, ...]."""
        n, r = tf.shape(rows)[0], tf.shape(rows)[1]
        held = tf.minimum(tf.gather(seen, rows), self.slots)[..., None]  # [n, r, 1]
        keys = tf.random.stateless_uniform(tf.stack([n, r, self.slots]), seed_pair)
        keys = tf.where(tf.range(self.slots, dtype=tf.int64) < held, keys, -1.0)
        slot = tf.math.top_k(keys, per_row).indices  # [n, r, per_row]
        flat = tf.reshape(rows[..., None] * self.slots + slot, [n, rows.shape[1] * per_row])
        parts = [tf.gather(buf, flat) for buf in bufs]
        return tf.nest.pack_sequence_as(self.dataset.element_spec, parts)

    def run(self, step: Callable, *, extra_state: tuple, seed: int | None, block: int) -> tf.data.Dataset:
        if self.labels.batched:
            blocks = self.dataset.rebatch(block)
        else:
            blocks = self.dataset.batch(block, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        blocks = blocks.prefetch(1)  # assemble the next block while the scan works on this one
        seeds = tf.data.Dataset.random(seed=seed).batch(2)
        state = (self.empty(), tf.zeros([self.rows], tf.int64), *extra_state)
        return tf.data.Dataset.zip((blocks, seeds)).scan(state, step).unbatch()
