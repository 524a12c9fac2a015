"""tf-rebalance ground floor: the weight table, weighting schemes and tf.data layer.

Imports neither Apache Beam nor the other tf-rebalance packages.
"""

from balance import errors, schedules
from balance._version import __version__
from balance.keras_interop import to_keras_class_weight
from balance.recall_report import per_class_recall, plot_recall_by_frequency
from balance.schemes import NORMALIZATIONS, SCHEMES, ZERO_COUNT_POLICIES, compute_weights
from balance.table import FORMAT_VERSION, TASKS, WeightTable
from balance.table_set import load_tables
from balance.targets import SamplingPlan, expected_epoch_size, resolve_target, sampling_plan

count_labels = WeightTable.from_labels  # the same function under its older name
merge_tables = WeightTable.merge  # the merge of disjoint parts, see balance.merging

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
    "compute_weights",
    "errors",
    "count_labels",
    "expected_epoch_size",
    "load_tables",
    "merge_tables",
    "model_recall",
    "per_class_recall",
    "plot_recall_by_frequency",
    "rebalance",
    "resample",
    "resolve_target",
    "sample_per_class",
    "sample_weight_fn",
    "sampling_plan",
    "schedules",
    "to_keras_class_weight",
]
