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

Several outputs (one table per head; a single output is the one-head case).
Keras refuses ``class_weight`` for a model with more than one output but
takes per-output sample weights, ``(x, {"a": y_a, "b": y_b}, {"a": w_a, "b":
w_b})``. With ``resample_on="a"`` the sampler uses head a's repeat factors,
so head a's sampled (and, with ``"both"``, weighted) mix is exact in
expectation; every other head is only weighted, with ``q / p`` of its own
table, which is approximate because sampling on a moves the other heads' mix
by however the heads co-occur. By default an example's factor is the largest
of its heads' factors (as for multi-label rows); then every head is
approximate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import tensorflow as tf

from balance._heads import Heads, Tables
from balance._labels import Label, OnUnknown
from balance._rates import rates_for
from balance._stream import DEFAULT_MIXING_WINDOW, SamplerOptions, build_stream
from balance.errors import invalid, invalid_choice
from balance.table import WeightTable
from balance.targets import EpochSize, Target

METHODS = ("resample", "weight", "both")
DEFAULT_STRENGTH = {"resample": 1.0, "weight": 0.0, "both": 0.5}


def rebalance(
    dataset: tf.data.Dataset,
    table: Tables,
    *,
    method: str = "both",
    target: Target | Mapping[Any, Target] = None,
    scheme: str | Mapping[Any, str | None] | None = None,
    scheme_params: Mapping[str, Any] | None = None,
    sampling_strength: float | None = None,
    batch_size: int | None = None,
    seed: int | None = None,
    label: Label | Mapping[Any, Label] = None,
    label_form: str = "auto",
    on_unknown: OnUnknown = "error",
    epoch_size: EpochSize | None = None,
    repeat_threshold: float | Mapping[Any, float | None] | None = None,
    mixing_window: int | None = None,
    redraw_each_epoch: bool | None = None,
    resample_on: Any = None,
) -> tf.data.Dataset:
    """Rebalances a dataset for ``model.fit``: resample, weight, or both exactly.

    Pass ``batch_size`` for unbatched input: the output is then batches cut
    straight from the resampled blocks, which is the fast path. Batched input
    keeps its static batch size unless ``batch_size`` says otherwise.
    Without ``batch_size``, unbatched input gives unbatched output (batch it
    yourself; that costs one extra regrouping, see docs/tfdata.md). Weights
    are looked up per element, so ``method="weight"`` also takes dense labels
    (tokens ``(B, T)``, pixels ``(B, H, W)``).

    The training distribution: with ``method="both"`` sampling moves the class
    mix from p to ``s ∝ p^(1-sigma) q^sigma`` and residual weights
    ``w_c = q_c / s_c`` (mean one per example) make the weighted mix equal the
    target q exactly. See the module docstring.

    Args:
      dataset: ``(x, y)`` or ``(x, y, w)`` tuples (TFDS ``as_supervised``),
        or dicts with the label under ``label``.
      table: the data's counts; for a model with several outputs, one table
        per output, keyed like the labels (``{"a": table_a, "b": table_b}``
        for ``(x, {"a": y_a, "b": y_b})`` elements or dicts holding the label
        keys; a tuple of tables for tuple labels). See the module docstring.
      method: ``"resample"``, ``"weight"`` or ``"both"`` (default).
      target: the class mix training should see; see
        ``balance.targets.resolve_target``. Default ``"uniform"``. With
        several outputs, one value for every head that can use it, or a
        mapping by head (``{"a": "uniform", "b": 0.5}``); so do ``scheme``,
        ``label`` and ``repeat_threshold``.
      scheme: instead of ``target``, the mix ``q_c ∝ n_c · w_c`` that weights
        of this scheme give (``"balanced"`` is uniform). For multilabel
        tables, the per-label weighting scheme (default ``"balanced"``).
      scheme_params: options for ``scheme``.
      sampling_strength: sigma in [0, 1]; default 0.5 for ``"both"``.
        ``"resample"`` is 1 and ``"weight"`` is 0.
      batch_size: output batch size (see above).
      seed: same seed, same stream; see ``balance.resample``.
      label: the dict key of the label (default the table's ``label_key`` or
        ``"label"``) or a function ``element -> label`` (structural access
        only: it also runs on blocks of elements). Tuples use their second item.
        Several outputs with dict elements: a mapping by head of such keys
        or functions (default: the key named like the head).
      label_form: ``"auto"``, ``"sparse"``, ``"dense"``, ``"one_hot"`` or
        ``"multi_hot"``.
      on_unknown: ``"error"`` (default) or a float, the weight of labels
        outside the table (kept once when resampling).
      epoch_size: resampling: ``"keep"`` (default), ``"keep_all"`` or an int;
        see ``sampling_plan``.
      repeat_threshold: multilabel resampling only (LVIS t).
      mixing_window: resampling: examples over which duplicates are spread
        (default 8192).
      redraw_each_epoch: resampling: False repeats the same draw every epoch.
      resample_on: several outputs only: the head whose classes drive the
        sampler (exact for that head); default the largest of the heads'
        repeat factors.

    Returns:
      ``(x, y, sample_weight)`` when weights are attached (``"weight"``,
      ``"both"``), ``(x, y)`` otherwise (``(x, y, w)`` if the input had w).
      With several outputs, y and sample_weight are dicts (or tuples) keyed
      like the labels.

    Raises:
      ValueError: for bad options, or options the method cannot use, before
        any data flows.

    Example:
      >>> table = balance.WeightTable.load("counts.json")
      >>> ds = balance.rebalance(ds, table, method="both", batch_size=64, seed=0)
      >>> steps = balance.sampling_plan(table, sampling_strength=0.5).steps_per_epoch(64)
      >>> model.fit(ds, epochs=3)
    """
    if method not in METHODS:
        raise invalid_choice("method", METHODS, method)
    if sampling_strength is None:
        sampling_strength = DEFAULT_STRENGTH[method]
    elif method != "both" and sampling_strength != DEFAULT_STRENGTH[method]:
        raise invalid(
            "sampling_strength", f"{DEFAULT_STRENGTH[method]} (or None) for method={method!r}",
            sampling_strength, hint="Use method='both' to split the work between sampling and weights",
        )
    sampler = {"seed": seed, "epoch_size": epoch_size, "mixing_window": mixing_window,
               "redraw_each_epoch": redraw_each_epoch}
    if method == "weight":
        _refuse_unused(sampler, "method='weight' (it does not resample)")
    options = SamplerOptions(
        seed=seed, mixing_window=DEFAULT_MIXING_WINDOW if mixing_window is None else mixing_window,
        redraw_each_epoch=True if redraw_each_epoch is None else redraw_each_epoch,
    )
    heads = Heads.resolve(dataset, table, label=label, label_form=label_form, on_unknown=on_unknown)
    if not heads.several:
        _refuse_unused({"resample_on": resample_on}, "a single table (one output)")
    rates = rates_for(heads, method=method, target=target, scheme=scheme, scheme_params=scheme_params,
                      sampling_strength=sampling_strength, epoch_size=epoch_size,
                      repeat_threshold=repeat_threshold, resample_on=resample_on)
    return build_stream(dataset, heads, rates, batch_size=batch_size, options=options)


