"""The small base every tf-rebalance loss shares, and tensor helpers.

Following ``keras/src/losses/``: a loss class only validates its options in
``__init__``, forwards to a pure function in ``call`` and lists its options in
``get_config``. ``keras.losses.Loss.__call__`` does dtype conversion,
``sample_weight``, masks and the reduction.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from losses import _validation as v

_HALF = ("float16", "bfloat16")
PACKAGE = "tf_rebalance"
# Registers a loss or metric as ``tf_rebalance>ClassName`` for ``.keras`` saving.
serializable = keras.saving.register_keras_serializable(package=PACKAGE)


class RebalanceLoss(keras.losses.Loss):
    """Base class: ``get_config`` = Keras's (name, reduction) + dtype + ``_config()``."""

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config["dtype"] = self._dtype_policy.name
        config.update(self._config())
        return config


def upcast(y_pred: Any) -> tuple[Any, str]:
    """Converts to a float tensor, lifting float16/bfloat16 to float32.

    Returns the tensor and the dtype the loss should be cast back to, so that
    half-precision losses compute their exp/log in float32.
    """
    y_pred = ops.convert_to_tensor(y_pred)
    dtype = keras.backend.standardize_dtype(y_pred.dtype)
    if dtype in _HALF:
        return ops.cast(y_pred, "float32"), dtype
    if "float" not in dtype:
        y_pred = ops.cast(y_pred, keras.backend.floatx())
        dtype = keras.backend.floatx()
    return y_pred, dtype


def sparse_labels(y_true: Any, y_pred: Any) -> Any:
    """Integer class ids shaped like ``y_pred`` without its class axis.

    Accepts ``(...,)`` or ``(..., 1)`` labels for ``(..., K)`` predictions.
    """
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, axis=-1)
    return ops.cast(y_true, "int32")


def dense_labels(y_true: Any, y_pred: Any) -> Any:
    """One-hot or soft labels shaped like ``y_pred``; sparse ids are one-hot encoded."""
    y_true = ops.convert_to_tensor(y_true)
    num_classes = y_pred.shape[-1]
    is_sparse = len(y_true.shape) == len(y_pred.shape) - 1 or (
        len(y_true.shape) == len(y_pred.shape) and y_true.shape[-1] == 1 and num_classes != 1
    )
    if is_sparse:
        return ops.one_hot(sparse_labels(y_true, y_pred), num_classes, dtype=y_pred.dtype)
    return ops.cast(y_true, y_pred.dtype)


def same_rank(y_true: Any, y_pred: Any) -> tuple[Any, Any]:
    """Adds or drops a trailing axis of size 1, as Keras's binary losses do."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) == len(y_pred.shape) - 1 and y_pred.shape[-1] == 1:
        y_true = ops.expand_dims(y_true, -1)
    elif len(y_true.shape) == len(y_pred.shape) + 1 and y_true.shape[-1] == 1:
        y_true = ops.squeeze(y_true, -1)
    return ops.cast(y_true, y_pred.dtype), y_pred


def log_probs(y_pred: Any, from_logits: bool) -> Any:
    """``log softmax`` of logits, or ``log`` of normalised, clipped probabilities.

    The probability branch is Keras's (``y / sum(y)`` clipped to
    ``[epsilon, 1 - epsilon]``), so results match Keras's losses exactly.
    """
    if from_logits:
        return ops.log_softmax(y_pred, axis=-1)
    eps = keras.backend.epsilon()
    probs = y_pred / ops.sum(y_pred, axis=-1, keepdims=True)
    return ops.log(ops.clip(probs, eps, 1.0 - eps))


def constant(values: Any, dtype: str) -> Any:
    return ops.convert_to_tensor(values, dtype=dtype)


MULTILABEL_HINT = (
    "A multilabel table describes independent sigmoid outputs: use "
    "WeightedBinaryCrossentropy.from_table(table) (per-label pos_weight)"
)


class ClassWeightsFromTable:
    """Mixin: ``from_table`` for losses whose first argument is K class weights."""

    @classmethod
    def from_table(cls, table: Any, scheme: str = "balanced", *, scheme_params: Any = None, **options: Any):
        """Builds the loss with ``table.class_weights(scheme, **scheme_params)``.

        Args:
          table: a multiclass or binary ``WeightTable`` (a binary table is a
            two-class softmax).
          scheme: the weighting scheme, e.g. ``"balanced"``.
          scheme_params: the scheme's options (``normalize``, ``clip``,
            ``zero_count``, ``alpha``, ``beta``, ``mu``), as for
            ``WeightTable.class_weights``.
          **options: the loss's own options (``from_logits``, ``gamma``, ...).

        Example (class-balanced loss, Cui et al. 2019):
          >>> WeightedSparseCategoricalCrossentropy.from_table(
          ...     table, "effective_number", scheme_params={"beta": 0.999}, from_logits=True)
        """
        v.check_table(table, ("multiclass", "binary"), cls.__name__, hint=MULTILABEL_HINT)
        params = v.scheme_params_for(cls.__name__, scheme_params, options)
        return cls(table.class_weights(scheme, **params).tolist(), **options)
