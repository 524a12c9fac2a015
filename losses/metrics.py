"""Imbalance metrics: streaming per-class recall, balanced accuracy, recall and
precision on logits.

``PerClassRecall`` and ``BalancedAccuracy`` accumulate a K x K confusion
matrix in a Keras state variable, so they are exact over a whole
``model.evaluate`` (not a mean of per-batch values). For macro F1 use Keras's
own ``keras.metrics.F1Score(average="macro")``.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from balance.errors import invalid
from losses import _base
from losses import _validation as v


class _ConfusionMatrix(keras.metrics.Metric):
    """Accumulates ``cm[true, predicted]`` (weighted by ``sample_weight``).

    Labels: integer ids of shape ``(...)`` or ``(..., 1)``, or one-hot of shape
    ``(..., K)``. Predictions: scores ``(..., K)`` (probabilities or logits,
    argmax taken) or, for binary tasks, one score ``(..., 1)`` thresholded at
    ``threshold`` (0.5, or 0 when ``from_logits``).
    """

    def __init__(
        self,
        num_classes: int,
        *,
        from_logits: bool = False,
        threshold: float | None = None,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, dtype=dtype)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise invalid("num_classes", "an int >= 2", num_classes)
        self.num_classes = num_classes
        self.from_logits = v.flag("from_logits", from_logits)
        if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, (int, float))
                                      or not math.isfinite(threshold)):
            raise invalid("threshold", "a finite number or None", threshold)
        self.threshold = threshold
        self.confusion = self.add_variable(
            shape=(num_classes, num_classes),
            initializer="zeros",
            name="confusion_matrix",
            dtype="float32",
        )

    def _ids(self, y_true: Any, y_pred: Any) -> tuple[Any, Any]:
        y_pred = ops.convert_to_tensor(y_pred)
        y_true = ops.convert_to_tensor(y_true)
        if y_pred.shape[-1] == 1:  # one sigmoid output
            cut = (
                self.threshold if self.threshold is not None else (0.0 if self.from_logits else 0.5)
            )
            predicted = ops.cast(ops.squeeze(y_pred, -1) > cut, "int32")
            true = ops.squeeze(y_true, -1) if len(y_true.shape) == len(y_pred.shape) else y_true
        else:
            predicted = ops.argmax(y_pred, axis=-1)
            one_hot = (
                len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == y_pred.shape[-1]
            )
            if one_hot:
                true = ops.argmax(y_true, axis=-1)
            elif len(y_true.shape) == len(y_pred.shape):
                true = ops.squeeze(y_true, -1)
            else:
                true = y_true
        return ops.cast(true, "int32"), ops.cast(predicted, "int32")

    def update_state(self, y_true, y_pred, sample_weight=None):
        true, predicted = self._ids(y_true, y_pred)
        weights = ops.ones_like(true, dtype="float32")
        if sample_weight is not None:
            sample_weight = ops.cast(sample_weight, "float32")
            if len(sample_weight.shape) > len(true.shape):
                sample_weight = ops.squeeze(sample_weight, -1)
            while len(sample_weight.shape) < len(true.shape):  # per-example weight, dense labels
                sample_weight = ops.expand_dims(sample_weight, -1)
            weights = weights * sample_weight
        true, predicted = ops.reshape(true, (-1,)), ops.reshape(predicted, (-1,))
        weights = ops.reshape(weights, (-1,))
        k = self.num_classes
        valid = (true >= 0) & (true < k) & (predicted >= 0) & (predicted < k)
        flat = ops.where(valid, true * k + predicted, 0)
        # segment_sum, not bincount: its output size is static, which JAX's jit needs.
        counts = ops.segment_sum(ops.where(valid, weights, 0.0), flat, num_segments=k * k)
        self.confusion.assign_add(ops.reshape(ops.cast(counts, "float32"), (k, k)))

    def reset_state(self):
        self.confusion.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def _recalls(self) -> tuple[Any, Any]:
        support = ops.sum(self.confusion, axis=1)
        return ops.divide_no_nan(ops.diagonal(self.confusion), support), support

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "from_logits": self.from_logits,
            "threshold": self.threshold,
        }


@_base.serializable
class PerClassRecall(_ConfusionMatrix):
    """Recall of each class, ``cm[c, c] / sum_j cm[c, j]``: a vector of K values.

    Classes not yet seen have recall 0. Keras's progress bar shows vectors
    poorly; read it from ``model.evaluate(..., return_dict=True)``.

    Args:
      num_classes: K (2 for a single sigmoid output).
      from_logits: only matters for a single sigmoid output (threshold 0).
      threshold: for a single sigmoid output; default 0.5 or 0 for logits.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        from_logits: bool = False,
        threshold: float | None = None,
        name: str = "per_class_recall",
        dtype: Any = None,
    ):
        super().__init__(
            num_classes, from_logits=from_logits, threshold=threshold, name=name, dtype=dtype
        )

    def result(self):
        return self._recalls()[0]


@_base.serializable
class BalancedAccuracy(_ConfusionMatrix):
    """Balanced accuracy: the mean recall over classes present in the labels.

    Equals ``sklearn.metrics.balanced_accuracy_score`` (which also skips
    classes with no true examples). Same arguments as ``PerClassRecall``.
    """

    def __init__(
        self,
        num_classes: int,
        *,
        from_logits: bool = False,
        threshold: float | None = None,
        name: str = "balanced_accuracy",
        dtype: Any = None,
    ):
        super().__init__(
            num_classes, from_logits=from_logits, threshold=threshold, name=name, dtype=dtype
        )

    def result(self):
        recalls, support = self._recalls()
        present = ops.cast(support > 0, "float32")
        return ops.divide_no_nan(ops.sum(recalls * present), ops.sum(present))


class _FromLogits:
    """Mixin: applies a sigmoid to ``y_pred`` first when ``from_logits``."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if self.from_logits:
            y_pred = ops.sigmoid(ops.cast(y_pred, "float32"))
        return super().update_state(y_true, y_pred, sample_weight=sample_weight)

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits}


@_base.serializable
class Recall(_FromLogits, keras.metrics.Recall):
    """``keras.metrics.Recall`` that also accepts logits (``from_logits=True``).

    With ``from_logits=True`` a sigmoid is applied first, so the default
    threshold 0.5 is the logit threshold 0. Other arguments as Keras's.
    """

    def __init__(
        self,
        thresholds=None,
        top_k=None,
        class_id=None,
        *,
        from_logits: bool = False,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            thresholds=thresholds, top_k=top_k, class_id=class_id, name=name, dtype=dtype
        )
        self.from_logits = v.flag("from_logits", from_logits)


@_base.serializable
class Precision(_FromLogits, keras.metrics.Precision):
    """``keras.metrics.Precision`` that also accepts logits; see ``Recall``."""

    def __init__(
        self,
        thresholds=None,
        top_k=None,
        class_id=None,
        *,
        from_logits: bool = False,
        name: str | None = None,
        dtype: Any = None,
    ) -> None:
        super().__init__(
            thresholds=thresholds, top_k=top_k, class_id=class_id, name=name, dtype=dtype
        )
        self.from_logits = v.flag("from_logits", from_logits)
