"""Property: the Beam job and ``WeightTable.from_labels`` give identical tables.

For generated label arrays (int ids, binary ids, strings with non-ASCII text,
strings with invalid UTF-8, one-hot rows, multi-hot rows, id lists, dense
ids; with and without example weights), the arrays are written to TFRecord,
CSV or Parquet files, counted by the job, and compared with
``WeightTable.from_labels`` on the arrays: counts, class names, their order,
task, dtype, number of examples and elements. Invalid UTF-8 must fail both
ways with ``InvalidDataError`` naming the same record.

Running a pipeline per case would take minutes, so:

* every case (``NUM_CASES`` of them) is counted by the job's own reader DoFns
  (``setup`` + per-shard ``_counts`` over the shards ``plan_inputs`` lists),
  merged with ``merge_counts`` and turned into a
  table by ``build_table``: the code the pipeline runs, minus Beam's
  scheduling;
* every ``FULL_EVERY``-th case also goes through a real Beam pipeline, all of
  them as branches of one pipeline (``ComputeClassStats`` +
  ``WriteWeightTable`` each), on the FnApiRunner.

Cases come from seeded numpy generators (case ``i`` uses seed ``i``), so a
failure names a reproducible case. Weights are multiples of 1/8, so their sums
are exact in any order and the tables can be compared exactly even when a
case is spread over several shards.
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from balance import WeightTable
from balance.errors import InvalidDataError
from pipelines.config import Shard, StatsConfig
from pipelines.io.plan import plan_inputs
from pipelines.counting.table import build_table
from pipelines.counting.combiners import merge_counts
from pipelines.counting.count import CountShards
from pipelines.counting.transforms import ComputeClassStats, WriteWeightTable

NUM_CASES = 216
FULL_EVERY = 9  # coprime with len(KINDS), so the full runs cover every kind
KINDS = ("ids", "binary", "strings", "bad_utf8", "one_hot", "multi_hot", "id_lists", "dense")
FORMATS = ("tfrecord", "parquet", "csv")
WORDS = ["cat", "chien", "猫", "Ünïcödé", "ß", "a,b", 'q"t', "zebra", "émoji 🐈", "x"]


@dataclasses.dataclass
class Case:
    seed: int
    kind: str
    format: str
    labels: object  # what from_labels gets
    rows: list  # one label value (or list of values) per record, for the files
    weights: np.ndarray | None
    from_labels: dict
    config: dict
    bad_record: int | None = None


def make_case(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    kind = KINDS[seed % len(KINDS)]
    fmt = FORMATS[(seed // len(KINDS)) % len(FORMATS)]
    if kind == "bad_utf8" and fmt == "csv":
        fmt = "tfrecord"  # a CSV file must be text; invalid UTF-8 there is an unreadable file
    n = int(rng.integers(1, 60))
    k = int(rng.integers(2, 7))
    weights = rng.integers(0, 17, n) / 8.0 if rng.random() < 0.5 else None
    if weights is not None and weights.sum() == 0:
        weights[0] = 1.0
    given_k = k if rng.random() < 0.5 else None
    kw: dict = {}
    config: dict = {}
    bad = None
    if kind in ("ids", "binary"):
        size = 2 if kind == "binary" else k
        labels = rng.integers(0, size, n)
        if kind == "ids" and given_k is None:
            labels[0] = max(labels.max(), 0)  # inferred K is max id + 1 either way
        rows = labels.tolist()
        task = "binary" if kind == "binary" else "multiclass"
        kw = {"task": task, "num_classes": given_k if kind == "ids" else None}
        config = {"task": task, "num_classes": kw["num_classes"]}
    elif kind in ("strings", "bad_utf8"):
        words = [WORDS[i] for i in rng.choice(len(WORDS), size=min(k + 2, len(WORDS)), replace=False)]
        labels = np.array([words[i].encode() for i in rng.integers(0, len(words), n)], dtype=object)
        if kind == "bad_utf8":
            bad = int(rng.integers(0, n))
            labels[bad] = b"ok\xff" + labels[bad]
        rows = list(labels)
        config = {"label_dtype": "string"}
    elif kind in ("one_hot", "multi_hot"):
        if kind == "one_hot":
            labels = np.eye(k, dtype=np.float32)[rng.integers(0, k, n)]
            kw, config = {}, {"label_form": "one_hot"}
        else:
            labels = (rng.random((n, k)) < 0.4).astype(np.int64)
            kw = {"task": "multilabel"}
            config = {"task": "multilabel", "label_form": "multi_hot"}
        rows = labels.astype(np.int64).tolist()
    elif kind == "id_lists":
        rows = [sorted(rng.choice(k, size=int(rng.integers(0, k + 1)), replace=True).tolist()) for _ in range(n)]
        rows[0] = rows[0] or [k - 1]
        labels = rows
        kw = {"task": "multilabel", "label_form": "id_lists", "num_classes": given_k}
        config = {"task": "multilabel", "label_form": "id_lists", "num_classes": given_k}
    else:  # dense: T ids per record, some ignored
        t = int(rng.integers(1, 5))
        labels = rng.integers(0, k, (n, t))
        labels[0, 0] = k - 1
        ignore = int(rng.integers(0, k)) if rng.random() < 0.3 else None
        if ignore is not None and np.all(labels == ignore):
            ignore = None
        rows = labels.tolist()
        kw = {"label_form": "dense", "ignore_value": ignore, "num_classes": given_k}
        config = {"label_form": "dense", "ignore_value": ignore, "num_classes": given_k}
    return Case(seed, kind, fmt, labels, rows, weights, kw, config, bad)


def write_case(case: Case, directory) -> tuple[str, int]:
    """Writes the case's records; returns the input pattern and the number of files."""
    weights = None if case.weights is None else case.weights.tolist()
    shards = 1 if case.bad_record is not None else 1 + case.seed % 3
    if case.format == "tfrecord":
        records = [example(label=row, w=None if weights is None else weights[i]) for i, row in enumerate(case.rows)]
        write_tfrecords(directory, records, shards=shards)
        return str(directory / "*"), shards
    columns: dict = {"label": case.rows}
    if weights is not None:
        columns["w"] = weights
    if case.format == "parquet":
        import pyarrow as pa

        if case.kind in ("strings", "bad_utf8"):
            columns["label"] = pa.array(case.rows, type=pa.binary())
        elif isinstance(case.rows[0], list):
            columns["label"] = pa.array(case.rows, type=pa.list_(pa.int64()))
        write_parquet(directory / "p.parquet", columns, row_group_size=max(1, len(case.rows) // shards))
        return str(directory / "p.parquet"), 1
    if isinstance(case.rows[0], list):
        columns["label"] = ["|".join(str(v) for v in row) for row in case.rows]
    elif case.kind == "strings":
        columns["label"] = [v.decode() for v in case.rows]
    write_csv(directory / "c.csv", columns)
    return str(directory / "c.csv"), 1


def stats_config(case: Case, pattern: str) -> StatsConfig:
    options = {k: v for k, v in case.config.items() if v is not None}
    return StatsConfig(input=(pattern,), format=case.format, weight="w" if case.weights is not None else None,
                       **options)


def count_with_readers(config: StatsConfig) -> WeightTable:
    """The job's per-shard code and its last step, without a runner."""
    plan = plan_inputs(config)  # Parquet row groups and CSV byte ranges are shards already
    reader = CountShards(plan.config)
    reader.setup()
    counts = merge_counts(reader.read_shard(Shard(*s)) for s in plan.shards)
    return build_table(counts, plan.config, plan.inputs, plan.fingerprint)


def expected(case: Case) -> WeightTable:
    kw = {k: v for k, v in case.from_labels.items() if v is not None}
    return WeightTable.from_labels(case.labels, sample_weight=case.weights, label_key="label", **kw)


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    out = []
    for seed in range(NUM_CASES):
        case = make_case(seed)
        directory = tmp_path_factory.mktemp(f"case{seed}")
        pattern, _ = write_case(case, directory)
        out.append((case, stats_config(case, pattern), directory))
    return out


def test_cases_cover_every_kind_format_and_weighting(cases):
    seen = {(c.kind, c.format, c.weights is not None) for c, _, _ in cases}
    assert len(cases) >= 200
    for kind in KINDS:
        formats = ("tfrecord", "parquet") if kind == "bad_utf8" else FORMATS
        for fmt in formats:
            assert {(kind, fmt, False), (kind, fmt, True)} & seen, (kind, fmt)
        assert (kind, "tfrecord", True) in seen or (kind, "parquet", True) in seen


def test_job_readers_match_from_labels_on_every_case(cases):
    compared = failed_alike = 0
    for case, config, _ in cases:
        if case.bad_record is not None:
            with pytest.raises(InvalidDataError) as from_memory:
                expected(case)
            with pytest.raises(InvalidDataError) as from_files:
                count_with_readers(config)
            assert from_memory.value.record == from_files.value.record == case.bad_record, case.seed
            assert from_files.value.path.endswith(("part-00000.tfrecord", "p.parquet")), from_files.value.path
            assert f"Found in file {from_files.value.path!r}, record {case.bad_record}" in str(from_files.value)
            failed_alike += 1
            continue
        table, reference = count_with_readers(config), expected(case)
        assert same_counts(table, reference), (case.seed, case.kind, case.format, table, reference)
        compared += 1
    assert compared + failed_alike == NUM_CASES and failed_alike >= 20


def test_full_pipelines_match_from_labels(cases, tmp_path):
    chosen = [(c, cfg) for c, cfg, _ in cases[::FULL_EVERY] if c.bad_record is None]
    pipeline = beam.Pipeline(runner=FnApiRunner())
    for case, config in chosen:
        _ = (pipeline | f"Stats{case.seed}" >> ComputeClassStats(config)
             | f"Write{case.seed}" >> WriteWeightTable(str(tmp_path / f"{case.seed}.json")))
    pipeline.run().wait_until_finish()
    for case, _ in chosen:
        table = WeightTable.load(str(tmp_path / f"{case.seed}.json"))
        assert same_counts(table, expected(case)), (case.seed, case.kind, case.format)
    assert len({c.kind for c, _ in chosen}) >= 6 and len(chosen) >= 20
