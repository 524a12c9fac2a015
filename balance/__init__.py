"""tf-rebalance ground floor: the weight table, weighting schemes and tf.data layer.

Imports neither Apache Beam nor the other tf-rebalance packages.
"""

from balance._version import __version__
from balance.counting import count_labels
from balance.keras_interop import to_keras_class_weight
from balance.schemes import NORMALIZATIONS, SCHEMES, ZERO_COUNT_POLICIES, compute_weights
from balance.table import FORMAT_VERSION, TASKS, WeightTable

__all__ = [
    "FORMAT_VERSION",
    "NORMALIZATIONS",
    "SCHEMES",
    "TASKS",
    "ZERO_COUNT_POLICIES",
    "WeightTable",
    "__version__",
    "compute_weights",
    "count_labels",
    "to_keras_class_weight",
]
