"""Did the rare classes improve? Per-class recall against class frequency.

The picture to look at after rebalancing: one point per class, its training
count on a log axis, its recall on held-out data, one series per run (for
example plain training and rebalanced training). Rare classes sit on the left;
rebalancing should lift the left side without sinking the right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from balance.errors import invalid
from balance.report import pyplot, save_png
from balance.table import WeightTable


def per_class_recall(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """Recall of each class: correct / true count (NaN for a class with no examples).

    Args:
      y_true: integer class ids, shape ``(N,)``.
      y_pred: predicted ids ``(N,)``, or scores (logits or probabilities) ``(N, K)``.
      num_classes: K.

    Example:
      >>> per_class_recall([0, 0, 1, 2], [0, 1, 1, 1], 3)
      array([0.5, 1. , 0. ])
    """
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred)
    if y_pred.ndim == 2:
        if y_pred.shape[1] != num_classes:
            raise invalid("y_pred", f"scores with {num_classes} columns", f"shape {y_pred.shape}")
        y_pred = np.argmax(y_pred, axis=1)
    y_pred = y_pred.reshape(-1)
    if y_pred.shape != y_true.shape:
        raise invalid("y_pred", f"{len(y_true)} predictions, one per label", f"{len(y_pred)} predictions")
    if y_true.size and (y_true.min() < 0 or y_true.max() >= num_classes):
        raise invalid("y_true", f"class ids in [0, {num_classes})", f"ids from {y_true.min()} to {y_true.max()}")
    true = np.bincount(y_true, minlength=num_classes).astype(np.float64)
    correct = np.bincount(y_true[y_pred == y_true], minlength=num_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(true > 0, correct / np.maximum(true, 1), np.nan)


def model_recall(model: Any, dataset: Any, num_classes: int) -> np.ndarray:
    """``per_class_recall`` of a Keras model over a batched ``(x, y[, w])`` dataset."""
    ys, preds = [], []
    for batch in dataset:
        x, y = batch[0], batch[1]
        preds.append(np.argmax(np.asarray(model.predict_on_batch(x)), axis=-1).reshape(-1))
        ys.append(np.asarray(y).reshape(-1))
    if not ys:
        raise invalid("dataset", "at least one batch", "an empty dataset")
    return per_class_recall(np.concatenate(ys), np.concatenate(preds), num_classes)


def plot_recall_by_frequency(table: WeightTable, recalls: Mapping[str, Any], path: str, *,
                             title: str | None = None) -> str:
    """Writes a PNG: per-class recall (y) against the class's training count (x, log).

    Args:
      table: the training counts (x axis).
      recalls: run name -> K recalls (e.g. from ``per_class_recall``).
      path: where to write (a ``.png``; local or ``gs://``).
      title: the chart's title.

    Returns:
      ``path``.

    Raises:
      ImportError: when matplotlib is missing, naming the extra to install.
    """
    plt = pyplot()
    if not isinstance(path, str) or not path.endswith(".png"):
        raise invalid("path", "a path ending in .png", path)
    if table.task == "multilabel":
        raise invalid("table", "a 'multiclass' or 'binary' table (one class per example)", table.task)
    if not isinstance(recalls, Mapping) or not recalls:
        raise invalid("recalls", "a non-empty dict {run name: K recalls}", recalls)
    k = table.num_classes
    counts = np.maximum(table.counts, 0.5)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, values in recalls.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (k,):
            raise invalid(f"recalls[{name!r}]", f"{k} recalls, one per class", f"shape {values.shape}")
        order = np.argsort(counts, kind="stable")
        ax.plot(counts[order], values[order], marker="o", markersize=4, linewidth=1, label=name)
    ax.set_xscale("log")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training examples of the class (log)")
    ax.set_ylabel("recall on held-out data")
    ax.set_title(title or f"Per-class recall against class frequency ({k} classes)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save_png(fig, path)
