"""The jobs' command-line flags: the read and label flags every job shares,
per-label values (``--task b=multilabel``), and refusing flags that nothing
knows, with a suggestion.

Beam's ``PipelineOptions`` drops a flag it cannot parse with only a log
warning, so ``--labell y`` would silently count the default label. The job
therefore passes to Beam only the flags that a registered ``PipelineOptions``
subclass declares (the same parser ``PipelineOptions.get_all_options``
builds) and refuses the rest before any data is read. This module imports
Beam only in ``beam_parser``, so ``rebalance show`` can use ``refuse_unknown``.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from balance.errors import InvalidArgumentError, invalid
from balance.table import TASKS
from pipelines import console
from pipelines.config import COMPRESSIONS, FORMATS, LABEL_DTYPES, PER_LABEL, HeadsConfig, StatsConfig
from pipelines.io.plan import infer_format
from pipelines.jobs import dask

# Runner modules that register their own options when imported (the rest are
# declared in apache_beam.options.pipeline_options), with their flags' prefix.
BEAM_NOTE = """\
Beam's pipeline options are accepted too and passed to Beam unchanged: --runner
(default DirectRunner; dask, DataflowRunner, FlinkRunner, SparkRunner, PortableRunner),
--direct_num_workers, --direct_running_mode, --project, --region, --temp_location, ...
A flag neither the job nor Beam knows is refused. See "Runners" in docs/pipelines.md."""

RUNNER_OPTION_MODULES = {"apache_beam.runners.dask.dask_runner": "--dask_"}


class FlagParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises the project's ``ValueError`` instead of exiting."""

    def error(self, message: str):
        raise InvalidArgumentError(f"Invalid command-line flags: {message}")


def flags_of(parser: argparse.ArgumentParser) -> list[str]:
    """Every long option string ``parser`` declares."""
    return sorted({s for action in parser._actions for s in action.option_strings if s.startswith("--")})


def beam_parser() -> tuple[argparse.ArgumentParser, dict[str, str]]:
    """A parser of every flag Beam's registered ``PipelineOptions`` declare.

    Returns the parser and, for runner option modules that could not be
    imported, ``{flag prefix: reason}``.
    """
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser  # noqa: PLC0415

    class _Parser(FlagParser, _BeamArgumentParser):  # Beam's options call its add_value_provider_argument
        pass

    missing = {}
    for module, prefix in RUNNER_OPTION_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as err:
            missing[prefix] = f"{module} could not be imported ({err})"
    parser = _Parser(prog="beam", allow_abbrev=False, add_help=False, conflict_handler="resolve")
    seen: dict[str, type] = {}
    pending = list(PipelineOptions.__subclasses__())
    while pending:
        cls = pending.pop(0)
        pending.extend(cls.__subclasses__())
        # A class redefined in __main__ may appear twice; keep one per name (as Beam does).
        if "_add_argparse_args" in vars(cls) and str(cls) not in seen:
            seen[str(cls)] = cls
            cls._add_argparse_args(parser)
    return parser, missing


def refuse_unknown(unknown: Sequence[str], known: Iterable[str], missing: dict[str, str] | None = None) -> None:
    """Raises a ``ValueError`` naming the first unknown flag (or stray argument).

    Args:
      unknown: what ``parse_known_args`` left over.
      known: every flag that would have been accepted, for the suggestion.
      missing: ``{flag prefix: reason}`` of option sets that could not be loaded.
    """
    if not unknown:
        return
    flags = [u for u in unknown if u.startswith("-") and u != "--"]
    if not flags:
        raise invalid("flags", "only --name value flags", unknown[0],
                      hint=f"Unexpected argument {unknown[0]!r}; inputs are passed with --input")
    flag = flags[0].split("=", 1)[0]
    hint = f"Unknown flag {flag}"
    close = difflib.get_close_matches(flag, sorted(set(known)), n=1, cutoff=0.6)
    if close:
        hint += f": did you mean {close[0]}?"
    for prefix, reason in (missing or {}).items():
        if flag.startswith(prefix):
            hint += f" (Beam's {prefix}* options are unavailable: {reason})"
    raise invalid("flags", "flags of the job or of Beam's PipelineOptions", flag, hint=hint)


def group(parser: argparse.ArgumentParser, title: str) -> argparse._ArgumentGroup:
    """The argument group of ``parser`` titled ``title``, created if new (``rebalance sample`` adds to them)."""
    for existing in parser._action_groups:
        if existing.title == title:
            return existing
    return parser.add_argument_group(title)


