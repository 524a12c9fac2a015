"""tf-rebalance ground floor: the weight table, weighting schemes and tf.data layer.

Imports neither Apache Beam nor the other tf-rebalance packages.
"""

from balance import errors, schedules
from balance._version import __version__
from balance.recall_report import per_class_recall, plot_recall_by_frequency
from balance.schemes import NORMALIZATIONS, SCHEMES, ZERO_COUNT_POLICIES
from balance.table import FORMAT_VERSION, TASKS, WeightTable
from balance.table_set import load_tables
from balance.targets import SamplingPlan, resolve_target, sampling_plan

# The tf.data layer imports TensorFlow; load it on first use so that
# `import balance` stays light (module __getattr__, PEP 562).
_LAZY = {
    "rebalance": "balance.composition",
    "check_model_outputs": "balance.composition",
    "LiveRebalancer": "balance.live",
    "model_recall": "balance.recall_report",
    "resample": "balance.resampling",
    "attach_sample_weights": "balance.sample_weights",
    "sample_weight_fn": "balance.sample_weights",
    "sample_per_class": "balance.per_class",
    "rebalance_for_worker": "balance.workers",
    "worker_steps_per_epoch": "balance.workers",
    "pk_batches": "balance.class_batches",
    "rare_class_batches": "balance.class_batches",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'balance' has no attribute {name!r}")


__all__ = [
    "FORMAT_VERSION",
    "LiveRebalancer",
    "NORMALIZATIONS",
    "SCHEMES",
    "SamplingPlan",
    "TASKS",
    "ZERO_COUNT_POLICIES",
    "WeightTable",
    "__version__",
    "attach_sample_weights",
    "check_model_outputs",
    "errors",
    "load_tables",
    "model_recall",
    "per_class_recall",
    "pk_batches",
    "plot_recall_by_frequency",
    "rare_class_batches",
    "rebalance",
    "rebalance_for_worker",
    "resample",
    "resolve_target",
    "sample_per_class",
    "sample_weight_fn",
    "sampling_plan",
    "schedules",
    "worker_steps_per_epoch",
]
