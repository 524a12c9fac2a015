"""tf-rebalance top floor: the Beam class-statistics job and the command line.

Public names are loaded lazily, so that ``import pipelines.cli`` (for
``rebalance show``) does not import Apache Beam.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ComputeClassStats": "pipelines.transforms",
    "ComputeHeadStats": "pipelines.heads_job",
    "HeadsConfig": "pipelines._heads",
    "WriteWeightTables": "pipelines.heads_job",
    "WriteWeightTable": "pipelines.transforms",
    "CountCombineFn": "pipelines.combiners",
    "ClassCounts": "pipelines.combiners",
    "StatsConfig": "pipelines._config",
    "run_class_stats": ("pipelines.class_stats", "run"),
    "run_head_stats": ("pipelines.class_stats", "run_heads"),
    "run_sample": ("pipelines.sample_job", "run"),
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
