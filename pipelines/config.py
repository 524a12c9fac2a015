"""What a job reads and counts, validated once: ``StatsConfig`` (one label),
``HeadsConfig`` (several labels read in one pass) and ``Shard`` (one unit of
reading work).

The configs are frozen, picklable values that every DoFn carries;
``pipelines.io.plan`` turns a config into shards. A model with several
classification outputs needs one table per output: the heads share every
read option (input, format, weight, batch size, ...) and each has its own
label options (``PER_LABEL``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from balance.errors import RebalanceError, invalid, invalid_choice
from balance.schemes import SCHEMES
from balance.table import TASKS
from pipelines.outcome import for_label

FORMATS = ("tfrecord", "csv", "parquet", "tfds")
LABEL_FORMS = ("auto", "sparse", "one_hot", "id_lists", "multi_hot", "dense")
LABEL_DTYPES = ("auto", "int", "string")
COMPRESSIONS = ("auto", "none", "gzip")
GLOB_CHARS = "*?["
RECORDS_BATCH = 8192
LABEL_COLUMNS_BATCH = 65536


class Shard(NamedTuple):
    """One unit of reading work: a file, a Parquet row group, a TFDS file slice or a
    CSV byte range (``[start, end)``, cut at line boundaries when read; ``end`` -1: whole file)."""

    path: str
    row_group: int = -1
    skip: int = 0
    take: int = -1
    start: int = 0
    end: int = -1


@dataclasses.dataclass(frozen=True)
class StatsConfig:
    """What to count and how; see ``rebalance stats --help`` for the flags.

    Attributes:
      input: file patterns (globs, files or directories).
      format: one of ``FORMATS``.
      label: feature key or column holding the label.
      task: ``"multiclass"``, ``"binary"`` or ``"multilabel"``.
      num_classes: K; ids outside ``[0, K)`` fail the job. Inferred if None.
      class_names: names in class order (set from a TFDS ``ClassLabel``).
      label_form: ``sparse`` (one label per example), ``one_hot`` (a 0/1
        vector with one 1 per example), ``id_lists``, ``multi_hot``
        (multilabel) or ``dense`` (every element counted);
        ``auto`` is ``id_lists`` for multilabel, else ``sparse``.
      label_dtype: ``int``, ``string`` or ``auto`` (from the data).
      weight: optional example-weight feature or column.
      csv_delimiter: CSV field delimiter.
      csv_split_bytes: CSV files larger than this are read as byte ranges of
        about this size, one task each; 0 reads every file whole.
      label_delimiter: separator of ids inside one CSV cell (list forms).
      ignore_value: a dense-label id not to count (e.g. 255 in masks).
      compression: TFRecord/CSV compression; ``auto`` sniffs GZIP magic bytes.
      max_bad_fraction: bad records allowed, as a fraction of records read.
      batch_size: records parsed and counted per vectorised step; None: the
        reader's default (``batch_rows``). CSV is read in blocks of 4 MiB and
        refuses it.
      read_threads: shards of one bundle read concurrently by one DoFn
        instance (native readers release the GIL); 1 reads them in turn.
      scheme: optional scheme whose weights are stored in the table.
      tfds_name, tfds_data_dir, tfds_split: a prepared TFDS dataset.
    """

    input: tuple[str, ...] = ()
    format: str = "tfrecord"
    label: str = "label"
    task: str = "multiclass"
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    label_form: str = "auto"
    label_dtype: str = "auto"
    weight: str | None = None
    csv_delimiter: str = ","
    csv_split_bytes: int = 64 << 20
    label_delimiter: str = "|"
    ignore_value: int | None = None
    compression: str = "auto"
    max_bad_fraction: float = 0.0
    batch_size: int | None = None
    read_threads: int = 1
    scheme: str | None = None
    tfds_name: str | None = None
    tfds_data_dir: str | None = None
    tfds_split: str = "train"

    def __post_init__(self) -> None:
        for name, value, choices in (
            ("format", self.format, FORMATS),
            ("task", self.task, TASKS),
            ("label_form", self.label_form, LABEL_FORMS),
            ("label_dtype", self.label_dtype, LABEL_DTYPES),
            ("compression", self.compression, COMPRESSIONS),
        ):
            if value not in choices:
                raise invalid_choice(name, choices, value)
        if self.scheme is not None and self.scheme not in SCHEMES:
            raise invalid_choice("scheme", SCHEMES, self.scheme)
        if not self.label:
            raise invalid("label", "a feature key or column name", self.label)
        if self.num_classes is not None and (
            isinstance(self.num_classes, bool) or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            raise invalid("num_classes", "a positive int", self.num_classes)
        if self.task == "binary" and self.num_classes not in (None, 2):
            raise invalid("num_classes", "2 for task='binary'", self.num_classes)
        if not 0.0 <= self.max_bad_fraction <= 1.0:
            raise invalid("max_bad_fraction", "a fraction in [0, 1]", self.max_bad_fraction)
        if isinstance(self.read_threads, bool) or not isinstance(self.read_threads, int) or self.read_threads < 1:
            raise invalid("read_threads", "a positive int", self.read_threads)
        form = self.form
        if self.task == "multilabel" and form not in ("id_lists", "multi_hot"):
            raise invalid("label_form", "'id_lists' or 'multi_hot' for task='multilabel'", form)
        if self.task != "multilabel" and form in ("id_lists", "multi_hot"):
            raise invalid("label_form", f"'sparse', 'one_hot' or 'dense' for task={self.task!r}", form,
                          hint="Use task='multilabel' for lists of labels")
        if form != "sparse" and self.label_dtype == "string":
            raise invalid("label_dtype", f"'int' for label_form={form!r}", self.label_dtype,
                          hint="String labels are supported with one label per example")
        if self.ignore_value is not None and form != "dense":
            raise invalid("ignore_value", "None unless label_form='dense'", self.ignore_value)
        if self.format == "tfds" and not self.tfds_name:
            raise invalid("tfds_name", "a prepared TFDS dataset name for format='tfds'", None)
        if self.format != "tfds" and not self.input:
            raise invalid("input", "at least one file pattern", list(self.input))
        if isinstance(self.csv_split_bytes, bool) or not isinstance(self.csv_split_bytes, int) or (
            self.csv_split_bytes < 0
        ):
            raise invalid("csv_split_bytes", "a byte count >= 0 (0: read each file whole)", self.csv_split_bytes)
        if len(self.csv_delimiter) != 1:
            raise invalid("csv_delimiter", "a single character", self.csv_delimiter)
        if not self.label_delimiter:
            raise invalid("label_delimiter", "a non-empty separator", self.label_delimiter)
        self._check_types()
        self._check_unused()

    def _check_types(self) -> None:
        def is_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool)

        if self.batch_size is not None and (not is_int(self.batch_size) or self.batch_size < 1):
            raise invalid("batch_size", "a positive int", self.batch_size)
        if self.ignore_value is not None and not is_int(self.ignore_value):
            raise invalid("ignore_value", "an int class id", self.ignore_value)
        if self.weight is not None and not self.weight:
            raise invalid("weight", "a feature key or column name (or None)", self.weight)
        if self.class_names is not None:
            names = tuple(self.class_names)
            if not names or not all(isinstance(n, str) and n for n in names):
                raise invalid("class_names", "non-empty names", list(names))
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise invalid("class_names", "unique names", list(names), hint=f"Duplicates: {dupes}")
            if self.num_classes is not None and self.num_classes != len(names):
                raise invalid("num_classes", f"{len(names)}, the number of class_names", self.num_classes)

    def _check_unused(self) -> None:
        """An option that the chosen format or label form cannot use is refused, not ignored."""
        csv, tfds = self.format == "csv", self.format == "tfds"
        unused = [
            ("csv_delimiter", self.csv_delimiter != ",", not csv, "format='csv'"),
            ("label_delimiter", self.label_delimiter != "|", not csv or self.form == "sparse",
             "format='csv' with a list label form"),
            ("compression", self.compression != "auto", self.format in ("parquet", "tfds"),
             "format='tfrecord' or 'csv'"),
            ("tfds_data_dir", self.tfds_data_dir is not None, not tfds, "format='tfds'"),
            ("tfds_split", self.tfds_split != "train", not tfds, "format='tfds'"),
            ("tfds_name", self.tfds_name is not None, not tfds, "format='tfds'"),
            ("batch_size", self.batch_size is not None, csv,
             "format='tfrecord', 'tfds' or 'parquet' (CSV is read in blocks of 4 MiB)"),
            ("input", bool(self.input), tfds, "a file format (format='tfds' reads tfds_name)"),
        ]
        for name, given, cannot_use, needs in unused:
            if given and cannot_use:
                raise invalid(name, f"to be set only with {needs}", getattr(self, name),
                              hint=f"It is not used with format={self.format!r}, label_form={self.form!r}")

    @property
    def form(self) -> str:
        """The resolved label form."""
        if self.label_form != "auto":
            return self.label_form
        return "id_lists" if self.task == "multilabel" else "sparse"

    def batch_rows(self, whole_records: bool = False) -> int:
        """``batch_size``, or the default: 65536 Parquet rows when only the label
        and weight columns are read (Arrow's cost per batch is then what counts),
        else 8192 records."""
        if self.batch_size is not None:
            return self.batch_size
        return LABEL_COLUMNS_BATCH if self.format == "parquet" and not whole_records else RECORDS_BATCH

    @property
    def weighted(self) -> bool:
        return self.weight is not None


# Options each label may set on its own; every other StatsConfig field is shared by all labels.
PER_LABEL = ("task", "num_classes", "class_names", "label_form", "label_dtype", "ignore_value", "scheme",
             "max_bad_fraction")


@dataclasses.dataclass(frozen=True)
class HeadsConfig:
    """One ``StatsConfig`` per label key, counted from one read of the input.

    Attributes:
      heads: the configs, in output order; they differ only in ``label`` and
        the ``PER_LABEL`` options.
    """

    heads: tuple[StatsConfig, ...]

    def __post_init__(self) -> None:
        heads = tuple(self.heads) if isinstance(self.heads, (list, tuple)) else ()
        if not heads or not all(isinstance(h, StatsConfig) for h in heads):
            raise invalid("heads", "a non-empty sequence of StatsConfig", self.heads)
        labels = [h.label for h in heads]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise invalid("label", "each label key once", labels, hint=f"Given more than once: {twice}")
        for name in (f.name for f in dataclasses.fields(StatsConfig)):
            if name in (*PER_LABEL, "label"):
                continue
            values = {h.label: getattr(h, name) for h in heads}
            if len({repr(v) for v in values.values()}) > 1:
                raise invalid(name, "one value for every label (it is a read option, shared by all labels)",
                              values, hint=f"Options each label may set: {list(PER_LABEL)}")
        if heads[0].weight in labels:
            raise invalid("weight", "a feature other than the labels", heads[0].weight)
        object.__setattr__(self, "heads", heads)

    @classmethod
    def of(cls, labels: Sequence[str], *, per_label: Mapping[str, Mapping[str, Any]] | None = None,
           **options: Any) -> HeadsConfig:
        """The configs of ``labels`` from shared options and per-label overrides.

        Args:
          labels: the label keys (features or columns), in output order.
          per_label: ``{label: {option: value}}`` for the ``PER_LABEL``
            options of some labels; the others use ``options``.
          **options: ``StatsConfig`` fields (except ``label``) for every label.

        Example:
          >>> HeadsConfig.of(["a", "b"], input=("data/*.parquet",), format="parquet",
          ...                per_label={"b": {"task": "multilabel", "label_form": "multi_hot"}})  # doctest: +SKIP

        Raises:
          ValueError: a key of ``per_label`` that names no label (both sets
            are named), an option that is not per-label, or a label's bad
            option (the error names the label).
        """
        if isinstance(labels, str) or not isinstance(labels, (list, tuple)) or not labels:
            raise invalid("labels", "a list of one or more feature keys or column names", labels)
        labels = list(labels)
        for label in labels:
            if not isinstance(label, str) or not label:
                raise invalid("label", "a feature key or column name", label)
        if "label" in options:
            raise invalid("label", "no value (pass the keys as labels)", options["label"])
        per_label = dict(per_label or {})
        unknown = sorted(set(per_label) - set(labels))
        if unknown:
            raise invalid("per_label", f"keys among the labels {labels}", sorted(per_label),
                          hint=f"{unknown} name no label")
        heads = []
        for label in labels:
            own = dict(per_label.get(label) or {})
            shared = sorted(set(own) - set(PER_LABEL))
            if shared:
                raise invalid("per_label", f"options among {list(PER_LABEL)}", sorted(own),
                              hint=f"{shared} are read options, shared by every label: pass them once")
            fields = {**options, **own, "label": label}
            names = fields.get("class_names")
            if names is not None and fields.get("num_classes") is None:
                fields["num_classes"] = len(names)
            try:
                heads.append(StatsConfig(**fields))
            except RebalanceError as err:
                raise (for_label(err, label) if len(labels) > 1 else err) from None
        return cls(tuple(heads))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(h.label for h in self.heads)

    @property
    def base(self) -> StatsConfig:
        """The first label's config: its read options are every label's."""
        return self.heads[0]
