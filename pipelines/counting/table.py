"""The last step of the job: validate the merged counts and build the table.

A pure function of the merged ``ClassCounts``, so that a failing job raises
here, before anything is written.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from balance.counting import vocabulary_counts
from balance.errors import invalid_data
from balance.table import WeightTable
from pipelines.config import StatsConfig
from pipelines.counting.combiners import ClassCounts, from_exact


def check_bad_records(counts: ClassCounts, max_bad_fraction: float) -> None:
    """Fails when bad records exceed ``max_bad_fraction`` of the records read."""
    if counts.records == 0:
        raise invalid_data("input", "at least one record", "0 records",
                      hint=f"Empty input: {counts.shards} shard(s) read, all empty")
    bad = counts.total_bad()
    if bad and bad > max_bad_fraction * counts.records:
        worst = sorted(counts.bad.items(), key=lambda kv: (-kv[1], kv[0]))
        detail = "; ".join(
            f"bad_{kind}: {n} record(s), e.g. in {counts.bad_files.get(kind)!r}" for kind, n in worst
        )
        raise invalid_data(
            "max_bad_fraction", f"at most {max_bad_fraction:g} of {counts.records} records bad",
            max_bad_fraction,
            hint=f"{bad} bad record(s) ({bad / counts.records:.4g}): {detail}. Check --label, "
            "--label_form and --label_dtype, or raise --max_bad_fraction to skip them",
        )


def build_table(
    counts: ClassCounts, config: StatsConfig, inputs: Sequence[str], fingerprint: str
) -> WeightTable:
    """Builds the ``WeightTable`` (and precomputed weights) from merged counts.

    Raises:
      balance.errors.InvalidDataError: an error met while reading, empty
        input, too many bad records, mixed int and string labels, or no
        labelled example at all.
    """
    if counts.error is not None:
        raise counts.error  # met while reading a shard
    check_bad_records(counts, config.max_bad_fraction)
    weighted = counts.weighted
    if counts.kinds == {"int", "string"}:
        raise invalid_data("label_dtype", "labels of one type", "both int ids and strings",
                      hint="Pass --label_dtype int (strings then count as bad records) or string")
    if counts.examples == 0:
        raise invalid_data("input", "at least one valid labelled example", "none",
                      hint=f"{counts.records} records read, {counts.total_bad()} bad")
    class_names = config.class_names
    label_dtype = "int"
    if "string" in counts.kinds:
        names = counts.names.map_counts(lambda exact: from_exact(exact, weighted))
        vector, class_names = vocabulary_counts(names, class_names)
        label_dtype = "string"
    else:
        vector = from_exact(counts.ids, weighted)
        size = config.num_classes or (2 if config.task == "binary" else len(vector))
        if size == 0:
            raise invalid_data("labels", "at least one labelled element", "none", hint="Pass --num_classes")
        vector = np.concatenate([vector, np.zeros(size - len(vector))])
    num_elements = float(vector.sum()) if config.form == "dense" else None  # as from_labels
    table = WeightTable.from_counts(
        vector,
        task=config.task,
        num_classes=len(vector),
        class_names=class_names,
        num_examples=from_exact(counts.examples, weighted),
        num_elements=num_elements,
        label_key=config.label,
        label_dtype=label_dtype,
        inputs=list(inputs),
        fingerprint=fingerprint,
    )
    return table.with_precomputed(config.scheme) if config.scheme else table

