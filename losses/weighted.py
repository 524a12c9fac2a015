"""Class-weighted cross-entropies: softmax (sparse and dense labels) and sigmoid.

The weight multiplies each example's *loss*, never the logits:
``log(sum_j exp(w * z_j))`` is not ``w * log(sum_j exp(z_j))``.

Class-balanced loss (Cui et al., CVPR 2019) is any of these built with
``from_table(table, scheme="effective_number", scheme_params={"beta": 0.999})``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from balance.errors import invalid
from balance.table import WeightTable
from losses import _base
from losses import _validation as v

_WEIGHT_BY = ("true", "predicted")

def weighted_sparse_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    class_weights: Sequence[float],
    *,
    weight_by: str = "true",
    from_logits: bool = False,
) -> Any:
    """``w[y] * -log softmax(z)[y]`` per element, for integer labels of any rank.

    Args:
      y_true: integer class ids, shape ``(...)`` or ``(..., 1)``.
      y_pred: probabilities or logits, shape ``(..., K)``.
      class_weights: K weights.
      weight_by: ``"true"`` gathers ``w`` by the label; ``"predicted"`` by
        ``argmax(y_pred)`` (no gradient flows through the choice).
      from_logits: whether ``y_pred`` are logits.

    Returns:
      The weighted loss, shape ``(...)``.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    labels = _base.sparse_labels(y_true, y_pred)
    ce = ops.sparse_categorical_crossentropy(labels, y_pred, from_logits=from_logits)
    index = labels if weight_by == "true" else ops.argmax(y_pred, axis=-1)
    weights = ops.take(_base.constant(class_weights, y_pred.dtype), index)
    return ops.cast(ce * weights, out_dtype)


def weighted_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    class_weights: Sequence[float],
    *,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
) -> Any:
    """``(sum_c y_c w_c) * CE(y, p)`` for one-hot or soft labels.

    With soft labels the weight is the label-weighted mean ``sum_c y_c w_c``.
    Label smoothing changes the CE target but not the weight, which is taken
    from the labels as given.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    weights = ops.sum(y_true * _base.constant(class_weights, y_pred.dtype), axis=-1)
    if label_smoothing:
        num_classes = ops.cast(ops.shape(y_true)[-1], y_pred.dtype)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / num_classes
    ce = ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits)
    return ops.cast(ce * weights, out_dtype)


def weighted_binary_crossentropy(
    y_true: Any,
    y_pred: Any,
    pos_weight: float | Sequence[float],
    neg_weight: float | Sequence[float] = 1.0,
    *,
    from_logits: bool = False,
) -> Any:
    """Weighted sigmoid CE, averaged over the last (label) axis like Keras's.

    ``l = -[q * y * log(sigmoid(x)) + r * (1 - y) * log(1 - sigmoid(x))]`` with
    ``q = pos_weight`` and ``r = neg_weight`` (scalars or one per label). From
    logits it uses ``-log sigmoid(x) = softplus(-x)``, stable for any ``x``;
    with ``r = 1`` it is ``tf.nn.weighted_cross_entropy_with_logits``.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    y_true, y_pred = _base.same_rank(y_true, y_pred)
    q = _base.constant(pos_weight, y_pred.dtype)
    r = _base.constant(neg_weight, y_pred.dtype)
    if from_logits:
        # softplus(x) = softplus(-x) + x, so one softplus serves both terms:
        # l = (q y + r (1 - y)) softplus(-x) + r (1 - y) x, TF's stable form.
        negative = r * (1.0 - y_true)
        loss = (q * y_true + negative) * ops.softplus(-y_pred) + negative * y_pred
    else:
        eps = keras.backend.epsilon()
        p = ops.clip(y_pred, eps, 1.0 - eps)
        loss = -(q * y_true * ops.log(p) + r * (1.0 - y_true) * ops.log1p(-p))
    return ops.cast(ops.mean(loss, axis=-1), out_dtype)


