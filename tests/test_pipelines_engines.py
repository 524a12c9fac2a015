"""The jobs on Flink and Spark, run for real: an embedded Flink cluster (parallelism 2) and a Spark
standalone master with two workers on 127.0.0.1, both through Beam's portable job servers (built
from Beam's Maven modules, see ``pipelines.jobs.engines``) with loopback SDK workers.

Same tables as the DirectRunner on TFRecord, Parquet and CSV, several labels in one pass, the same
sample, the project's error for a bad record, progress lines. These need Java, Maven and the Beam
release whose job servers Maven serves (``requirements-engines.txt``): ``make test-engines`` builds
that venv and runs them; elsewhere they skip, saying why.
"""

from __future__ import annotations

import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance.errors import InvalidDataError

ROOT = Path(__file__).resolve().parent.parent
PINNED = re.search(r"apache-beam\S*==(\S+)", (ROOT / "requirements-engines.txt").read_text()).group(1)
beam_version = pytest.importorskip("apache_beam.version").__version__

if shutil.which("java") is None or shutil.which("mvn") is None:
    pytest.skip("Flink and Spark need Java 11+ and Maven (mvn) on PATH; `make test-engines` runs these tests "
                "where they are installed", allow_module_level=True)
if beam_version != PINNED:
    pytest.skip(f"The job servers need the Python SDK of their own Beam release, {PINNED} (the newest whose "
                f"Flink and Spark modules Maven serves); this venv has Beam {beam_version}. "
                "Run `make test-engines`", allow_module_level=True)

from pipelines import run_class_stats as run  # noqa: E402
from pipelines import run_head_stats as run_heads  # noqa: E402
from pipelines import run_sample as sample_run  # noqa: E402
from pipelines.jobs.local_spark import LocalSparkCluster  # noqa: E402

N = 2000
RNG = np.random.default_rng(30)
P = 1.0 / np.arange(1, 11)
LABELS = RNG.choice(10, size=N, p=P / P.sum())
WEIGHTS = RNG.random(N).astype(np.float32).astype(np.float64)
TAGS = RNG.random((N, 4)) < 0.3  # a second, multilabel label for the several-labels test

