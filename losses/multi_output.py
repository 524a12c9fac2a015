"""One weighted loss per output of a multi-output model, from its table."""

from __future__ import annotations

from collections.abc import Mapping

import keras

from balance.errors import invalid
from balance.table import WeightTable
from losses.weighted import WeightedBinaryCrossentropy, WeightedSparseCategoricalCrossentropy


def losses_for_outputs(
    tables: Mapping[str, WeightTable | None], *, scheme: str | None = None, from_logits: bool = True
) -> dict[str, keras.losses.Loss]:
    """A dict of losses keyed like the model's outputs, for ``model.compile(loss=...)``.

    Per table task: multiclass gets ``WeightedSparseCategoricalCrossentropy``
    with ``scheme`` (default ``"balanced"``); binary and multilabel get
    ``WeightedBinaryCrossentropy`` (default ``pos_weight``); an output whose
    table is None gets plain ``SparseCategoricalCrossentropy``.

    Use these *instead of* sample weights from ``balance.rebalance(...,
    method="weight")``, not together with them: both weight by class, so
    combining them squares the weights.

    Example:
      >>> model.compile("adam", loss=losses.losses_for_outputs({"a": table_a, "b": table_b}))
    """
    if not isinstance(tables, Mapping) or not tables:
        raise invalid("tables", "a non-empty dict {output name: WeightTable or None}", tables)
    out = {}
    for name, table in tables.items():
        if table is None:
            out[name] = keras.losses.SparseCategoricalCrossentropy(from_logits=from_logits)
        elif not isinstance(table, WeightTable):
            raise invalid(f"tables[{name!r}]", "a WeightTable or None", type(table).__name__)
        elif table.task == "multiclass":
            out[name] = WeightedSparseCategoricalCrossentropy.from_table(
                table, scheme or "balanced", from_logits=from_logits, name=f"{name}_loss")
        else:
            out[name] = WeightedBinaryCrossentropy.from_table(
                table, scheme or "pos_weight", from_logits=from_logits, name=f"{name}_loss")
    return out
