"""One error style for the whole project.

Every bad input gets a ``ValueError`` that names the argument (or field, or
file), says what was expected and what was received, and adds a hint when the
likely cause is known. This mirrors Keras's own messages, e.g.
``Invalid value for argument `scheme`. Expected one of [...]. Received: scheme='auto'``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def invalid(name: str, expected: str, received: Any, hint: str | None = None) -> ValueError:
    """Builds (does not raise) the project's standard ``ValueError``."""
    message = f"Invalid value for argument `{name}`. Expected {expected}. Received: {name}={received!r}"
    if hint:
        message += f". {hint}"
    return ValueError(message)


def invalid_choice(name: str, choices: Iterable[Any], received: Any, hint: str | None = None) -> ValueError:
    """A ``ValueError`` for a value outside a closed set of ``choices``."""
    return invalid(name, f"one of {sorted(choices)!r}", received, hint)


def short_repr(values: Any, limit: int = 8) -> str:
    """A compact repr of a possibly long sequence, for error messages."""
    values = list(values)
    if len(values) <= limit:
        return repr(values)
    return repr(values[:limit])[:-1] + f", ... ({len(values)} in all)]"
