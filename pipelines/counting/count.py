"""The counting DoFn: shards in, ``ClassCounts`` out, with metrics.

``CountShards`` reads each shard once with the format's reader
(``pipelines.io.readers``) and fills one ``ShardCounter`` per label config
(one, or several ``heads``: see ``pipelines.config.HeadsConfig``); it reads a
bundle's shards on a few threads (``pipelines.io.read_ahead``), reports
records, shards and bad records as Beam counters, and carries the job's own
errors in the counts (see ``pipelines.outcome``).
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam

from balance.errors import RebalanceError
from pipelines.config import Shard, StatsConfig
from pipelines.counting.combiners import BAD_KINDS, ClassCounts
from pipelines.counting.shard import ShardCounter
from pipelines.io.read_ahead import ReadShards
from pipelines.io.readers import Batch, reader_for
from pipelines.outcome import METRICS_NAMESPACE, as_data_error, for_label
from pipelines.progress import note_shard


def bad_counter_name(kind: str, label: str | None = None) -> str:
    """The metrics counter of one bad kind: ``bad_<kind>``, or ``<label>:bad_<kind>`` for one of several labels."""
    return f"bad_{kind}" if label is None else f"{label}:bad_{kind}"


class ShardCounters:
    """A reader's sink (``pipelines.io.readers.Sink``) that counts every head of one shard.

    Args:
      heads: the label configs.
      path: the shard's file, for errors.
      per_label: errors name the label they are about (one of several).
    """

    def __init__(self, heads: Sequence[StatsConfig], path: str, per_label: bool) -> None:
        self.heads, self.path, self.per_label = tuple(heads), path, per_label
        self.counters = [ShardCounter(head, path) for head in self.heads]

    def start(self, first_record: int | None, names) -> None:
        self.counters = [ShardCounter(head, self.path, first_record) for head in self.heads]

    def add(self, batch: Batch) -> None:
        for head, values, lengths, wrong in batch.labels:
            counter = self.counters[head]
            try:
                counter.add(values, lengths, batch.weights, wrong)
            except RebalanceError as err:
                raise (for_label(err, counter.config.label) if self.per_label else err) from None

    def bad(self, kind: str, count: int, head: int | None = None) -> None:
        for counter in self.counters if head is None else [self.counters[head]]:
            counter.add_bad(kind, count)


class CountShards(ReadShards):
    """One ``ClassCounts`` per shard (a tuple of them, one per label, given ``heads``), plus metrics.

    Args:
      config: the job config; its label is the first head's.
      progress_dir: a local directory where each counted shard is noted (see ``pipelines.progress``).
      heads: several label configs sharing ``config``'s read options, counted in one read and
        emitted as a tuple; None: ``config`` alone.
    """

    def __init__(self, config: StatsConfig, progress_dir: str | None = None,
                 heads: Sequence[StatsConfig] | None = None) -> None:
        super().__init__(config.read_threads)
        self._config = config
        self._progress_dir = progress_dir
        self._per_label = heads is not None
        self._heads = tuple(heads) if heads is not None else (config,)
        self._reader = reader_for(self._heads)

    def setup(self) -> None:
        self._reader.setup()
        self._records = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "records")
        self._shards = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "shards")
        labels = [h.label for h in self._heads] if self._per_label else [None]
        self._bad = [{k: beam.metrics.Metrics.counter(METRICS_NAMESPACE, bad_counter_name(k, label))
                      for k in BAD_KINDS} for label in labels]

    def count_heads(self, shard: Shard) -> list[ShardCounter]:
        """One ``ShardCounter`` per head, filled from one read of ``shard``."""
        sink = ShardCounters(self._heads, shard.path, self._per_label)
        self._reader.read(shard, sink)
        return sink.counters

    def count(self, shard: Shard) -> ShardCounter:
        """The (first) label's ``ShardCounter`` of ``shard``."""
        return self.count_heads(shard)[0]

    def read_shard(self, shard: Shard) -> ClassCounts | tuple[ClassCounts, ...]:
        """The shard's counts; the job's own error, if one is met, travels in them (see ``pipelines.outcome``)."""
        try:
            counts = tuple(counter.finish() for counter in self.count_heads(shard))
        except RebalanceError as err:
            failed = ClassCounts(weighted=self._config.weighted, shards=1, error=as_data_error(err, shard.path))
            counts = (failed,) * len(self._heads)
        return counts if self._per_label else counts[0]

    def emit(self, counts: ClassCounts | tuple[ClassCounts, ...]) -> list[ClassCounts | tuple[ClassCounts, ...]]:
        heads = counts if self._per_label else (counts,)
        self._records.inc(heads[0].records)  # every head counts every record read
        self._shards.inc()
        for bad, head in zip(self._bad, heads, strict=True):
            for kind, count in head.bad.items():
                bad[kind].inc(count)
        note_shard(self._progress_dir, heads[0].records)
        return [counts]
