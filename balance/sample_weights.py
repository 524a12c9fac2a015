"""Per-example (or per-element) sample weights looked up from the label.

The lookup is rank-agnostic and vectorised; it runs once per batch (or
block), never per element in Python:

| label                               | weight                                |
|-------------------------------------|---------------------------------------|
| sparse id, any shape S (scalar, (B,), tokens (B, T), pixels (B, H, W)) | shape S: ``w[y]`` |
| one-hot, shape (..., K)             | shape (...): ``w[argmax y]``          |
| string, any shape S                 | shape S, via the table's class names  |
| multi-hot, shape (..., L) or (..., L, 1) | same shape: ``y·pos_w + (1−y)·neg_w`` |

Keras consumes a weight of the label's shape as ``sample_weight`` for sparse
and dense labels. For a multi-hot weight matrix, note that Keras's
``binary_crossentropy`` averages over the last axis *before* weighting; give
the labels and the model output a trailing axis of 1 (``y[..., None]``, output
shape ``(B, L, 1)``) so the loss stays per label, or use a loss that takes
per-label weights.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from balance._heads import Heads
from balance._labels import Label, Labels, OnUnknown
from balance._rates import HeadRates
from balance._stream import build_stream, weight_lookup
from balance.errors import invalid
from balance.table import WeightTable

WeightFn = Callable[[tf.Tensor], tf.Tensor]


def sample_weight_fn(
    table: WeightTable,
    label_spec: tf.TensorSpec,
    *,
    scheme: str = "balanced",
    scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
    label_form: str = "auto",
    on_unknown: OnUnknown = "error",
) -> WeightFn:
    """A function ``labels -> weights`` (float32) for labels matching ``label_spec``.

    Args:
      table: the counts the weights derive from.
      label_spec: a ``tf.TensorSpec`` of the labels (e.g. from ``element_spec``).
      scheme: single-label: ``table.class_weights(scheme)``; multilabel:
        ``table.label_weights(scheme)`` (``"pos_weight"`` gives
        ``(negatives/positives, 1)``).
      scheme_params: options for the scheme (``normalize``, ``beta``, ...).
      weights: explicit weights instead of ``scheme``: K per-class weights, or
        for multilabel a pair ``(pos_weights, neg_weights)``.
      label_form: ``"auto"``, ``"sparse"``, ``"dense"``, ``"one_hot"`` or
        ``"multi_hot"``. Auto: multilabel tables read multi-hot rows; float
        labels whose last axis is wider than 1 are one-hot (width checked
        against K); everything else holds ids (ints, strings, or whole-number
        floats such as a binary ``(B, 1)`` column; a fractional or NaN float
        label stops the pipeline with an error naming it).
      on_unknown: ``"error"`` (default) stops the input pipeline with an
        ``InvalidArgumentError`` naming the bad labels; a float is the weight
        of labels outside the table (0 ignores them, as for the "void" id 255
        of segmentation masks).

    Example:
      >>> fn = sample_weight_fn(WeightTable.from_counts([3, 1]), tf.TensorSpec([None], tf.int64))
      >>> fn(tf.constant([0, 1])).numpy()
      array([0.6666667, 2.       ], dtype=float32)
    """
    labels = Labels.from_spec(table, label_spec, label_form, on_unknown)
    return weight_fn(labels, scheme=scheme, scheme_params=scheme_params, weights=weights)


def weight_fn(
    labels: Labels, *, scheme: str | None = "balanced", scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
) -> WeightFn:
    """``labels -> weights`` for resolved ``Labels``: by ``scheme``, or explicit ``weights``."""
    return weight_lookup(labels, scheme_weights(labels, scheme=scheme, scheme_params=scheme_params, weights=weights))


def scheme_weights(
    labels: Labels, *, scheme: str | None = "balanced", scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Per-class weights of ``scheme`` (multilabel: the pair ``(pos, neg)``), or ``weights`` checked."""
    table, params = labels.table, dict(scheme_params or {})
    if weights is not None and (scheme_params or scheme not in (None, "balanced")):
        raise invalid("weights", "None when `scheme` or `scheme_params` is given (pass one of them)", "weights")
    scheme = scheme or "balanced"
    if labels.form == "multi_hot":
        return table.label_weights(scheme, **params) if weights is None else _pair(weights, table.num_classes)
    return table.class_weights(scheme, **params) if weights is None else _vector(weights, table.num_classes)


def attach_sample_weights(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    scheme: str = "balanced",
    scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
    batch_size: int | None = None,
    label: Label = None,
    label_form: str = "auto",
    on_unknown: OnUnknown = "error",
) -> tf.data.Dataset:
    """Maps a dataset to ``(x, y, sample_weight)`` for ``model.fit``.

    Elements may be ``(x, y)`` tuples (TFDS ``as_supervised=True``), ``(x, y,
    w)`` tuples (w is multiplied in), or dicts (the label is taken from
    ``label``, default the table's ``label_key`` or ``"label"``, and x is the
    rest of the dict). Unbatched input with ``batch_size`` is batched first
    (the fast path); without it the weights are computed on groups of
    examples and the output stays unbatched. Batched input keeps its batches
    (re-cut to ``batch_size`` if given). See ``sample_weight_fn`` for the
    other arguments.

    Example:
      >>> ds = tf.data.Dataset.from_tensor_slices((x, y))
      >>> ds = balance.attach_sample_weights(ds, table, scheme="balanced", batch_size=32)
      >>> model.fit(ds)
    """
    heads = Heads.resolve(dataset, table, label=label, label_form=label_form, on_unknown=on_unknown)
    if heads.several and weights is not None:
        raise invalid("weights", "None with several tables (each head's weights come from `scheme`)", "weights")
    rates = [HeadRates() if h.labels is None else HeadRates(
        weights=scheme_weights(h.labels, scheme=scheme, scheme_params=scheme_params, weights=weights))
        for h in heads.heads]
    return build_stream(dataset, heads, rates, batch_size=batch_size)


def _vector(weights: Any, k: int) -> np.ndarray:
    vector = np.asarray(weights, dtype=np.float32)
    if vector.shape != (k,) or not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise invalid("weights", f"{k} finite weights >= 0, one per class", f"shape {vector.shape}")
    return vector


def _pair(weights: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 2:
        raise invalid("weights", "a pair (pos_weights, neg_weights) for a multilabel table", weights)
    return _vector(weights[0], k), _vector(weights[1], k)
