"""Refusing command-line flags that nothing knows, with a suggestion.

Beam's ``PipelineOptions`` drops a flag it cannot parse with only a log
warning, so ``--labell y`` would silently count the default label. The job
therefore passes to Beam only the flags that a registered ``PipelineOptions``
subclass declares (the same parser ``PipelineOptions.get_all_options``
builds) and refuses the rest before any data is read. This module imports
Beam only in ``beam_parser``, so ``rebalance show`` can use ``refuse_unknown``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
from collections.abc import Iterable, Sequence

from balance.errors import InvalidArgumentError, invalid

# Runner modules that register their own options when imported (the rest are
# declared in apache_beam.options.pipeline_options), with their flags' prefix.
RUNNER_OPTION_MODULES = {"apache_beam.runners.dask.dask_runner": "--dask_"}


class FlagParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises the project's ``ValueError`` instead of exiting."""

    def error(self, message: str):
        raise InvalidArgumentError(f"Invalid command-line flags: {message}")


def flags_of(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option string ``parser`` declares."""
    return sorted({s for action in parser._actions for s in action.option_strings if s.startswith("--")})


def beam_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """A parser of every flag Beam's registered ``PipelineOptions`` declare.

    Returns the parser and, for runner option modules that could not be
    imported, ``{flag prefix: reason}``.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser  # noqa: PLC0415

    class _Parser(FlagParser, _BeamArgumentParser):  # Beam's options call its add_value_provider_argument
        pass

    missing = {}
    for module, prefix in RUNNER_OPTION_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as err:
            missing[prefix] = f"{module} could not be imported ({err})"
    parser = _Parser(prog="beam", allow_abbrev=False, add_help=False, conflict_handler="resolve")
    seen: dict[str, type] = {}
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        # A class redefined in __main__ may appear twice; keep one per name (as Beam does).
        if "_add_argparse_args" in vars(cls) and str(cls) not in seen:
            seen[str(cls)] = cls
            cls._add_argparse_args(parser)
    return parser, missing


def refuse_unknown(unknown: Sequence[str], known: Iterable[str], missing: dict[str, str] | None = None) -> None:
    """Raises a ``ValueError`` naming the first unknown flag (or stray argument).

    Args:
      unknown: what ``parse_known_args`` left over.
      known: every flag that would have been accepted, for the suggestion.
      missing: ``{flag prefix: reason}`` of option sets that could not be loaded.
    """
    if not unknown:
        return
    flags = [u for u in unknown if u.startswith("-") and u != "--"]
    if not flags:
        raise invalid("flags", "only --name value flags", unknown[0],
                      hint=f"Unexpected argument {unknown[0]!r}; inputs are passed with --input")
    flag = flags[0].split("=", 1)[0]
    hint = f"Unknown flag {flag}"
    close = difflib.get_close_matches(flag, sorted(set(known)), n=1, cutoff=0.6)
    if close:
        hint += f": did you mean {close[0]}?"
    for prefix, reason in (missing or {}).items():
        if flag.startswith(prefix):
            hint += f" (Beam's {prefix}* options are unavailable: {reason})"
    raise invalid("flags", "flags of the job or of Beam's PipelineOptions", flag, hint=hint)
