"""The ``rebalance`` command line: ``stats``, ``sample``, ``show``, ``merge`` and ``demo``.

A new command is a function here, listed in ``COMMANDS``, whose parser
declares ``--verbose`` (``console.add_verbose_flag``); ``pipelines.console``
runs it: its environment, its stderr and its one-line errors.

``show`` and ``merge`` need neither Beam nor TensorFlow beyond reading the
files; ``stats``, ``sample`` and ``demo`` import their modules only when called.
"""

from __future__ import annotations

import argparse
import difflib
import math
import sys
from collections.abc import Sequence

from balance import SCHEMES, WeightTable
from balance.errors import invalid
from pipelines import console
from pipelines.io.publish import check_table_output
from pipelines.jobs.flags import FlagParser, flags_of, refuse_unknown


def _show(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="rebalance show", description="Print a weight table.",
                                     allow_abbrev=False)
    parser.add_argument("table", help="path of a weight table JSON (local, gs://, ram://)")
    parser.add_argument("--scheme", default=None, choices=sorted(SCHEMES),
                        help="weighting scheme for the weight column (default: balanced)")
    parser.add_argument("--normalize", default=None,
                        help="none, sum_to_one, sum_to_num_classes or mean_one (default: per scheme)")
    parser.add_argument("--zero_count", default="error", help="error, zero or max (default: error)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a scheme parameter, e.g. --param beta=0.9999 (repeatable)")
    parser.add_argument("--plot", metavar="OUT.png", help="also write a bar chart of counts and weights")
    parser.add_argument("--max_rows", type=int, default=50, help="classes listed at most (default: 50)")
    console.add_verbose_flag(parser)
    args, unknown = parser.parse_known_args(argv)
    refuse_unknown(unknown, flags_of(parser))
    if args.max_rows < 2:
        raise invalid("max_rows", "an int >= 2 (half the rows list the largest classes, half the smallest)",
                      args.max_rows)
    if args.plot is not None and not args.plot.endswith(".png"):
        raise invalid("plot", "a path ending in .png", args.plot)
    params = _params(args.param)

    from balance.report import format_table, plot_table  # noqa: PLC0415

    table = WeightTable.load(args.table)
    if table.task == "multilabel":
        # Multilabel tables show pos_weight per label, which takes no scheme options.
        for name, value in (("scheme", args.scheme), ("normalize", args.normalize), ("param", args.param)):
            if value:
                raise invalid(name, "no value for a multilabel table (it shows pos_weight per label)", value)
        scheme_params = {"zero_count": args.zero_count}
    else:
        scheme_params = {"normalize": args.normalize, "zero_count": args.zero_count, **params}
    scheme = args.scheme or "balanced"
    print(format_table(table, scheme, scheme_params=scheme_params, max_rows=args.max_rows))
    if args.plot:
        plot_table(table, args.plot, scheme, scheme_params=scheme_params)
        print(f"plot written to {args.plot}")
    return 0


def _params(pairs: Sequence[str]) -> dict[str, float]:
    """``["beta=0.99"]`` -> ``{"beta": 0.99}``; the scheme checks the names."""
    params: dict[str, float] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip()
        try:
            number = float(value)
        except ValueError:
            sep = ""
        if not sep or not name or not math.isfinite(number):
            raise invalid("param", "NAME=NUMBER with a finite number, e.g. beta=0.999", pair)
        if name in params:
            raise invalid("param", f"each name once ({name} is given twice)", pair)
        params[name] = number
    return params


def _merge(argv: Sequence[str]) -> int:
    parser = FlagParser(prog="rebalance merge", allow_abbrev=False,
                        description="Add up the weight tables of disjoint parts of one dataset.")
    parser.add_argument("tables", nargs="+", help="weight table JSON files (local, gs://, ram://)")
    parser.add_argument("--output", required=True, help="where to write the merged table")
    parser.add_argument("--class_names", help="comma-separated order of string class names (default: sorted)")
    parser.add_argument("--disjoint", action="store_true",
                        help="merge parts whose provenance overlaps (the same input or fingerprint) because they "
                        "are disjoint by construction; without it such parts are refused")
    console.add_verbose_flag(parser)
    args, unknown = parser.parse_known_args(argv)
    refuse_unknown(unknown, flags_of(parser))
    names = [n.strip() for n in args.class_names.split(",")] if args.class_names else None
    check_table_output(args.output)
    parts = [WeightTable.load(path) for path in args.tables]
    try:
        table = WeightTable.merge(*parts, class_names=names, disjoint=args.disjoint)
    except ValueError as err:
        listed = ", ".join(f"[{i}] {path}" for i, path in enumerate(args.tables))
        raise type(err)(f"{err} (tables: {listed})", *err.args[1:]) from None
    table.save(args.output)
    print(f"Wrote {args.output}: {len(args.tables)} tables, {table.num_examples:g} examples, "
          f"{table.num_classes} classes ({table.task}, label {table.label_key!r})")
    return 0


def _stats(argv: Sequence[str]) -> int:
    from pipelines.jobs import stats  # noqa: PLC0415 (imports Beam)

    stats.run(list(argv))
    return 0


def _sample(argv: Sequence[str]) -> int:
    from pipelines.jobs import sample  # noqa: PLC0415 (imports Beam)

    sample.run(list(argv))
    return 0


def _demo(argv: Sequence[str]) -> int:
    # The demo is an application on top of balance, losses and pipelines; only the command line starts it.
    from rebalance_demo import app  # noqa: PLC0415 (imports TensorFlow and Keras)

    return app.main(list(argv))


COMMANDS = {
    "stats": (_stats, "count classes with the Beam job and write a weight table"),
    "sample": (_sample, "write a down-sampled copy of a dataset and the exact table of the sample"),
    "show": (_show, "print a weight table (and optionally plot it)"),
    "merge": (_merge, "add up the tables of disjoint parts into one table"),
    "demo": (_demo, "run the end-to-end demo on generated data"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """``rebalance COMMAND ...``; returns the exit code.

    Called without ``argv`` (the console script), the command is the program: it reads ``sys.argv`` and
    owns the terminal as ``pipelines.console`` describes (environment defaults, stderr kept to the
    command's own lines). Called with ``argv`` from Python, it prints the same error line but leaves the
    caller's environment and stderr alone.
    """
    process = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: rebalance {" + ",".join(COMMANDS) + "} ...\n\n" + "\n".join(
        f"  {name:<6} {help_}" for name, (_, help_) in COMMANDS.items()
    ) + "\n\nrebalance COMMAND --help shows its flags; --verbose adds the traceback and the log to an error."
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        suggestion = f" Did you mean {close[0]!r}?" if close else ""
        print(f"rebalance: unknown command {argv[0]!r}.{suggestion}\n{usage}", file=sys.stderr)
        return 2
    return console.run(f"rebalance {argv[0]}", command[0], argv[1:], process=process)


if __name__ == "__main__":
    sys.exit(main())
