"""The errors tf-rebalance raises for bad input, in one style users can catch by type.

Every error is a ``ValueError`` (so ``except ValueError`` keeps working) whose
message names the argument (or field, or file), says what was expected and
what was received, and adds a hint when the likely cause is known. This
mirrors Keras's own messages, e.g.
``Invalid value for argument `scheme`. Expected one of [...]. Received: scheme='auto'``.

* ``InvalidArgumentError``: an argument, option, flag or table field has a bad
  value. ``name``, ``expected`` and ``received`` say which and why.
* ``InvalidDataError``: the data being counted is bad (a label out of range,
  a torn file, invalid UTF-8). ``path`` and ``record`` locate it when known.
* ``InvalidTableError``: a weight-table file or JSON text is not a valid
  table. ``source`` names the file.
* ``JobError``: a ``rebalance stats`` or ``sample`` job (``pipelines``) did
  not finish with its output: the runner ended it in another state than
  DONE, or a worker failed and the runner does not report why. ``state``
  is the runner's final state when known. Nothing was written.

Example:
  >>> from balance import errors
  >>> try:
  ...     WeightTable.load("missing.json")
  ... except errors.RebalanceError as err:
  ...     print(type(err).__name__)
  InvalidArgumentError
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class RebalanceError(ValueError):
    """Base of every error tf-rebalance raises for bad input.

    The fields are kept in ``args`` after the message, so that they survive
    pickling and runners that rebuild an error as ``type(err)(new_message,
    *err.args[1:])`` (Beam does, to add the step name); ``str`` is the message.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class InvalidArgumentError(RebalanceError):
    """An argument, option, flag or field has a bad value.

    Attributes:
      name: the argument, e.g. ``"scheme"``.
      expected: what was expected, in words.
      received: the value received (or its description).
    """

    def __init__(self, message: str, name: str | None = None, expected: str | None = None,
                 received: Any = None) -> None:
        super().__init__(message, name, expected, received)
        self.name, self.expected, self.received = name, expected, received


class InvalidDataError(RebalanceError):
    """The data being counted is bad.

    Attributes:
      path: the file (or shard) holding the bad data, when known.
      record: the 0-based record (example) index in that file, when known.
    """

    def __init__(self, message: str, path: str | None = None, record: int | None = None) -> None:
        super().__init__(message, path, record)
        self.path, self.record = path, record


class InvalidTableError(RebalanceError):
    """A weight-table file or JSON text is not a valid table.

    Attributes:
      source: the file (or ``"<string>"``) the table was read from.
    """

    def __init__(self, message: str, source: str | None = None) -> None:
        super().__init__(message, source)
        self.source = source


class JobError(RebalanceError):
    """A Beam job did not finish with its output; nothing was written.

    Attributes:
      state: the runner's final state (e.g. ``"FAILED"``), when known.
    """

    def __init__(self, message: str, state: str | None = None) -> None:
        super().__init__(message, state)
        self.state = state


def _message(name: str, expected: str, received: Any, hint: str | None) -> str:
    message = f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={received!r}"
    return message + f". {hint}" if hint else message


def invalid(name: str, expected: str, received: Any, hint: str | None = None) -> InvalidArgumentError:
    """Builds (does not raise) the standard ``InvalidArgumentError``."""
    return InvalidArgumentError(_message(name, expected, received, hint), name=name, expected=expected,
                                received=received)


def invalid_choice(name: str, choices: Iterable[Any], received: Any, hint: str | None = None) -> InvalidArgumentError:
    """An ``InvalidArgumentError`` for a value outside a closed set of ``choices``."""
    return invalid(name, f"one of {sorted(choices)!r}", received, hint)


def invalid_data(
    name: str, expected: str, received: Any, *, path: str | None = None, record: int | None = None,
    hint: str | None = None,
) -> InvalidDataError:
    """Builds (does not raise) an ``InvalidDataError`` in the standard style.

    The location is appended to the message: ``Found in file 'a.csv', record 7``
    (or ``Found in example 7`` for labels held in memory).
    """
    where = where_text(path, record)
    hint = "; ".join(h for h in (where, hint) if h) or None
    return InvalidDataError(_message(name, expected, received, hint), path=path, record=record)


def where_text(path: str | None, record: int | None) -> str | None:
    """``"Found in file 'a', record 3"``, ``"Found in example 3"`` or None."""
    if path is not None:
        return f"Found in file {path!r}" + (f", record {record}" if record is not None else "")
    return None if record is None else f"Found in example {record}"


def short_repr(values: Any, limit: int = 8) -> str:
    """A compact repr of a possibly long sequence, for error messages."""
    values = list(values)
    if len(values) <= limit:
        return repr(values)
    return repr(values[:limit])[:-1] + f", ... ({len(values)} in all)]"


__all__ = [
    "InvalidArgumentError",
    "InvalidDataError",
    "InvalidTableError",
    "JobError",
    "RebalanceError",
    "invalid",
    "invalid_choice",
    "invalid_data",
]