@_base.serializable
class WeightedSparseCategoricalCrossentropy(_base.ClassWeightsFromTable, _base.RebalanceLoss):
    """Softmax cross-entropy with a weight per class, for integer labels.

    ``loss_i = w[y_i] * -log softmax(z_i)[y_i]`` (or ``w[argmax z_i]`` with
    ``weight_by="predicted"``). Labels may have any rank: ``(B,)``, per token
    ``(B, T)``, per pixel ``(B, H, W)``, with ``y_pred`` of shape ``(..., K)``.

    Use it for mutually exclusive classes with integer labels. Keep
    the loss scale by normalising the weights to mean one per example
    (``normalize="mean_one"``): the default reduction divides by the number of
    elements, not by the sum of the weights.

    Args:
      class_weights: K finite weights >= 0. A scalar is refused (it only
        rescales the loss, like the learning rate).
      weight_by: ``"true"`` (default) or ``"predicted"``.
      from_logits: whether ``y_pred`` are logits (recommended).
      reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:
      >>> table = WeightTable.from_counts([198, 436, 710, 272])
      >>> loss = WeightedSparseCategoricalCrossentropy.from_table(table, from_logits=True)
    """

    def __init__(
        self,
        class_weights: Sequence[float],
        *,
        weight_by: str = "true",
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weights = v.weight_vector("class_weights", class_weights)
        self.weight_by = v.choice("weight_by", weight_by, _WEIGHT_BY)
        self.from_logits = v.flag("from_logits", from_logits)

    def call(self, y_true, y_pred):
        v.check_last_dim("class_weights", len(self.class_weights), y_pred)
        return weighted_sparse_categorical_crossentropy(
            y_true,
            y_pred,
            self.class_weights,
            weight_by=self.weight_by,
            from_logits=self.from_logits,
        )

    def _config(self):
        return {
            "class_weights": self.class_weights,
            "weight_by": self.weight_by,
            "from_logits": self.from_logits,
        }


@_base.serializable
class WeightedCategoricalCrossentropy(_base.ClassWeightsFromTable, _base.RebalanceLoss):
    """Softmax cross-entropy with a weight per class, for one-hot or soft labels.

    ``loss_i = (sum_c y_ic w_c) * CE(y_i, p_i)``; with one-hot labels this is
    ``w[y_i] * -log p_i[y_i]``, with all ``w_c = 1`` Keras's
    ``CategoricalCrossentropy``.

    Args:
      class_weights: K finite weights >= 0 (a scalar is refused).
      from_logits: whether ``y_pred`` are logits.
      label_smoothing: as in Keras; the weight still uses the given labels.
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        class_weights: Sequence[float],
        *,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.class_weights = v.weight_vector("class_weights", class_weights)
        self.from_logits = v.flag("from_logits", from_logits)
        self.label_smoothing = v.nonnegative_number("label_smoothing", label_smoothing, upper=1.0)

    def call(self, y_true, y_pred):
        v.check_last_dim("class_weights", len(self.class_weights), y_pred)
        return weighted_categorical_crossentropy(
            y_true,
            y_pred,
            self.class_weights,
            from_logits=self.from_logits,
            label_smoothing=self.label_smoothing,
        )

    def _config(self):
        return {
            "class_weights": self.class_weights,
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
        }


@_base.serializable
class WeightedBinaryCrossentropy(_base.RebalanceLoss):
    """Sigmoid cross-entropy with positive (and negative) weights per label.

    ``l = -[q * y * log(sigmoid(x)) + r * (1 - y) * log(1 - sigmoid(x))]``,
    averaged over the labels (last axis) like Keras's ``BinaryCrossentropy``.
    With ``r = 1`` it equals ``tf.nn.weighted_cross_entropy_with_logits``.

    Use it for binary and multi-label outputs. ``pos_weight`` is
    a ratio (``negatives / positives``), so a scalar is fine for one label;
    give one per label for several. From logits, leave the last layer linear.

    Args:
      pos_weight: ``q``, a number or one per label, finite and >= 0.
      neg_weight: ``r``, same shape rules; None means 1.
      from_logits: whether ``y_pred`` are logits (recommended).
      reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:
      >>> loss = WeightedBinaryCrossentropy(pos_weight=[28.0] * 30, from_logits=True)
    """

    def __init__(
        self,
        pos_weight: float | Sequence[float],
        neg_weight: float | Sequence[float] | None = None,
        *,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "weighted_binary_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.pos_weight = v.weight_vector(
            "pos_weight", pos_weight, allow_scalar=True, require_positive_sum=False
        )
        self.neg_weight = (
            None
            if neg_weight is None
            else v.weight_vector(
                "neg_weight", neg_weight, allow_scalar=True, require_positive_sum=False
            )
        )
        if self.neg_weight is not None and _same_weight_everywhere(self.pos_weight, self.neg_weight):
            raise invalid(
                "neg_weight", "a weight that differs from pos_weight (or None)",
                self.neg_weight,
                hint="The same weight on positives and negatives is a scalar weight in disguise. "
                + v.SCALAR_CLASS_WEIGHT_HINT.replace("one weight per class (e.g. "
                "WeightTable.class_weights('balanced'))", "pos_weight=negatives/positives (e.g. "
                "WeightTable.pos_weight())"),
            )
        lengths = {len(w) for w in (self.pos_weight, self.neg_weight) if isinstance(w, list)}
        if len(lengths - {1}) > 1:
            raise invalid(
                "neg_weight",
                "as many values as pos_weight (or a number)",
                f"{len(self.neg_weight)} values for {len(self.pos_weight)} pos_weight values",
            )
        self.from_logits = v.flag("from_logits", from_logits)

    @classmethod
    def from_table(cls, table: WeightTable, scheme: str = "pos_weight", *, scheme_params: Any = None,
                   **options: Any):
        """Per-label weights from a binary or multilabel table.

        ``scheme="pos_weight"`` (default) gives ``q = negatives / positives``
        and ``r = 1``; any other scheme applies ``table.label_weights(scheme,
        **scheme_params)`` to each label's ``[negatives, positives]`` pair.
        ``options`` are the loss's own (``from_logits``, ...).
        """
        v.check_table(
            table,
            ("binary", "multilabel"),
            cls.__name__,
            hint="For K exclusive classes use WeightedSparseCategoricalCrossentropy",
        )
        params = v.scheme_params_for(cls.__name__, scheme_params, options)
        pos, neg = table.label_weights(scheme, **params)
        return cls(pos.tolist(), None if scheme == "pos_weight" else neg.tolist(), **options)

    def call(self, y_true, y_pred):
        for name in ("pos_weight", "neg_weight"):
            value = getattr(self, name)
            if isinstance(value, list):
                v.check_last_dim(name, len(value), y_pred, allow_one=True)
        return weighted_binary_crossentropy(
            y_true,
            y_pred,
            self.pos_weight,
            1.0 if self.neg_weight is None else self.neg_weight,
            from_logits=self.from_logits,
        )

    def _config(self):
        return {
            "pos_weight": self.pos_weight,
            "neg_weight": self.neg_weight,
            "from_logits": self.from_logits,
        }


def _same_weight_everywhere(pos_weight, neg_weight) -> bool:
    """True when every positive and negative weight is one value other than 1 (a scalar weight in disguise)."""
    values = {float(w) for w in np.atleast_1d(pos_weight)} | {float(w) for w in np.atleast_1d(neg_weight)}
    return len(values) == 1 and values != {1.0}
