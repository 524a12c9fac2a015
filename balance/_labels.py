"""Reading labels out of dataset elements and mapping them to class ids.

``Labels`` is resolved once per call (key or getter, spec, form, the string
lookup and whether the input is batched) and then shared by the sampler and
the weights. Everything it does inside ``tf.data`` runs on whole tensors
(any rank), once per batch or block, never per element in Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from balance.errors import invalid, invalid_choice, short_repr
from balance.table import WeightTable

LABEL_FORMS = ("auto", "sparse", "dense", "one_hot", "multi_hot")
LabelFn = Callable[[Any], tf.Tensor]
Label = str | LabelFn | None
OnUnknown = str | float

INTEGRAL_FLOAT_RULE = (
    "Float labels are class ids when they are whole numbers (1.0 is class 1); a fractional, NaN or "
    "infinite label is an error"
)


def check_dataset(dataset: Any) -> None:
    if not isinstance(dataset, tf.data.Dataset):
        raise invalid("dataset", "a tf.data.Dataset", type(dataset).__name__)


def check_on_unknown(on_unknown: OnUnknown) -> float | None:
    """``"error"`` gives None; a number is the weight of labels outside the table."""
    if isinstance(on_unknown, str):
        if on_unknown != "error":
            raise invalid("on_unknown", "'error' or a float (the weight of labels outside the table)", on_unknown)
        return None
    if isinstance(on_unknown, bool) or not isinstance(on_unknown, (int, float)) or not on_unknown >= 0:
        raise invalid("on_unknown", "'error' or a float >= 0 (the weight of labels outside the table)", on_unknown)
    return float(on_unknown)


def unpack(args: tuple[Any, ...]) -> Any:
    """``Dataset.map`` spreads tuple elements over arguments; undo that."""
    return args[0] if len(args) == 1 else args


@dataclasses.dataclass(frozen=True)
class Labels:
    """Where the label is, what form it has, and how it maps to class ids.

    Attributes:
      table: the weight table the ids refer to.
      key: the dict key of the label (dict elements), else None.
      fn: a user getter ``element -> label``, else None.
      spec: the label's ``tf.TensorSpec``.
      form: ``"sparse"``, ``"dense"``, ``"one_hot"`` or ``"multi_hot"``.
      default_weight: None (unknown labels are an error) or their weight.
      lookup: string tables: the class-name hash table.
      batched: whether the input's elements are batches; None for labels
        with no single class per example (dense ids: tokens, pixels), which
        are only weighted, elementwise.
    """

    table: WeightTable
    key: str | None
    fn: LabelFn | None
    spec: tf.TensorSpec
    form: str
    default_weight: float | None
    lookup: Any
    batched: bool | None

    @classmethod
    def resolve(
        cls,
        dataset: tf.data.Dataset,
        table: WeightTable,
        *,
        label: Label = None,
        label_form: str = "auto",
        on_unknown: OnUnknown = "error",
    ) -> Labels:
        """Finds the label in ``dataset``'s elements and checks it against ``table``.

        Args:
          dataset: ``(x, y)`` / ``(x, y, w)`` tuples, or dicts.
          table: the counts.
          label: the dict key of the label (default the table's
            ``label_key`` if present, else ``"label"``), or a function
            ``element -> label`` (structural access only: it also runs on
            blocks of elements). Tuples take their second item by default.
          label_form: ``"auto"``, ``"sparse"``, ``"dense"``, ``"one_hot"`` or
            ``"multi_hot"``.
          on_unknown: ``"error"``, or the weight of labels outside the table.
        """
        check_dataset(dataset)
        if label_form not in LABEL_FORMS:
            raise invalid_choice("label_form", LABEL_FORMS, label_form)
        default_weight = check_on_unknown(on_unknown)
        element_spec = dataset.element_spec
        fn = label if callable(label) else None
        if label is not None and fn is None and not isinstance(label, str):
            raise invalid("label", "a dict key (str), a function element -> label, or None", label)
        key = None
        if isinstance(element_spec, Mapping) and fn is None:
            key = label if isinstance(label, str) else (
                table.label_key if table.label_key in element_spec else "label")
            if key not in element_spec:
                raise invalid("label", f"one of the element's keys {short_repr(sorted(element_spec))}", key,
                              hint="Pass label='your_key' or label=lambda e: ...")
        elif isinstance(label, str):
            raise invalid("label", "a function for elements that are not dicts (or None for tuples)", label,
                          hint=f"The elements are {type(element_spec).__name__}s")
        elif fn is None and not (isinstance(element_spec, tuple) and len(element_spec) in (2, 3)):
            raise invalid("label", "a function for elements that are neither (x, y) tuples nor dicts", None,
                          hint=f"The element is a {type(element_spec).__name__}")
        spec = _traced_label_spec(dataset, key, fn)
        if isinstance(spec, (Mapping, tuple, list)):
            raise invalid("table", "one table per output for labels that are a dict or tuple of outputs",
                          "a single WeightTable",
                          hint=f"The labels are {type(spec).__name__} {short_repr(list(spec))}: pass e.g. "
                          "{'a': table_a, 'b': table_b}, keyed like the model's outputs")
        if not isinstance(spec, tf.TensorSpec):
            raise invalid("label", "a dense tensor label", type(spec).__name__,
                          hint="Ragged or sparse labels: convert them in a label function (e.g. to multi-hot)")
        form = _resolve_form(table, spec, label_form)
        _check_width(table, spec, form)
        lookup = _string_lookup(table, spec, label_form) if spec.dtype == tf.string else None
        return cls(table=table, key=key, fn=fn, spec=spec, form=form, default_weight=default_weight,
                   lookup=lookup, batched=_is_batched(spec, form))

    @classmethod
    def from_spec(cls, table: WeightTable, spec: tf.TensorSpec, label_form: str = "auto",
                  on_unknown: OnUnknown = "error") -> Labels:
        """Labels given directly as tensors of ``spec`` (no element structure)."""
        if label_form not in LABEL_FORMS:
            raise invalid_choice("label_form", LABEL_FORMS, label_form)
        if not isinstance(spec, tf.TensorSpec):
            raise invalid("label_spec", "a tf.TensorSpec", spec)
        form = _resolve_form(table, spec, label_form)
        _check_width(table, spec, form)
        lookup = _string_lookup(table, spec, label_form) if spec.dtype == tf.string else None
        batched = _is_batched(spec, form) if spec.shape.rank is not None else None
        return cls(table=table, key=None, fn=None, spec=spec, form=form,
                   default_weight=check_on_unknown(on_unknown), lookup=lookup, batched=batched)

    # ------------------------------------------------------------- elements
    def split(self, element: Any) -> tuple[Any, tf.Tensor, tf.Tensor | None]:
        """``(x, y, existing sample_weight or None)``; for dicts the label leaves x."""
        if self.key is not None:
            x = {k: v for k, v in element.items() if k != self.key}
            return x, (self.fn(element) if self.fn else element[self.key]), None
        if self.fn is not None:
            if isinstance(element, (tuple, list)) and len(element) in (2, 3):
                return element[0], self.fn(element), element[2] if len(element) == 3 else None
            if isinstance(element, Mapping):
                return element, self.fn(element), None
            return element, self.fn(element), None
        return element[0], element[1], element[2] if len(element) == 3 else None

    def get(self, element: Any) -> tf.Tensor:
        """The label of an element or a block of elements."""
        if self.fn is not None:
            return self.fn(element)
        return element[self.key] if self.key is not None else element[1]

    # --------------------------------------------------------------- class ids
    def class_ids(self, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None, tf.Tensor | None]:
        """``(ids, known, ok)`` for looking sparse/dense/one-hot labels up in per-class tables.

        ``ids`` are clipped into [0, K) (sparse labels keep their shape,
        one-hot labels lose the last axis). ``known`` is None when every label
        must be known (``on_unknown="error"``), else where the label is in the
        table. ``ok`` is a scalar, False when the labels must stop the
        pipeline (an unknown label in error mode, or a fractional or
        non-finite float id, always), None when nothing can; pass it to
        ``checked``. A few ops per batch or block, none per class.
        """
        k = self.table.num_classes
        if self.form == "one_hot":
            ids = tf.argmax(labels, axis=-1, output_type=tf.int32)
            present = tf.reduce_max(labels, axis=-1) > 0
            return (ids, None, tf.reduce_all(present)) if self.default_weight is None else (ids, present, None)
        ok = None
        if labels.dtype == tf.string:
            raw = self.lookup.lookup(labels)
        elif labels.dtype.is_floating:
            rounded = tf.round(labels)
            whole = tf.math.is_finite(labels) & tf.equal(rounded, labels)
            ok = tf.reduce_all(whole)
            raw = tf.cast(tf.clip_by_value(tf.where(whole, rounded, -1.0), -1.0, float(k)), tf.int32)
        else:
            raw = tf.cast(tf.clip_by_value(labels, tf.cast(-1, labels.dtype), tf.cast(k, labels.dtype)), tf.int32)
        ids = tf.clip_by_value(raw, 0, k - 1)
        if self.default_weight is not None:
            return ids, (raw >= 0) & (raw < k), ok
        in_table = (tf.reduce_min(raw) >= 0) & (tf.reduce_max(raw) < k)
        return ids, None, in_table if ok is None else ok & in_table

    def checked(self, labels: tf.Tensor, ok: tf.Tensor | None, values: Any) -> Any:
        """``values`` once ``ok`` holds; else the pipeline stops with an error naming the bad labels.

        The bad labels are gathered for the message only when there are some.
        """
        if ok is None:
            return values

        def fail() -> Any:
            with tf.control_dependencies(self._guards(labels)):
                return tf.nest.map_structure(tf.identity, values)

        return tf.cond(ok, lambda: tf.nest.map_structure(tf.identity, values), fail)

    def _guards(self, labels: tf.Tensor) -> list[tf.Operation]:
        """The run-time checks, with messages: no fractional ids, and no unknown labels unless they have a weight."""
        k = self.table.num_classes
        if self.form == "one_hot":
            whole, known = tf.ones(tf.shape(labels)[:-1], tf.bool), tf.reduce_max(labels, axis=-1) > 0
        elif labels.dtype == tf.string:
            ids = self.lookup.lookup(labels)
            whole, known = tf.ones_like(ids, tf.bool), ids >= 0
        elif labels.dtype.is_floating:
            whole = tf.math.is_finite(labels) & tf.equal(tf.round(labels), labels)
            known = (labels >= 0) & (labels < k)
        else:
            whole, known = tf.ones_like(labels, tf.bool), (labels >= 0) & (labels < k)
        checks = []
        if labels.dtype.is_floating and self.form in ("sparse", "dense"):
            checks.append(_assert_all(
                whole, labels,
                f"Invalid value for argument `labels`. Expected whole-number class ids. {INTEGRAL_FLOAT_RULE}. "
                "Received (first few follow):"))
        if self.default_weight is None:
            if self.form == "one_hot":
                expected, shown = "one-hot rows with a positive entry", tf.reduce_max(labels, axis=-1)
            elif labels.dtype == tf.string:
                expected, shown = f"one of the table's class names {short_repr(self.table.class_names)}", labels
            else:
                expected, shown = f"class ids in [0, {k}) (the table has {k} classes)", labels
            checks.append(_assert_all(
                known | tf.logical_not(whole), shown,
                f"Invalid value for argument `labels`. Expected {expected}. Received labels outside the weight "
                "table (first few follow). Pass on_unknown=<weight> to give them that weight instead:"))
        return checks


def _assert_all(ok: tf.Tensor, shown: tf.Tensor, message: str) -> tf.Operation:
    bad = tf.boolean_mask(tf.reshape(shown, [-1]), tf.reshape(tf.logical_not(ok), [-1]))[:8]
    return tf.debugging.Assert(tf.reduce_all(ok), [message, bad], summarize=8)


def _traced_label_spec(dataset: tf.data.Dataset, key: str | None, fn: LabelFn | None) -> Any:
    """The label's TypeSpec, found by tracing (not running) the getter."""
    if fn is None:
        spec = dataset.element_spec
        return spec[key] if key is not None else spec[1]
    return dataset.map(lambda *e: fn(unpack(e))).element_spec


