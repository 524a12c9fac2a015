"""The base of the per-format reader DoFns: shards in, ``ClassCounts`` out, with metrics.

A reader reads a shard once and fills one ``ShardCounter`` per label config
(one, or several ``heads``: see ``pipelines._heads``); the base reads a
bundle's shards on a few threads (``pipelines._read_ahead``), reports
records, shards and bad records as Beam counters, and carries the job's own
errors in the counts (see ``pipelines._outcome``). The formats are in
``pipelines.readers``.
"""

from __future__ import annotations

from collections.abc import Iterator

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindow
from apache_beam.utils.timestamp import MIN_TIMESTAMP
from apache_beam.utils.windowed_value import WindowedValue

from balance.errors import RebalanceError
from pipelines._config import Shard, StatsConfig
from pipelines._outcome import METRICS_NAMESPACE, as_data_error, for_label
from pipelines._progress import note_shard
from pipelines._read_ahead import ReadAhead
from pipelines._shard import ShardCounter
from pipelines.combiners import BAD_KINDS, ClassCounts


def bad_counter_name(kind: str, label: str | None = None) -> str:
    """The metrics counter of one bad kind: ``bad_<kind>``, or ``<label>:bad_<kind>`` for one of several labels."""
    return f"bad_{kind}" if label is None else f"{label}:bad_{kind}"


class CountShards(beam.DoFn):
    """Base: one ``ClassCounts`` per shard (a tuple of them, one per label, given ``heads``), plus metrics.

    Args:
      config: the job config; its label is the first head's.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines._progress``).
      heads: several label configs sharing ``config``'s input options (see
        ``pipelines._heads.HeadsConfig``), counted in one read; None: ``config`` alone.
    """

    def __init__(self, config: StatsConfig, progress_dir: str | None = None,
                 heads: tuple[StatsConfig, ...] | None = None) -> None:
        self._config = config
        self._progress_dir = progress_dir
        self._multi = heads is not None
        self._heads = tuple(heads) if heads is not None else (config,)

    def setup(self) -> None:
        self._records = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records")
        self._shards = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "shards")
        labels = [h.label for h in self._heads] if self._multi else [None]
        self._bad = [{k: beam.metrics.Metrics.counter(METRICS_NAMESPACE, bad_counter_name(k, label))
                      for k in BAD_KINDS} for label in labels]

    def start_bundle(self) -> None:
        self.teardown()  # threads left by a failed bundle
        self._ahead = ReadAhead(self._counts, self._config.read_threads)

    def process(self, shard: Shard) -> Iterator[ClassCounts | tuple[ClassCounts, ...]]:
        for counts in self._ahead.add(Shard(*shard)):
            yield self._report(counts)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for counts in self._ahead.drain():
            yield WindowedValue(self._report(counts), MIN_TIMESTAMP, (GlobalWindow(),))
        self._ahead.close()

    def teardown(self) -> None:
        if hasattr(self, "_ahead"):
            self._ahead.close()

    def _counts(self, shard: Shard) -> ClassCounts | tuple[ClassCounts, ...]:
        """The shard's counts; the job's own error, if one is met, travels in them (see ``_outcome``)."""
        try:
            counts = tuple(counter.finish() for counter in self.count_heads(shard))
        except RebalanceError as err:
            failed = ClassCounts(weighted=self._config.weighted, shards=1, error=as_data_error(err, shard.path))
            counts = (failed,) * len(self._heads)
        return counts if self._multi else counts[0]

    def _report(self, counts: ClassCounts | tuple[ClassCounts, ...]) -> ClassCounts | tuple[ClassCounts, ...]:
        heads = counts if self._multi else (counts,)
        self._records.inc(heads[0].records)  # every head counts every record read
        self._shards.inc()
        for bad, head in zip(self._bad, heads, strict=True):
            for kind, count in head.bad.items():
                bad[kind].inc(count)
        note_shard(self._progress_dir, heads[0].records)
        return counts

    def _counters(self, path: str, first_record: int | None = 0) -> list[ShardCounter]:
        return [ShardCounter(head, path, first_record) for head in self._heads]

    def _add_head(self, counter: ShardCounter, *batch) -> None:
        """``counter.add(*batch)``; with several labels, an error names the label."""
        try:
            counter.add(*batch)
        except RebalanceError as err:
            raise (for_label(err, counter.config.label) if self._multi else err) from None

    def count(self, shard: Shard) -> ShardCounter:
        """The (first) label's ``ShardCounter`` of ``shard``."""
        return self.count_heads(shard)[0]

    def count_heads(self, shard: Shard) -> list[ShardCounter]:
        """One ``ShardCounter`` per head, filled from one read of ``shard``."""
        raise NotImplementedError
