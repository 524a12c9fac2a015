"""Reading a bundle's shards on a few threads, in order, while the runner merges the last one.

The in-process runner hands a DoFn a whole bundle on one thread; the native
readers (tf.data, pyarrow) release the GIL, so reading a few shards at once
uses the worker's cores. ``ReadAhead`` keeps ``threads`` shards being read
and returns each result as soon as the next shard is queued behind it, so
the runner's work on a result (the combiner's merge) overlaps the reading of
the next shards instead of waiting for a whole group of them. At most
``threads + 1`` results are held at a time, so memory stays O(classes) per
thread.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from pipelines.config import Shard


class ReadAhead:
    """Runs ``read(shard)`` for each shard given, ``threads`` at a time, results in shard order.

    Args:
      read: the function of one shard; its exceptions reach the caller.
      threads: shards read at once; 1 reads each one when it is given.
    """

    def __init__(self, read: Callable[[Any], Any], threads: int) -> None:
        self._read = read
        self._threads = threads
        self._pool: ThreadPoolExecutor | None = None
        self._running: deque[Future] = deque()

    def add(self, shard: Any) -> Iterator[Any]:
        """Queues ``shard``; yields the results that need not wait any longer (the oldest ones)."""
        if self._threads == 1:
            yield self._read(shard)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="read")
        self._running.append(self._pool.submit(self._read, shard))
        while len(self._running) > self._threads:
            yield self._running.popleft().result()

    def drain(self) -> Iterator[Any]:
        """Yields the results of every shard still queued, in order (at the end of a bundle)."""
        while self._running:
            yield self._running.popleft().result()

    def close(self) -> None:
        """Stops the threads; shards not started yet are dropped (after an error)."""
        self._running.clear()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class ReadShards(beam.DoFn):
    """Base of the DoFns that read shards: a bundle's shards are read ``threads`` at a time (``ReadAhead``),
    and what each one gives is emitted in shard order.

    Subclasses define ``read_shard(shard)`` (run on the read threads) and
    ``emit(result)``, the elements of one shard's result.
    """

    def __init__(self, threads: int) -> None:
        self._threads = threads

    def start_bundle(self) -> None:
        self.teardown()  # threads left by a failed bundle
        self._ahead = ReadAhead(self.read_shard, self._threads)

    def process(self, shard: Shard) -> Iterator[Any]:
        for result in self._ahead.add(Shard(*shard)):
            yield from self.emit(result)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for result in self._ahead.drain():
            for out in self.emit(result):
                yield WindowedValue(out, MIN_TIMESTAMP, (GlobalWindow(),))
        self._ahead.close()

    def teardown(self) -> None:
        if hasattr(self, "_ahead"):
            self._ahead.close()

    def read_shard(self, shard: Shard) -> Any:
        raise NotImplementedError

    def emit(self, result: Any) -> list[Any]:
        raise NotImplementedError
