"""The job on Dask distributed (Beam's DaskRunner): the same tables as the
DirectRunner, one task per shard spread over the workers, clear errors, no
partial table when a worker dies.

The tests share one 2-process ``LocalCluster`` on 127.0.0.1 (started once per
module, because each worker imports TensorFlow); the worker-kill test starts
its own, and one test lets the job start and stop a local cluster itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_csv, write_parquet, write_tfrecords

from balance import load_tables
from balance.table import WeightTable
from pipelines.config import Shard, StatsConfig
from pipelines.io.plan import plan_inputs
from pipelines import run_class_stats as run
from pipelines import run_head_stats as run_heads
from pipelines.counting.count import CountShards
from pipelines import run_sample as sample_run

distributed = pytest.importorskip("dask.distributed")

N = 3000
RNG = np.random.default_rng(11)
P = 1.0 / np.arange(1, 13)
LABELS = RNG.choice(12, size=N, p=P / P.sum())
WEIGHTS = RNG.random(N).astype(np.float32).astype(np.float64)


def _local_cluster() -> distributed.LocalCluster:
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                    host="127.0.0.1", dashboard_address=None)


@pytest.fixture(scope="module")
def cluster():
    with _local_cluster() as local, distributed.Client(local) as client:
        yield local.scheduler_address, client


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("dask")
    write_tfrecords(root / "tfrecord", [example(label=int(y), w=float(w)) for y, w in zip(LABELS, WEIGHTS,
                                                                                          strict=True)],
                    shards=6)
    write_csv(root / "csv" / "all.csv", {"label": LABELS, "w": WEIGHTS, "text": ["a, \"b\""] * N})
    for i in range(3):
        part = slice(i * N // 3, (i + 1) * N // 3)
        write_parquet(root / "parquet" / f"p{i}.parquet", {"label": LABELS[part], "w": WEIGHTS[part]},
                      row_group_size=300)
    return root


def job(root, fmt: str, name: str, *flags: str) -> WeightTable:
    output = root / f"{name}.json"
    table = run(["--input", str(root / fmt / "*"), "--format", fmt, "--weight", "w",
                 "--output", str(output), *flags])
    assert WeightTable.load(str(output)).content_equal(table)
    return table


def on_dask(address: str) -> list[str]:
    return ["--runner", "dask", "--dask_address", address]


def read_tasks(stream) -> Counter:
    """Workers of the tasks of the job's widest stage (its reads): one per shard."""
    stages: dict[str, Counter] = {}
    for task in stream.data:
        key = task["key"] if isinstance(task["key"], str) else task["key"][0]
        if "from_sequence" in key:
            stages.setdefault(key, Counter())[task["worker"]] += 1
    return max(stages.values(), key=lambda workers: sum(workers.values()))


def test_tfrecord_one_task_per_shard_on_both_workers(data, cluster):
    address, client = cluster
    direct = job(data, "tfrecord", "tfrecord-direct")
    ref = WeightTable.from_labels(LABELS, sample_weight=WEIGHTS)
    np.testing.assert_allclose(direct.counts, ref.counts, rtol=1e-12)
    with distributed.get_task_stream(client) as stream:
        table = job(data, "tfrecord", "tfrecord-dask", *on_dask(address))
    assert table.content_equal(direct)
    workers = read_tasks(stream)
    assert sum(workers.values()) == 6, workers  # Beam's default would put all 6 in one task
    assert len(workers) == 2, workers


def test_full_beam_runner_spelling(data, cluster):
    table = job(data, "tfrecord", "tfrecord-beam-name",
                "--runner=apache_beam.runners.dask.dask_runner.DaskRunner",
                f"--dask_client_address={cluster[0]}")
    assert table.content_equal(job(data, "tfrecord", "tfrecord-direct"))


