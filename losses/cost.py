"""Cost-matrix losses and the cost-minimising (Bayes) decision.

``C[i, j]`` is the cost of predicting class ``j`` when the truth is ``i``.

Two training formulations (``mode``):

* ``"argmax_weight"``: the Keras-forum ``w_categorical_crossentropy``
  (keras-team/keras#2115). Each example's CE is multiplied by
  ``C[y, argmax p]``; the matrix is read as *loss weights* (1 on the
  diagonal by convention) and no gradient flows through the argmax.
* ``"expected_cost"``: the differentiable expected cost under the predicted
  distribution, ``sum_j p_j C[y, j]``, optionally plus ``ce_weight * CE``.

At inference, ``bayes_decision(p, C) = argmin_j sum_i p_i C[i, j]`` turns
(calibrated) probabilities into the cost-minimising prediction; with a model
trained by plain or weighted CE, that is often all that is needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

from balance.errors import invalid
from losses import _base
from losses import _validation as v

MODES = ("argmax_weight", "expected_cost")


def cost_sensitive_categorical_crossentropy(
    y_true: Any,
    y_pred: Any,
    cost_matrix: Sequence[Sequence[float]],
    *,
    mode: str,
    from_logits: bool = False,
    ce_weight: float = 0.0,
) -> Any:
    """Per-example cost-sensitive loss; labels sparse, one-hot or soft.

    ``"argmax_weight"``: ``(sum_i y_i C[i, argmax p]) * CE(y, p)``.
    ``"expected_cost"``: ``sum_i y_i sum_j C[i, j] p_j + ce_weight * CE(y, p)``.
    """
    y_pred, out_dtype = _base.upcast(y_pred)
    y_true = _base.dense_labels(y_true, y_pred)
    cost = _base.constant(cost_matrix, y_pred.dtype)
    if mode == "argmax_weight":
        predicted = ops.argmax(y_pred, axis=-1)
        column = ops.take(ops.transpose(cost), predicted, axis=0)  # C[:, pred], shape (..., K)
        weight = ops.stop_gradient(ops.sum(y_true * column, axis=-1))
        loss = weight * ops.categorical_crossentropy(y_true, y_pred, from_logits=from_logits)
    else:
        probs = (
            ops.softmax(y_pred, axis=-1)
            if from_logits
            else (y_pred / ops.sum(y_pred, axis=-1, keepdims=True))
        )
        expected = ops.matmul(probs, ops.transpose(cost))  # [i] = sum_j C[i, j] p_j
        loss = ops.sum(y_true * expected, axis=-1)
        if ce_weight:
            loss = loss + ce_weight * ops.categorical_crossentropy(
                y_true, y_pred, from_logits=from_logits
            )
    return ops.cast(loss, out_dtype)


def bayes_decision(probs: Any, cost_matrix: Sequence[Sequence[float]] | np.ndarray) -> Any:
    """The cost-minimising class, ``argmin_j sum_i p(i | x) * C[i, j]``.

    Args:
      probs: class probabilities, shape ``(..., K)`` (apply softmax to logits
        first; the decision needs probabilities, ideally calibrated).
      cost_matrix: K x K, ``C[i, j]`` = cost of predicting j for truth i.

    Returns:
      int32 class ids of shape ``(...)``. With ``C = 1 - I`` this is ``argmax``.

    Example:
      >>> bayes_decision([[0.7, 0.3]], [[0, 1], [5, 0]])  # missing class 1 costs 5
      [1]
    """
    cost = np.asarray(v.square_matrix("cost_matrix", cost_matrix), dtype=np.float32)
    probs = ops.convert_to_tensor(probs)
    if probs.shape[-1] is not None and probs.shape[-1] != cost.shape[0]:
        raise invalid(
            "cost_matrix",
            f"a {probs.shape[-1]} x {probs.shape[-1]} matrix to match probs' last axis",
            f"shape {cost.shape}",
        )
    expected = ops.matmul(ops.cast(probs, "float32"), _base.constant(cost, "float32"))
    return ops.cast(ops.argmin(expected, axis=-1), "int32")


@_base.serializable
class CostSensitiveCategoricalCrossentropy(_base.RebalanceLoss):
    """Cost-sensitive softmax loss from a K x K cost matrix.

    Labels may be integer ids, one-hot or soft. See the module docstring for
    the formulas. Which mode to use:

    * ``"expected_cost"`` optimises what you are scored on: the expected cost
      of the prediction. Its gradient fades for confidently wrong examples
      (it is bounded, like MAE), so from scratch add ``ce_weight`` (e.g. 1).
      Diagonal entries are usually 0.
    * ``"argmax_weight"`` is weighted CE whose weight depends on the current
      mistake: confusing a 3 for a 7 can cost more than a 3 for a 5. The
      entries are weights, so the diagonal must be > 0 (1 by convention); a 0
      there would remove correctly classified examples from the loss.

    Args:
      cost_matrix: K x K, finite, >= 0.
      mode: ``"argmax_weight"`` or ``"expected_cost"`` (required: they differ).
      from_logits: whether ``y_pred`` are logits.
      ce_weight: for ``"expected_cost"``, the weight of an added CE term.
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        cost_matrix: Sequence[Sequence[float]],
        *,
        mode: str,
        from_logits: bool = False,
        ce_weight: float = 0.0,
        reduction: str | None = "sum_over_batch_size",
        name: str = "cost_sensitive_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.cost_matrix = v.square_matrix("cost_matrix", cost_matrix)
        self.mode = v.choice("mode", mode, MODES)
        self.from_logits = v.flag("from_logits", from_logits)
        self.ce_weight = v.nonnegative_number("ce_weight", ce_weight)
        if mode == "argmax_weight":
            diagonal = np.diag(np.asarray(self.cost_matrix))
            if np.any(diagonal <= 0):
                raise invalid(
                    "cost_matrix",
                    "a diagonal > 0 with mode='argmax_weight' (entries are loss weights)",
                    f"diagonal {diagonal.tolist()}",
                    hint="A 0 on the diagonal drops correctly predicted examples from the loss. "
                    "Use "
                    "1 on the diagonal (e.g. cost_matrix + identity), or mode='expected_cost'",
                )
        if self.ce_weight and mode != "expected_cost":
            raise invalid("ce_weight", "0 unless mode='expected_cost'", ce_weight)

    def call(self, y_true, y_pred):
        v.check_last_dim("cost_matrix", len(self.cost_matrix), y_pred)
        return cost_sensitive_categorical_crossentropy(
            y_true,
            y_pred,
            self.cost_matrix,
            mode=self.mode,
            from_logits=self.from_logits,
            ce_weight=self.ce_weight,
        )

    def _config(self):
        return {
            "cost_matrix": self.cost_matrix,
            "mode": self.mode,
            "from_logits": self.from_logits,
            "ce_weight": self.ce_weight,
        }
