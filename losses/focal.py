"""Focal losses with per-class (or per-label) alpha that is never ignored.

Focal loss (Lin et al., ICCV 2017, "Focal Loss for Dense Object Detection"):
``FL = alpha_t * (1 - p_t)^gamma * -log(p_t)``. Unlike Keras:

* alpha is a vector (one per class, or per label) or None for no weighting;
  it is applied whenever given (Keras's ``BinaryFocalCrossentropy`` ignores
  ``alpha`` unless ``apply_class_balancing=True``);
* there is a sparse-label version (Keras has none);
* from logits, ``log p`` is a log-softmax / softplus, not ``log(clip(p))``,
  so the loss and its gradient stay finite and exact at logits of +-1e4.

Where Keras supports the same configuration (probabilities, or moderate
logits) the values equal Keras's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keras import ops

from balance.errors import invalid
from balance.table import WeightTable
from losses import _base
from losses import _validation as v

_SCALAR_ALPHA_HINT = (
    "A single alpha multiplies every class's loss by the same factor, which only rescales "
    "the loss like the learning rate. Pass one alpha per class, or None"
)


# The base of (1 - p_t)^gamma is floored here: at exactly 0 the derivative
# gamma * 0^(gamma - 1) is inf for gamma < 1 (and 0 * inf = NaN for gamma = 0).
_TINY = 1e-30


def _modulate(one_minus_p_t: Any, gamma: float) -> Any:
    """``(1 - p_t)^gamma`` with a finite gradient for every gamma >= 0."""
    if gamma == 0:
        return 1.0
    return ops.power(ops.maximum(one_minus_p_t, _TINY), gamma)


def _focal_factor(log_p_t: Any, gamma: float) -> Any:
    """``(1 - p_t)^gamma``, with ``1 - p_t = -expm1(log p_t)`` accurate near p_t = 1."""
    return _modulate(-ops.expm1(log_p_t), gamma)


def sparse_categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Sequence[float] | None = None,
    gamma: float = 2.0,
    *,
    from_logits: bool = False,
) -> Any:
    """``alpha[y] * (1 - p_y)^gamma * -log p_y`` for integer labels of any rank."""
    y_pred, out_dtype = _base.upcast(y_pred)
    labels = _base.sparse_labels(y_true, y_pred)
    log_p = _base.log_probs(y_pred, from_logits)
    log_p_t = ops.squeeze(ops.take_along_axis(log_p, ops.expand_dims(labels, -1), axis=-1), -1)
    loss = _focal_factor(log_p_t, gamma) * -log_p_t
    if alpha is not None:
        loss = loss * ops.take(_base.constant(alpha, y_pred.dtype), labels)
    return ops.cast(loss, out_dtype)


def categorical_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: Sequence[float] | None = None,
    gamma: float = 2.0,
    *,
    from_logits: bool = False,
) -> Any:
    """``sum_c alpha_c * (1 - p_c)^gamma * -y_c log p_c`` (Keras's formula).

    For one-hot or soft labels.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    log_p = _base.log_probs(y_pred, from_logits)
    terms = _focal_factor(log_p, gamma) * -y_true * log_p
    if alpha is not None:
        terms = terms * _base.constant(alpha, y_pred.dtype)
    return ops.cast(ops.sum(terms, axis=-1), out_dtype)


def binary_focal_crossentropy(
    y_true: Any,
    y_pred: Any,
    alpha: float | Sequence[float] | None = None,
    gamma: float = 2.0,
    *,
    from_logits: bool = False,
) -> Any:
    """Sigmoid focal loss averaged over the label axis, like Keras's.

    ``l = a_t * (1 - p_t)^gamma * BCE`` with ``a_t = alpha`` for positives and
    ``1 - alpha`` for negatives (per label when alpha is a vector), or 1
    when alpha is None.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    y_true, y_pred = _base.same_rank(y_true, y_pred)
    if from_logits:
        bce = y_true * ops.softplus(-y_pred) + (1.0 - y_true) * ops.softplus(y_pred)
        p, not_p = ops.sigmoid(y_pred), ops.sigmoid(-y_pred)
    else:  # as Keras: clipped BCE, unclipped focal factor
        bce = ops.binary_crossentropy(y_true, y_pred, from_logits=False)
        p, not_p = y_pred, 1.0 - y_pred
    one_minus_p_t = y_true * not_p + (1.0 - y_true) * p
    loss = _modulate(one_minus_p_t, gamma) * bce
    if alpha is not None:
        a = _base.constant(alpha, y_pred.dtype)
        loss = loss * (y_true * a + (1.0 - y_true) * (1.0 - a))
    return ops.cast(ops.mean(loss, axis=-1), out_dtype)


class _Focal(_base.RebalanceLoss):
    """Shared ``__init__``/``get_config`` of the focal losses."""

    _ALPHA_SCALAR_OK = False

    def __init__(self, alpha, gamma, from_logits, reduction, name, dtype) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if alpha is not None:
            alpha = v.weight_vector(
                "alpha", alpha, allow_scalar=self._ALPHA_SCALAR_OK, scalar_hint=_SCALAR_ALPHA_HINT
            )
        self.alpha = alpha
        self.gamma = v.nonnegative_number("gamma", gamma)
        self.from_logits = v.flag("from_logits", from_logits)

    def _config(self):
        return {"alpha": self.alpha, "gamma": self.gamma, "from_logits": self.from_logits}

    def _check(self, y_pred):
        if isinstance(self.alpha, list):
            v.check_last_dim("alpha", len(self.alpha), y_pred, allow_one=self._ALPHA_SCALAR_OK)


@_base.serializable
class SparseCategoricalFocalCrossentropy(_base.ClassWeightsFromTable, _Focal):
    """Focal loss for integer labels (any rank), with per-class alpha.

    ``loss = alpha[y] * (1 - p_y)^gamma * -log p_y`` (Lin et al. 2017).
    Use it when easy, well-classified examples of frequent classes swamp the
    gradient (dense prediction, detection-style imbalance); gamma=0 gives a
    weighted CE.

    Args:
      alpha: K weights >= 0, or None (no class weighting). ``from_table``
        fills it with ``table.class_weights(scheme)``.
      gamma: focusing parameter >= 0 (2 in the paper).
      from_logits: whether ``y_pred`` are logits (recommended).
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        alpha: Sequence[float] | None = None,
        gamma: float = 2.0,
        *,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "sparse_categorical_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(alpha, gamma, from_logits, reduction, name, dtype)

    def call(self, y_true, y_pred):
        self._check(y_pred)
        return sparse_categorical_focal_crossentropy(
            y_true, y_pred, self.alpha, self.gamma, from_logits=self.from_logits
        )


@_base.serializable
class CategoricalFocalCrossentropy(_base.ClassWeightsFromTable, _Focal):
    """Focal loss for one-hot or soft labels, with per-class alpha.

    ``loss = sum_c alpha_c * (1 - p_c)^gamma * -y_c log p_c`` (Lin et al.
    2017); equals ``keras.losses.CategoricalFocalCrossentropy(alpha=list)``
    where Keras's clipping does not bind, and is exact from logits.

    Args:
      alpha: K weights >= 0, or None. A scalar is refused (a pure rescale).
      gamma: focusing parameter >= 0.
      from_logits: whether ``y_pred`` are logits.
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        alpha: Sequence[float] | None = None,
        gamma: float = 2.0,
        *,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "categorical_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(alpha, gamma, from_logits, reduction, name, dtype)

    def call(self, y_true, y_pred):
        self._check(y_pred)
        return categorical_focal_crossentropy(
            y_true, y_pred, self.alpha, self.gamma, from_logits=self.from_logits
        )


@_base.serializable
class BinaryFocalCrossentropy(_Focal):
    """Sigmoid focal loss with a scalar or per-label alpha that is always applied.

    ``loss = a_t * (1 - p_t)^gamma * BCE``, ``a_t = alpha`` for positives and
    ``1 - alpha`` for negatives (Lin et al. 2017), averaged over labels.
    ``alpha=None`` means no balancing. Equals Keras's
    ``BinaryFocalCrossentropy(apply_class_balancing=True, alpha=a)`` for a
    scalar ``a`` (and ``apply_class_balancing=False`` for None).

    Args:
      alpha: a number in [0, 1], one per label, or None.
      gamma: focusing parameter >= 0.
      from_logits: whether ``y_pred`` are logits (recommended).
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    _ALPHA_SCALAR_OK = True

    def __init__(
        self,
        alpha: float | Sequence[float] | None = None,
        gamma: float = 2.0,
        *,
        from_logits: bool = False,
        reduction: str | None = "sum_over_batch_size",
        name: str = "binary_focal_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(alpha, gamma, from_logits, reduction, name, dtype)
        values = self.alpha if isinstance(self.alpha, list) else [self.alpha or 0.0]
        if max(values) > 1.0:
            raise invalid(
                "alpha",
                "values in [0, 1] (the positives' share; negatives get 1 - alpha)",
                self.alpha,
                hint="For a ratio such as negatives/positives use "
                "WeightedBinaryCrossentropy(pos_weight=...)",
            )

    @classmethod
    def from_table(cls, table: WeightTable, scheme: str = "balanced", *, scheme_params: Any = None,
                   **options: Any):
        """Per-label ``alpha = w_pos / (w_pos + w_neg)`` from ``table.label_weights(scheme, **scheme_params)``.

        With ``"balanced"`` this is the share of negatives, ``neg / n``.
        Binary and multilabel tables only.
        """
        v.check_table(
            table,
            ("binary", "multilabel"),
            cls.__name__,
            hint="For K exclusive classes use SparseCategoricalFocalCrossentropy",
        )
        params = v.scheme_params_for(cls.__name__, scheme_params, options)
        if scheme == "pos_weight":
            raise invalid(
                "scheme",
                "a class-weight scheme such as 'balanced'",
                scheme,
                hint="alpha is a share in [0, 1], not a ratio",
            )
        pos, neg = table.label_weights(scheme, **params)
        return cls((pos / (pos + neg)).tolist(), **options)

    def call(self, y_true, y_pred):
        self._check(y_pred)
        return binary_focal_crossentropy(
            y_true, y_pred, self.alpha, self.gamma, from_logits=self.from_logits
        )