FLINK = ["--runner", "FlinkRunner", "--parallelism", "2"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    write_tfrecords(root / "tfrecord", [example(label=int(y), w=float(w)) for y, w in zip(LABELS, WEIGHTS,
                                                                                          strict=True)], shards=4)
    write_csv(root / "csv" / "all.csv", {"label": LABELS, "w": WEIGHTS})
    for i in range(2):
        part = slice(i * N // 2, (i + 1) * N // 2)
        write_parquet(root / "parquet" / f"p{i}.parquet",
                      {"label": LABELS[part], "w": WEIGHTS[part], "tags": [np.flatnonzero(t).tolist()
                                                                           for t in TAGS[part]]},
                      row_group_size=400)
    return root


@pytest.fixture(scope="module")
def spark(monkeypatch_module):
    # The job server is Spark's driver: its own ports (and web UI) on 127.0.0.1 too.
    monkeypatch_module.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    with LocalSparkCluster(2) as cluster:
        assert cluster.alive_workers() == 2
        yield ["--runner", "SparkRunner", "--spark_master_url", cluster.master_url, "--environment_type", "LOOPBACK"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def stats(root: Path, fmt: str, name: str, *flags: str):
    return run(["--input", str(root / fmt / "*"), "--format", fmt, "--weight", "w",
                "--output", str(root / f"{name}.json"), *flags])


def progress_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("progress:")]


def test_flink_tfrecord_table_equals_the_direct_runners_with_progress(data, capsys, monkeypatch):
    direct = stats(data, "tfrecord", "tfrecord-direct")
    np.testing.assert_allclose(direct.counts, np.bincount(LABELS, weights=WEIGHTS, minlength=10), rtol=1e-12)
    capsys.readouterr()
    monkeypatch.setenv("REBALANCE_PROGRESS_SECONDS", "0.5")
    table = stats(data, "tfrecord", "tfrecord-flink", *FLINK)
    assert table.content_equal(direct)
    captured = capsys.readouterr()
    # The loopback workers note their shards where the command reads them.
    assert progress_lines(captured.err)[-1].startswith(f"progress: 4/4 shards, {N:,} records, "), captured.err
    assert "records read: 2000, shards: 4" in captured.out  # Flink reports the job's metrics


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_flink_csv_and_parquet_tables_equal_the_direct_runners(data, fmt):
    split = ["--csv_split_bytes", "20000"] if fmt == "csv" else []  # several byte ranges, one task each
    assert stats(data, fmt, f"{fmt}-flink", *split, *FLINK).content_equal(stats(data, fmt, f"{fmt}-direct", *split))


def heads(root: Path, name: str, *flags: str):
    return run_heads(["--input", str(root / "parquet" / "*"), "--format", "parquet", "--label", "label",
                      "--label", "tags", "--task", "tags=multilabel", "--num_classes", "tags=4",
                      "--output", str(root / name), *flags])


def test_spark_several_labels_in_one_pass_equal_the_direct_runners(data, spark):
    direct = heads(data, "heads-direct")
    tables = heads(data, "heads-spark", *spark)
    assert set(tables) == {"label", "tags"}
    for label in tables:
        assert same_counts(tables[label], direct[label]), label
    np.testing.assert_array_equal(tables["tags"].counts, TAGS.sum(axis=0))


def test_spark_tfrecord_table_equals_the_direct_runners_with_progress(data, spark, capsys, monkeypatch):
    direct = stats(data, "tfrecord", "tfrecord-direct")
    capsys.readouterr()
    monkeypatch.setenv("REBALANCE_PROGRESS_SECONDS", "0.5")
    assert stats(data, "tfrecord", "tfrecord-spark", *spark).content_equal(direct)
    captured = capsys.readouterr()
    assert progress_lines(captured.err)[-1].startswith(f"progress: 4/4 shards, {N:,} records, "), captured.err


def sample_records(directory: Path, fmt: str) -> Counter:
    import pyarrow.csv as pa_csv
    import tensorflow as tf

    files = sorted(str(p) for p in directory.glob("part-*"))
    if fmt == "tfrecord":
        return Counter(r.numpy() for r in tf.data.TFRecordDataset(files))
    rows = Counter()
    for path in files:
        table = pa_csv.read_csv(path)
        rows.update(zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True))
    return rows


@pytest.mark.parametrize("fmt, engine", [("tfrecord", "flink"), ("csv", "spark")])
def test_sample_job_keeps_the_same_records_as_on_the_direct_runner(data, fmt, engine, request, tmp_path):
    flags = ["--input", str(data / fmt / "*"), "--format", fmt, "--max_ratio", "2", "--seed", "5",
             "--weight_feature", "kw"]
    direct = sample_run(flags + ["--output", str(tmp_path / "direct")])  # counts the source first
    on_engine = FLINK if engine == "flink" else request.getfixturevalue("spark")
    other = sample_run(flags + ["--table", str(tmp_path / "direct" / "_source_table.json"),
                                "--output", str(tmp_path / engine), "--num_shards", "3", *on_engine])
    kept = sample_records(tmp_path / "direct", fmt)
    assert sample_records(tmp_path / engine, fmt) == kept and sum(kept.values()) == direct.num_examples
    np.testing.assert_array_equal(other.counts, direct.counts)
    assert direct.num_examples < N  # something was dropped, so the keep decisions were compared


@pytest.mark.parametrize("engine", ["flink", "spark"])
def test_a_bad_record_fails_with_the_projects_error(data, engine, request, tmp_path):
    on_engine = FLINK if engine == "flink" else request.getfixturevalue("spark")
    output = tmp_path / "t.json"
    # The record is read by a worker of the engine, yet the caller gets the job's own error, typed, with its
    # place: no Java stack trace.
    with pytest.raises(InvalidDataError, match=r"class ids in \[0, 3\). Received: labels=\d+. Found in file") as info:
        run(["--input", str(data / "tfrecord" / "*"), "--num_classes", "3", "--output", str(output), *on_engine])
    assert info.value.path.startswith(str(data / "tfrecord")) and isinstance(info.value.record, int)
    assert "java." not in str(info.value)
    assert not output.exists()
