"""Strict JSON for files that come from elsewhere: weight tables, table indexes, target shares.

A weight table is a file people pass around, so it is read as untrusted
input. Python's ``json`` module accepts things that would later fail with a
traceback, or silently lose data; each is refused here with an
``InvalidTableError`` naming the file, the top-level field and the value:

* a file larger than ``MAX_BYTES`` (checked before reading; a table of a
  million classes is about 40 MB);
* nesting deeper than ``MAX_DEPTH`` (``json`` would end in ``RecursionError``);
* a duplicated key (``json`` keeps the last one silently);
* ``NaN``, ``Infinity`` and ``-Infinity`` (not JSON), a float literal beyond
  the float64 range (``json`` makes it ``inf``), an integer literal beyond
  int64 (``OverflowError`` later, or a 4,300-digit ``ValueError``);
* a string holding a lone UTF-16 surrogate (``\\ud800``), which cannot be
  written back as UTF-8;
* bytes that are not UTF-8. A UTF-8 byte-order mark is skipped: it loses
  nothing and some editors on Windows add it.

``json`` itself still does the parsing; this module adds the limits through
its hooks, plus one pass that finds where a refused value is, which runs only
when something is refused.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

from balance import fileio
from balance.errors import InvalidTableError, invalid

MAX_BYTES = 256 * 2**20
MAX_DEPTH = 32
_INT64 = 2**63
_STRING = r'"[^"\\]*(?:\\.[^"\\]*)*"'
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _Refused(Exception):
    """Raised from a ``json`` hook; ``parse`` turns it into an ``InvalidTableError``."""

    def __init__(self, problem: str, literal: str | None = None) -> None:
        super().__init__(problem)
        self.problem, self.literal = problem, literal


def read_json(path: str, *, what: str = "weight table") -> Any:
    """Reads and parses the JSON file ``path`` (local or any ``tf.io.gfile`` path) under the rules above.

    Args:
      path: the file.
      what: what the file is, for messages (``"weight table"``, ``"table index"``).

    Raises:
      balance.errors.InvalidArgumentError: a file that cannot be read.
      balance.errors.InvalidTableError: as the module docstring lists.
    """
    source = repr(path)
    try:
        size = fileio.size(path)
        if size > MAX_BYTES:
            raise _error(what, source, None, f"a file of at most {MAX_BYTES:,} bytes", f"{size:,} bytes")
        with fileio.open_binary(path) as handle:
            raw = handle.read(MAX_BYTES + 1)  # the file may have grown since it was measured
    except OSError as err:  # no such file, no permission
        raise invalid("path", f"a readable {what} file", path, hint=err.strerror or str(err)) from None
    if len(raw) > MAX_BYTES:
        raise _error(what, source, None, f"a file of at most {MAX_BYTES:,} bytes", f"more than {MAX_BYTES:,} bytes")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _error(what, source, None, "UTF-8 text", f"byte {raw[err.start:err.start + 1]!r} at offset {err.start}",
                     "Tables are written as UTF-8; was the file converted to another encoding?") from None
    return parse_json(text, source=source, what=what)


def parse_json(text: str, *, source: str = "<string>", what: str = "weight table") -> Any:
    """Parses JSON text under the rules of the module docstring.

    Raises:
      balance.errors.InvalidTableError: naming ``source``, the field and the value.
    """
    if len(text) > MAX_BYTES:
        raise _error(what, source, None, f"at most {MAX_BYTES:,} characters", f"{len(text):,} characters")
    offset = _too_deep(text)
    if offset is not None:
        raise _error(what, source, _field_at(text, offset), f"JSON nested at most {MAX_DEPTH} levels deep",
                     f"deeper nesting at character {offset}")
    try:
        data = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_constant, parse_int=_int,
                          parse_float=_float)
    except _Refused as err:
        field = err.literal and _field_at(text, _offset_of(text, err.literal))
        raise _error(what, source, field, *err.args[0].split("|", 1)) from None
    except ValueError as err:  # json.JSONDecodeError names the line and column
        raise InvalidTableError(f"Invalid {what} {source}: not valid JSON ({err})", source=source) from None
    if (_SURROGATE_ESCAPE.search(text) or not text.isascii() and _LONE_SURROGATE.search(text)) and \
            _has_lone_surrogate(data):
        raise _error(what, source, None, "text that is valid Unicode",
                     "a lone UTF-16 surrogate escape (\\ud800-\\udfff)")
    return data


def _error(what: str, source: str, field: str | None, expected: str, received: str,
           hint: str | None = None) -> InvalidTableError:
    where = f"field `{field}`" if field else "the file"
    message = f"Invalid {what} {source}: {where}: expected {expected}; received {received}"
    return InvalidTableError(message + (f". {hint}" if hint else ""), source=source)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        key = next(k for k, _ in pairs if k in seen or seen.add(k))
        values = [v for k, v in pairs if k == key]
        shown = " and ".join(_short(v) for v in values[:2])
        raise _Refused(f"each key once in an object|the key {key!r} {len(values)} times ({shown}); "
                       "JSON readers would keep only the last", json.dumps(key) + ":")
    return data


def _constant(name: str) -> float:
    raise _Refused(f"finite JSON numbers|{name} (not JSON)", name)


def _int(literal: str) -> int:
    if len(literal) > 18 and (len(literal) > 20 or not -_INT64 <= int(literal) < _INT64):
        raise _Refused(f"an integer within int64|{_short(literal)}", literal)
    return int(literal)


def _float(literal: str) -> float:
    value = float(literal)
    if value - value != 0.0:  # inf (NaN is a constant, refused by _constant)
        raise _Refused(f"a number within the float64 range|{_short(literal)}", literal)
    return value


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 40 else f"{text[:20]}...{text[-8:]} ({len(text)} characters)"


def _too_deep(text: str) -> int | None:
    """Offset where the nesting first exceeds ``MAX_DEPTH``, or None (brackets in strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return None
    stripped = re.sub(_STRING, '""', text).encode("utf-8")
    codes = np.frombuffer(stripped, dtype=np.uint8)
    steps = np.zeros(codes.size, np.int32)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    if codes.size == 0 or np.cumsum(steps).max() <= MAX_DEPTH:
        return None
    depth = 0
    for token in re.finditer(_STRING + r"|[\[\]{}]", text):  # the offset in the original text
        if token.group() in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return token.start()
        elif token.group() in "]}":
            depth -= 1
    return None


def _offset_of(text: str, literal: str) -> int:
    """Where ``literal`` first appears outside a string; for a key (``"k":``), its second appearance."""
    if literal.startswith('"'):
        keys = [m.start() for m in re.finditer(re.escape(literal[:-1]) + r"\s*:", text)]
        return keys[1] if len(keys) > 1 else 0
    bare = r"(?<![\w.+-])" + re.escape(literal) + r"(?![\w.])"
    for token in re.finditer(f"{_STRING}|{bare}", text):
        if not token.group().startswith('"'):
            return token.start()
    return 0


def _field_at(text: str, offset: int) -> str | None:
    """The top-level key whose value holds ``offset`` (None if the top level is not an object)."""
    depth, key = 0, None
    for token in re.finditer(_STRING + r"|[\[\]{}]", text):
        if token.start() >= offset:
            break
        value = token.group()
        if value in ("[", "{"):
            depth += 1
        elif value in ("]", "}"):
            depth -= 1
        elif depth == 1 and text[token.end():token.end() + 64].lstrip().startswith(":"):
            key = json.loads(value)
    return key if depth >= 1 else None


def _has_lone_surrogate(data: Any) -> bool:
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _LONE_SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
