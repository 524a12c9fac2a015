"""tf-rebalance top floor: the Beam jobs (class statistics, down-sampling) and the command line.

Sub-packages, data flowing one way: ``pipelines.io`` (input planning, one
reader per format, publishing outputs) -> ``pipelines.counting`` (per-shard
counts, the combiner, the table; the public PTransforms) ->
``pipelines.sampling`` (keep rates, keep decisions, writing the sample) ->
``pipelines.jobs`` (the jobs and what they share) -> ``pipelines.cli``.
``pipelines.config``, ``pipelines.outcome`` and ``pipelines.progress`` are
used by all of them. See docs/architecture.md.

Public names are loaded lazily, so that ``import pipelines.cli`` (for
``rebalance show``) does not import Apache Beam.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ComputeClassStats": "pipelines.counting.transforms",
    "ComputeHeadStats": "pipelines.counting.transforms",
    "HeadsConfig": "pipelines.config",
    "WriteWeightTables": "pipelines.counting.transforms",
    "WriteWeightTable": "pipelines.counting.transforms",
    "CountCombineFn": "pipelines.counting.combiners",
    "ClassCounts": "pipelines.counting.combiners",
    "StatsConfig": "pipelines.config",
    "run_class_stats": "pipelines.jobs.stats",
    "run_head_stats": "pipelines.jobs.stats",
    "run_sample": ("pipelines.jobs.sample", "run"),
}

__all__ = [
    "ClassCounts",
    "ComputeClassStats",
    "ComputeHeadStats",
    "CountCombineFn",
    "HeadsConfig",
    "StatsConfig",
    "WriteWeightTable",
    "WriteWeightTables",
    "run_class_stats",
    "run_head_stats",
    "run_sample",
]


def __getattr__(name: str) -> Any:
    target = _EXPORTS.get(name)
    if target is None:
        raise AttributeError(f"module 'pipelines' has no attribute {name!r}")
    module, attr = target if isinstance(target, tuple) else (target, name)
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
