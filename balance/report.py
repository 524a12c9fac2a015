"""Human-readable views of a weight table: a text table and a PNG chart."""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from balance import fileio
from balance.errors import invalid
from balance.schemes import check_scheme_params
from balance.table import WeightTable


def format_table(
    table: WeightTable, scheme: str = "balanced", *, scheme_params: Mapping[str, Any] | None = None,
    max_rows: int = 50,
) -> str:
    """Renders class, name, count, share and weight, plus the summary lines.

    Classes are listed by id; beyond ``max_rows`` only the largest and
    smallest classes are shown. Weights follow ``table.class_weights(scheme,
    **scheme_params)`` (``pos_weight`` per label for multilabel tables, whose
    only option is ``zero_count``).
    """
    options = check_scheme_params(scheme_params)
    if table.task == "multilabel":
        weights, weight_title = table.pos_weight(**options), "pos_weight"
        shares = table.prior()
    else:
        weights, weight_title = table.class_weights(scheme, **options), f"weight ({scheme})"
        shares = table.counts / table.counts.sum()
    rows = list(range(table.num_classes))
    if len(rows) > max_rows:
        order = np.argsort(-table.counts, kind="stable")
        rows = sorted(order[: max_rows // 2].tolist() + order[-(max_rows // 2):].tolist())
    names = {i: printable(table.class_names[i]) if table.class_names else "" for i in rows}
    name_width = max([4] + [len(names[i]) for i in rows])
    count_title = "positives" if table.task == "multilabel" else "count"
    lines = [f"{'class':>6}  {'name':<{name_width}}  {count_title:>14}  {'share':>8}  {weight_title}"]
    previous = -1
    for i in rows:
        if i != previous + 1:
            lines.append(f"{'...':>6}")
        lines.append(
            f"{i:>6}  {names[i]:<{name_width}}  {table.counts[i]:>14,.6g}  {shares[i]:>8.2%}  {weights[i]:.6g}"
        )
        previous = i
    lines.append("")
    lines.append(f"task: {table.task}; classes: {table.num_classes}; examples: {table.num_examples:,.6g}")
    if table.num_elements is not None:
        lines.append(f"labelled elements: {table.num_elements:,.6g}")
    lines.append(f"imbalance ratio (largest / smallest non-empty): {table.imbalance_ratio():,.4g}")
    empty = int(np.sum(table.counts == 0))
    if empty:
        lines.append(f"empty classes: {empty}")
    lines.extend(origin_lines(table))
    return "\n".join(lines)


def origin_lines(table: WeightTable) -> list[str]:
    """What the table's provenance says it is: counted, estimated (label shift), a sample, a merge."""
    provenance = table.provenance
    label = f"label '{printable(table.label_key)}'; " if table.label_key else ""
    lines = [f"{label}counted from: {_listed(provenance.get('inputs'))}"]
    estimated = provenance.get("estimated")
    if isinstance(estimated, Mapping):
        lines[0] = (f"{label}ESTIMATED, not counted: label shift ({printable(estimated.get('method'))}) from "
                    f"{_number(estimated.get('num_unlabeled'))} unlabeled examples of "
                    f"{_listed(provenance.get('inputs'))}")
        lines.append(f"estimated against the training table {printable(estimated.get('source_fingerprint'))}")
    sample = provenance.get("sample")
    if isinstance(sample, Mapping):
        source = sample.get("source") if isinstance(sample.get("source"), Mapping) else {}
        lines.append(f"a SAMPLE (rebalance sample, seed {printable(sample.get('seed'))}) of "
                     f"{_number(source.get('num_examples'))} examples counted from {_listed(source.get('inputs'))}")
        lines.append(f"keep rates: {_rates(sample.get('keep_rates'), table.class_names)}")
        if sample.get("negative_keep_rate") is not None:
            lines.append(f"negative keep rate: {_number(sample.get('negative_keep_rate'))}")
        lines.append("a model trained on it learns the sample's prior: map it back with losses.shift_logits "
                     "(docs/sampling.md)")
    parts = provenance.get("parts")
    if isinstance(parts, list):
        lines.append(f"merged from {len(parts)} parts")
    return lines


def printable(value: Any) -> str:
    """``str(value)`` with every non-printable character escaped (``\\x1b``, ``\\u202e``).

    Class names and paths come from the table file, which may come from
    anyone: printed raw, control characters could drive the terminal.
    """
    text = str(value)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape", "backslashreplace").decode("ascii")
                   for c in text)


def _listed(inputs: Any, limit: int = 3) -> str:
    if not isinstance(inputs, list) or not inputs:
        return "(not recorded)"
    shown = ", ".join(printable(i) for i in inputs[:limit])
    return shown + (f" and {len(inputs) - limit} more" if len(inputs) > limit else "")


def _number(value: Any) -> str:
    return f"{value:,.6g}" if isinstance(value, (int, float)) and not isinstance(value, bool) else printable(value)


def _rates(rates: Any, names: Any, limit: int = 10) -> str:
    if not isinstance(rates, list) or not rates:
        return "(not recorded)"
    if len(rates) > limit:
        numbers = [r for r in rates if isinstance(r, (int, float))]
        return f"{len(rates)} classes, from {_number(min(numbers))} to {_number(max(numbers))}" if numbers else "?"
    labels = [printable(n) for n in names] if names and len(names) == len(rates) else list(map(str, range(len(rates))))
    return ", ".join(f"{label} {_number(rate)}" for label, rate in zip(labels, rates, strict=True))


def plot_table(
    table: WeightTable, path: str, scheme: str = "balanced", *, scheme_params: Mapping[str, Any] | None = None
) -> str:
    """Writes a PNG with counts (log scale) and weights per class. Returns ``path``.

    Raises:
      ImportError: when matplotlib is missing, naming the extra to install.
    """
    plt = pyplot()
    if not path.endswith(".png"):
        raise invalid("plot", "a path ending in .png", path)
    options = check_scheme_params(scheme_params)
    if table.task == "multilabel":
        weights, weight_title = table.pos_weight(**options), "pos_weight"
    else:
        weights, weight_title = table.class_weights(scheme, **options), f"weight ({scheme})"
    x = np.arange(table.num_classes)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(max(6, min(20, 0.25 * len(x))), 6), sharex=True)
    top.bar(x, np.maximum(table.counts, 0.5), color="tab:blue")
    top.set_yscale("log")
    top.set_ylabel("positives" if table.task == "multilabel" else "count (log)")
    top.set_title(f"{table.num_classes} classes, {table.num_examples:,.0f} examples, "
                  f"imbalance {table.imbalance_ratio():,.3g}:1")
    bottom.bar(x, weights, color="tab:orange")
    bottom.set_ylabel(weight_title)
    bottom.set_xlabel("class")
    if table.class_names and len(x) <= 40:
        bottom.set_xticks(x, table.class_names, rotation=60, ha="right", fontsize=8)
    return save_png(fig, path)


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend, or an ImportError naming the extra."""
    try:
        import matplotlib  # noqa: PLC0415 (optional dependency)

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        raise ImportError(
            "Plotting needs matplotlib. Install the plot extra: pip install 'tf-rebalance[plot]'"
        ) from None
    return plt


def save_png(fig, path: str) -> str:
    """Writes ``fig`` as a PNG atomically (local or ``gs://``) and closes it."""
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=100)
    pyplot().close(fig)
    fileio.write_atomically(path, png.getvalue())
    return path
