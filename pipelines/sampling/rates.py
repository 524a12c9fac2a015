"""Keep rates and keep decisions of the down-sampling job (pure numpy, no Beam).

Keep rates (down-sampling only, every rate in ``[0, 1]``):

* ``max_ratio=R``: every class is capped at ``R`` times the rarest class's
  count, ``keep_c = min(1, R * min_c' n_c' / n_c)``.
* ``target=q`` (``"uniform"``, ``"sqrt"`` or shares): ``keep_c = scale * q_c / p_c``
  with ``p_c = n_c / n`` and the largest scale that needs no oversampling,
  ``scale = min_c p_c / q_c``: the class furthest below its target is kept
  whole and the others are scaled down. The tf.data layer's ``resample``
  does any oversampling at read time.
* Multi-label records keep the largest rate among their positive labels (a
  record with any rare label stays); records with no positive label keep the
  smallest label rate.

The keep decision is a pure function of the seed and the record: a keyed
64-bit hash of the record (``pipelines.io.hashing``), mapped to ``u`` in
``[0, 1)``, kept when ``u < keep``.
Identical records therefore share one decision, and no runner, bundle size,
order or worker count changes which records are kept.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from balance import fileio, jsonfile
from balance.errors import invalid
from balance.table import WeightTable
from balance.targets import resolve_target
from pipelines.config import StatsConfig
from pipelines.io import hashing

TARGET_NAMES = ("uniform", "sqrt")
TARGET_BYTES = 256 << 20  # default output shard size


@dataclasses.dataclass(frozen=True)
class SampleSpec:
    """What the sampling DoFns need: picklable, validated once.

    Attributes:
      config: how to read the input and its labels.
      keep: per-class keep rates in [0, 1].
      negative_keep: multilabel only, the rate of records with no positive label.
      seed: the hash key's seed.
      weight_feature: feature or column to receive ``1 / keep`` (None: none).
      num_shards: output shards; a record goes to ``hash % num_shards``.
    """

    config: StatsConfig
    keep: tuple[float, ...]
    negative_keep: float
    seed: int
    weight_feature: str | None
    num_shards: int

    @property
    def hash_key(self) -> tuple[int, int]:
        """The record hashes' key (``pipelines.io.hashing``), from the seed."""
        return hashing.hash_key(self.seed)


def keep_rates(table: WeightTable, *, max_ratio: float | None = None, target: Any = None) -> np.ndarray:
    """Per-class keep rates (float64, in [0, 1]) from the source counts.

    Args:
      table: the source table.
      max_ratio: cap every class at ``max_ratio`` times the rarest class (>= 1).
      target: ``"uniform"``, ``"sqrt"``, or shares (a list of K, or a dict of
        class id or name to share); single-label tables only.

    Raises:
      ValueError: neither or both given, ``max_ratio < 1``, or bad shares.

    Example:
      >>> keep_rates(WeightTable.from_counts([900, 100]), max_ratio=2).tolist()
      [0.2222222222222222, 1.0]
    """
    if (max_ratio is None) == (target is None):
        raise invalid("max_ratio", "exactly one of max_ratio and target", f"max_ratio={max_ratio}, target={target}",
                      hint="Pass --max_ratio R or --target uniform|sqrt|FILE.json")
    counts = table.counts
    present = counts > 0
    if max_ratio is not None:
        check_max_ratio(max_ratio)
        cap = float(max_ratio) * counts[present].min()
        return np.where(present, np.minimum(1.0, cap / np.where(present, counts, 1.0)), 1.0)
    if table.task == "multilabel":
        raise invalid("target", "None for a multilabel table (use max_ratio)", target,
                      hint="Multi-label records keep the largest rate of their labels; only a cap is well defined")
    if isinstance(target, str):
        if target not in TARGET_NAMES:
            raise invalid("target", f"one of {list(TARGET_NAMES)} or a JSON file of shares", target)
        shares = resolve_target(table, "uniform" if target == "uniform" else 0.5)
    else:
        shares = resolve_target(table, target)
    p = counts / counts.sum()
    ratio = np.divide(shares, p, out=np.zeros_like(p), where=present)
    return ratio / ratio.max()


