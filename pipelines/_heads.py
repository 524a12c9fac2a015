"""Several label keys counted in one pass: one ``StatsConfig`` per label (a head).

A model with several classification outputs needs one table per output. The
heads share every read option (input, format, weight, batch size, ...); each
has its own label options (``PER_LABEL``). ``HeadsConfig.of`` builds the
configs from shared options and per-label overrides; ``heads_from_args`` does
the same from the command line, where a per-label flag is spelled
``--label_form b=one_hot`` (that label only) or ``--label_form one_hot`` (every
label).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from balance.errors import RebalanceError, invalid
from pipelines._config import StatsConfig
from pipelines._outcome import for_label

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


# ------------------------------------------------------------- command line
def _names(text: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in text.split(","))


def _number(kind: type, what: str) -> Callable[[str], Any]:
    def convert(text: str, flag: str) -> Any:
        try:
            return kind(text)
        except ValueError:
            raise invalid(flag, f"{what}, or LABEL={what.split(' ', 1)[-1]}", text) from None
    return convert


_CONVERT: dict[str, Callable[[str, str], Any]] = {
    "task": lambda text, flag: text,
    "num_classes": _number(int, "an int"),
    "class_names": lambda text, flag: _names(text),
    "label_form": lambda text, flag: text,
    "label_dtype": lambda text, flag: text,
    "ignore_value": _number(int, "an int"),
    "scheme": lambda text, flag: text,
    "max_bad_fraction": _number(float, "a fraction"),
}


def per_label_type(kind: type) -> Callable[[str], str]:
    """An argparse ``type`` for a per-label number flag: checks ``NUMBER`` or ``LABEL=NUMBER``, keeps the text.

    Named like ``kind``, so argparse's error reads ``invalid int value: 'x'`` as for a plain int flag.
    """
    def check(text: str) -> str:
        kind(text.rpartition("=")[2])
        return text
    check.__name__ = kind.__name__
    return check


def split_per_label(flag: str, values: Sequence[str] | None, labels: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The value for every label and the ``{label: value}`` overrides of one repeatable per-label flag.

    ``LABEL=VALUE`` sets one label's value; a value without ``=`` (for
    ``class_names``: without ``=`` before the first comma) applies to every
    label. Each may be given once.

    Raises:
      ValueError: a LABEL that names no ``--label`` (both named), or a value given twice.
    """
    every, own, given = None, {}, {}
    for text in [values] if isinstance(values, str) else values or ():  # a flag declared without append
        key, sep, value = text.partition("=")
        if sep and not (flag == "class_names" and "," in key):
            if key in own:
                raise invalid(flag, "each label once", text, hint=f"--{flag} {key}=... is given twice")
            own[key], given[key] = _CONVERT[flag](value, flag), text
        elif every is not None:
            raise invalid(flag, "one value for every label (and LABEL=VALUE for one label)", text,
                          hint=f"--{flag} is given twice without a label")
        else:
            every = _CONVERT[flag](text, flag)
    unknown = sorted(set(own) - set(labels))
    if unknown:
        raise invalid(flag, f"LABEL=VALUE with LABEL among the --label keys {list(labels)}",
                      given[unknown[0]], hint=f"{unknown} name no --label; the labels are {list(labels)}")
    return every, own


def heads_from_args(args: argparse.Namespace, read_threads: int = 1) -> HeadsConfig:
    """A ``HeadsConfig`` from parsed stats-job flags (``--label`` repeatable, per-label flags ``LABEL=VALUE``)."""
    labels = list(args.label or ["label"])
    options: dict[str, Any] = dict(
        input=tuple(args.input), format=args.format,
        weight=args.weight, csv_delimiter=args.csv_delimiter, csv_split_bytes=args.csv_split_bytes,
        label_delimiter=args.label_delimiter, compression=args.compression, batch_size=args.batch_size,
        read_threads=args.read_threads or read_threads,
        tfds_name=args.tfds_name, tfds_data_dir=args.tfds_data_dir, tfds_split=args.tfds_split,
    )
    per_label: dict[str, dict[str, Any]] = {}
    for flag in PER_LABEL:
        every, own = split_per_label(flag, getattr(args, flag, None), labels)  # rebalance sample has no --scheme
        if every is not None:
            options[flag] = every
        for label, value in own.items():
            per_label.setdefault(label, {})[flag] = value
    return HeadsConfig.of(labels, per_label=per_label, **options)
