"""The weight table: the one artifact that the Beam job writes and the tf.data
layer and the losses read.

A ``WeightTable`` is an immutable, validated value. It stores *counts*, never
only weights, so that every consumer can derive the weights it needs under any
scheme and they all agree. On disk it is JSON, read and written through
``tf.io.gfile`` (local paths, ``gs://``, ``ram://``); ``save`` is atomic. The
file format and its version live in ``balance._table_io``, the field checks
in ``balance.table_fields``.

Counting conventions (shared by ``from_labels`` and the Beam job):

* ``multiclass`` / ``binary``: ``counts[c]`` is the number (or total example
  weight) of labelled elements of class ``c``. For scalar labels an element is
  an example; for dense labels (tokens ``(N, T)``, pixels ``(N, H, W)``) every
  element is counted and ``num_elements`` records how many were. A binary task
  has two classes, ``[negatives, positives]``.
* ``multilabel``: ``counts[l]`` is the number of examples where label ``l`` is
  positive; the negatives are ``num_examples - counts[l]``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from balance import _table_io
from balance import schemes as schemes_lib
from balance._label_arrays import tally_labels
from balance.table_fields import (
    checked_fields,
    counts_arguments,
    fingerprint_of,
    finite_number,
    make_provenance,
    pos_over_neg,
)
from balance._table_io import FORMAT_VERSION, SAMPLE_TABLE_NAME
from balance._version import __version__
from balance.errors import invalid, short_repr
from balance.merging import merge_parts
from balance.vocabulary import LABEL_DTYPES, TASKS

__all__ = ["FORMAT_VERSION", "LABEL_DTYPES", "SAMPLE_TABLE_NAME", "TASKS", "WeightTable"]


@dataclasses.dataclass(frozen=True, eq=False)
class WeightTable:
    """Per-class counts of one dataset, plus what is needed to trust them.

    Attributes:
      task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
      counts: float64 vector of length ``num_classes`` (see module docstring).
      num_examples: number of examples (total example weight when weighted).
      num_classes: K, the number of classes or labels.
      class_names: optional unique names, one per class.
      label_key: the feature key or column the labels came from.
      label_dtype: ``"int"`` or ``"string"``.
      num_elements: for dense labels, the number of labelled elements
        (``sum(counts)``); None for one label per example.
      provenance: ``inputs``, ``created``, ``tool_version``, ``fingerprint``.
      precomputed: optional ``{"scheme", "options", "weights"}`` computed when
        the table was written; informative, consumers may recompute.
      format_version: the on-disk format version.
    """

    task: str
    counts: np.ndarray
    num_examples: float
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    label_key: str | None = None
    label_dtype: str = "int"
    num_elements: float | None = None
    provenance: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    precomputed: Mapping[str, Any] | None = None
    format_version: int = FORMAT_VERSION

    # ------------------------------------------------------------------ checks
    def __post_init__(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise invalid("format_version", f"{FORMAT_VERSION} (this is tf-rebalance {__version__})",
                          self.format_version, hint="The table was written by an incompatible version")
        for name, value in checked_fields(self).items():
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_counts(
        cls, counts: Mapping[Any, float] | Sequence[float] | np.ndarray, *, task: str = "multiclass",
        num_classes: int | None = None, class_names: Sequence[str] | None = None, num_examples: float | None = None,
        num_elements: float | None = None, label_key: str | None = None, label_dtype: str | None = None,
        inputs: Sequence[str] = (), fingerprint: str | None = None,
    ) -> WeightTable:
        """Builds a table from counts given as an array or a dict.

        A dict may map class ids (ints, ``0 .. K-1``; missing ids count 0) or
        class names (strings; ordered by ``class_names`` if given, else sorted).
        ``num_examples`` defaults to the sum of counts, which is right for one
        label per example; multilabel tables must pass it.

        Example:
          >>> WeightTable.from_counts([198, 436, 710, 272]).class_weights()
          array([2.040404 , 0.9266055, 0.5690141, 1.4852941], dtype=float32)
        """
        vector, class_names, label_dtype, num_examples = counts_arguments(
            counts, task, num_classes, class_names, num_examples, num_elements, label_dtype)
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise invalid("fingerprint", "a str, e.g. 'sha256:...'", fingerprint)
        provenance = make_provenance(inputs, fingerprint or fingerprint_of(vector))
        return cls(
            task=task,
            counts=vector,
            num_examples=num_examples,
            num_classes=num_classes if num_classes is not None else None,
            class_names=tuple(class_names) if class_names is not None else None,
            label_key=label_key,
            label_dtype=label_dtype,
            num_elements=num_elements,
            provenance=provenance,
        )

    @classmethod
    def from_labels(
        cls, labels: Any, *, task: str = "multiclass", num_classes: int | None = None,
        class_names: Sequence[str] | None = None, label_form: str = "auto", sample_weight: Any = None,
        ignore_value: int | None = None, label_key: str | None = None,
    ) -> WeightTable:
        """Counts labels held in memory (numpy arrays, tensors or lists).

        Gives exactly what the Beam job gives on the same data: both count
        with ``balance.counting.count_batch``.

        Args:
          labels: ids, strings, one-hot or multi-hot rows, id lists or dense
            ids (forms: see ``balance._label_arrays``).
          task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
          num_classes: K; else ``max id + 1``, ``len(class_names)`` or the row width.
          class_names: class order (string labels are otherwise sorted).
          label_form: one of ``balance.vocabulary.LABEL_FORMS``.
          sample_weight: optional ``(N,)`` example weights (weighted counts).
          ignore_value: for dense labels, an id not to count (e.g. 255 in masks).
          label_key: recorded in the table's label spec.

        Raises:
          balance.errors.InvalidArgumentError: a bad argument or label shape.
          balance.errors.InvalidDataError: a bad label value, naming its example.

        Example:
          >>> WeightTable.from_labels(np.array([0, 0, 1, 2])).counts
          array([2., 1., 1.])
        """
        tally = tally_labels(labels, task=task, num_classes=num_classes, class_names=class_names,
                             label_form=label_form, sample_weight=sample_weight, ignore_value=ignore_value)
        return cls.from_counts(
            tally.counts, task=task, num_classes=tally.num_classes, class_names=tally.class_names,
            num_examples=tally.num_examples, num_elements=tally.num_elements, label_key=label_key,
            label_dtype=tally.label_dtype, inputs=["<in-memory labels>"], fingerprint=tally.fingerprint,
        )

    @staticmethod
    def merge(*tables: WeightTable, class_names: Sequence[str] | None = None, disjoint: bool = False
              ) -> WeightTable:
        """The table of the union of disjoint parts (overlapping ones refused unless ``disjoint=True``);
        see ``balance.merging``."""
        return merge_parts(WeightTable, tables, class_names, disjoint=disjoint)

    # ----------------------------------------------------------------- weights
    def class_weights(
        self,
        scheme: str = "balanced",
        *,
        normalize: str | None = None,
        clip: tuple[float, float] | None = None,
        zero_count: str = "error",
        **params: float,
    ) -> np.ndarray:
        """Per-class weights, a float32 vector of length K.

        See ``balance.schemes`` for every scheme's formula and default
        normalisation. For multilabel tables the scheme is applied to the
        positives per label (``n = sum`` of positives); use ``pos_weight`` or
        ``label_weights`` for per-label sigmoid weights.

        Args:
          scheme: weighting rule, e.g. ``"balanced"``, ``"effective_number"``.
          normalize: ``"none"``, ``"sum_to_one"``, ``"sum_to_num_classes"``,
            ``"mean_one"`` or None for the scheme's default.
          clip: ``(min, max)``, applied after normalisation.
          zero_count: ``"error"`` (default), ``"zero"`` or ``"max"``.
          **params: ``alpha`` (power), ``beta`` (effective_number), ``mu``
            (log_smoothed).

        Raises:
          ValueError: unknown scheme or option, or empty classes under
            ``zero_count="error"``.
        """
        weights = schemes_lib.compute_weights(self.counts, scheme, normalize=normalize, clip=clip,
                                              zero_count=zero_count, class_names=self.class_names, **params)
        return weights.astype(np.float32)

    def negatives(self) -> np.ndarray:
        """Per-label negatives (``num_examples - positives``); multilabel and binary."""
        if self.task == "multilabel":
            return np.maximum(self.num_examples - self.counts, 0.0)
        if self.task == "binary":
            return self.counts[:1].copy()
        raise self._wrong_task("negatives", ("multilabel", "binary"))

    def positives(self) -> np.ndarray:
        """Per-label positives; multilabel and binary (length 1)."""
        if self.task == "multilabel":
            return self.counts.copy()
        if self.task == "binary":
            return self.counts[1:].copy()
        raise self._wrong_task("positives", ("multilabel", "binary"))

    def pos_weight(self, *, zero_count: str = "error") -> np.ndarray:
        """``negatives / positives`` per label, float32 (length 1 for binary).

        This is the ``pos_weight`` of ``tf.nn.weighted_cross_entropy_with_logits``.
        Labels with no positives follow ``zero_count`` like ``class_weights``.
        """
        return self.label_weights("pos_weight", zero_count=zero_count)[0]

    def label_weights(
        self,
        scheme: str = "balanced",
        *,
        normalize: str | None = None,
        clip: tuple[float, float] | None = None,
        zero_count: str = "error",
        **params: float,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-label ``(positive_weights, negative_weights)``, float32 each.

        Each label is treated as its own two-class problem with counts
        ``[negatives_l, positives_l]`` and the scheme is applied to that pair,
        with the normalisation taken per label. ``scheme="pos_weight"`` gives
        ``(negatives / positives, 1)``. Multilabel and binary tables only.
        """
        positives, negatives = self.positives(), self.negatives()
        if scheme == "pos_weight":
            if params or normalize is not None or clip is not None:
                raise invalid("scheme", "no options with scheme='pos_weight'", scheme, hint=f"Received {params}")
            pos = pos_over_neg(negatives, positives, zero_count, self.class_names)
            return pos.astype(np.float32), np.ones_like(pos, dtype=np.float32)
        pos = np.empty_like(positives)
        neg = np.empty_like(positives)
        for i, (n_neg, n_pos) in enumerate(zip(negatives, positives, strict=False)):
            name = self.class_names[i] if self.class_names else str(i)
            neg[i], pos[i] = schemes_lib.compute_weights(
                np.array([n_neg, n_pos]), scheme, normalize=normalize, clip=clip, zero_count=zero_count,
                class_names=[f"{name}=negative", f"{name}=positive"], **params)
        return pos.astype(np.float32), neg.astype(np.float32)

    def prior(self) -> np.ndarray:
        """Class prior ``n_c / n`` (float32); per-label prevalence for multilabel."""
        denominator = self.num_examples if self.task == "multilabel" else self.counts.sum()
        return (self.counts / denominator).astype(np.float32)

    def log_prior(self, *, smoothing: float = 0.0) -> np.ndarray:
        """``log`` of the prior, float32, for logit adjustment (Menon et al. 2021).

        Args:
          smoothing: added to every count first (Laplace); must be > 0 when any
            class has no examples, since log(0) would be -inf.
        """
        smoothing = finite_number("smoothing", smoothing)
        if smoothing < 0:
            raise invalid("smoothing", "a number >= 0", smoothing)
        counts = self.counts + smoothing
        if np.any(counts <= 0):
            empty = np.flatnonzero(counts <= 0)
            raise invalid("smoothing", "a positive smoothing when some classes have no examples", smoothing,
                          hint=f"Empty classes: {short_repr(empty.tolist())}; log(0) is -inf")
        denominator = counts.sum() if self.task != "multilabel" else self.num_examples + smoothing
        return np.log(counts / denominator).astype(np.float32)

    def keras_class_weight(
        self, scheme: str = "balanced", *, scheme_params: Mapping[str, Any] | None = None
    ) -> dict[int, float]:
        """A ``dict[int, float]`` of ``class_weights(scheme, **scheme_params)``, for ``model.fit(class_weight=...)``.

        Refused for multilabel tables: Keras takes the argmax of multi-hot rows
        silently, so only one label's weight would apply. Use ``pos_weight``
        with a weighted sigmoid loss instead.
        """
        if self.task == "multilabel":
            raise invalid(
                "task", "'multiclass' or 'binary' for Keras class_weight", self.task,
                hint="Keras applies class_weight by the argmax of a multi-hot row, silently "
                "dropping the other labels; use table.pos_weight() with "
                "losses.WeightedBinaryCrossentropy instead",
            )
        weights = self.class_weights(scheme, **schemes_lib.check_scheme_params(scheme_params))
        return {i: float(w) for i, w in enumerate(weights)}

    def imbalance_ratio(self) -> float:
        """Largest count over smallest non-zero count (inf if all but one are 0)."""
        present = self.counts[self.counts > 0]
        return float(present.max() / present.min()) if present.size else math.inf

    def keep_rates(self) -> np.ndarray:
        """Per-class keep rates of a table written by ``rebalance sample`` (float64, in [0, 1])."""
        return np.asarray(self._sample("keep_rates")["keep_rates"], dtype=np.float64)

    def source_counts(self) -> np.ndarray:
        """The source counts a sample was drawn from; with ``losses.shift_logits`` it maps a model
        trained on the sample back: ``shift_logits(z, source_prior=table, target_prior=table.source_counts())``."""
        return np.asarray(self._sample("source_counts")["source"]["counts"], dtype=np.float64)

    def _sample(self, what: str) -> Mapping[str, Any]:
        sample = self.provenance.get("sample")
        if not isinstance(sample, Mapping):
            raise invalid("table", f"a table written by rebalance sample for {what}()", "a table without "
                          "sampling provenance", hint="Load the sample's directory (DIR/_table.json)")
        return sample

    def with_precomputed(self, scheme: str = "balanced", *, scheme_params: Mapping[str, Any] | None = None
                         ) -> WeightTable:
        """A copy that also stores ``class_weights(scheme, **scheme_params)`` (as ``precomputed``)."""
        options = schemes_lib.check_scheme_params(scheme_params)
        weights = self.class_weights(scheme, **options)
        precomputed = {"scheme": scheme, "options": options, "weights": weights.tolist()}
        return dataclasses.replace(self, precomputed=precomputed)

    def _wrong_task(self, what: str, tasks: Sequence[str]) -> ValueError:
        return invalid("task", f"one of {list(tasks)} for {what}()", self.task)

    # ------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; ``from_dict`` inverts it."""
        return _table_io.to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WeightTable:
        """Builds and validates a table from ``to_dict`` output."""
        return _table_io.from_dict(cls, data)

    def to_json(self) -> str:
        """The table as JSON text (format version ``FORMAT_VERSION``)."""
        return _table_io.to_json(self)

    @classmethod
    def from_json(cls, text: str, *, source: str = "<string>") -> WeightTable:
        """Parses and validates JSON text.

        Raises:
          balance.errors.InvalidTableError: not JSON, or not a valid table.
        """
        return _table_io.from_json(cls, text, source)

    def save(self, path: str) -> str:
        """Writes the table as JSON, atomically: a temp file, then a rename.

        Local paths and any ``tf.io.gfile`` path (``gs://``, ``ram://``).
        Returns the path.
        """
        return _table_io.save(self, path)

    @classmethod
    def load(cls, path: str) -> WeightTable:
        """Reads and validates a table written by ``save`` (or the Beam job).

        Args:
          path: a table file, or a directory holding ``_table.json`` (the
            output of ``rebalance sample``).

        Raises:
          balance.errors.InvalidArgumentError: no such file.
          balance.errors.InvalidTableError: the file is not a valid table.
        """
        return _table_io.load(cls, path)

    # ---------------------------------------------------------------- equality
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WeightTable):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.to_json())

    def content_equal(self, other: WeightTable) -> bool:
        """Equal apart from provenance creation time."""
        if not isinstance(other, WeightTable):
            raise invalid("other", "a WeightTable", type(other).__name__)
        mine, theirs = self.to_dict(), other.to_dict()
        for d in (mine, theirs):
            d["provenance"] = {k: v for k, v in d["provenance"].items() if k != "created"}
        return mine == theirs

    def __repr__(self) -> str:
        names = f", class_names={short_repr(self.class_names, 4)}" if self.class_names else ""
        return (
            f"WeightTable(task={self.task!r}, num_classes={self.num_classes}, "
            f"num_examples={self.num_examples:g}, counts={short_repr(self.counts.tolist(), 6)}{names})"
        )
