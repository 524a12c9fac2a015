"""Class balancing for models with several outputs: one weight table per head.

Keras refuses ``class_weight`` for a model with more than one output
(``ValueError: class_weight is only supported for Models with a single
output.``) but accepts per-output sample weights from a ``tf.data`` dataset:
``(x, {"a": y_a, "b": y_b}, {"a": w_a, "b": w_b})``. This module builds that
stream from one table per head, with the same one-map-per-block pipeline as
the single-output layer.

Element structures:

* ``(x, {"a": y_a, "b": y_b})`` (or ``(x, y, w)``) with tables ``{"a": ..., "b": ...}``;
* ``(x, (y_a, y_b))`` with a tuple of tables (``None`` for a head without one);
* dicts ``{"pixels": ..., "a": ..., "b": ...}`` with tables keyed by the label
  keys: the labels leave the features and become ``{"a": ..., "b": ...}``.

A head that is in the labels but has no table gets weight 1.

Resampling with several heads: with ``resample_on="a"`` the sampler uses head
a's repeat factors, so head a's sampled mix (and, with ``"both"``, its
weighted mix) is exact in expectation; every other head is only weighted,
with ``q / p`` of its own table, which is approximate because sampling on a
moves the other heads' mix by however the heads co-occur. By default an
example's factor is the largest of its heads' factors (as for multi-label
rows); then every head is approximate.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from balance._labels import Labels, OnUnknown
from balance.errors import invalid, short_repr
from balance.resampling import SamplerOptions, build_stream, factor_fn
from balance.sample_weights import weight_fn
from balance.table import WeightTable
from balance.targets import sampling_plan

Tables = Mapping[str, WeightTable | None] | Sequence[WeightTable | None]


def is_multi_output(tables: Any) -> bool:
    return isinstance(tables, (Mapping, tuple, list))


@dataclasses.dataclass(frozen=True)
class Heads:
    """The label of every output, resolved once.

    Attributes:
      names: the heads' dict keys, or their positions for tuple labels.
      heads: per head, its ``Labels`` (None for a head without a table).
      source: ``"dict"`` (dict elements holding the label keys) or
        ``"tuple"`` (``(x, labels[, w])``).
      as_tuple: whether the labels (and weights) are a tuple, not a dict.
    """

    names: tuple[Any, ...]
    heads: tuple[Labels | None, ...]
    source: str
    as_tuple: bool
    specs: tuple[tf.TensorSpec, ...]

    @classmethod
    def resolve(cls, dataset: tf.data.Dataset, tables: Tables, *, label_form: str, on_unknown: OnUnknown) -> Heads:
        spec = dataset.element_spec
        if isinstance(tables, Mapping):
            if not tables:
                raise invalid("table", "at least one table", dict(tables))
            if isinstance(spec, Mapping):
                missing = sorted(set(tables) - set(spec))
                if missing:
                    raise invalid("table", f"keys among the element's keys {short_repr(sorted(spec))}",
                                  short_repr(sorted(tables)), hint=f"No element key for {missing}")
                names, source, label_specs = tuple(tables), "dict", {k: spec[k] for k in tables}
            elif isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], Mapping):
                label_specs, source = spec[1], "tuple"
                missing = sorted(set(tables) - set(label_specs))
                if missing:
                    raise invalid("table", f"keys among the label keys {short_repr(sorted(label_specs))}",
                                  short_repr(sorted(tables)), hint=f"No label for {missing}")
                names = tuple(label_specs)
            else:
                raise invalid("table", "a single WeightTable for a dataset with one label", "a mapping of tables",
                              hint="A mapping of tables needs (x, {'a': y_a, ...}) elements or dicts holding "
                              "the label keys")
            as_tuple = False
            table_of = {name: tables.get(name) for name in names}
        else:
            if not (isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], tuple)):
                raise invalid("table", "a single WeightTable (or a mapping) for these elements", "a tuple of tables",
                              hint="A tuple of tables needs (x, (y_a, y_b, ...)) elements")
            label_specs, source, as_tuple = dict(enumerate(spec[1])), "tuple", True
            if len(tables) != len(label_specs):
                raise invalid("table", f"{len(label_specs)} tables (None for a head without one), one per label",
                              f"{len(tables)} tables")
            names = tuple(range(len(tables)))
            table_of = dict(enumerate(tables))
        heads = []
        for name in names:
            table = table_of[name]
            if table is not None and not isinstance(table, WeightTable):
                raise invalid(f"table[{name!r}]", "a WeightTable or None", type(table).__name__)
            heads.append(None if table is None else Labels.from_spec(table, label_specs[name], label_form, on_unknown))
        if all(h is None for h in heads):
            raise invalid("table", "at least one WeightTable", "only None")
        kinds = {h.batched for h in heads if h is not None}
        if len(kinds) != 1 or None in kinds:
            raise invalid("label", "one class per example in every head, all batched or all unbatched",
                          short_repr([str(label_specs[n].shape) for n in names]))
        return cls(names=names, heads=tuple(heads), source=source, as_tuple=as_tuple,
                   specs=tuple(label_specs[n] for n in names))

    # The interface ``build_stream`` reads.
    @property
    def first(self) -> Labels:
        return next(h for h in self.heads if h is not None)

    @property
    def batched(self) -> bool:
        return self.first.batched

    @property
    def spec(self) -> tf.TensorSpec:
        return self.first.spec

    @property
    def table(self) -> WeightTable:
        return self.first.table

    def get(self, element: Any) -> Any:
        return self.split(element)[1]

    def split(self, element: Any) -> tuple[Any, Any, Any]:
        if self.source == "dict":
            labels = {k: element[k] for k in self.names}
            return {k: v for k, v in element.items() if k not in labels}, labels, None
        return element[0], element[1], element[2] if len(element) == 3 else None

    def items(self, labels: Any) -> list[tuple[Any, Labels | None, tf.Tensor]]:
        return [(name, head, labels[name]) for name, head in zip(self.names, self.heads, strict=True)]

    def pack(self, values: dict[Any, tf.Tensor]) -> Any:
        return tuple(values[n] for n in self.names) if self.as_tuple else {n: values[n] for n in self.names}


def rebalance_outputs(
    dataset: tf.data.Dataset,
    tables: Tables,
    *,
    method: str,
    target: Any,
    sampling_strength: float,
    batch_size: int | None,
    label_form: str,
    on_unknown: OnUnknown,
    epoch_size: Any,
    resample_on: Any,
    options: SamplerOptions,
) -> tf.data.Dataset:
    """``balance.rebalance`` with one table per output; see the module docstring."""
    heads = Heads.resolve(dataset, tables, label_form=label_form, on_unknown=on_unknown)
    with_table = [n for n, h in zip(heads.names, heads.heads, strict=True) if h is not None]
    if resample_on is not None and resample_on not in with_table:
        raise invalid("resample_on", f"one of the heads with a table {short_repr(with_table)}", resample_on)
    if any(h.table.task == "multilabel" for h in heads.heads if h is not None) and method == "both":
        raise invalid("method", "'resample' or 'weight' when a head has a multilabel table", method)
    plans = {}
    for name, head in zip(heads.names, heads.heads, strict=True):
        if head is None:
            continue
        sampled_on = method != "weight" and resample_on in (None, name)
        strength = sampling_strength if sampled_on else 0.0
        if head.table.task == "multilabel":
            if sampled_on:
                plans[name] = sampling_plan(head.table, sampling_strength=1.0, epoch_size=epoch_size or "keep_all")
        else:
            plans[name] = sampling_plan(head.table, target, sampling_strength=strength,
                                        epoch_size=epoch_size or "keep")

    factor_of = None
    if method != "weight":
        per_head = {n: factor_fn(h, plans[n].factors) for n, h in zip(heads.names, heads.heads, strict=True)
                    if h is not None and resample_on in (None, n)}

        def factor_of(labels: Any) -> tf.Tensor:
            factors = [fn(labels[name]) for name, fn in per_head.items()]
            return tf.reduce_max(tf.stack(factors), axis=0) if len(factors) > 1 else factors[0]

    weighters = {}
    if method != "resample":
        for name, head in zip(heads.names, heads.heads, strict=True):
            if head is not None:
                multilabel = head.table.task == "multilabel"
                weighters[name] = weight_fn(head, scheme="balanced") if multilabel else weight_fn(
                    head, weights=plans[name].weights)

    def finish(element: Any) -> tuple[Any, ...]:
        x, labels, w = heads.split(element)
        if method == "resample":
            return (x, labels) if w is None else (x, labels, w)
        weights = {}
        for name, head, y in heads.items(labels):
            weight = weighters[name](y) if head is not None else tf.ones(tf.shape(y)[:1], tf.float32)
            if w is not None:
                existing = w[name] if isinstance(w, (Mapping, tuple)) else w
                weight = weight * tf.cast(existing, tf.float32)
            weights[name] = weight
        return x, labels, heads.pack(weights)

    return build_stream(dataset, heads, factor_of=factor_of, finish=finish, batch_size=batch_size, options=options)
