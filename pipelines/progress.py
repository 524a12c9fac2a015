"""Progress of a running stats job on stderr: shards done of total, records, records/s, elapsed.

A runner's metrics can be read only once the job ends, so the job has a side
channel of its own on runners whose workers share this machine's filesystem
(DirectRunner in process or multi-process, Dask with the local cluster the
command starts): each reader DoFn appends one line, the shard's record count,
to a file of its process in a fresh temporary directory (``note_shard``); a
daemon thread in the command process adds up the files every ``interval``
seconds and prints one line. Appends of one short line are atomic on a local
filesystem, and a line without its newline yet is left for the next poll.
Progress never fails the job: every error of the channel is swallowed.

On other runners the command prints one line pointing to the runner's own UI.
This is hand-written rather than ``tqdm``: a log line every 15 s, written by
another process's shards, is not a progress bar.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from typing import TextIO

INTERVAL_ENV = "REBALANCE_PROGRESS_SECONDS"  # seconds between lines; tests set it small
DEFAULT_INTERVAL = 15.0
UI_HINT = {
    "dataflow": "the job's page in the Google Cloud console (Dataflow > Jobs)",
    "flink": "the Flink web UI (the job server's --flink_master address)",
    "spark": "the Spark web UI (the master's address, port 4040 by default)",
    "dask": "the Dask dashboard of the cluster at --dask_address (port 8787 by default)",
}


def note_shard(directory: str | None, records: int) -> None:
    """On a worker: records that one shard of ``records`` records was counted. Never raises."""
    if directory is None:
        return
    try:
        with open(os.path.join(directory, f"{os.getpid()}.txt"), "a") as log:
            log.write(f"{int(records)}\n")
    except Exception:  # noqa: BLE001, S110 (progress must never fail the job)
        pass


def read_progress(directory: str) -> tuple[int, int]:
    """``(shards, records)`` noted so far in ``directory``."""
    shards = records = 0
    with contextlib.suppress(OSError):
        for name in os.listdir(directory):
            with contextlib.suppress(OSError, ValueError), open(os.path.join(directory, name)) as log:
                text = log.read()
                for line in text[: text.rfind("\n") + 1].splitlines():
                    records += int(line)
                    shards += 1
    return shards, records


def format_line(shards: int, total: int, records: int, seconds: float) -> str:
    rate = records / seconds if seconds > 0 else 0.0
    return (f"progress: {shards}/{total} shards, {records:,} records, {rate:,.0f} records/s, "
            f"{seconds:.0f} s elapsed")


class Progress:
    """Where the job's workers note their shards, and the lines the command prints about them.

    Args:
      local: whether the workers share this machine's filesystem.
      quiet: print nothing.
      runner: the runner's name, for the pointer to its UI when not ``local``.
      stream: where lines go (default ``sys.stderr``).
      interval: seconds between lines (default ``$REBALANCE_PROGRESS_SECONDS`` or 15).
    """

    def __init__(self, *, local: bool, quiet: bool = False, runner: str = "", stream: TextIO | None = None,
                 interval: float | None = None) -> None:
        self._local, self._quiet, self._runner = local, quiet, runner
        self._stream = stream
        self.interval = interval if interval is not None else _interval_from_env()
        # Chosen now, created by ``watch``: the DoFns are built with the path before the job starts.
        self.directory = (os.path.join(tempfile.gettempdir(), f"rebalance-progress-{uuid.uuid4().hex}")
                          if local and not quiet else None)

    def _print(self, line: str) -> None:
        with contextlib.suppress(Exception):
            print(line, file=self._stream or sys.stderr, flush=True)

    @contextlib.contextmanager
    def watch(self, total_shards: int) -> Iterator[None]:
        """Prints a line every ``interval`` seconds while the block runs, and a last one if it succeeds."""
        if self._quiet:
            yield
            return
        if self.directory is None:
            self._print(f"progress: not shown on {self._runner or 'this runner'}; see {_ui_hint(self._runner)}")
            yield
            return
        try:
            os.mkdir(self.directory, 0o700)
        except OSError as err:
            self._print(f"progress: not shown ({err})")
            yield
            return
        start = time.monotonic()
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(self.interval):
                self._print(format_line(*self._state(total_shards), time.monotonic() - start))

        thread = threading.Thread(target=poll, name="rebalance-progress", daemon=True)
        thread.start()
        try:
            yield
            stop.set()
            thread.join()
            self._print(format_line(*self._state(total_shards), time.monotonic() - start))
        finally:
            stop.set()
            shutil.rmtree(self.directory, ignore_errors=True)

    def _state(self, total: int) -> tuple[int, int, int]:
        shards, records = read_progress(self.directory)
        return shards, total, records


def _interval_from_env() -> float:
    try:
        value = float(os.environ.get(INTERVAL_ENV, DEFAULT_INTERVAL))
    except ValueError:
        return DEFAULT_INTERVAL
    return value if value > 0 else DEFAULT_INTERVAL


def _ui_hint(runner: str) -> str:
    name = runner.lower()
    for key, hint in UI_HINT.items():
        if key in name:
            return hint
    return "the runner's own UI or logs"