def _refuse_unused(options: Mapping[str, Any], why: str) -> None:
    for name, value in options.items():
        if value is not None:
            raise invalid(name, f"None for {why}", value)


def check_model_outputs(model: Any, table: WeightTable | Mapping[str, WeightTable]) -> int | dict[str, int] | None:
    """Checks, before training, that a Keras model has one output per class.

    Multiclass: K outputs; binary: 1 (sigmoid) or 2 (softmax); multilabel: K
    (a trailing axis of 1 after them is allowed, for per-label weights). For
    a model with several outputs, pass one table per output name.

    Returns:
      The model's number of outputs (a dict per output name for several
      tables), or None when it is not known yet (an unbuilt subclassed model).

    Raises:
      ValueError: when the count disagrees with the table, naming the output.

    Example:
      >>> balance.check_model_outputs(model, table)  # before model.fit
      4
      >>> balance.check_model_outputs(two_heads, {"a": table_a, "b": table_b})
      {'a': 2, 'b': 3}
    """
    outputs = list(getattr(model, "outputs", None) or [])
    if isinstance(table, Mapping):
        names = list(getattr(model, "output_names", None) or [])
        if len(outputs) == 1 and not set(table) <= set(names):
            raise invalid("table", "one WeightTable: the model has one output "
                          f"(shape {tuple(outputs[0].shape)})", f"tables for {len(table)} outputs {sorted(table)}",
                          hint="Pass the one table, or give the model one named output per table")
        unknown = sorted(set(table) - set(names))
        if unknown or len(names) != len(outputs):
            raise invalid("table", f"keys among the model's output names {names}", sorted(table),
                          hint=f"No model output named {unknown}" if unknown else None)
        shapes = dict(zip(names, (tuple(o.shape) for o in outputs), strict=True))
        return {name: _check_width(shapes[name], t, f"model output {name!r}") for name, t in table.items()}
    if len(outputs) > 1:
        names = list(getattr(model, "output_names", None) or [])
        raise invalid("table", f"one WeightTable per output, as {{output name: table}}: the model has "
                      f"{len(outputs)} outputs {names}", "one table")
    try:
        shape = tuple(model.outputs[0].shape) if outputs else tuple(model.output_shape)
    except (AttributeError, ValueError, TypeError):
        return None
    return _check_width(shape, table, "model")


def _check_width(shape: tuple[Any, ...], table: WeightTable, what: str) -> int | None:
    if table.task == "multilabel" and len(shape) >= 3 and shape[-1] == 1:
        shape = shape[:-1]
    outputs = shape[-1] if shape else None
    if outputs is None:
        return None
    k = table.num_classes
    allowed = (1, 2) if table.task == "binary" else (k,)
    if outputs not in allowed:
        raise invalid(
            what, f"{' or '.join(map(str, allowed))} outputs for the table's {k} {table.task} classes",
            f"{outputs} outputs (output shape {shape})",
            hint="The model and the weight table disagree on the number of classes",
        )
    return int(outputs)
