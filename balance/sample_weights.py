"""Per-example (or per-element) sample weights looked up from the label.

The lookup is rank-agnostic and vectorised, so it works on unbatched elements
and on batches alike:

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

from balance._errors import invalid
from balance._labels import (
    LabelFn,
    LabelReader,
    check_dataset,
    label_key_for,
    label_spec,
    split_element,
    unpack,
)
from balance.table import WeightTable


def sample_weight_fn(
    table: WeightTable,
    label_spec: tf.TensorSpec,
    *,
    scheme: str = "balanced",
    scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
    label_form: str = "auto",
    on_unknown: str = "error",
    default_weight: float = 0.0,
) -> Callable[[tf.Tensor], tf.Tensor]:
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
        against K); everything else holds ids
        (ints, strings, or whole-number floats such as a binary ``(B, 1)``).
      on_unknown: ``"error"`` (default) stops the input pipeline with an
        ``InvalidArgumentError`` naming the bad labels; ``"default_weight"``
        gives them ``default_weight``.
      default_weight: weight of unknown labels (0 ignores them, as for the
        "void" id 255 of segmentation masks).

    Example:
      >>> fn = sample_weight_fn(WeightTable.from_counts([3, 1]), tf.TensorSpec([None], tf.int64))
      >>> fn(tf.constant([0, 1])).numpy()
      array([0.6666667, 2.       ], dtype=float32)
    """
    reader = LabelReader.create(table, label_spec, label_form, on_unknown)
    params = dict(scheme_params or {})
    default = tf.constant(float(default_weight), tf.float32)
    if reader.form == "multi_hot":
        if weights is None:
            pos, neg = table.label_weights(scheme, **params)
        else:
            pos, neg = _pair(weights, table.num_classes)
        pos_t, neg_t = tf.constant(pos, tf.float32), tf.constant(neg, tf.float32)
        if label_spec.shape.rank and label_spec.shape.rank >= 2 and label_spec.shape[-1] == 1:
            pos_t, neg_t = pos_t[:, None], neg_t[:, None]  # labels shaped (..., L, 1)

        def multi_hot(labels: tf.Tensor) -> tf.Tensor:
            y = tf.cast(labels, tf.float32)
            return y * pos_t + (1.0 - y) * neg_t

        return multi_hot

    vector = table.class_weights(scheme, **params) if weights is None else _vector(weights, table.num_classes)
    vector_t = tf.constant(vector, tf.float32)

    def by_class(labels: tf.Tensor) -> tf.Tensor:
        ids, valid = reader.class_ids(labels)
        with tf.control_dependencies(reader.guard(valid, labels)):
            return tf.where(valid, tf.gather(vector_t, ids), default)

    return by_class


def attach_sample_weights(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    scheme: str = "balanced",
    scheme_params: Mapping[str, Any] | None = None,
    weights: Any = None,
    label_fn: LabelFn | None = None,
    label_key: str | None = None,
    label_form: str = "auto",
    on_unknown: str = "error",
    default_weight: float = 0.0,
) -> tf.data.Dataset:
    """Maps a dataset to ``(x, y, sample_weight)`` for ``model.fit``.

    Works on batched or unbatched input (the lookup is elementwise). Elements
    may be ``(x, y)`` tuples (TFDS ``as_supervised=True``), ``(x, y, w)``
    tuples (w is multiplied in), or dicts (the label is taken from
    ``label_key``, default the table's ``label_key`` or ``"label"``, and x is
    the rest of the dict). See ``sample_weight_fn`` for the other arguments.

    Example:
      >>> ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
      >>> ds = balance.attach_sample_weights(ds, table, scheme="balanced")
      >>> model.fit(ds)
    """
    check_dataset(dataset)
    key = label_key_for(dataset.element_spec, table, label_key)
    spec = label_spec(dataset, label_fn, key)
    weight_of = sample_weight_fn(
        table, spec, scheme=scheme, scheme_params=scheme_params, weights=weights,
        label_form=label_form, on_unknown=on_unknown, default_weight=default_weight,
    )

    def add(*element: Any) -> tuple[Any, tf.Tensor, tf.Tensor]:
        x, y, w = split_element(unpack(element), label_fn, key)
        weight = weight_of(y)
        if w is not None:  # an existing sample_weight, e.g. (B,), times ours, e.g. (B, 1)
            w = tf.cast(w, tf.float32)
            for _ in range((weight.shape.rank or 0) - (w.shape.rank or 0)):
                w = tf.expand_dims(w, -1)
            weight = weight * w
        return x, y, weight

    return dataset.map(add, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _vector(weights: Any, k: int) -> np.ndarray:
    vector = np.asarray(weights, dtype=np.float32)
    if vector.shape != (k,) or not np.all(np.isfinite(vector)) or np.any(vector < 0):
        raise invalid("weights", f"{k} finite weights >= 0, one per class", f"shape {vector.shape}")
    return vector


def _pair(weights: Any, k: int) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 2:
        raise invalid("weights", "a pair (pos_weights, neg_weights) for a multilabel table", weights)
    return _vector(weights[0], k), _vector(weights[1], k)
