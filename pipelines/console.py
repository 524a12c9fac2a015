"""The terminal of a ``rebalance`` command: its environment, its log, its stderr and its one-line errors.

A command prints its own output and nothing else: results on stdout; its
progress lines, tf-rebalance's warnings and, on failure, one error line on
stderr::

  rebalance sample: error: Invalid value for argument `table`. Expected ...

An error that is not one of tf-rebalance's refusals (a runner's or a worker's
failure) adds a second line, the hint to run again with ``--verbose``.
Exit codes: 0 done, 1 refused or failed, 2 a command line argparse cannot
parse, 130 interrupted.

Without ``--verbose`` the rest stays off the terminal:

* log records and Python warnings of other libraries (Beam's INFO lines and
  the worker tracebacks it logs, Dask's cluster messages): the root logger
  gets one handler, which shows only tf-rebalance's own INFO and WARNING
  records (its ERROR records are the error the command prints at the end);
* what reaches file descriptor 2 without going through ``sys.stderr``:
  TensorFlow's C++ start-up lines (oneDNN, CUDA, CPU features; TensorFlow 2.20
  and later write them before reading ``TF_CPP_MIN_LOG_LEVEL``) and the output
  of worker processes (multi-process DirectRunner, a local Dask cluster),
  which inherit the descriptor. When the command runs as a program, the
  descriptor becomes a pipe read by a thread that drops it all but fatal
  lines; ``sys.stderr`` keeps the terminal.

``--verbose`` shows everything: the log at INFO, the workers' output, and the
traceback of an error above its line.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from balance.errors import JobError, RebalanceError

VERBOSE_FLAG = "--verbose"
VERBOSE_HELP = "Show the traceback of an error and the log of Beam, Dask, TensorFlow and the workers."
OUR_PACKAGES = ("balance", "losses", "pipelines", "rebalance_demo")
# Environment defaults for the libraries the commands start, set before they are imported (and inherited
# by worker processes); a value the user has set is kept.
ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "2"}
# Lines on descriptor 2 kept without --verbose: a native fatal log line (absl's ``F1204 ...``) and
# Python's report of a crash.
FATAL = re.compile(rb"^(F\d{4} |Fatal Python error)")
HINT = f"(run again with {VERBOSE_FLAG} to see the traceback and the log)"


def add_verbose_flag(parser) -> None:
    """Declares ``--verbose`` on a command's ``argparse`` parser (``run`` reads it)."""
    parser.add_argument(VERBOSE_FLAG, action="store_true", help=VERBOSE_HELP)


def run(prog: str, command: Callable[[list[str]], int], argv: Sequence[str], *, process: bool) -> int:
    """Runs ``command(argv)`` as the command ``prog``; returns its exit code.

    Args:
      prog: the command's name in messages, e.g. ``"rebalance stats"``.
      command: parses its flags (declaring ``--verbose``) and does the work; returns an exit code.
      argv: the command's arguments.
      process: True when the command is the program (its console script or ``python -m``): it then also
        sets the environment defaults and owns descriptor 2 (see the module docstring). False for a call
        from Python, which keeps its environment and its stderr.
    """
    argv = list(argv)
    verbose = VERBOSE_FLAG in argv
    if process:
        for name, value in ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    with _stderr(quiet=process and not verbose), _log(verbose):
        try:
            return command(argv)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            return 130
        except Exception as err:  # noqa: BLE001 (every failure becomes the command's error line)
            if verbose:
                import traceback  # noqa: PLC0415

                traceback.print_exc(file=sys.stderr)
            print(error_lines(prog, err, verbose=verbose), file=sys.stderr)
            return 1


def error_lines(prog: str, err: BaseException, *, verbose: bool = False) -> str:
    """``prog: error: message``; for a failure that is not a refusal of input (a ``JobError``, another
    library's error), its type and first line, and the ``--verbose`` hint."""
    ours = isinstance(err, (RebalanceError, ImportError))
    line = f"{prog}: error: {str(err).strip() if ours else _first_line(err)}"
    return line if (ours and not isinstance(err, JobError)) or verbose else f"{line}\n{HINT}"


def _first_line(err: BaseException) -> str:
    """A foreign error in one line: its type and the first line of its message."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# ------------------------------------------------------------------ logging
class _OursOnly(logging.Filter):
    """tf-rebalance's INFO and WARNING records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".")[0] in OUR_PACKAGES and record.levelno < logging.ERROR


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        return message if record.levelno < logging.WARNING else f"warning: {message}"


@contextlib.contextmanager
def _log(verbose: bool) -> Iterator[None]:
    """The command's logging, installed on the root logger before Beam is imported and removed after.

    A root logger with a handler also stops Beam's import-time ``logging.warning`` from adding
    ``logging.basicConfig``'s handler.
    """
    root = logging.getLogger()
    ours = [logging.getLogger(name) for name in OUR_PACKAGES]
    saved = root.level, [(logger, logger.level) for logger in ours]
    handler = logging.StreamHandler(sys.stderr)
    if verbose:
        handler.setFormatter(logging.Formatter("%(levelname)s:%(name)s:%(message)s"))
        root.setLevel(logging.INFO)
    else:
        handler.setFormatter(_Format())
        handler.addFilter(_OursOnly())
        root.setLevel(logging.WARNING)
        for logger in ours:
            logger.setLevel(logging.INFO)
    # Beam logs one INFO line per string type hint it meets (our modules use postponed annotations).
    typehints = logging.getLogger("apache_beam.typehints.native_type_compatibility")
    typehints_level = typehints.level
    typehints.setLevel(logging.WARNING)
    root.addHandler(handler)
    logging.captureWarnings(not verbose)  # other libraries' Python warnings: records of ``py.warnings``
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(saved[0])
        for logger, level in saved[1]:
            logger.setLevel(level)
        typehints.setLevel(typehints_level)


# ------------------------------------------------------------ descriptor 2
@contextlib.contextmanager
def _stderr(quiet: bool) -> Iterator[None]:
    """While the block runs, descriptor 2 is a pipe that keeps only fatal lines; ``sys.stderr`` the terminal."""
    if not quiet:
        yield
        return
    try:
        sys.stderr.flush()
        terminal = os.dup(2)
        read, write = os.pipe()
    except (OSError, ValueError, AttributeError):  # no descriptor 2 to take over: nothing to filter
        yield
        return
    saved = sys.stderr
    sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(terminal), "wb", buffering=0), encoding=saved.encoding,
                                  errors="backslashreplace", line_buffering=True)
    os.dup2(write, 2)
    os.close(write)
    reader = threading.Thread(target=_keep_fatal, args=(read, terminal), name="rebalance-stderr", daemon=True)
    reader.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(terminal, 2)  # closes this process's end of the pipe; the reader ends with the last worker's
        reader.join(timeout=2.0)
        sys.stderr.close()
        sys.stderr = saved
        if not reader.is_alive():  # a worker that outlived the command may still write through the reader
            os.close(terminal)


def _keep_fatal(read: int, terminal: int) -> None:
    """Copies the fatal lines arriving on ``read`` to ``terminal`` until the pipe closes."""
    pending = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(read, 65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for line in lines:
                if FATAL.match(line):
                    os.write(terminal, line + b"\n")
        if FATAL.match(pending):
            os.write(terminal, pending + b"\n")
    with contextlib.suppress(OSError):
        os.close(read)
