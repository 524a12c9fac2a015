"""A directory of weight tables, one per label key (the outputs of a multi-output model).

``rebalance stats --label a --label b --output DIR`` writes ``DIR/a.json``,
``DIR/b.json`` (each a normal table, loadable with ``WeightTable.load``) and,
last, ``DIR/index.json``::

  {"format": "tf-rebalance/tables", "format_version": 1,
   "tables": {"a": "a.json", "b": "b.json"},
   "inputs": [...], "fingerprint": "sha256:..."}

``load_tables(DIR)`` returns ``{"a": table_a, "b": table_b}`` in the index's
order, ready for ``balance.rebalance(ds, tables, ...)`` and
``losses.losses_for_outputs(tables)``. A directory without ``index.json`` is
incomplete (the job failed or is still running) and is refused.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from balance import fileio, jsonfile
from balance.errors import InvalidTableError, invalid
from balance.table import WeightTable

INDEX_NAME = "index.json"
INDEX_FORMAT = "tf-rebalance/tables"
INDEX_VERSION = 1


def table_file_names(labels: Sequence[str]) -> dict[str, str]:
    """``{label: file name}``: the label with characters other than letters, digits, ``.``, ``_``, ``-``
    replaced by ``_``, plus ``.json``; made unique (and never ``index.json``) with ``-2``, ``-3``, ..."""
    names: dict[str, str] = {}
    used = {INDEX_NAME}
    for label in labels:
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", label).lstrip(".") or "label"
        name, n = f"{stem}.json", 1
        while name in used:
            n += 1
            name = f"{stem}-{n}.json"
        used.add(name)
        names[label] = name
    return names


def index_json(files: Mapping[str, str], inputs: Sequence[str], fingerprint: str | None) -> str:
    """The text of ``index.json`` for ``{label: file name}`` counted from ``inputs``; ``fingerprint``: the
    tables' common input fingerprint (None if they have none in common: then it is not checked on loading)."""
    return json.dumps({"format": INDEX_FORMAT, "format_version": INDEX_VERSION, "tables": dict(files),
                       "inputs": list(inputs), "fingerprint": fingerprint}, indent=2) + "\n"


def read_index(path: str) -> dict[str, Any]:
    """The parsed ``index.json`` of a directory of tables (or the index file itself).

    Raises:
      balance.errors.InvalidArgumentError: no such directory, or no index in it.
      balance.errors.InvalidTableError: the index is not valid.
    """
    directory, index = _paths(path)
    if not fileio.exists(index):
        found = sorted(n for n in fileio.listdir(directory) if n.endswith(".json")) if fileio.isdir(directory) else []
        raise invalid("path", f"a directory of weight tables holding {INDEX_NAME}", path,
                      hint=f"It holds {found}: an incomplete job's output, or a single table (use "
                      "WeightTable.load)" if found else "Write it with rebalance stats --label a --label b")
    data = jsonfile.read_json(index, what="table index")
    tables = data.get("tables") if isinstance(data, dict) else None
    if (not isinstance(data, dict) or data.get("format") != INDEX_FORMAT
            or not isinstance(tables, dict) or not tables
            or not all(isinstance(k, str) and isinstance(v, str) and "/" not in v for k, v in tables.items())):
        raise InvalidTableError(f"Invalid table index {index!r}: expected {{'format': {INDEX_FORMAT!r}, "
                                "'tables': {label: file name, ...}, ...}", source=repr(index))
    if data.get("format_version") != INDEX_VERSION:
        raise InvalidTableError(f"Invalid table index {index!r}: format_version {data.get('format_version')!r}, "
                                f"this version reads {INDEX_VERSION}", source=repr(index))
    return data


def load_tables(path: str) -> dict[str, WeightTable]:
    """Loads a directory of tables written by the stats job with several ``--label``.

    Args:
      path: the directory (local, ``gs://``, ...) or its ``index.json``.

    Returns:
      ``{label: WeightTable}`` in the order the labels were given.

    Raises:
      balance.errors.InvalidArgumentError: no such directory, or no index in it.
      balance.errors.InvalidTableError: a bad index, or a table that is not the
        index's (another label key or other input files).
    """
    directory, _ = _paths(path)
    data = read_index(path)
    tables = {}
    for label, name in data["tables"].items():
        table = WeightTable.load(f"{directory}/{name}")
        fingerprint = table.provenance.get("fingerprint")
        if table.label_key != label or data.get("fingerprint") not in (None, fingerprint):
            raise InvalidTableError(
                f"Invalid table directory {directory!r}: {name} holds label {table.label_key!r} counted from "
                f"{fingerprint!r}; the index lists it for label {label!r} counted from {data.get('fingerprint')!r}",
                source=repr(f"{directory}/{name}"))
        tables[label] = table
    return tables


def _paths(path: str) -> tuple[str, str]:
    if not isinstance(path, str) or not path:
        raise invalid("path", "a directory of weight tables", path)
    path = path.rstrip("/")
    if path.endswith("/" + INDEX_NAME) or path == INDEX_NAME:
        directory = path[: -len(INDEX_NAME)].rstrip("/") or "."
        return directory, path
    return path, f"{path}/{INDEX_NAME}"