def check_max_ratio(max_ratio: Any) -> None:
    """``max_ratio`` must be a finite number >= 1."""
    if isinstance(max_ratio, bool) or not isinstance(max_ratio, (int, float)) or not math.isfinite(max_ratio) \
            or max_ratio < 1:
        raise invalid("max_ratio", "a number >= 1 (cap every class at R x the rarest; 1 is balanced)", max_ratio,
                      hint="Down-sampling only: a ratio below 1 would need the rarest class oversampled")


def negative_keep(table: WeightTable, keep: np.ndarray) -> float:
    """Rate of multilabel records with no positive label: the smallest label rate."""
    return float(keep.min()) if table.task == "multilabel" else 1.0


def load_target(path: str, table: WeightTable) -> Any:
    """Shares from a JSON file: a list of K numbers or ``{class id or name: share}``.

    Raises:
      ValueError: naming the file, when it is missing, not JSON or not shares.
    """
    if not fileio.exists(path):
        raise invalid("target", "'uniform', 'sqrt' or an existing JSON file of shares", path)
    try:
        data = jsonfile.read_json(path, what="target file")
    except ValueError as err:
        raise invalid("target", "a JSON file of shares", path, hint=f"Not valid JSON: {err}") from None
    if isinstance(data, dict):
        data = {int(k) if isinstance(k, str) and k.isdigit() and not table.class_names else k: v
                for k, v in data.items()}
    elif not isinstance(data, list):
        raise invalid("target", "a JSON list of shares or an object {class: share}", path,
                      hint=f"The file holds a {type(data).__name__}")
    try:
        resolve_target(table, data)
    except ValueError as err:
        raise invalid("target", "a JSON file of shares for the table's classes", path, hint=str(err)) from None
    return data


def default_num_shards(input_bytes: int, kept_fraction: float) -> int:
    """About 256 MiB per output shard, at least one."""
    return max(1, math.ceil(input_bytes * kept_fraction / TARGET_BYTES))


# ------------------------------------------------------------- per batch
def record_rates(spec: SampleSpec, values: np.ndarray, lengths: np.ndarray, ok: np.ndarray,
                 names: dict[str, int] | None) -> np.ndarray:
    """The keep rate of every record of a batch (0 where ``ok`` is False).

    ``values`` and ``lengths`` are the ragged labels (see ``pipelines.io.readers.Batch``);
    ``names`` maps string labels to class ids.
    """
    keep = np.asarray(spec.keep, dtype=np.float64)
    rates = np.zeros(lengths.size)
    form = spec.config.form
    starts = np.cumsum(lengths) - lengths
    if form == "sparse":
        first = values[starts[ok]]
        ids = _string_ids(first, names) if names is not None else np.asarray(first, dtype=np.int64)
        rates[ok] = keep[ids]
        return rates
    if form == "multi_hot":
        matrix = np.asarray(values, dtype=np.float64)[np.repeat(ok, lengths)].reshape(-1, len(keep))
        best = (matrix * keep).max(axis=1, initial=0.0)
        rates[ok] = np.where(matrix.any(axis=1), best, spec.negative_keep)
        return rates
    # id_lists: the largest rate among the record's ids (maximum.reduceat over rows with ids).
    per_value = keep[np.asarray(values, dtype=np.int64)]
    full = lengths > 0
    best = np.full(lengths.size, spec.negative_keep)
    if per_value.size:
        best[full] = np.maximum.reduceat(per_value, starts[full])
    rates[ok] = best[ok]
    return rates


def _string_ids(values: np.ndarray, names: dict[str, int]) -> np.ndarray:
    out = np.empty(len(values), dtype=np.int64)
    for i, value in enumerate(values):
        name = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)
        if name not in names:
            raise invalid("labels", f"a class of the table ({len(names)} names)", name,
                          hint="The table does not describe this input; omit --table to count it first")
        out[i] = names[name]
    return out


def valid_rows(spec: SampleSpec, lengths: np.ndarray, wrong: np.ndarray | None,
               weights: np.ndarray | None) -> np.ndarray:
    """Rows the stats job would count; the others are bad records, never written."""
    ok = np.ones(lengths.size, dtype=bool) if wrong is None else ~wrong
    form = spec.config.form
    if form == "sparse":
        ok &= lengths == 1
    elif form == "multi_hot":
        ok &= lengths == len(spec.keep)
    if weights is not None:
        ok &= np.isfinite(weights) & (weights >= 0)
    return ok
