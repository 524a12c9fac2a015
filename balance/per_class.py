"""Mixing one dataset per class toward a target mix (``sample_from_datasets``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from balance.errors import invalid
from balance.table import WeightTable
from balance.targets import Target, resolve_target


def sample_per_class(
    datasets: Sequence[tf.data.Dataset] | Mapping[Any, tf.data.Dataset],
    table: WeightTable,
    *,
    target: Target = None,
    seed: int | None = None,
    repeat: bool = False,
    stop_on_empty_dataset: bool = True,
    rerandomize_each_iteration: bool = True,
) -> tf.data.Dataset:
    """Draws from one dataset per class, so that class c comes with probability q_c.

    When a stream runs dry:

    * ``repeat=True``: every class stream is repeated forever, the mix stays q
      for as long as you read, and the result is infinite; set
      ``model.fit(steps_per_epoch=...)``.
    * ``repeat=False, stop_on_empty_dataset=True`` (default): the epoch ends
      as soon as any class with ``q_c > 0`` runs dry, so the mix stays q but
      the epoch is short (about ``n_c / q_c`` examples for the first class to
      run out).
    * ``repeat=False, stop_on_empty_dataset=False``: exhausted classes drop out
      and the others are renormalised, so the mix drifts toward the classes
      that are left; every example is read once.

    Classes with ``q_c = 0`` are not read at all.

    Args:
      datasets: K unbatched datasets, in class order, or a dict keyed by class
        id or class name.
      table: the counts, which define the target (e.g. ``"uniform"``).
      target: see ``balance.targets.resolve_target``.
      seed: the sampler's seed.
      repeat: repeat each stream forever (see above).
      stop_on_empty_dataset: see above.
      rerandomize_each_iteration: draw a new interleaving each epoch.

    Returns:
      One dataset with the elements of all classes.

    Example:
      >>> per_class = [full.filter(lambda x, y, c=c: y == c) for c in range(k)]
      >>> ds = balance.sample_per_class(per_class, table, repeat=True).batch(64)
    """
    streams = _in_class_order(datasets, table)
    q = resolve_target(table, target)
    live = np.flatnonzero(q > 0)
    chosen = [streams[i].repeat() if repeat else streams[i] for i in live]
    if len(chosen) == 1:
        return chosen[0]
    return tf.data.Dataset.sample_from_datasets(
        chosen, weights=q[live].astype(np.float32).tolist(), seed=seed,
        stop_on_empty_dataset=stop_on_empty_dataset,
        rerandomize_each_iteration=rerandomize_each_iteration,
    )


def _in_class_order(datasets: Any, table: WeightTable) -> list[tf.data.Dataset]:
    k = table.num_classes
    if isinstance(datasets, Mapping):
        names = {n: i for i, n in enumerate(table.class_names or ())}
        ordered: list[Any] = [None] * k
        for key, ds in datasets.items():
            index = names.get(key, key if isinstance(key, (int, np.integer)) and 0 <= key < k else None)
            if index is None or isinstance(key, bool):
                raise invalid("datasets", f"keys that are class ids in [0, {k}) or class names", key)
            ordered[int(index)] = ds
        missing = [i for i, ds in enumerate(ordered) if ds is None]
        if missing:
            raise invalid("datasets", f"a dataset for every class (K={k})", f"missing classes {missing}")
        datasets = ordered
    datasets = list(datasets)
    if len(datasets) != k:
        raise invalid("datasets", f"{k} datasets, one per class", f"{len(datasets)} datasets")
    for i, ds in enumerate(datasets):
        if not isinstance(ds, tf.data.Dataset):
            raise invalid("datasets", "tf.data.Dataset values", f"{type(ds).__name__} for class {i}")
    return datasets