def test_one_csv_file_split_into_ranges(data, cluster):
    address, client = cluster
    size = os.path.getsize(data / "csv" / "all.csv")
    split = str(size // 7 + 1)
    config = StatsConfig(input=(str(data / "csv"),), format="csv", csv_split_bytes=int(split))
    assert len(plan_inputs(config).shards) == 7
    whole = job(data, "csv", "csv-whole", "--csv_split_bytes", "0")
    assert job(data, "csv", "csv-direct-ranges", "--csv_split_bytes", split).content_equal(whole)
    with distributed.get_task_stream(client) as stream:
        table = job(data, "csv", "csv-dask", "--csv_split_bytes", split, *on_dask(address))
    assert table.content_equal(whole)
    assert sum(read_tasks(stream).values()) == 7


def test_parquet_one_task_per_row_group(data, cluster):
    address, client = cluster
    direct = job(data, "parquet", "parquet-direct")
    with distributed.get_task_stream(client) as stream:
        table = job(data, "parquet", "parquet-dask", *on_dask(address))
    assert table.content_equal(direct)
    assert sum(read_tasks(stream).values()) == 3 * 4  # 1000 rows per file, 300 per row group


def test_tfds_dataset(tmp_path, cluster):
    import tensorflow_datasets as tfds
    from test_pipelines_tfds import NAMES, TinyImbalanced

    TinyImbalanced(data_dir=str(tmp_path)).download_and_prepare()
    flags = ["--format", "tfds", "--tfds_name", "tiny_imbalanced", "--tfds_data_dir", str(tmp_path),
             "--tfds_split", "train[:60%]"]
    direct = run([*flags, "--output", str(tmp_path / "direct.json")])
    table = run([*flags, "--output", str(tmp_path / "dask.json"), *on_dask(cluster[0])])
    assert table.content_equal(direct)
    assert table.class_names == tuple(NAMES) and table.num_examples == 72
    labels = [int(x["label"]) for x in tfds.as_numpy(
        tfds.builder("tiny_imbalanced", data_dir=str(tmp_path)).as_dataset(split="train[:60%]"))]
    assert same_counts(table, WeightTable.from_labels(np.array(labels), num_classes=5, class_names=NAMES,
                                                      label_key="label"))


def test_several_labels_in_one_pass(cluster, tmp_path):
    names = np.array(["cat", "dog", "eel"])[(LABELS * 7) % 3]
    for i in range(3):
        part = slice(i * N // 3, (i + 1) * N // 3)
        write_parquet(tmp_path / "in" / f"p{i}.parquet", {"a": LABELS[part], "b": names[part].tolist(),
                                                          "w": WEIGHTS[part]}, row_group_size=300)
    flags = ["--input", str(tmp_path / "in" / "*"), "--format", "parquet", "--label", "a", "--label", "b",
             "--weight", "w"]
    direct = run_heads([*flags, "--output", str(tmp_path / "direct")])
    tables = run_heads([*flags, "--output", str(tmp_path / "dask"), *on_dask(cluster[0])])
    assert list(tables) == ["a", "b"]
    for label in ("a", "b"):
        assert tables[label].content_equal(direct[label])
        assert load_tables(str(tmp_path / "dask"))[label].content_equal(tables[label])
    np.testing.assert_allclose(tables["a"].counts, WeightTable.from_labels(LABELS, sample_weight=WEIGHTS).counts,
                               rtol=1e-12)
    np.testing.assert_allclose(tables["b"].counts, WeightTable.from_labels(names, sample_weight=WEIGHTS).counts,
                               rtol=1e-12)
    assert tables["b"].class_names == ("cat", "dog", "eel")


@pytest.mark.parametrize("fmt, flags, match", [
    ("csv", ["--label", "lable"], r"argument `label`.*Received: label='lable'.*did you mean 'label'\?"),
    ("tfrecord", ["--label", "lable"], r"argument `label`.*Received: label='lable'.*did you mean 'label'\?"),
    ("parquet", ["--weight", "weigth"], r"argument `weight`.*Received: weight='weigth'.*\['label', 'w'\]"),
])
def test_a_missing_key_stops_the_job_as_on_the_direct_runner(data, cluster, tmp_path, fmt, flags, match):
    messages = []
    for name, runner in (("direct", []), ("dask", on_dask(cluster[0]))):
        output = tmp_path / f"{name}.json"
        with pytest.raises(ValueError, match=match) as err:
            run(["--input", str(data / fmt / "*"), "--format", fmt, "--output", str(output), *flags, *runner])
        assert not output.exists()
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_local_cluster_started_and_stopped_by_the_job(data, capsys, monkeypatch):
    import psutil

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    monkeypatch.setenv("REBALANCE_PROGRESS_SECONDS", "0.05")
    table = job(data, "parquet", "parquet-local", "--runner", "dask", "--dask_workers", "2")
    # The workers of the local cluster note their shards where the command reads them.
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress:")][-1]
    assert last.startswith(f"progress: 12/12 shards, {N:,} records, "), last  # 3 files of 4 row groups
    assert table.content_equal(job(data, "parquet", "parquet-direct"))
    # multiprocessing's resource tracker is started with the first worker and lives as long as this process.
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE and "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]
    assert not left, f"worker processes left running: {[(p, p.cmdline()) for p in left]}"


@pytest.mark.parametrize("flags, message", [
    (["--dask_workers", "2"], r"argument `dask_workers`. Expected no value unless --runner dask"),
    (["--runner", "dask", "--dask_address", "tcp://127.0.0.1:1", "--dask_workers", "2"],
     r"argument `dask_workers`. Expected no value with --dask_address"),
    (["--runner", "dask", "--dask_address", "tcp://127.0.0.1:1", "--dask_client_address=tcp://127.0.0.1:2"],
     r"argument `dask_address`. Expected the same address as --dask_client_address"),
    (["--runner", "dask", "--dask_workers", "0"], r"argument `dask_workers`. Expected a positive int"),
    (["--runner", "dask", "--read_threads", "2"], r"argument `read_threads`. Expected 0 or 1 with --runner dask"),
])
def test_dask_flags_are_checked(data, tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        run(["--input", str(data / "parquet" / "*"), "--format", "parquet",
             "--output", str(tmp_path / "t.json"), *flags])
    assert not (tmp_path / "t.json").exists()


def test_worker_killed_mid_job_recovers_with_the_exact_table(data, tmp_path):
    # Parquet, so that the restarted worker does not import TensorFlow again; a worker's
    # first task takes seconds (it imports Beam), so the kill lands while it runs.
    direct = job(data, "parquet", "parquet-direct")
    output = tmp_path / "killed.json"
    outcome: dict = {}

    def submit(address):
        try:
            outcome["table"] = run(["--input", str(data / "parquet" / "*"), "--format", "parquet",
                                    "--weight", "w", "--output", str(output), *on_dask(address)])
        except Exception as err:  # noqa: BLE001 (a clear failure is acceptable, checked below)
            outcome["error"] = err

    with _local_cluster() as local, distributed.Client(local) as client:
        pids = client.run(os.getpid)
        thread = threading.Thread(target=submit, args=(local.scheduler_address,))
        thread.start()
        victim, deadline = None, time.monotonic() + 120
        while victim is None and thread.is_alive() and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if keys]
            victim = busy[0] if busy else None
            time.sleep(0.01)
        assert victim is not None, "no task was seen running"
        os.kill(pids[victim], signal.SIGKILL)
        thread.join(timeout=300)
        assert not thread.is_alive()
    if "error" in outcome:  # allowed, if clear, and then nothing is written
        assert "KilledWorker" in type(outcome["error"]).__name__ or "worker" in str(outcome["error"]).lower()
        assert not output.exists()
    else:
        assert outcome["table"].content_equal(direct)
        assert WeightTable.load(str(output)).content_equal(direct)


# ------------------------------------------------ CSV byte ranges (any runner)
def _range_counts(path: Path, split: int) -> tuple[list, int]:
    config = StatsConfig(input=(str(path),), format="csv", csv_split_bytes=split)
    reader = CountShards(config)
    reader.setup()
    shards = plan_inputs(config).shards
    parts = [reader.count(Shard(*s)).finish() for s in shards]
    ids = sum((np.pad(p.ids, (0, 12 - len(p.ids))) for p in parts), np.zeros(12, dtype=np.int64))
    assert sum(p.records for p in parts) == sum(p.examples for p in parts)  # no bad or lost rows
    return ids.tolist(), len(shards)


@pytest.mark.parametrize("newline, trailing", [("\n", True), ("\r\n", True), ("\n", False)])
def test_csv_ranges_cover_every_line_once(tmp_path, newline, trailing):
    labels = LABELS[:60]
    lines = ["label,note", *[f"{y},{'x' * (i % 7)}" for i, y in enumerate(labels)]]
    path = tmp_path / "t.csv"
    path.write_bytes((newline.join(lines) + (newline if trailing else "")).encode())
    expected = np.bincount(labels, minlength=12).tolist()
    size = path.stat().st_size
    for split in (0, 1, 2, 3, 5, 8, 13, 64, size // 2, size - 1):  # ranges inside lines, at newlines, ...
        ids, shards = _range_counts(path, split)
        assert ids == expected, (split, shards)
        assert shards == (1 if split in (0,) else -(-size // split))


def test_csv_quoted_newline_is_refused_when_split_and_read_whole_otherwise(tmp_path):
    labels = LABELS[:400]
    path = write_csv(tmp_path / "q.csv", {"label": labels, "note": [f"line\n{i}" if i == 250 else "ok"
                                                                   for i in range(400)]})
    assert '"line\n250"' in Path(path).read_text()
    with pytest.raises(ValueError, match=r"argument `csv_split_bytes`. Expected CSV files without newlines "
                       r"inside quoted values.*Received: csv_split_bytes=\"a quoted newline in .*q.csv"
                       r".*--csv_split_bytes 0"):
        _range_counts(Path(path), 500)
    ids, shards = _range_counts(Path(path), 0)
    assert shards == 1 and ids == np.bincount(labels, minlength=12).tolist()


def test_sample_job_writes_the_same_records_on_dask_as_on_the_direct_runner(data, cluster, tmp_path):
    import tensorflow as tf

    address, _ = cluster
    flags = ["--input", str(data / "tfrecord" / "*"), "--max_ratio", "2", "--seed", "5", "--weight_feature", "kw"]
    direct = sample_run(flags + ["--output", str(tmp_path / "direct")])  # counts the source first
    flags += ["--table", str(tmp_path / "direct" / "_source_table.json")]
    dask = sample_run(flags + ["--output", str(tmp_path / "dask"), "--num_shards", "3", *on_dask(address)])

    def records(name):
        files = sorted(str(p) for p in (tmp_path / name).glob("part-*"))
        return Counter(r.numpy() for r in tf.data.TFRecordDataset(files))

    assert records("dask") == records("direct") and sum(records("direct").values()) == direct.num_examples
    np.testing.assert_array_equal(dask.counts, direct.counts)
    assert direct.num_examples < N  # something was dropped, so the decisions were compared


def test_sample_job_refuses_dask_flags_without_the_dask_runner(data, tmp_path):
    with pytest.raises(ValueError, match="dask_workers"):
        sample_run(["--input", str(data / "tfrecord" / "*"), "--max_ratio", "2", "--dask_workers", "2",
                    "--output", str(tmp_path / "s")])
    assert not (tmp_path / "s").exists()


# ----------------------------------------------------------------------- TLS
@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    """A TLS cluster of one worker, with a generated certificate written to PEM files, as a user's own."""
    security = distributed.security.Security.temporary()  # a self-signed certificate, its own CA
    pem = tmp_path_factory.mktemp("pem")
    (pem / "ca.pem").write_text(security.tls_ca_file)
    (pem / "client.pem").write_text(security.tls_client_cert)
    (pem / "client.key").write_text(security.tls_client_key)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, protocol="tls://", security=security) as local:
        yield local.scheduler_address, pem


def tls_flags(pem) -> list[str]:
    return ["--dask_tls_ca_file", str(pem / "ca.pem"), "--dask_tls_cert", str(pem / "client.pem"),
            "--dask_tls_key", str(pem / "client.key")]


def test_stats_and_sample_on_a_tls_scheduler_with_the_tls_flags(data, tls_cluster, tmp_path):
    address, pem = tls_cluster
    assert address.startswith("tls://")
    table = job(data, "parquet", "parquet-tls", *on_dask(address), *tls_flags(pem))
    assert table.content_equal(job(data, "parquet", "parquet-direct"))
    flags = ["--input", str(data / "parquet" / "*"), "--format", "parquet", "--max_ratio", "2", "--seed", "5"]
    direct = sample_run(flags + ["--output", str(tmp_path / "direct")])
    on_tls = sample_run(flags + ["--table", str(tmp_path / "direct" / "_source_table.json"),
                                 "--output", str(tmp_path / "tls"), *on_dask(address), *tls_flags(pem)])
    np.testing.assert_array_equal(on_tls.counts, direct.counts)


def test_stats_on_a_tls_scheduler_with_dasks_own_configuration(data, tls_cluster):
    import dask

    address, pem = tls_cluster
    with dask.config.set({"distributed.comm.tls.ca-file": str(pem / "ca.pem"),
                          "distributed.comm.tls.client.cert": str(pem / "client.pem"),
                          "distributed.comm.tls.client.key": str(pem / "client.key"),
                          "distributed.comm.require-encryption": True}):
        table = job(data, "parquet", "parquet-tls-config", *on_dask(address))
    assert table.content_equal(job(data, "parquet", "parquet-direct"))


@pytest.mark.parametrize("flags, message", [
    (["--dask_address", "tls://127.0.0.1:1"],
     r"`dask_address`. Expected a tls:// scheduler with certificates to reach it.*--dask_tls_ca_file"),
    (["--dask_address", "tcp://127.0.0.1:1", "--dask_tls_ca_file", "ca.pem", "--dask_tls_cert", "c.pem"],
     r"`dask_tls_ca_file`. Expected no value unless --dask_address is a tls:// address"),
    (["--dask_tls_ca_file", "ca.pem"], r"`dask_tls_ca_file`. Expected no value without --dask_address"),
    (["--dask_address", "tls://127.0.0.1:1", "--dask_tls_ca_file", "ca.pem"],
     r"`dask_tls_cert`. Expected a PEM file with the other --dask_tls_\* flags"),
    (["--dask_address", "tls://127.0.0.1:1", "--dask_tls_ca_file", "missing.pem", "--dask_tls_cert", "missing.pem"],
     r"`dask_tls_ca_file`. Expected an existing PEM file. Received: dask_tls_ca_file='missing.pem'"),
])
def test_tls_flags_are_checked_before_reading(data, tmp_path, flags, message):
    with pytest.raises(ValueError, match=message):
        run(["--input", str(data / "parquet" / "*"), "--format", "parquet", "--output", str(tmp_path / "t.json"),
             "--runner", "dask", *flags])
    assert not (tmp_path / "t.json").exists()


def test_the_local_cluster_the_command_starts_admits_only_its_own_client():
    from apache_beam.options.pipeline_options import PipelineOptions

    from pipelines.jobs import dask as _dask

    options = PipelineOptions(["--runner", "dask"])
    with _dask.cluster(_dask.DaskSetup(None, workers=1, threads_per_worker=1), options):
        address = options.view_as(_dask_options_class()).address
        assert address.startswith("tls://127.0.0.1:")
        with pytest.raises((OSError, TypeError)):  # plain TCP: the TLS handshake fails
            distributed.Client(address.replace("tls://", "tcp://"), timeout=3)
        with pytest.raises((OSError, TypeError)):  # TLS without the cluster's certificate
            distributed.Client(address, timeout=3, security=False)
        with pytest.raises((OSError, AssertionError)):  # another user's own certificates
            distributed.Client(address, timeout=3, security=distributed.security.Security.temporary())
        with distributed.Client(address, timeout=30) as client:  # the job's client, as Beam's DaskRunner opens it
            assert client.submit(sum, [1, 2]).result() == 3


def _dask_options_class():
    from apache_beam.runners.dask.dask_runner import DaskOptions

    return DaskOptions
