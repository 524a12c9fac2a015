"""Counts the labels of one shard, batch by batch, with the counting core of ``balance``.

Every reader turns a batch into the same ragged form: ``values`` (all label
values of the batch, flat), ``lengths`` (values per record) and optional
``weights`` (one per record, NaN when missing or unreadable). ``ShardCounter``
sets aside the bad records of the batch (vectorised masks per kind, counted,
not fatal), hands the rest to ``balance.counting.count_batch`` (the function
``WeightTable.from_labels`` uses too) and finally emits one ``ClassCounts``.
"""

from __future__ import annotations

import numpy as np

from balance.string_counts import StringCounts
from balance.counting import LabelCounts, Where, count_batch
from pipelines.config import StatsConfig
from pipelines.counting.combiners import ClassCounts, scalar_to_exact, to_exact

_VECTORS = ("one_hot", "multi_hot")  # one 0/1 vector of a fixed width per record


class ShardCounter:
    """Accumulates one shard in float64, in a fixed order (so deterministically).

    Args:
      config: the job config.
      path: the shard's file, for errors and bad-record reports.
      first_record: the index of the shard's first record in its file (a
        TFDS slice starts after ``skip`` records), for errors; None if
        unknown (a CSV byte range), and errors then name the file only.
    """

    def __init__(self, config: StatsConfig, path: str, first_record: int | None = 0) -> None:
        self.config = config
        self.path = path
        self.form = config.form
        self.ids = np.zeros(config.num_classes or 0, dtype=np.float64)
        # Arrow labels; int64 counts, or float64 sums when weighted (see balance.string_counts).
        self.names = StringCounts(dtype=np.float64 if config.weighted else np.int64)
        self.examples = 0.0
        self.elements = 0.0
        self.records = 0
        self.first_record = first_record
        self.bad: dict[str, int] = {}
        self.kinds: set[str] = set()
        self.width = config.num_classes if self.form in _VECTORS else None

    # ----------------------------------------------------------------- input
    def add_bad(self, kind: str, count: int, *, records: bool = True) -> None:
        """Counts ``count`` bad records of ``kind`` (also as records read)."""
        if count:
            self.bad[kind] = self.bad.get(kind, 0) + int(count)
            if records:
                self.records += int(count)

    def add(
        self,
        values: np.ndarray,
        lengths: np.ndarray,
        weights: np.ndarray | None = None,
        wrong_type: np.ndarray | None = None,
    ) -> None:
        """Counts one batch. ``values`` are ints, whole-number floats or strings (bytes or str, or an Arrow array)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        n = lengths.size
        if n == 0:
            return
        first = None if self.first_record is None else self.first_record + self.records
        self.records += n
        ok = np.ones(n, dtype=bool)
        ok = self._reject(ok, wrong_type, "wrong_type")
        if self.form != "id_lists":
            ok = self._reject(ok, lengths == 0, "missing_label")
        if self.form == "sparse":
            ok = self._reject(ok, lengths > 1, "wrong_shape")
        elif self.form in _VECTORS:
            if self.width is None and np.any(ok & (lengths > 0)):
                self.width = int(lengths[ok & (lengths > 0)][0])
            if self.width is not None:
                ok = self._reject(ok, lengths != self.width, "wrong_shape")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            ok = self._reject(ok, ~np.isfinite(weights) | (weights < 0), "bad_weight")
        if not ok.any():
            return
        config = self.config
        if not ok.all():
            keep = np.repeat(ok, lengths)
            values = values.filter(keep) if hasattr(values, "filter") else np.asarray(values)[keep]  # Arrow or numpy
        counted = count_batch(
            values, lengths[ok], None if weights is None else weights[ok],
            task=config.task, form=self.form, num_classes=self.width or config.num_classes,
            ignore_value=config.ignore_value,
            where=Where(self.path, None if first is None else first + np.flatnonzero(ok)),
        )
        self._accumulate(counted)

    def _reject(self, ok: np.ndarray, bad: np.ndarray | None, kind: str) -> np.ndarray:
        if bad is None:
            return ok
        newly = ok & bad
        self.add_bad(kind, int(newly.sum()), records=False)
        return ok & ~bad

    def _accumulate(self, counted: LabelCounts) -> None:
        self.kinds.add(counted.kind)
        self.examples += counted.examples
        if counted.kind == "string":
            self.names.add(counted.names)
            return
        if len(counted.ids) > len(self.ids):
            self.ids = np.concatenate([self.ids, np.zeros(len(counted.ids) - len(self.ids))])
        self.ids[: len(counted.ids)] += counted.ids
        if self.form == "dense":
            self.elements += counted.elements

    # ---------------------------------------------------------------- output
    def finish(self) -> ClassCounts:
        """The shard's exact ``ClassCounts``."""
        weighted = self.config.weighted
        return ClassCounts(
            weighted=weighted,
            ids=to_exact(self.ids, weighted),
            names=self.names.map_counts(lambda sums: to_exact(sums, weighted)),
            examples=scalar_to_exact(self.examples, weighted),
            elements=scalar_to_exact(self.elements, weighted),
            records=self.records,
            bad=dict(self.bad),
            bad_files={kind: self.path for kind in self.bad},
            kinds=frozenset(self.kinds),
            width=self.width if self.form in _VECTORS else None,
            shards=1,
        )
