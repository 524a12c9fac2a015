"""``rebalance``: resampling and sample weights composed exactly.

The maths (single-label tasks; see ``balance.targets``). The data has class
mix p, training should see q. The sampler moves p to
``s ∝ p^(1 - sigma) · q^sigma`` (``sigma = sampling_strength``), and each
example of class c then gets the residual weight ``w_c = q_c / s_c``. So

* the weighted class mix of the stream is ``s_c w_c / sum_k s_k w_k = q_c``
  exactly (in expectation over the sampler's coin flips), and
* ``sum_c s_c w_c = sum_c q_c = 1``: the weights have mean one per example,
  so the loss scale, hence the effective learning rate, is unchanged.

``sigma = 0`` is weights only (``w = q / p``, e.g. "balanced" for a uniform
q); ``sigma = 1`` is sampling only (all weights 1). In between, sampling does
part of the work and the weights the rest, so that neither overdoes it: with
a 1:100 imbalance and ``sigma = 0.5`` rare examples are repeated about 10x and
weighted about 10x, instead of 100x of either.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from balance._errors import invalid, invalid_choice
from balance._labels import LabelFn, check_dataset, label_key_for, split_element, unpack
from balance.resampling import DEFAULT_MIXING_WINDOW, apply_factors
from balance.sample_weights import attach_sample_weights
from balance.table import WeightTable
from balance.targets import EpochSize, Target, sampling_plan

METHODS = ("resample", "weight", "both")
DEFAULT_STRENGTH = {"resample": 1.0, "weight": 0.0, "both": 0.5}


def rebalance(
    dataset: tf.data.Dataset,
    table: WeightTable,
    *,
    label_fn: LabelFn | None = None,
    method: str = "both",
    target: Target = None,
    scheme: str | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    seed: int | None = None,
    sampling_strength: float | None = None,
    epoch_size: EpochSize = "keep",
    repeat_threshold: float | None = None,
    label_key: str | None = None,
    label_form: str = "auto",
    mixing_window: int = DEFAULT_MIXING_WINDOW,
    batched: bool | None = None,
    batch_size: int | None = None,
    redraw_each_epoch: bool = True,
    on_unknown: str = "error",
    default_weight: float = 0.0,
) -> tf.data.Dataset:
    """Rebalances a dataset for ``model.fit``: resample, weight, or both exactly.

    Batched or unbatched input, as ``balance.resample`` describes: unbatched
    input gives unbatched output; batched input gives batches of
    ``batch_size`` (default: the input's static batch size). Weights are
    looked up per element, so ``method="weight"`` also takes dense labels
    (tokens ``(B, T)``, pixels ``(B, H, W)``).

    The training distribution: with ``method="both"`` sampling moves the class
    mix from p to ``s ∝ p^(1-sigma) q^sigma`` and residual weights
    ``w_c = q_c / s_c`` (mean one per example) make the weighted mix equal the
    target q exactly. See the module docstring.

    Args:
      dataset: ``(x, y)`` or ``(x, y, w)`` tuples (TFDS ``as_supervised``),
        or dicts with the label under ``label_key``.
      table: the data's counts.
      label_fn: gets the label from an element; default the tuple's second
        item or ``element[label_key]``. For resampling it is also applied to
        blocks of elements, so use structural access only.
      method: ``"resample"``, ``"weight"`` or ``"both"`` (default).
      target: the class mix training should see; see
        ``balance.targets.resolve_target``. Default ``"uniform"``.
      scheme: instead of ``target``, the mix ``q_c ∝ n_c · w_c`` that weights
        of this scheme give (``"balanced"`` is uniform). For multilabel
        tables, the per-label weighting scheme (default ``"balanced"``).
      scheme_params: options for ``scheme``.
      seed: same seed, same stream; see ``balance.resample``.
      sampling_strength: sigma in [0, 1]; default 0.5 for ``"both"``.
        ``"resample"`` is 1 and ``"weight"`` is 0.
      epoch_size: ``"keep"``, ``"keep_all"`` or an int; see ``sampling_plan``.
      repeat_threshold: multilabel resampling only (LVIS t).
      label_key: dict key of the label.
      label_form: ``"auto"``, ``"sparse"``, ``"dense"``, ``"one_hot"`` or
        ``"multi_hot"``.
      mixing_window: examples over which duplicates are spread.
      batched: whether the input is batched; inferred from the label's rank.
      batch_size: output batch size for batched input.
      redraw_each_epoch: False repeats the same draw every epoch.
      on_unknown: ``"error"`` or ``"default_weight"``.
      default_weight: the weight of unknown labels under ``"default_weight"``.

    Returns:
      ``(x, y, sample_weight)`` when weights are attached (``"weight"``,
      ``"both"``), ``(x, y)`` otherwise (``(x, y, w)`` if the input had w).

    Raises:
      ValueError: for bad options, before any data flows.

    Example:
      >>> table = balance.WeightTable.load("counts.json")
      >>> ds = balance.rebalance(ds, table, target="uniform", sampling_strength=0.5, seed=0)
      >>> steps = balance.sampling_plan(table, sampling_strength=0.5).steps_per_epoch(64)
      >>> model.fit(ds.batch(64), epochs=3)
    """
    check_dataset(dataset)
    if method not in METHODS:
        raise invalid_choice("method", METHODS, method)
    if sampling_strength is None:
        sampling_strength = DEFAULT_STRENGTH[method]
    elif method != "both" and sampling_strength != DEFAULT_STRENGTH[method]:
        raise invalid(
            "sampling_strength", f"{DEFAULT_STRENGTH[method]} (or None) for method={method!r}",
            sampling_strength, hint="Use method='both' to split the work between sampling and weights",
        )
    key = label_key_for(dataset.element_spec, table, label_key)
    common = {"label_fn": label_fn, "label_key": key, "label_form": label_form, "on_unknown": on_unknown}

    if table.task == "multilabel":
        return _multilabel(dataset, table, method, target, scheme, scheme_params, sampling_strength,
                           epoch_size, repeat_threshold, seed, mixing_window, batched, batch_size,
                           redraw_each_epoch, default_weight, common)

    plan = sampling_plan(
        table, target, scheme=scheme, scheme_params=scheme_params,
        sampling_strength=sampling_strength, epoch_size=epoch_size,
    )
    if method != "weight":
        dataset = apply_factors(
            dataset, table, plan.factors, seed=seed, mixing_window=mixing_window, batched=batched,
            batch_size=batch_size, redraw_each_epoch=redraw_each_epoch, **common,
        )
    if method == "resample":
        return _as_tuples(dataset, label_fn, key)
    return attach_sample_weights(dataset, table, weights=plan.weights, default_weight=default_weight, **common)


def _multilabel(dataset, table, method, target, scheme, scheme_params, sampling_strength, epoch_size,
                repeat_threshold, seed, mixing_window, batched, batch_size, redraw_each_epoch,
                default_weight, common):
    if method == "both":
        raise invalid(
            "method", "'resample' or 'weight' for a multilabel table", method,
            hint="Exact composition needs one class per example; with several labels per row the "
            "sampled label mix depends on co-occurrence. Use method='resample' (repeat factors) "
            "with a pos_weight loss, or method='weight'",
        )
    if target is not None:
        raise invalid("target", "None for a multilabel table", target,
                      hint="Multi-label sampling uses repeat factors; set repeat_threshold")
    if method == "weight":
        return attach_sample_weights(dataset, table, scheme=scheme or "balanced", scheme_params=scheme_params,
                                     default_weight=default_weight, **common)
    if scheme is not None:
        raise invalid("scheme", "None for method='resample'", scheme)
    if epoch_size == "keep":
        epoch_size = "keep_all"  # repeat factors never drop examples
    plan = sampling_plan(table, sampling_strength=sampling_strength, epoch_size=epoch_size,
                         repeat_threshold=repeat_threshold)
    dataset = apply_factors(
        dataset, table, plan.factors, seed=seed, mixing_window=mixing_window, batched=batched,
        batch_size=batch_size, redraw_each_epoch=redraw_each_epoch, **common,
    )
    return _as_tuples(dataset, common["label_fn"], common["label_key"])


def _as_tuples(dataset: tf.data.Dataset, label_fn: LabelFn | None, key: str | None) -> tf.data.Dataset:
    def to_tuple(*element: Any) -> tuple[Any, ...]:
        x, y, w = split_element(unpack(element), label_fn, key)
        return (x, y) if w is None else (x, y, w)

    return dataset.map(to_tuple, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def check_model_outputs(model: Any, table: WeightTable) -> int | None:
    """Checks, before training, that a Keras model has one output per class.

    Multiclass: K outputs; binary: 1 (sigmoid) or 2 (softmax); multilabel: K
    (a trailing axis of 1 after them is allowed, for per-label weights).

    Returns:
      The model's number of outputs, or None when it is not known yet (an
      unbuilt subclassed model).

    Raises:
      ValueError: when the count disagrees with the table.

    Example:
      >>> balance.check_model_outputs(model, table)  # before model.fit
      4
    """
    try:
        shape = tuple(model.outputs[0].shape) if getattr(model, "outputs", None) else tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):
        return None
    if table.task == "multilabel" and len(shape) >= 3 and shape[-1] == 1:
        shape = shape[:-1]
    outputs = shape[-1] if shape else None
    if outputs is None:
        return None
    k = table.num_classes
    allowed = (1, 2) if table.task == "binary" else (k,)
    if outputs not in allowed:
        raise invalid(
            "model", f"{' or '.join(map(str, allowed))} outputs for the table's {k} {table.task} classes",
            f"{outputs} outputs (output shape {shape})",
            hint="The model and the weight table disagree on the number of classes",
        )
    return int(outputs)
