"""Keras callbacks that drive a ``balance.live.LiveRebalancer`` during ``model.fit``.

* ``Schedule``: applies a schedule (``balance.schedules``, or your functions
  ``epoch -> target`` / ``epoch -> sigma``) before each epoch, or every N steps.
* ``RecallDrivenTarget``: after each epoch, measures per-class recall on
  validation data and sets the target that class-wise difficulty-balanced
  weights give (``balance.schedules.difficulty_target``).

Resuming. Both hold no state of their own: ``Schedule`` is a function of the
epoch, and ``RecallDrivenTarget``'s target is a function of the model's
current recall. A run resumed by ``keras.callbacks.BackupAndRestore`` (which
restores the weights and the epoch) therefore continues where it stopped:
``Schedule`` applies the resumed epoch's setting, and ``RecallDrivenTarget``
measures the restored model before the first resumed epoch, which is what the
interrupted run measured at the end of the epoch before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from balance.errors import invalid
from balance.live import LiveRebalancer
from balance.recall_report import per_class_recall
from balance.schedules import ScheduleFn, by_epoch, difficulty_target


class Schedule(keras.callbacks.Callback):
    """Applies ``schedule(epoch)`` to ``rebalancer`` before each epoch (or every N steps).

    Args:
      rebalancer: the ``LiveRebalancer`` whose ``.dataset`` the model trains on.
      schedule: a function ``epoch -> LiveRebalancer.update kwargs`` (see
        ``balance.schedules``). Or give ``target`` and/or ``sampling_strength``.
      target: a function ``epoch -> target``.
      sampling_strength: a function ``epoch -> sigma``.
      every_steps: also apply it every this many steps, at the fractional
        epoch ``epoch + step / steps_per_epoch``.

    Attributes:
      applied: ``[(epoch, update), ...]``, what was applied, in order.

    Example:
      >>> callback = Schedule(live, balance.schedules.deferred_reweighting(8))
      >>> model.fit(live.dataset.repeat(), epochs=10, steps_per_epoch=steps, callbacks=[callback])
    """

    def __init__(self, rebalancer: LiveRebalancer, schedule: ScheduleFn | None = None, *,
                 target: Callable[[float], Any] | None = None,
                 sampling_strength: Callable[[float], float] | None = None,
                 every_steps: int | None = None) -> None:
        super().__init__()
        if not isinstance(rebalancer, LiveRebalancer):
            raise invalid("rebalancer", "a balance.live.LiveRebalancer", type(rebalancer).__name__)
        if schedule is not None and (target is not None or sampling_strength is not None):
            raise invalid("schedule", "None when `target` or `sampling_strength` is given (pass one way)",
                          schedule)
        if schedule is None:
            schedule = by_epoch(target=target, sampling_strength=sampling_strength)
        if not callable(schedule):
            raise invalid("schedule", "a function epoch -> update", schedule)
        if every_steps is not None and (isinstance(every_steps, bool) or not isinstance(every_steps, int)
                                        or every_steps < 1):
            raise invalid("every_steps", "a positive int or None", every_steps)
        self.rebalancer, self.schedule, self.every_steps = rebalancer, schedule, every_steps
        self.applied: list[tuple[float, dict[str, Any]]] = []
        self._epoch = 0

    def apply(self, epoch: float) -> None:
        update = self.schedule(epoch)
        self.rebalancer.update(**update)
        self.applied.append((epoch, update))

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        self._epoch = epoch
        self.apply(epoch)

    def on_train_batch_begin(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        steps = (self.params or {}).get("steps")
        if self.every_steps and batch and batch % self.every_steps == 0 and steps:
            self.apply(self._epoch + batch / steps)


class RecallDrivenTarget(keras.callbacks.Callback):
    """Moves the target towards the classes that lag, from their validation recall.

    After each epoch: per-class recall r_c on ``validation_data``, difficulty
    ``d_c = 1 - r_c``, class-wise difficulty-balanced weights ``w_c = d_c^tau``
    (CDB; Sinha, Ohashi and Nakamura 2020), and the target ``q_c ∝ n_c · w_c``,
    the mix those weights give on the training data (see
    ``balance.schedules.difficulty_target`` for tau and ``min_difficulty``).
    With ``method="weight"`` that is CDB's weighted loss; with ``"both"`` or
    ``"resample"`` the sampler does part or all of the work.

    Args:
      rebalancer: the ``LiveRebalancer`` the model trains on.
      validation_data: a batched dataset of ``(x, y[, w])`` or a tuple
        ``(x, y)`` of arrays; several outputs: y keyed like the outputs.
      head: several outputs: the head whose target it moves (other heads keep theirs).
      tau: CDB's exponent, a float >= 0 or ``"dynamic"`` (default).
      min_difficulty: the floor on d_c (default 0.05).
      base: the mix the weights apply to: ``"original"`` (CDB) or e.g. ``"uniform"``.
      start_epoch: the first epoch that trains on a recall-driven target
        (earlier ones keep the rebalancer's setting).

    Attributes:
      history: ``[(epoch trained next, recall, target), ...]``.
    """

    def __init__(self, rebalancer: LiveRebalancer, validation_data: Any, *, head: Any = None,
                 tau: float | str = "dynamic", min_difficulty: float = 0.05, base: Any = "original",
                 start_epoch: int = 1) -> None:
        super().__init__()
        if not isinstance(rebalancer, LiveRebalancer):
            raise invalid("rebalancer", "a balance.live.LiveRebalancer", type(rebalancer).__name__)
        heads = rebalancer.heads
        if len(heads) > 1 and head not in heads:
            raise invalid("head", f"one of the heads {list(heads)}", head)
        if len(heads) == 1 and head is not None:
            raise invalid("head", "None for a single output", head)
        if isinstance(start_epoch, bool) or not isinstance(start_epoch, int) or start_epoch < 1:
            raise invalid("start_epoch", "an int >= 1 (recall is measured after an epoch)", start_epoch)
        if isinstance(validation_data, tuple) and len(validation_data) == 2 and not isinstance(
                validation_data[0], tf.data.Dataset):
            validation_data = tf.data.Dataset.from_tensor_slices(validation_data).batch(1024)
        if not isinstance(validation_data, tf.data.Dataset):
            raise invalid("validation_data", "a batched tf.data.Dataset of (x, y) or a tuple (x, y) of arrays",
                          type(validation_data).__name__)
        self.rebalancer, self.validation_data, self.head = rebalancer, validation_data, head
        self.table = rebalancer.tables[heads.index(head)]
        if self.table is None:
            raise invalid("head", "a head with a table", head)
        difficulty_target(self.table, np.zeros(self.table.num_classes), tau=tau, min_difficulty=min_difficulty,
                          base=base)  # validates tau, min_difficulty and base now
        self.tau, self.min_difficulty, self.base, self.start_epoch = tau, min_difficulty, base, start_epoch
        self.history: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._measured = False

    def recall(self) -> np.ndarray:
        """Per-class recall of the model on the validation data."""
        k = self.table.num_classes
        ys, preds = [], []
        for batch in self.validation_data:
            x, y = batch[0], batch[1]
            out = self.model(x, training=False)
            if self.head is not None:
                out, y = out[self.head], y[self.head]
            preds.append(np.argmax(np.asarray(out), axis=-1).reshape(-1))
            ys.append(np.asarray(y).reshape(-1))
        return per_class_recall(np.concatenate(ys), np.concatenate(preds), k)

    def retarget(self, next_epoch: int) -> np.ndarray:
        """Measures recall now and sets the target for ``next_epoch``; returns it."""
        recall = self.recall()
        q = difficulty_target(self.table, recall, tau=self.tau, min_difficulty=self.min_difficulty, base=self.base)
        if self.head is None:
            self.rebalancer.update(target=q)
        else:
            current = self.rebalancer.setting.target
            targets = dict(current) if isinstance(current, Mapping) else {h: current for h in self.rebalancer.heads}
            targets[self.head] = q
            self.rebalancer.update(target=targets)
        self.history.append((next_epoch, recall, q))
        return q

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        # A resumed run: the restored model is the one the interrupted run measured.
        if not self._measured and epoch >= self.start_epoch:
            self.retarget(epoch)
        self._measured = True

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        if epoch + 1 >= self.start_epoch:
            self.retarget(epoch + 1)
