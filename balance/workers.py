"""Rebalancing with several training workers (``tf.distribute``).

Under ``MultiWorkerMirroredStrategy`` (or any strategy's
``distribute_datasets_from_function``) each input pipeline reads its own shard
and the gradients of one step are summed over all workers. Three things must
hold for weighted sampling to be right for the global batch:

* the union of the workers' streams has the target mix: every pipeline
  samples its shard with repeat factors from the table, so each stream
  reaches the target mix on its own when the shards have the table's mix;
  with shards of different mixes, pass one table per shard (see below);
* no two workers draw the same copies: the shards are disjoint and every
  pipeline gets its own seed, derived from ``seed`` and its
  ``input_pipeline_id``;
* every worker runs the same number of steps, or the collective ops of the
  step after the shortest stream wait forever. A resampled shard has a random
  length, so the stream is made endless (the shard is repeated before
  sampling, which also keeps every batch full) and the epoch is
  ``steps_per_epoch``, computed from the tables alone, the same on every
  worker.

Shards with different class mixes. With the global table, shard k is sampled
with the global factors and yields ``E_k = sum_c n_kc r_c`` examples per pass;
a shard rich in rare classes yields more. The workers all stop after the same
number of steps, so each covers a different fraction of its pass, and the
union's mix leans toward the shards with the smaller ``E_k``. With one table
per shard (its own counts) every stream has the target mix by itself, so the
union has it whatever the shards hold, as long as every shard holds every
class the target wants.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from balance.composition import rebalance
from balance.errors import invalid
from balance.table import WeightTable
from balance.targets import sampling_plan

Tables = WeightTable | Sequence[WeightTable]


def pipeline_seed(seed: int | None, input_pipeline_id: int) -> int | None:
    """A seed for one input pipeline, different for every id, the same in every process."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(input_pipeline_id)]).generate_state(1)[0])


def rebalance_for_worker(
    input_context: tf.distribute.InputContext,
    dataset: tf.data.Dataset,
    table: Tables,
    *,
    global_batch_size: int,
    seed: int | None,
    shard: bool = True,
    **options: Any,
) -> tf.data.Dataset:
    """One input pipeline's endless, rebalanced stream of per-replica batches.

    For ``strategy.distribute_datasets_from_function``: shards ``dataset``
    (unless ``shard=False``: it already is this pipeline's part, e.g. its
    files), rebalances the shard with its own seed and batches it at
    ``input_context.get_per_replica_batch_size(global_batch_size)``. Train
    with ``steps_per_epoch=worker_steps_per_epoch(table, global_batch_size)``.

    Args:
      input_context: the ``tf.distribute.InputContext`` the strategy passes.
      dataset: unbatched elements (see ``balance.rebalance``), the same on
        every worker.
      table: the global table, or one table per input pipeline (the counts of
        each shard), indexed by ``input_pipeline_id``.
      global_batch_size: examples per step over all replicas.
      seed: the base seed (None: nondeterministic); each pipeline uses
        ``pipeline_seed(seed, input_pipeline_id)``. Unused with
        ``method="weight"``, which draws nothing.
      shard: whether to take every ``num_input_pipelines``-th element here.
      **options: passed to ``balance.rebalance`` (``method``, ``target``,
        ``sampling_strength``, ``label``, ...).

    Returns:
      An endless ``tf.data.Dataset`` of full per-replica batches.

    Example:
      >>> dist = strategy.distribute_datasets_from_function(
      ...     lambda ctx: balance.rebalance_for_worker(ctx, ds, table, global_batch_size=256, seed=0))
      >>> model.fit(dist, epochs=5, steps_per_epoch=balance.worker_steps_per_epoch(table, 256))
    """
    if not isinstance(input_context, tf.distribute.InputContext):
        raise invalid("input_context", "the tf.distribute.InputContext passed to your dataset function",
                      type(input_context).__name__)
    for name in ("batch_size", "seed", "epoch_size"):
        if name in options:
            raise invalid(name, "not given: rebalance_for_worker sets it per pipeline", options[name],
                          hint="Use global_batch_size=..., seed=...; the epoch is steps_per_epoch")
    count, index = input_context.num_input_pipelines, input_context.input_pipeline_id
    own_table = _table_of(table, count, index)
    per_replica = input_context.get_per_replica_batch_size(_positive("global_batch_size", global_batch_size))
    if shard:
        dataset = dataset.shard(count, index)
    if options.get("method") != "weight":  # weights alone draw nothing, so they take no seed
        options["seed"] = pipeline_seed(seed, index)
    return rebalance(dataset.repeat(), own_table, batch_size=per_replica, **options)


def worker_steps_per_epoch(table: Tables, global_batch_size: int, **plan_options: Any) -> int:
    """Steps per epoch for every worker: the expected examples of one pass over
    all shards divided by the global batch size (at least 1).

    Args:
      table: the global table or one table per shard, as for
        ``rebalance_for_worker``.
      global_batch_size: examples per step over all replicas.
      **plan_options: ``target``, ``sampling_strength``, ... as passed to
        ``rebalance`` (see ``balance.sampling_plan``).
    """
    tables = [table] if isinstance(table, WeightTable) else _tables(table)
    size = sum(sampling_plan(t, **plan_options).expected_epoch_size for t in tables)
    return max(1, int(np.ceil(size / _positive("global_batch_size", global_batch_size))))


def _table_of(table: Tables, count: int, index: int) -> WeightTable:
    if isinstance(table, WeightTable):
        return table
    tables = _tables(table)
    if len(tables) != count:
        raise invalid("table", f"one WeightTable per input pipeline ({count})", f"{len(tables)} tables",
                      hint="Or pass the global table")
    return tables[index]


def _tables(table: Any) -> list[WeightTable]:
    if isinstance(table, (str, bytes)) or not isinstance(table, Sequence) or not table or not all(
            isinstance(t, WeightTable) for t in table):
        raise invalid("table", "a WeightTable or a non-empty list of WeightTables (one per shard)",
                      type(table).__name__)
    return list(table)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise invalid(name, "a positive int", value)
    return int(value)
