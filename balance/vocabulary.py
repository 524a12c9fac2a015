"""The words every part of tf-rebalance shares: tasks, label forms and label dtypes.

* ``TASKS``: ``multiclass`` (one of K exclusive classes), ``binary`` (two
  classes, counts ``[negatives, positives]``) and ``multilabel`` (L
  independent binary labels).
* ``LABEL_FORMS``: how labels are laid out; see ``balance.counting``.
* ``LABEL_DTYPES``: the kind of label values a table was counted from.
"""

TASKS = ("multiclass", "binary", "multilabel")
LABEL_FORMS = ("auto", "sparse", "one_hot", "multi_hot", "id_lists", "dense")
LABEL_DTYPES = ("int", "string")
