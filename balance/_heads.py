"""The outputs ("heads") a dataset's labels feed: one, or several with one table each.

A single output is the one-head case. ``Heads`` is resolved once per call
and tells the stream where each head's label is in an element, how to split
an element into ``(x, labels, existing sample_weight)`` and how to pack
per-head values back into the labels' structure.

Element structures with several heads:

* ``(x, {"a": y_a, "b": y_b})`` (or ``(x, y, w)``) with tables ``{"a": ..., "b": ...}``;
* ``(x, (y_a, y_b))`` with a tuple of tables (``None`` for a head without one);
* dicts ``{"pixels": ..., "a": ..., "b": ...}`` with tables keyed by the label
  keys (or by any names, with ``label={"a": "key_a", ...}`` naming each head's
  key or giving a function ``element -> label``): the labels leave the
  features and become ``{"a": ..., "b": ...}``.

A head that is in the labels but has no table gets weight 1.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import tensorflow as tf

from balance._labels import Labels, OnUnknown, check_dataset, unpack
from balance.errors import invalid, short_repr
from balance.table import WeightTable

Tables = WeightTable | Mapping[Any, WeightTable | None] | Sequence[WeightTable | None]


@dataclasses.dataclass(frozen=True)
class Head:
    """One output.

    Attributes:
      name: the head's key in the labels (its position for tuple labels;
        None for the single output).
      labels: its resolved ``Labels``, or None for a head without a table.
      spec: its label's ``tf.TensorSpec``.
      getter: several heads with dict elements: the element key of the
        label, or a function ``element -> label``.
    """

    name: Any
    labels: Labels | None
    spec: tf.TensorSpec
    getter: str | Callable[[Any], tf.Tensor] | None = None


@dataclasses.dataclass(frozen=True)
class Heads:
    """Every head of a dataset's elements, resolved once.

    Attributes:
      heads: one ``Head`` per output, in the labels' order.
      layout: ``"single"`` (one table), ``"dict"`` (dict elements holding the
        labels) or ``"tuple"`` (``(x, labels[, w])`` with dict or tuple labels).
      as_tuple: whether several heads' labels (and weights) are a tuple.
    """

    heads: tuple[Head, ...]
    layout: str
    as_tuple: bool = False

    @property
    def several(self) -> bool:
        return self.layout != "single"

    @property
    def names(self) -> tuple[Any, ...]:
        return tuple(h.name for h in self.heads)

    @property
    def with_table(self) -> tuple[Head, ...]:
        return tuple(h for h in self.heads if h.labels is not None)

    @property
    def first(self) -> Labels:
        return self.with_table[0].labels

    @property
    def batched(self) -> bool | None:
        """Whether elements are batches; None for dense labels (one head only)."""
        return self.first.batched

    @classmethod
    def resolve(cls, dataset: tf.data.Dataset, tables: Tables, *, label: Any = None, label_form: str = "auto",
                on_unknown: OnUnknown = "error") -> Heads:
        """Finds every head's label; ``tables`` is one table or one per output."""
        check_dataset(dataset)
        if not isinstance(tables, (Mapping, tuple, list)):
            labels = Labels.resolve(dataset, tables, label=label, label_form=label_form, on_unknown=on_unknown)
            return cls(heads=(Head(None, labels, labels.spec),), layout="single")
        spec = dataset.element_spec
        if isinstance(tables, Mapping):
            if not tables:
                raise invalid("table", "at least one table", dict(tables))
            if isinstance(spec, Mapping):
                return cls._from_dicts(dataset, tables, label, label_form, on_unknown)
            if not (isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], Mapping)):
                raise invalid("table", "a single WeightTable for a dataset with one label", "a mapping of tables",
                              hint="A mapping of tables needs (x, {'a': y_a, ...}) elements or dicts holding "
                              "the label keys")
            label_specs = spec[1]
            missing = sorted(set(tables) - set(label_specs), key=str)
            if missing:
                raise invalid("table", f"keys among the label keys {short_repr(sorted(label_specs))}",
                              short_repr(sorted(tables, key=str)), hint=f"No label for {missing}")
            names, as_tuple, table_of = tuple(label_specs), False, dict(tables)
        else:
            if not (isinstance(spec, tuple) and len(spec) in (2, 3) and isinstance(spec[1], tuple)):
                raise invalid("table", "a single WeightTable (or a mapping) for these elements", "a tuple of tables",
                              hint="A tuple of tables needs (x, (y_a, y_b, ...)) elements")
            label_specs = dict(enumerate(spec[1]))
            if len(tables) != len(label_specs):
                raise invalid("table", f"{len(label_specs)} tables (None for a head without one), one per label",
                              f"{len(tables)} tables")
            names, as_tuple, table_of = tuple(label_specs), True, dict(enumerate(tables))
        if label is not None:
            raise invalid("label", "None for (x, labels) elements with several outputs", label,
                          hint="The labels are found by the table keys (or positions)")
        heads = [_head(name, table_of.get(name), label_specs[name], label_form, on_unknown) for name in names]
        return cls._checked(heads, "tuple", as_tuple)

    @classmethod
    def _from_dicts(cls, dataset, tables, label, label_form, on_unknown) -> Heads:
        spec = dataset.element_spec
        if label is not None and not isinstance(label, Mapping):
            raise invalid("label", "a mapping {head: element key or function} (or None) for several outputs",
                          label, hint="Without it, each head's label is the element key named like the head")
        label = dict(label or {})
        unknown = sorted(set(label) - set(tables), key=str)
        if unknown:
            raise invalid("label", f"keys among the table keys {short_repr(sorted(tables, key=str))}",
                          short_repr(sorted(label, key=str)), hint=f"No table for {unknown}")
        getters = {name: label.get(name, name) for name in tables}
        for name, getter in getters.items():
            if not callable(getter) and not isinstance(getter, str):
                raise invalid(f"label[{name!r}]", "an element key (str) or a function element -> label", getter)
        missing = sorted((n for n, g in getters.items() if isinstance(g, str) and g not in spec), key=str)
        if missing:
            keys = sorted(getters[n] for n in missing)
            raise invalid("table", f"keys among the element's keys {short_repr(sorted(spec))}",
                          short_repr(sorted(tables, key=str)), hint=f"No element key for {keys}")
        heads = []
        for name, getter in getters.items():
            label_spec = spec[getter] if isinstance(getter, str) else dataset.map(
                lambda *e, fn=getter: fn(unpack(e))).element_spec
            heads.append(dataclasses.replace(_head(name, tables[name], label_spec, label_form, on_unknown),
                                             getter=getter))
        return cls._checked(heads, "dict", False)

    @classmethod
    def _checked(cls, heads: list[Head], layout: str, as_tuple: bool) -> Heads:
        if all(h.labels is None for h in heads):
            raise invalid("table", "at least one WeightTable", "only None")
        kinds = {h.labels.batched for h in heads if h.labels is not None}
        if len(kinds) != 1 or None in kinds:
            raise invalid("label", "one class per example in every head, all batched or all unbatched",
                          short_repr([str(h.spec.shape) for h in heads]))
        return cls(heads=tuple(heads), layout=layout, as_tuple=as_tuple)

    # ------------------------------------------------------------- elements
    def split(self, element: Any) -> tuple[Any, Any, Any]:
        """``(x, labels, existing sample_weight or None)``; labels leave dict features."""
        if self.layout == "single":
            return self.first.split(element)
        if self.layout == "dict":
            labels = {h.name: self._get(h, element) for h in self.heads}
            taken = {h.getter for h in self.heads if isinstance(h.getter, str)}
            return {k: v for k, v in element.items() if k not in taken}, labels, None
        return element[0], element[1], element[2] if len(element) == 3 else None

    def labels_of(self, element: Any) -> list[tf.Tensor]:
        """Each head's label tensor in an element or a block of elements."""
        if self.layout == "single":
            return [self.first.get(element)]
        if self.layout == "dict":
            return [self._get(h, element) for h in self.heads]
        return [element[1][h.name] for h in self.heads]

    def unpack(self, labels: Any) -> list[Any]:
        """Per-head values (labels, or an existing weight) from their structure."""
        return [labels] if self.layout == "single" else [labels[h.name] for h in self.heads]

    def pack(self, values: Sequence[Any]) -> Any:
        """Per-head values back into the labels' structure."""
        if self.layout == "single":
            return values[0]
        if self.as_tuple:
            return tuple(values)
        return {h.name: v for h, v in zip(self.heads, values, strict=True)}

    @staticmethod
    def _get(head: Head, element: Any) -> tf.Tensor:
        return element[head.getter] if isinstance(head.getter, str) else head.getter(element)


def _head(name: Any, table: Any, spec: Any, label_form: str, on_unknown: OnUnknown) -> Head:
    if table is not None and not isinstance(table, WeightTable):
        raise invalid(f"table[{name!r}]", "a WeightTable or None", type(table).__name__)
    labels = None if table is None else Labels.from_spec(table, spec, label_form, on_unknown)
    return Head(name, labels, spec)

