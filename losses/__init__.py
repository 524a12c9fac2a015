"""tf-rebalance losses and metrics for class-imbalanced Keras 3 models.

Every loss subclasses ``keras.losses.Loss``, wraps a pure snake_case function
of the same name, is registered as ``tf_rebalance>ClassName`` for ``.keras``
saving, and (where it takes weights) has ``from_table(table, scheme, ...)``
to build itself from a ``balance.WeightTable``.

Label shift at deployment: ``shift_logits`` moves logits from the training
prior to another one; ``estimate_prior_em`` and ``estimate_prior_bbse``
estimate that prior from unlabeled predictions (``losses.label_shift``).

Class-balanced loss (Cui et al., CVPR 2019) is not a separate class: use any
weighted loss with ``from_table(table, "effective_number", scheme_params={"beta": 0.999})``.

Imports ``balance`` (for ``WeightTable``) but never Apache Beam or
``pipelines``.
"""

from losses.adjusted import (
    LDAMLoss,
    LogitAdjustedSparseCategoricalCrossentropy,
    adjust_logits,
    ldam_loss,
    ldam_margins,
    logit_adjusted_sparse_categorical_crossentropy,
    shift_logits,
)
from losses.cost import (
    CostSensitiveCategoricalCrossentropy,
    bayes_decision,
    cost_sensitive_categorical_crossentropy,
)
from losses.focal import (
    BinaryFocalCrossentropy,
    CategoricalFocalCrossentropy,
    SparseCategoricalFocalCrossentropy,
    binary_focal_crossentropy,
    categorical_focal_crossentropy,
    sparse_categorical_focal_crossentropy,
)
from losses.label_shift import estimate_prior_bbse, estimate_prior_em, estimated_table
from losses.metrics import BalancedAccuracy, PerClassRecall, Precision, Recall
from losses.multi_output import losses_for_outputs
from losses.weighted import (
    WeightedBinaryCrossentropy,
    WeightedCategoricalCrossentropy,
    WeightedSparseCategoricalCrossentropy,
    weighted_binary_crossentropy,
    weighted_categorical_crossentropy,
    weighted_sparse_categorical_crossentropy,
)

__all__ = [
    "BalancedAccuracy",
    "BinaryFocalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CostSensitiveCategoricalCrossentropy",
    "LDAMLoss",
    "LogitAdjustedSparseCategoricalCrossentropy",
    "PerClassRecall",
    "Precision",
    "Recall",
    "SparseCategoricalFocalCrossentropy",
    "WeightedBinaryCrossentropy",
    "WeightedCategoricalCrossentropy",
    "WeightedSparseCategoricalCrossentropy",
    "adjust_logits",
    "bayes_decision",
    "binary_focal_crossentropy",
    "categorical_focal_crossentropy",
    "cost_sensitive_categorical_crossentropy",
    "estimate_prior_bbse",
    "estimate_prior_em",
    "estimated_table",
    "ldam_loss",
    "ldam_margins",
    "logit_adjusted_sparse_categorical_crossentropy",
    "losses_for_outputs",
    "shift_logits",
    "sparse_categorical_focal_crossentropy",
    "weighted_binary_crossentropy",
    "weighted_categorical_crossentropy",
    "weighted_sparse_categorical_crossentropy",
]
