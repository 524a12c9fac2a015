"""Estimating the class prior of unlabeled deployment data (label shift).

Under label shift the class-conditional ``p(x | y)`` stays fixed while the
prior ``p(y)`` moves. Two estimators of the new prior, from a model's
predictions on unlabeled data:

* ``estimate_prior_em``: EM of Saerens, Latinne and Decaestecker (2002).
  Needs calibrated probabilities at the training prior; no labeled data.
* ``estimate_prior_bbse``: black-box shift estimation of Lipton, Wang and
  Smola (2018). Needs labeled validation data drawn at the training mix; the
  model need not be calibrated, only its confusion matrix invertible.

Both return shares; ``estimated_table`` turns shares into a ``WeightTable``
whose provenance says it was estimated, and ``losses.shift_logits`` moves the
model's logits to it. numpy only; no TensorFlow, no Beam.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from balance.table_fields import fingerprint_of, make_provenance
from balance.errors import invalid, invalid_choice
from balance.table import WeightTable
from losses import _priors

METHODS = ("em", "bbse")


def _probabilities(name: str, predictions: Any, from_logits: bool) -> np.ndarray:
    """(N, K) float64 class probabilities; (N, 1) sigmoid outputs become 2 classes."""
    if hasattr(predictions, "numpy") and callable(predictions.numpy):  # eager tensors
        predictions = predictions.numpy()
    try:
        array = np.asarray(predictions, dtype=np.float64)
    except (TypeError, ValueError):
        raise invalid(name, "an (N, K) array of predictions", type(predictions).__name__) from None
    if array.ndim != 2 or array.shape[0] == 0:
        raise invalid(
            name,
            "an (N, K) array of predictions, one row per example (or (N, 1) for a sigmoid output)",
            f"shape {array.shape}",
        )
    if not np.all(np.isfinite(array)):
        raise invalid(name, "finite predictions", "NaN or infinite values")
    if array.shape[1] == 1:
        if from_logits:
            array = 1.0 / (1.0 + np.exp(-array))
        elif np.any((array < 0) | (array > 1)):
            raise invalid(name, "probabilities in [0, 1] (or pass from_logits=True)", "values outside [0, 1]")
        return np.concatenate([1.0 - array, array], axis=1)
    if from_logits:
        shifted = np.exp(array - array.max(axis=1, keepdims=True))
        return shifted / shifted.sum(axis=1, keepdims=True)
    sums = array.sum(axis=1)
    if np.any(array < 0) or not np.allclose(sums, 1.0, atol=1e-3):
        raise invalid(
            name,
            "rows of probabilities that sum to 1",
            f"row sums from {sums.min():.4g} to {sums.max():.4g}",
            hint="Pass from_logits=True for logits",
        )
    return array / sums[:, None]


def estimate_prior_em(
    target_predictions: Any,
    source_prior: Any,
    *,
    from_logits: bool = False,
    max_iterations: int = 1000,
    tolerance: float = 1e-8,
) -> np.ndarray:
    """The deployment prior by EM (Saerens, Latinne and Decaestecker, 2002).

    With ``p_s(y | x)`` the model's posteriors at the training prior ``s``,
    iterate from ``t = s``::

        p_t(y | x) ∝ p_s(y | x) * t_y / s_y          (E-step)
        t_y = mean over the unlabeled x of p_t(y | x)  (M-step)

    which climbs the likelihood of the unlabeled data in ``t``. It assumes
    the model is calibrated at ``s``; an over-confident model biases ``t``
    (calibrate first, or use ``estimate_prior_bbse``).

    Args:
      target_predictions: ``(N, K)`` probabilities (or logits with
        ``from_logits``) on unlabeled deployment data; ``(N, 1)`` for a
        sigmoid output.
      source_prior: the training prior: a ``WeightTable``, K shares or counts.
      from_logits: whether ``target_predictions`` are logits.
      max_iterations: at most this many EM steps.
      tolerance: stop once no share moves by more than this.

    Returns:
      K float64 shares summing to 1.

    Raises:
      ValueError: for malformed predictions or priors, or no convergence in
        ``max_iterations`` steps.

    Example:
      >>> z = model.predict(x_new)  # logits
      >>> t = estimate_prior_em(z, train_table, from_logits=True)
      >>> shifted = losses.shift_logits(z, train_table, t)
    """
    probs = _probabilities("target_predictions", target_predictions, from_logits)
    source = _priors.class_shares("source_prior", source_prior, probs.shape[1])
    if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
        raise invalid("max_iterations", "an int >= 1", max_iterations)
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or not tolerance > 0:
        raise invalid("tolerance", "a number > 0", tolerance)
    ratio_base = probs / source
    target = source.copy()
    for _ in range(max_iterations):
        posterior = ratio_base * target
        posterior /= posterior.sum(axis=1, keepdims=True)
        updated = posterior.mean(axis=0)
        converged = np.max(np.abs(updated - target)) <= tolerance
        target = updated
        if converged:
            return target / target.sum()
    raise invalid(
        "max_iterations",
        f"enough steps for EM to converge to tolerance={tolerance:g}",
        max_iterations,
        hint=f"Last estimate {np.round(target, 4).tolist()}; a class the model never favours converges slowly",
    )


def _joint_confusion(labels: Any, probs: np.ndarray, soft: bool) -> np.ndarray:
    """``C[i, j] = P(predicted i, true j)`` on labeled data, float64 (K, K).

    ``soft`` counts each example's probabilities instead of its argmax.
    """
    num_classes = probs.shape[1]
    y = np.asarray(labels)
    if y.dtype.kind not in "iu":
        raise invalid("validation_labels", "integer class ids", f"dtype {y.dtype}")
    ids = y.reshape(-1).astype(np.int64)
    if ids.size != probs.shape[0]:
        raise invalid(
            "validation_labels", f"one label per prediction row ({probs.shape[0]})", f"{ids.size} labels"
        )
    if ids.min() < 0 or ids.max() >= num_classes:
        raise invalid("validation_labels", f"class ids in [0, {num_classes})", f"ids {ids.min()} .. {ids.max()}")
    joint = np.zeros((num_classes, num_classes))
    if soft:
        np.add.at(joint.T, ids, probs)
    else:
        np.add.at(joint, (probs.argmax(axis=1), ids), 1.0)
    return joint / ids.size


def estimate_prior_bbse(
    target_predictions: Any,
    validation_labels: Any,
    validation_predictions: Any,
    *,
    from_logits: bool = False,
    soft: bool = False,
) -> np.ndarray:
    """The deployment prior by black-box shift estimation (Lipton, Wang and Smola, 2018).

    On labeled validation data at the training mix, ``C[i, j] = P_s(ŷ = i,
    y = j)``; on the unlabeled data, ``mu[i] = P_t(ŷ = i)``. Under label
    shift ``mu = C w`` with ``w_j = t_j / s_j``, so ``w = C⁻¹ mu`` and
    ``t = w * s`` (``s_j`` = the validation label shares, the columns of
    ``C``). Negative weights (sampling noise) are clipped to 0 and ``t``
    renormalised. Uses hard predictions (argmax), as in the paper, unless
    ``soft``.

    Args:
      target_predictions: ``(N, K)`` probabilities or logits on unlabeled
        deployment data; ``(N, 1)`` for a sigmoid output.
      validation_labels: ``M`` integer labels of held-out data drawn at the
        training mix (not the training data itself: it overfits).
      validation_predictions: the model's ``(M, K)`` predictions on it.
      from_logits: whether both prediction arrays are logits.
      soft: use the predicted probabilities instead of their argmax, in both
        ``C`` and ``mu`` (often lower variance when a class is rarely the
        argmax at the training mix).

    Returns:
      K float64 shares summing to 1.

    Raises:
      ValueError: for malformed inputs, or a confusion matrix too close to
        singular to invert (a class never predicted, or never present, in
        the validation data).
    """
    probs = _probabilities("target_predictions", target_predictions, from_logits)
    validation = _probabilities("validation_predictions", validation_predictions, from_logits)
    k = probs.shape[1]
    if validation.shape[1] != k:
        raise invalid(
            "validation_predictions", f"{k} classes like target_predictions", f"{validation.shape[1]} classes"
        )
    if not isinstance(soft, bool):
        raise invalid("soft", "True or False", soft)
    joint = _joint_confusion(validation_labels, validation, soft)
    source = joint.sum(axis=0)
    condition = np.linalg.cond(joint)
    if not np.isfinite(condition) or condition > 1e8:
        never = [c for c in range(k) if joint[c].sum() == 0 or source[c] == 0]
        raise invalid(
            "validation_predictions",
            "a confusion matrix that can be inverted",
            f"condition number {condition:.3g}",
            hint=f"Classes never predicted or never present in the validation data: {never}; "
            "use more validation data, or estimate_prior_em",
        )
    mu = probs.mean(axis=0) if soft else np.bincount(probs.argmax(axis=1), minlength=k) / probs.shape[0]
    weights = np.clip(np.linalg.solve(joint, mu), 0.0, None)
    target = weights * source
    if target.sum() <= 0:
        raise invalid("target_predictions", "predictions that give a positive prior", "all-zero weights")
    return target / target.sum()


def estimated_table(
    shares: Any,
    num_examples: float,
    *,
    method: str,
    like: WeightTable | None = None,
    inputs: Sequence[str] = (),
) -> WeightTable:
    """A ``WeightTable`` of estimated counts ``shares * num_examples``, marked as estimated.

    ``provenance["estimated"]`` records the method, the number of unlabeled
    examples and the fingerprint of the training table it was estimated
    against, so an estimated table is never mistaken for a counted one.

    Args:
      shares: K shares from ``estimate_prior_em`` or ``estimate_prior_bbse``.
      num_examples: the number of unlabeled examples the estimate used.
      method: ``"em"`` or ``"bbse"``.
      like: the training table; its task, class names and label key are kept.
      inputs: paths of the unlabeled data, for the provenance.

    Returns:
      A validated ``WeightTable``.
    """
    if method not in METHODS:
        raise invalid_choice("method", METHODS, method)
    if like is not None and not isinstance(like, WeightTable):
        raise invalid("like", "a balance.WeightTable or None", type(like).__name__)
    if like is not None and like.task == "multilabel":
        raise invalid("like", "a multiclass or binary table", "a 'multilabel' table")
    vector = _priors.class_shares("shares", shares, like.num_classes if like else None, allow_zero=True)
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, float, np.integer)) or num_examples <= 0:
        raise invalid("num_examples", "a number > 0 (unlabeled examples used)", num_examples)
    counts = vector * float(num_examples)
    provenance = make_provenance(inputs, fingerprint_of(counts))
    provenance["estimated"] = {
        "method": method,
        "num_unlabeled": float(num_examples),
        "source_fingerprint": like.provenance.get("fingerprint") if like is not None else None,
    }
    return WeightTable(
        task=like.task if like is not None else "multiclass",
        counts=counts,
        num_examples=float(counts.sum()),
        class_names=like.class_names if like is not None else None,
        label_key=like.label_key if like is not None else None,
        label_dtype=like.label_dtype if like is not None else "int",
        provenance=provenance,
    )
