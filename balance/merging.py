"""Exact merges of weight tables: the counts of disjoint parts add up to the whole.

A table stores counts, so the table of a union of datasets is the sum of the
tables of its parts: last month's table plus today's is this month's, without
recounting. ``WeightTable.merge(a, b)`` gives exactly
what the Beam job gives on the union of the parts' inputs, apart from the
provenance, which lists the parts.

Rules:

* the parts must agree on task, label key, label dtype and whether dense
  labels were counted (``num_elements``); anything else is refused;
* counts, ``num_examples`` and ``num_elements`` add;
* string vocabularies are united: in ``class_names`` order if given, else in
  the parts' common order when they all have the same names, else sorted
  (as the Beam job orders names it finds); parts whose own order is not
  sorted must then be given ``class_names``;
* integer ids: a part with fewer classes (the job infers ``max id + 1``) is
  padded with zero counts; named classes must have the same names in all
  parts;
* precomputed weights are recomputed when every part has the same scheme and
  options, and dropped otherwise;
* estimated tables (``losses.estimated_table``) are refused: their counts are
  not exact;
* overlapping parts are refused: two parts with the same fingerprint (the
  same files and sizes, or the same labels), one part already contained in
  a merged table, or two parts counted from the same input path or pattern
  would count examples twice. Parts whose inputs look alike but are disjoint
  by construction (a pattern whose files were replaced between two counts)
  are merged with ``disjoint=True`` (``--disjoint`` on the command line).
  A merged table lists its leaf parts (a merge of merges lists them all),
  so an overlap is found however the tables were merged before.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from balance.table_fields import make_provenance
from balance.errors import invalid, short_repr


def merge_parts(cls: type, tables: Sequence[Any], class_names: Sequence[str] | None = None, *,
                disjoint: bool = False) -> Any:
    """The table of the union of disjoint datasets, from the tables of the parts.

    ``WeightTable.merge`` calls this with
    ``cls=WeightTable``; taking the class as an argument keeps this module
    from importing ``balance.table``, which imports it.

    Args:
      cls: the table class (``WeightTable``).
      tables: one or more ``WeightTable``s of disjoint parts of one dataset.
      class_names: the class order of the merged table, for string labels
        (must cover every name the parts have); default as the module
        docstring says.
      disjoint: True to merge parts whose provenance overlaps (the same
        fingerprint or input) because they are disjoint by construction.

    Returns:
      A new ``WeightTable``; ``provenance["parts"]`` lists each part's
      inputs, fingerprint, creation time and number of examples.

    Raises:
      ValueError: no tables, a non-table, parts of different tasks, label
        keys, label dtypes or counting (dense or not), different class names
        for integer labels, an incomplete ``class_names``, an estimated
        table, or parts that overlap (unless ``disjoint=True``).

    Example:
      >>> month = WeightTable.merge(WeightTable.load("month.json"), WeightTable.load("today.json"))
    """
    parts = _check_parts(tables, cls)
    if not isinstance(disjoint, bool):
        raise invalid("disjoint", "a bool", disjoint)
    first = parts[0]
    if first.label_dtype == "string":
        names, vectors = _united_vocabulary(parts, class_names)
    else:
        if class_names is not None:
            raise invalid(
                "class_names", "None for integer labels (their order is the ids')", short_repr(class_names),
                hint="class_names orders string vocabularies only",
            )
        names, vectors = _aligned_ids(parts)
    if not disjoint:
        _refuse_overlaps(parts)
    counts = np.sum(vectors, axis=0)
    dense = first.num_elements is not None
    merged = cls(
        task=first.task,
        counts=counts,
        num_examples=float(sum(p.num_examples for p in parts)),
        class_names=tuple(names) if names is not None else None,
        label_key=first.label_key,
        label_dtype=first.label_dtype,
        num_elements=float(counts.sum()) if dense else None,
        provenance=_provenance(parts),
    )
    return _with_common_precomputed(merged, parts)


def _check_parts(tables: Sequence[Any], cls: type) -> list[Any]:
    if not tables:
        raise invalid("tables", "at least one WeightTable", "none")
    for i, table in enumerate(tables):
        if not isinstance(table, cls):
            raise invalid(f"tables[{i}]", "a balance.WeightTable", type(table).__name__)
        if "estimated" in table.provenance:
            raise invalid(
                f"tables[{i}]", "a counted table", "an estimated table (provenance 'estimated')",
                hint="Estimated counts are not exact; merge the counted tables and estimate again",
            )
    first = tables[0]
    fields = {
        "task": lambda t: t.task,
        "label_key": lambda t: t.label_key,
        "label_dtype": lambda t: t.label_dtype,
        "num_elements": lambda t: "dense labels (num_elements set)" if t.num_elements is not None
        else "one label per example",
    }
    for i, table in enumerate(tables[1:], start=1):
        for field, get in fields.items():
            if get(table) != get(first):
                raise invalid(
                    f"tables[{i}]",
                    f"the same {field} as tables[0] ({get(first)!r})",
                    f"{field}={get(table)!r}",
                    hint="Only tables of one dataset (one task and label) can be merged",
                )
    return list(tables)


def _united_vocabulary(
    parts: Sequence[Any], class_names: Sequence[str] | None
) -> tuple[list[str], list[np.ndarray]]:
    for i, part in enumerate(parts):
        if part.class_names is None:
            raise invalid(f"tables[{i}]", "class names for string labels", None)
    union = {name for part in parts for name in part.class_names}
    if class_names is not None:
        names = [str(n) for n in class_names]
        if len(set(names)) != len(names):
            raise invalid("class_names", "unique names", short_repr(names))
        missing = sorted(union - set(names))
        if missing:
            raise invalid(
                "class_names", "every class name the tables have", short_repr(names),
                hint=f"Missing {short_repr(missing)}",
            )
    elif all(part.class_names == parts[0].class_names for part in parts):
        names = list(parts[0].class_names)
    else:
        unsorted = [i for i, part in enumerate(parts) if list(part.class_names) != sorted(part.class_names)]
        if unsorted:
            raise invalid(
                "class_names", "the class order when the tables' vocabularies differ", None,
                hint=f"tables {unsorted} keep their names in a given (not sorted) order; pass "
                "class_names (on the command line --class_names) to choose the merged order",
            )
        names = sorted(union)
    vectors = []
    for part in parts:
        index = {name: c for c, name in enumerate(part.class_names)}
        vectors.append(np.array([part.counts[index[n]] if n in index else 0.0 for n in names]))
    return names, vectors


def _aligned_ids(parts: Sequence[Any]) -> tuple[list[str] | None, list[np.ndarray]]:
    named = [p for p in parts if p.class_names is not None]
    if named:
        for i, part in enumerate(parts):
            if part.class_names != named[0].class_names:
                raise invalid(
                    f"tables[{i}]", f"the class names {short_repr(named[0].class_names)}",
                    short_repr(part.class_names) if part.class_names else None,
                    hint="Integer ids mean the same class in every part only under the same names",
                )
        return list(named[0].class_names), [p.counts for p in parts]
    size = max(p.num_classes for p in parts)
    return None, [np.concatenate([p.counts, np.zeros(size - p.num_classes)]) for p in parts]


# Inputs that name no data (labels held in memory); only their fingerprints tell parts apart.
_PLACEHOLDERS = {"<in-memory labels>"}


def _leaves(table: Any) -> list[dict[str, Any]]:
    """The parts a table was merged from (as its provenance lists them), or the table itself as one part."""
    parts = table.provenance.get("parts")
    if isinstance(parts, list) and parts and all(isinstance(p, dict) for p in parts):
        return parts
    return [{
        "inputs": list(table.provenance.get("inputs", [])),
        "fingerprint": table.provenance.get("fingerprint"),
        "created": table.provenance.get("created"),
        "num_examples": table.num_examples,
    }]


def _refuse_overlaps(tables: Sequence[Any]) -> None:
    """Two tables that share a leaf part (by fingerprint) or an input would count examples twice."""
    seen: dict[str, int] = {}  # a fingerprint or an input -> the first table that counts it
    for i, table in enumerate(tables):
        mine: dict[str, str] = {}
        for leaf in _leaves(table):
            if leaf.get("fingerprint"):
                mine[f"fingerprint {leaf['fingerprint']}"] = f"a part with fingerprint {leaf['fingerprint']}"
            inputs = leaf.get("inputs")
            for path in inputs if isinstance(inputs, list) else []:
                if isinstance(path, str) and path not in _PLACEHOLDERS:
                    mine[f"input {path}"] = f"the input {path!r}"
        for key, what in mine.items():
            if key in seen:
                j = seen[key]
                raise invalid(
                    "tables", "disjoint parts (no part or input counted in two of them)",
                    f"tables[{j}] and tables[{i}] both count {what}",
                    hint="Merging them would count those examples twice. If the parts are disjoint by "
                    "construction, pass disjoint=True (--disjoint on the command line)",
                )
        seen.update(dict.fromkeys(mine, i))


def _provenance(parts: Sequence[Any]) -> dict[str, Any]:
    inputs: list[str] = []
    for part in parts:
        inputs.extend(i for i in part.provenance.get("inputs", []) if i not in inputs)
    listed = [leaf for part in parts for leaf in _leaves(part)]
    digest = hashlib.sha256("\n".join(sorted(str(p["fingerprint"]) for p in listed)).encode()).hexdigest()
    provenance = make_provenance(inputs, "sha256:" + digest)
    provenance["parts"] = listed
    return provenance


def _with_common_precomputed(merged: Any, parts: Sequence[Any]) -> Any:
    settings = [(p.precomputed or {}).get("scheme") for p in parts]
    options = [(p.precomputed or {}).get("options") for p in parts]
    if settings[0] is None or any(s != settings[0] for s in settings) or any(o != options[0] for o in options):
        return merged
    return merged.with_precomputed(settings[0], scheme_params=options[0])