def add_read_flags(parser: argparse.ArgumentParser) -> None:
    """The input, labels, progress, performance and Dask flags: what ``rebalance stats`` and ``rebalance sample``
    share."""
    for title in ("input", "labels", "output", "performance"):  # the order --help lists them in
        group(parser, title)
    add = group(parser, "input").add_argument
    add("--input", action="append", default=[],
        help="File glob, file, directory or comma-separated list; may repeat.")
    add("--format", choices=FORMATS, help="Default: from the file names (.tfrecord, .tfrecords, .csv, .parquet, "
        "each maybe .gz), else tfrecord. A file whose content is not this format is refused.")
    add("--compression", choices=COMPRESSIONS, default="auto",
        help="TFRecord/CSV compression; auto detects GZIP by its magic bytes.")
    add("--csv_delimiter", default=",")
    # Per-label flags: VALUE for every label, LABEL=VALUE for one (repeatable); see split_per_label.
    per = "; LABEL=VALUE sets one --label's value (repeatable)."
    add("--max_bad_fraction", action="append", type=per_label_type(float),
        help=f"Fraction of bad records allowed (skipped and reported), per label; default 0{per}")
    add("--tfds_name", help="A prepared TFDS dataset (with --format tfds).")
    add("--tfds_data_dir")
    add("--tfds_split", default="train")
    add = group(parser, "labels").add_argument
    add("--label", action="append", help="Feature key or column of the label (default: label). Repeat it to "
        "count several labels in one pass (rebalance stats: one table each, --output is then a directory).")
    add("--task", action="append", help=f"One of {list(TASKS)} (default: multiclass){per}")
    add("--num_classes", action="append", type=per_label_type(int),
        help=f"K; ids outside [0, K) fail the job. Inferred if omitted{per}")
    add("--class_names", action="append", help=f"Comma-separated class names, in class order{per}")
    add("--label_form", action="append",
        help="sparse (one label per example), one_hot (a 0/1 vector per example), id_lists or "
        "multi_hot (multilabel), dense "
        f"(every element counted). auto (default): id_lists for multilabel, else sparse{per}")
    add("--label_dtype", action="append", help=f"One of {list(LABEL_DTYPES)} (default: auto){per}")
    add("--weight", help="Example-weight feature or column, for weighted counts.")
    add("--label_delimiter", default="|", help="Separator of ids inside one CSV cell (list forms).")
    add("--ignore_value", action="append", type=per_label_type(int),
        help=f"Dense-label id not to count (e.g. 255){per}")
    group(parser, "output").add_argument(
        "--quiet", action="store_true",
        help="No progress lines on stderr (local runners print one every ~15 s while reading).")
    console.add_verbose_flag(group(parser, "output"))
    add = group(parser, "performance").add_argument
    add("--batch_size", type=int,
        help="Records parsed and counted per vectorised step. Default: 8192 TFRecord/TFDS records; "
        "65536 Parquet rows (8192 when the sample job reads whole rows). CSV is read in blocks of 4 MiB.")
    add("--read_threads", type=int, default=0,
        help="Shards one worker thread reads at once. 0 (default): all cores for the local "
        "in-process runner, cores / workers for local multi-process runs, 1 elsewhere (cloud "
        "runners already run one DoFn thread per core).")
    add("--csv_split_bytes", type=int, default=64 << 20,
        help="CSV files larger than this are read as byte ranges of about this size, one task each "
        "(default 64 MiB); 0 reads each file whole (needed for newlines inside quoted values).")
    dask.add_dask_flags(parser)


def parse_flags(argv: Sequence[str] | None, parser: argparse.ArgumentParser) -> tuple[argparse.Namespace, list[str]]:
    """The job's flags (declared on ``parser``) and Beam's; a flag neither knows is refused before any data is read.

    Raises:
      ValueError: naming the unknown flag and the closest known one.
    """
    args, rest = parser.parse_known_args(argv)
    beam, missing = beam_parser()
    _, unknown = beam.parse_known_args(rest)
    refuse_unknown(unknown, flags_of(parser) + flags_of(beam), missing)
    return args, rest


def one_label(heads: HeadsConfig) -> StatsConfig:
    """The config of the one ``--label``; several are refused (by the jobs that take one label).

    Raises:
      ValueError: several ``--label``.
    """
    if len(heads.heads) > 1:
        raise invalid("label", "one --label here", list(heads.labels),
                      hint="Several labels are counted by `rebalance stats` (pipelines.run_head_stats), "
                      "into a directory of tables")
    return heads.base


def config_from_args(args: argparse.Namespace, read_threads: int = 1) -> StatsConfig:
    """A validated ``StatsConfig`` of the one ``--label`` from parsed flags (see ``heads_from_args``).

    Raises:
      ValueError: bad flags, or several ``--label``.
    """
    return one_label(heads_from_args(args, read_threads))


# ------------------------------------------------------------- per-label flags
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
        input=tuple(args.input), format=args.format or infer_format(args.input),
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