def _string_lookup(table: WeightTable, spec: tf.TensorSpec, label_form: str) -> tf.lookup.StaticHashTable:
    if label_form not in ("auto", "sparse", "dense"):
        raise invalid("label_form", "'sparse' or 'dense' for string labels", label_form)
    if table.class_names is None:
        raise invalid("table", "a table with class_names for string labels", table,
                      hint="Count the labels with class names (e.g. WeightTable.from_labels on strings)")
    return tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(
            tf.constant(list(table.class_names)), tf.range(table.num_classes, dtype=tf.int32)),
        default_value=-1,
    )


def _check_width(table: WeightTable, spec: tf.TensorSpec, form: str) -> None:
    k = table.num_classes
    last = spec.shape[-1] if spec.shape.rank else None
    if form == "multi_hot" and last == 1 and spec.shape.rank >= 2:
        last = spec.shape[-2]  # (..., L, 1): per-label losses for Keras
    if form in ("one_hot", "multi_hot") and last is not None and last != k:
        raise invalid("label", f"{form} labels with {k} columns (the table has {k} classes)", f"shape {spec.shape}",
                      hint="The data and the weight table disagree on the number of classes")


def _resolve_form(table: WeightTable, spec: tf.TensorSpec, label_form: str) -> str:
    if table.task == "multilabel":
        if label_form not in ("auto", "multi_hot"):
            raise invalid("label_form", "'multi_hot' (or 'auto') for a multilabel table", label_form)
        if spec.dtype == tf.string:
            raise invalid("label", "multi-hot numeric rows for a multilabel table", "string labels")
        return "multi_hot"
    if label_form == "multi_hot":
        raise invalid("label_form", "'multi_hot' only with a multilabel table", label_form)
    if label_form != "auto":
        return label_form
    last = spec.shape[-1] if spec.shape.rank else None
    # Float rows wider than 1 are one-hot (checked against K); float ids such
    # as a binary (B, 1) column are class ids. Float dense maps: say label_form="dense".
    if spec.dtype.is_floating and last is not None and last > 1:
        return "one_hot"
    return "sparse"


def _is_batched(spec: tf.TensorSpec, form: str) -> bool | None:
    """Batched input has one more axis than one example's label.

    One example's label is a scalar id or a ``(1,)`` column (sparse), a
    ``(K,)`` row (one-/multi-hot, or ``(K, 1)``). Dense labels (tokens,
    pixels) are only weighted, and elementwise, so their batching does not
    matter.
    """
    rank = spec.shape.rank
    if form == "dense":
        return None
    if rank is None:
        raise invalid("label", "a label of known rank", f"spec {spec}",
                      hint="Give the dataset static shapes (e.g. with tf.ensure_shape in a map)")
    per_example = 1 if form in ("one_hot", "multi_hot") else 0
    if form == "multi_hot" and rank >= 2 and spec.shape[-1] == 1:
        per_example = 2
    if form == "sparse" and rank >= 1 and spec.shape[-1] == 1:
        per_example = 1 if rank == 2 else 0  # (B, 1) columns; a lone (1,) label is one example's
        if rank == 1:
            return False
    extra = rank - per_example
    if extra not in (0, 1):
        return None  # ids per token or pixel: weights only
    return extra == 1
