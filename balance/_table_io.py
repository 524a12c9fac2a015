"""The weight table on disk: JSON, its schema version, reading and writing.

``WeightTable.to_dict``/``from_dict``/``to_json``/``from_json``/``save``/``load``
call these functions; they take the class as an argument so that this module
does not import ``balance.table`` (which imports it).

Format version 1 (a JSON object)::

  {"format_version": 1, "task": "multiclass",
   "label": {"key": "label", "dtype": "int"}, "num_classes": 3,
   "class_names": null, "counts": [..], "num_examples": 1000.0,
   "num_elements": null, "provenance": {..}, "precomputed": null}

A reader refuses any other version first, since the version decides what the
other fields mean, and refuses unknown fields rather than ignoring them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from balance import fileio, jsonfile
from balance.table_fields import check_label_field, check_path, json_numbers
from balance.errors import InvalidTableError, invalid

FORMAT_VERSION = 1
# The table inside a directory that holds one (a `rebalance sample` output); "_" so data readers skip it.
SAMPLE_TABLE_NAME = "_table.json"
REQUIRED_FIELDS = ("format_version", "task", "counts", "num_examples")
FIELDS = REQUIRED_FIELDS + ("label", "num_classes", "class_names", "num_elements", "provenance", "precomputed")


def to_dict(table: Any) -> dict[str, Any]:
    return {
        "format_version": table.format_version,
        "task": table.task,
        "label": {"key": table.label_key, "dtype": table.label_dtype},
        "num_classes": table.num_classes,
        "class_names": list(table.class_names) if table.class_names is not None else None,
        "counts": table.counts.tolist(),
        "num_examples": table.num_examples,
        "num_elements": table.num_elements,
        "provenance": dict(table.provenance),
        "precomputed": table.precomputed,
    }


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    if not isinstance(data, Mapping):
        raise invalid("table", "a JSON object", type(data).__name__)
    # The version decides what the other fields mean, so it is checked first.
    if data.get("format_version") != FORMAT_VERSION or isinstance(data["format_version"], (bool, float)):
        raise invalid(
            "format_version", f"{FORMAT_VERSION}", data.get("format_version", "missing"),
            hint="The table was written by an incompatible version of tf-rebalance",
        )
    for key in REQUIRED_FIELDS:
        if key not in data:
            raise invalid(key, "a field of the table", "missing")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise invalid(unknown[0], f"only the fields {list(FIELDS)}", data[unknown[0]])
    label = check_label_field(data.get("label") or {})
    return cls(
        task=data["task"],
        counts=json_numbers("counts", data["counts"]),
        num_examples=data["num_examples"],
        num_classes=data.get("num_classes"),
        class_names=data.get("class_names"),
        label_key=label.get("key"),
        label_dtype=label.get("dtype", "int"),
        num_elements=data.get("num_elements"),
        provenance=data.get("provenance") or {},
        precomputed=data.get("precomputed"),
        format_version=data["format_version"],
    )


def to_json(table: Any) -> str:
    data = to_dict(table)
    try:
        return _indented(data, 0) + "\n"
    except _Unusual:
        return json.dumps(data, indent=2, allow_nan=False) + "\n"


_SCALARS = {str, int, float, bool, type(None)}


class _Unusual(Exception):
    """A value ``_indented`` leaves to ``json.dumps`` (a dict key that is not a str, a custom type)."""


def _indented(value: Any, level: int) -> str:
    """``json.dumps(value, indent=2, allow_nan=False)``, the same text, faster.

    With ``indent`` set, ``json`` runs its pure-Python encoder, about 1 s per
    million numbers; here each list of scalars (counts, class names) is
    encoded by the C encoder, one item per line. Encoded strings never hold a
    raw newline (``json`` escapes it), so newlines separate the items.
    """
    pad, inner = "\n" + "  " * level, "\n" + "  " * (level + 1)
    if type(value) is dict and value:
        if not set(map(type, value)) <= {str}:
            raise _Unusual
        items = (f"{json.dumps(key)}: {_indented(item, level + 1)}" for key, item in value.items())
        return "{" + inner + ("," + inner).join(items) + pad + "}"
    if type(value) in (list, tuple) and value:
        if set(map(type, value)) <= _SCALARS:
            flat = json.dumps(value, allow_nan=False, separators=("\n", ": "))
            return "[" + inner + flat[1:-1].replace("\n", "," + inner) + pad + "]"
        return "[" + inner + ("," + inner).join(_indented(item, level + 1) for item in value) + pad + "]"
    if type(value) in _SCALARS or (type(value) in (list, tuple, dict) and not value):
        return json.dumps(value, allow_nan=False)
    raise _Unusual


def from_json(cls: type, text: str, source: str = "<string>") -> Any:
    return _validated(cls, jsonfile.parse_json(text, source=source), source)


def _validated(cls: type, data: Any, source: str) -> Any:
    try:
        return from_dict(cls, data)
    except ValueError as err:
        raise InvalidTableError(f"Invalid weight table {source}: {err}", source=source) from None


def save(table: Any, path: str) -> str:
    check_path("path", path)
    if fileio.isdir(path):
        raise invalid("path", "a file path for the table (not a directory)", path)
    try:
        fileio.write_text_atomically(path, to_json(table))
    except OSError as err:  # a directory that cannot be written, a full disk
        where = f" ({err.filename})" if err.filename and err.filename != path else ""
        raise invalid("path", "a path where the table can be written", path,
                      hint=f"{err.strerror or err}{where}") from None
    return path


def load(cls: type, path: str) -> Any:
    check_path("path", path)
    if fileio.isdir(path):
        inside = f"{path.rstrip('/')}/{SAMPLE_TABLE_NAME}"
        if not fileio.exists(inside):
            raise invalid("path", f"a weight table file, or a directory holding {SAMPLE_TABLE_NAME}", path,
                          hint="A directory of tables (one per label) is read with balance.load_tables")
        path = inside
    if not fileio.exists(path):
        raise invalid("path", "an existing weight table file", path)
    return _validated(cls, jsonfile.read_json(path), repr(path))
