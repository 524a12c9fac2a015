"""Margin and prior adjustments of the logits: logit adjustment, LDAM, label shift.

All work on logits and need the class prior or counts, from a
``WeightTable`` or given directly.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from keras import ops

from balance.errors import invalid
from balance.table import WeightTable
from losses import _base, _priors
from losses import _validation as v

_SCALAR_PRIOR_HINT = (
    "Adding one constant to every logit leaves the softmax unchanged, so a scalar log-prior "
    "does nothing. Pass one log-prior per class (e.g. WeightTable.log_prior())"
)


def adjust_logits(logits: Any, log_prior: Sequence[float] | np.ndarray, tau: float = 1.0) -> Any:
    """Post-hoc logit adjustment (Menon et al., ICLR 2021): ``z - tau * log(prior)``.

    Use at inference on a model trained with ordinary CE: ``argmax`` of the
    result is the balanced-error decision for ``tau = 1``. Do not apply it to
    a model trained with ``LogitAdjustedSparseCategoricalCrossentropy``, which
    already has the adjustment built in.

    Args:
      logits: shape ``(..., K)``.
      log_prior: K finite log-priors, e.g. ``table.log_prior()``.
      tau: adjustment strength >= 0.

    Returns:
      The adjusted logits, same shape and dtype as ``logits``.
    """
    log_prior = v.weight_vector(
        "log_prior", log_prior, allow_negative=True, scalar_hint=_SCALAR_PRIOR_HINT
    )
    tau = v.nonnegative_number("tau", tau)
    logits = ops.convert_to_tensor(logits)
    v.check_last_dim("log_prior", len(log_prior), logits)
    return logits - ops.cast(tau * np.asarray(log_prior), logits.dtype)


def shift_logits(logits: Any, source_prior: Any, target_prior: Any) -> Any:
    """Moves logits from the class mix they were trained on to another: ``z + log(t) - log(s)``.

    Under label shift (``p(x | y)`` fixed, ``p(y)`` changed) the posterior at
    the target mix is ``softmax(z + log t - log s)``, where ``s`` is the prior
    the model was trained at and ``t`` the prior it meets (Saerens et al.
    2002). Examples:

    * deployment: ``shift_logits(z, train_table, estimate_prior_em(...))``;
    * a model trained on a down-sampled dataset, back to the population:
      ``shift_logits(z, source_prior=sample_shares, target_prior=population_shares)``,
      i.e. ``z + log(population_share) - log(sample_share)``;
    * ``target_prior="uniform"`` gives the balanced-error decision, the same
      argmax as ``adjust_logits(z, log(s), tau=1)``.

    Args:
      logits: shape ``(..., K)``, softmax logits; or ``(..., 1)`` sigmoid
        logits of a binary model with 2-class priors ``[negative, positive]``
        (shifted by ``log(t1/t0) - log(s1/s0)``).
      source_prior: the training mix: a multiclass or binary ``WeightTable``
        (its counts over their sum), K shares or counts (divided by their
        sum), or ``"uniform"``. Every share must be > 0.
      target_prior: the mix to move to, in the same forms.

    Returns:
      The shifted logits, same shape and dtype as ``logits``; any Keras 3
      backend.

    Raises:
      ValueError: for priors of the wrong length, zero or negative shares,
        multilabel tables, or strings other than ``"uniform"``.
    """
    logits = ops.convert_to_tensor(logits)
    last = logits.shape[-1] if len(logits.shape) else None
    num_classes = 2 if last == 1 else last
    source = _priors.class_shares("source_prior", source_prior, num_classes)
    target = _priors.class_shares("target_prior", target_prior, num_classes)
    if source.size != target.size:
        raise invalid(
            "target_prior", f"{source.size} shares, like source_prior", f"{target.size} values"
        )
    offset = np.log(target) - np.log(source)
    if last == 1:
        offset = offset[1:] - offset[:1]
    return logits + ops.cast(offset, logits.dtype)


def logit_adjusted_sparse_categorical_crossentropy(
    y_true: Any, y_pred: Any, log_prior: Sequence[float], tau: float = 1.0
) -> Any:
    """``-log softmax(z + tau * log pi)[y]`` from logits ``z`` (Menon et al. 2021)."""
    y_pred, out_dtype = _base.upcast(y_pred)
    labels = _base.sparse_labels(y_true, y_pred)
    shifted = y_pred + tau * _base.constant(log_prior, y_pred.dtype)
    loss = ops.sparse_categorical_crossentropy(labels, shifted, from_logits=True)
    return ops.cast(loss, out_dtype)


def ldam_margins(class_counts: Sequence[float], max_margin: float) -> np.ndarray:
    """``m_c = max_margin * n_c^(-1/4) / max_c n_c^(-1/4)`` (Cao et al. 2019), float64."""
    inv = np.asarray(class_counts, dtype=np.float64) ** -0.25
    return max_margin * inv / inv.max()


def ldam_loss(
    y_true: Any,
    y_pred: Any,
    class_counts: Sequence[float],
    *,
    max_margin: float = 0.5,
    scale: float = 30.0,
    class_weights: Sequence[float] | None = None,
) -> Any:
    """``w[y] * -log softmax(s * (z - m_y e_y))[y]`` with LDAM margins ``m``."""
    y_pred, out_dtype = _base.upcast(y_pred)
    labels = _base.sparse_labels(y_true, y_pred)
    margins = _base.constant(ldam_margins(class_counts, max_margin), y_pred.dtype)
    num_classes = len(class_counts)
    shifted = scale * (y_pred - ops.one_hot(labels, num_classes, dtype=y_pred.dtype) * margins)
    loss = ops.sparse_categorical_crossentropy(labels, shifted, from_logits=True)
    if class_weights is not None:
        loss = loss * ops.take(_base.constant(class_weights, y_pred.dtype), labels)
    return ops.cast(loss, out_dtype)


def _check_table(table: Any, loss: str) -> WeightTable:
    return v.check_table(table, ("multiclass", "binary"), loss, hint=_base.MULTILABEL_HINT)


@_base.serializable
class LogitAdjustedSparseCategoricalCrossentropy(_base.RebalanceLoss):
    """Logit-adjusted softmax CE (Menon et al., ICLR 2021), from logits.

    ``loss = -log softmax(z + tau * log pi)[y]``. ``tau = 1`` is Balanced
    Softmax (Ren et al., NeurIPS 2020). The model learns logits whose plain
    ``argmax`` is already balanced: no weights, no resampling, and no
    post-hoc step. Use it for long-tailed multiclass data when balanced
    accuracy is the target.

    Args:
      log_prior: K finite log-priors, or a ``WeightTable`` (its ``log_prior()``).
      tau: adjustment strength >= 0.
      reduction, name, dtype: as for ``keras.losses.Loss``.

    Example:
      >>> loss = LogitAdjustedSparseCategoricalCrossentropy(table)  # model outputs logits
    """

    def __init__(
        self,
        log_prior: Sequence[float] | WeightTable,
        tau: float = 1.0,
        *,
        reduction: str | None = "sum_over_batch_size",
        name: str = "logit_adjusted_sparse_categorical_crossentropy",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(log_prior, WeightTable):
            log_prior = _check_table(log_prior, type(self).__name__).log_prior()
        self.log_prior = v.weight_vector(
            "log_prior", log_prior, allow_negative=True, scalar_hint=_SCALAR_PRIOR_HINT
        )
        self.tau = v.nonnegative_number("tau", tau)

    @classmethod
    def from_table(cls, table: WeightTable, *, smoothing: float = 0.0, **options: Any):
        """Uses ``table.log_prior(smoothing=...)``; smoothing > 0 allows empty classes."""
        return cls(_check_table(table, cls.__name__).log_prior(smoothing=smoothing), **options)

    def call(self, y_true, y_pred):
        v.check_last_dim("log_prior", len(self.log_prior), y_pred)
        return logit_adjusted_sparse_categorical_crossentropy(
            y_true, y_pred, self.log_prior, self.tau
        )

    def _config(self):
        return {"log_prior": self.log_prior, "tau": self.tau}


@_base.serializable
class LDAMLoss(_base.RebalanceLoss):
    """Label-distribution-aware margin loss (Cao et al., NeurIPS 2019), from logits.

    ``loss = w[y] * -log softmax(s * (z - m_y e_y))[y]`` with per-class margins
    ``m_c ∝ n_c^(-1/4)``, the largest being ``max_margin``: rare classes must
    win by a wider margin. The paper feeds cosine logits (normalised features
    and weights, so ``|z| <= 1``) and ``scale = 30``; with an ordinary Dense
    output use ``scale = 1`` or normalise. For "DRW" (deferred re-weighting),
    compile again late in training with ``class_weights`` set.

    Args:
      class_counts: K counts > 0, or a ``WeightTable``.
      max_margin: the largest margin, > 0.
      scale: ``s`` > 0.
      class_weights: optional K weights >= 0 (e.g. DRW's effective-number
        weights).
      reduction, name, dtype: as for ``keras.losses.Loss``.
    """

    def __init__(
        self,
        class_counts: Sequence[float] | WeightTable,
        max_margin: float = 0.5,
        scale: float = 30.0,
        *,
        class_weights: Sequence[float] | None = None,
        reduction: str | None = "sum_over_batch_size",
        name: str = "ldam_loss",
        dtype: Any = None,
    ) -> None:
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        if isinstance(class_counts, WeightTable):
            class_counts = _check_table(class_counts, type(self).__name__).counts
        counts = v.weight_vector(
            "class_counts", class_counts, scalar_hint="LDAM needs one count per class"
        )
        if min(counts) <= 0:
            empty = [i for i, c in enumerate(counts) if c <= 0]
            raise invalid(
                "class_counts",
                "counts > 0 (the margin n^(-1/4) is infinite at 0)",
                f"0 for classes {empty[:10]}",
                hint="Drop empty classes, or add a pseudo-count",
            )
        self.class_counts = counts
        self.max_margin = v.nonnegative_number("max_margin", max_margin, positive=True)
        self.scale = v.nonnegative_number("scale", scale, positive=True)
        self.class_weights = (
            None
            if class_weights is None
            else v.weight_vector("class_weights", class_weights, num_classes=len(counts))
        )

    @classmethod
    def from_table(cls, table: WeightTable, **options: Any):
        """Uses the table's counts."""
        return cls(table, **options)

    def call(self, y_true, y_pred):
        v.check_last_dim("class_counts", len(self.class_counts), y_pred)
        return ldam_loss(
            y_true,
            y_pred,
            self.class_counts,
            max_margin=self.max_margin,
            scale=self.scale,
            class_weights=self.class_weights,
        )

    def _config(self):
        return {
            "class_counts": self.class_counts,
            "max_margin": self.max_margin,
            "scale": self.scale,
            "class_weights": self.class_weights,
        }
