"""Counts the labels of one shard, batch by batch, with numpy.

Every reader turns a batch into the same ragged form: ``values`` (all label
values of the batch, flat), ``lengths`` (values per record) and optional
``weights`` (one per record, NaN when missing or unreadable). ``ShardCounter``
validates the batch per record with vectorised masks, counts the valid records
with ``balance.counting.count_ids`` and finally emits one ``ClassCounts``.
"""

from __future__ import annotations

import numpy as np

from balance._errors import invalid
from balance.counting import count_ids, whole_ids
from pipelines._config import StatsConfig
from pipelines.combiners import ClassCounts, scalar_to_exact, to_exact


class ShardCounter:
    """Accumulates one shard in float64, in a fixed order (so deterministically)."""

    def __init__(self, config: StatsConfig, path: str) -> None:
        self.config = config
        self.path = path
        self.form = config.form
        self.ids = np.zeros(config.num_classes or 0, dtype=np.float64)
        self.string_parts: list[tuple[np.ndarray, np.ndarray]] = []
        self.examples = 0.0
        self.elements = 0.0
        self.records = 0
        self.bad: dict[str, int] = {}
        self.kinds: set[str] = set()
        self.width = config.num_classes if self.form == "multi_hot" else None

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
        """Counts one batch. ``values`` are ints or strings (bytes or str)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        n = lengths.size
        if n == 0:
            return
        self.records += n
        ok = np.ones(n, dtype=bool)
        ok = self._reject(ok, wrong_type, "wrong_type")
        if self.form != "id_lists":
            ok = self._reject(ok, lengths == 0, "missing_label")
        if self.form == "sparse":
            ok = self._reject(ok, lengths > 1, "wrong_shape")
        elif self.form == "multi_hot":
            if self.width is None and np.any(ok & (lengths > 0)):
                self.width = int(lengths[ok & (lengths > 0)][0])
            if self.width is not None:
                ok = self._reject(ok, lengths != self.width, "wrong_shape")
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            ok = self._reject(ok, ~np.isfinite(weights) | (weights < 0), "bad_weight")
        if not ok.any():
            return
        rows = np.repeat(np.arange(n), lengths)
        keep = ok[rows]
        values, rows = np.asarray(values)[keep], rows[keep]
        row_weights = None if weights is None else weights[ok]
        self.examples += float(ok.sum()) if weights is None else float(row_weights.sum())
        element_weights = None if weights is None else weights[rows]
        if values.dtype.kind in "OSU":
            self._add_strings(values, element_weights)
        else:
            self._add_ids(values, rows, element_weights)

    def _reject(self, ok: np.ndarray, bad: np.ndarray | None, kind: str) -> np.ndarray:
        if bad is None:
            return ok
        newly = ok & bad
        self.add_bad(kind, int(newly.sum()), records=False)
        return ok & ~bad

    def _add_strings(self, values: np.ndarray, weights: np.ndarray | None) -> None:
        if self.form != "sparse":
            raise invalid("label_dtype", f"int labels for label_form={self.form!r}",
                          f"strings in file {self.path!r}")
        self.kinds.add("string")
        uniques, inverse = np.unique(values.astype(object), return_inverse=True)
        counts = np.bincount(inverse.ravel(), weights=weights, minlength=len(uniques))
        self.string_parts.append((uniques, counts.astype(np.float64)))

    def _add_ids(self, values: np.ndarray, rows: np.ndarray, weights: np.ndarray | None) -> None:
        self.kinds.add("int")
        ids = self._as_ids(values)
        if self.form == "multi_hot":
            self._add_multi_hot(ids, weights)
            return
        if self.form == "id_lists" and ids.size:  # an id counts once per example
            order = np.lexsort((ids, rows))
            ids, rows = ids[order], rows[order]
            first = np.ones(ids.size, dtype=bool)
            first[1:] = (ids[1:] != ids[:-1]) | (rows[1:] != rows[:-1])
            ids = ids[first]
            weights = None if weights is None else weights[order][first]
        if self.form == "dense" and self.config.ignore_value is not None:
            keep = ids != self.config.ignore_value
            ids = ids[keep]
            weights = None if weights is None else weights[keep]
        if not ids.size:
            return
        size = self.config.num_classes or (2 if self.config.task == "binary" else None)
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or (size is not None and high >= size):
            expected = "class ids >= 0" if size is None else f"class ids in [0, {size})"
            raise invalid("labels", expected, low if low < 0 else high,
                          hint=f"Found in file {self.path!r}")
        counts = count_ids(ids, size or max(len(self.ids), high + 1), weights)
        if len(counts) > len(self.ids):
            self.ids = np.concatenate([self.ids, np.zeros(len(counts) - len(self.ids))])
        self.ids += counts
        if self.form == "dense":
            self.elements += float(counts.sum())

    def _add_multi_hot(self, ids: np.ndarray, weights: np.ndarray | None) -> None:
        matrix = ids.reshape(-1, self.width)
        bad = (matrix != 0) & (matrix != 1)
        if bad.any():
            raise invalid("labels", "0/1 values in multi-hot vectors",
                          int(matrix[bad][0]), hint=f"Found in file {self.path!r}")
        row_weights = None if weights is None else weights[:: self.width]
        counts = matrix.sum(axis=0, dtype=np.float64) if row_weights is None else (
            row_weights @ matrix.astype(np.float64))
        if len(self.ids) < self.width:
            self.ids = np.concatenate([self.ids, np.zeros(self.width - len(self.ids))])
        self.ids += counts

    def _as_ids(self, values: np.ndarray) -> np.ndarray:
        return whole_ids(values, f"Found in file {self.path!r}")

    # ---------------------------------------------------------------- output
    def finish(self) -> ClassCounts:
        """The shard's exact ``ClassCounts``."""
        weighted = self.config.weighted
        names: dict[str, int] = {}
        if self.string_parts:
            uniques = np.concatenate([u for u, _ in self.string_parts])
            counts = np.concatenate([c for _, c in self.string_parts])
            decoded = np.array([_as_str(u) for u in uniques], dtype=object)
            merged, inverse = np.unique(decoded, return_inverse=True)
            sums = np.bincount(inverse.ravel(), weights=counts, minlength=len(merged))
            names = dict(zip((str(m) for m in merged), to_exact(sums, weighted).tolist(), strict=False))
        bad_files = {kind: self.path for kind in self.bad}
        return ClassCounts(
            weighted=weighted,
            ids=to_exact(self.ids, weighted),
            names=names,
            examples=scalar_to_exact(self.examples, weighted),
            elements=scalar_to_exact(self.elements, weighted),
            records=self.records,
            bad=dict(self.bad),
            bad_files=bad_files,
            kinds=frozenset(self.kinds),
            width=self.width if self.form == "multi_hot" else None,
            shards=1,
        )


def _as_str(value) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
