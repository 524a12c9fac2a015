"""Reading labels out of dataset elements and mapping them to class ids.

Shared by the sampler and the sample-weight lookup. Everything here runs
inside ``tf.data`` map functions on whole tensors (any rank), never per
element in Python.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import tensorflow as tf

from balance._errors import invalid, invalid_choice, short_repr
from balance.table import WeightTable

LABEL_FORMS = ("auto", "sparse", "dense", "one_hot", "multi_hot")
ON_UNKNOWN = ("error", "default_weight")
LabelFn = Callable[[Any], tf.Tensor]


# ------------------------------------------------------------------ elements
def label_key_for(element_spec: Any, table: WeightTable, label_key: str | None) -> str | None:
    """The dict key holding the label: ``label_key``, the table's, or ``"label"``."""
    if not isinstance(element_spec, Mapping):
        return label_key
    if label_key is not None:
        return label_key
    if table.label_key is not None and table.label_key in element_spec:
        return table.label_key
    return "label"


def split_element(
    element: Any, label_fn: LabelFn | None, label_key: str | None
) -> tuple[Any, tf.Tensor, tf.Tensor | None]:
    """Splits an element into ``(x, y, existing sample_weight or None)``.

    ``(x, y)`` and ``(x, y, w)`` tuples; dicts (the label under ``label_key``
    is removed from x); anything else needs ``label_fn`` and is x itself.
    """
    if isinstance(element, (tuple, list)) and len(element) in (2, 3):
        y = label_fn(element) if label_fn is not None else element[1]
        return element[0], y, element[2] if len(element) == 3 else None
    if isinstance(element, Mapping):
        if label_fn is None:
            if label_key not in element:
                raise invalid(
                    "label_key", f"one of the element's keys {short_repr(sorted(element))}", label_key,
                    hint="Pass label_key=... or label_fn=lambda e: ...",
                )
            y = element[label_key]
        else:
            y = label_fn(element)
        x = {k: v for k, v in element.items() if k != label_key}
        return x, y, None
    if label_fn is None:
        raise invalid(
            "label_fn", "a function for elements that are neither (x, y) tuples nor dicts", None,
            hint=f"The element is a {type(element).__name__}",
        )
    return element, label_fn(element), None


def get_label(element: Any, label_fn: LabelFn | None, label_key: str | None) -> tf.Tensor:
    return split_element(element, label_fn, label_key)[1]


def check_dataset(dataset: Any) -> None:
    if not isinstance(dataset, tf.data.Dataset):
        raise invalid("dataset", "a tf.data.Dataset", type(dataset).__name__)


def label_spec(dataset: tf.data.Dataset, label_fn: LabelFn | None, key: str | None) -> Any:
    """The label's TypeSpec, found by tracing (not running) the label getter."""
    return dataset.map(lambda *e: split_element(unpack(e), label_fn, key)[1]).element_spec


def unpack(args: tuple[Any, ...]) -> Any:
    """``Dataset.map`` spreads tuple elements over arguments; undo that."""
    return args[0] if len(args) == 1 else args


# -------------------------------------------------------------------- labels
@dataclasses.dataclass(frozen=True)
class LabelReader:
    """Maps label tensors to class ids for one table, with the unknown-label policy.

    Built once per pipeline (outside the map functions): string tables create
    their ``tf.lookup.StaticHashTable`` here.
    """

    table: WeightTable
    form: str
    on_unknown: str = "error"
    lookup: Any = None

    @classmethod
    def create(
        cls, table: WeightTable, label_spec: tf.TensorSpec, label_form: str = "auto", on_unknown: str = "error"
    ) -> LabelReader:
        if label_form not in LABEL_FORMS:
            raise invalid_choice("label_form", LABEL_FORMS, label_form)
        if on_unknown not in ON_UNKNOWN:
            raise invalid_choice("on_unknown", ON_UNKNOWN, on_unknown)
        if not isinstance(label_spec, tf.TensorSpec):
            raise invalid(
                "label", "a dense tensor label", type(label_spec).__name__,
                hint="Ragged or sparse labels: convert them in label_fn (e.g. to multi-hot)",
            )
        form = _resolve_form(table, label_spec, label_form)
        k = table.num_classes
        last = label_spec.shape[-1] if label_spec.shape.rank else None
        if form == "multi_hot" and last == 1 and label_spec.shape.rank >= 2:
            last = label_spec.shape[-2]  # (..., L, 1): per-label losses for Keras
        if form in ("one_hot", "multi_hot") and last is not None and last != k:
            raise invalid(
                "label", f"{form} labels with {k} columns (the table has {k} classes)",
                f"shape {label_spec.shape}",
                hint="The data and the weight table disagree on the number of classes",
            )
        lookup = None
        if label_spec.dtype == tf.string:
            if form not in ("sparse", "dense"):
                raise invalid("label_form", "'sparse' or 'dense' for string labels", label_form)
            if table.class_names is None:
                raise invalid(
                    "table", "a table with class_names for string labels", table,
                    hint="Count the labels with class names (e.g. WeightTable.from_labels on strings)",
                )
            lookup = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(list(table.class_names)), tf.range(k, dtype=tf.int32)
                ),
                default_value=-1,
            )
        return cls(table=table, form=form, on_unknown=on_unknown, lookup=lookup)

    def class_ids(self, labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """``(ids, valid)`` for sparse/dense/one-hot labels; invalid ids become 0.

        Sparse labels keep their shape; one-hot labels lose the last axis.
        """
        k = self.table.num_classes
        if self.form == "one_hot":
            ids = tf.argmax(labels, axis=-1, output_type=tf.int32)
            valid = tf.reduce_max(labels, axis=-1) > 0
        else:
            if labels.dtype == tf.string:
                ids = self.lookup.lookup(labels)
            elif labels.dtype.is_floating:
                ids = tf.cast(tf.round(labels), tf.int32)
            else:
                ids = tf.cast(labels, tf.int32)
            valid = (ids >= 0) & (ids < k)
        return tf.where(valid, ids, 0), valid

    def guard(self, valid: tf.Tensor, labels: tf.Tensor) -> list[tf.Operation]:
        """Run-time check that every label is known, when ``on_unknown='error'``."""
        if self.on_unknown != "error":
            return []
        if self.form == "one_hot":
            expected = "one-hot rows with a positive entry"
            shown = tf.reduce_max(labels, axis=-1)
        elif labels.dtype == tf.string:
            expected = f"one of the table's class names {short_repr(self.table.class_names)}"
            shown = labels
        else:
            expected = f"class ids in [0, {self.table.num_classes}) (the table has {self.table.num_classes} classes)"
            shown = labels
        bad = tf.boolean_mask(tf.reshape(shown, [-1]), tf.reshape(tf.logical_not(valid), [-1]))[:8]
        message = (
            f"Invalid value for argument `labels`. Expected {expected}. Received labels outside "
            "the weight table (first few follow). Pass on_unknown='default_weight' to give "
            "them default_weight instead:"
        )
        return [tf.debugging.Assert(tf.reduce_all(valid), [message, bad], summarize=8)]


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
    # as a binary (B, 1) column are rounded. Float dense maps: say label_form="dense".
    if spec.dtype.is_floating and last is not None and last > 1:
        return "one_hot"
    return "sparse"
