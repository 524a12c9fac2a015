"""The ``rebalance`` command line: ``stats``, ``sample``, ``show`` and ``demo``.

``show`` needs neither Beam nor TensorFlow beyond reading the file; ``stats``,
``sample`` and ``demo`` import their modules only when called.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from balance import SCHEMES, WeightTable


def _show(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="rebalance show", description="Print a weight table.")
    parser.add_argument("table", help="path of a weight table JSON (local, gs://, ram://)")
    parser.add_argument("--scheme", default="balanced", choices=sorted(SCHEMES),
                        help="weighting scheme for the weight column (default: balanced)")
    parser.add_argument("--normalize", default=None,
                        help="none, sum_to_one, sum_to_num_classes or mean_one (default: per scheme)")
    parser.add_argument("--zero_count", default="error", help="error, zero or max (default: error)")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="a scheme parameter, e.g. --param beta=0.9999 (repeatable)")
    parser.add_argument("--plot", metavar="OUT.png", help="also write a bar chart of counts and weights")
    parser.add_argument("--max_rows", type=int, default=50)
    args = parser.parse_args(argv)

    from balance.report import format_table, plot_table  # noqa: PLC0415

    table = WeightTable.load(args.table)
    if table.task == "multilabel":
        options = {"zero_count": args.zero_count}
    else:
        options = {"normalize": args.normalize, "zero_count": args.zero_count, **_params(args.param)}
    print(format_table(table, args.scheme, max_rows=args.max_rows, **options))
    if args.plot:
        plot_table(table, args.plot, args.scheme, **options)
        print(f"plot written to {args.plot}")
    return 0


def _params(pairs: Sequence[str]) -> dict[str, float]:
    """``["beta=0.99"]`` -> ``{"beta": 0.99}``; the scheme checks the names."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        try:
            params[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise ValueError(
                f"Invalid value for argument `param`. Expected NAME=NUMBER, e.g. beta=0.999. Received: param={pair!r}"
            )
    return params


def _stats(argv: Sequence[str]) -> int:
    from pipelines import class_stats  # noqa: PLC0415 (imports Beam)

    return class_stats.main(list(argv))


def _sample(argv: Sequence[str]) -> int:
    from pipelines import sample_job  # noqa: PLC0415 (imports Beam)

    return sample_job.main(list(argv))


def _demo(argv: Sequence[str]) -> int:
    from pipelines import demo  # noqa: PLC0415

    return demo.main(list(argv))


COMMANDS = {
    "stats": (_stats, "count classes with the Beam job and write a weight table"),
    "sample": (_sample, "write a down-sampled copy of a dataset and the exact table of the sample"),
    "show": (_show, "print a weight table (and optionally plot it)"),
    "demo": (_demo, "run the end-to-end demo on generated data"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: rebalance {" + ",".join(COMMANDS) + "} ...\n\n" + "\n".join(
        f"  {name:<6} {help_}" for name, (_, help_) in COMMANDS.items()
    )
    if not argv or argv[0] in ("-h", "--help"):
        print(usage)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"rebalance: unknown command {argv[0]!r}.\n{usage}", file=sys.stderr)
        return 2
    try:
        return command[0](argv[1:])
    except (ValueError, ImportError) as err:
        print(f"rebalance {argv[0]}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
