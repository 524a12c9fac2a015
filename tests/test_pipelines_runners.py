"""The job on every runner the issue lists, with identical tables; every DoFn
pickles; ``import pipelines`` does not import Apache Beam."""

from __future__ import annotations

import pickle
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from _pipelines_data import example, write_parquet, write_tfrecords

from balance.errors import InvalidDataError
from balance.table import WeightTable
from pipelines.config import StatsConfig
from pipelines import run_class_stats as run
from pipelines.counting.combiners import CountCombineFn
from pipelines.counting.count import CountShards
from pipelines.counting.transforms import ComputeClassStats

N = 2000


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Weighted labels with arbitrary float weights: exact sums must not depend on order."""
    root = tmp_path_factory.mktemp("runners")
    rng = np.random.default_rng(3)
    p = 1.0 / np.arange(1, 21)
    labels = rng.choice(20, size=N, p=p / p.sum())
    weights = rng.random(N).astype(np.float32)
    write_tfrecords(root / "d", [example(label=y, w=float(w)) for y, w in zip(labels, weights, strict=False)],
                    shards=5)
    return root, labels, weights.astype(np.float64)


def stats(root, name, *beam_flags):
    output = root / f"{name}.json"
    table = run(["--input", str(root / "d" / "*"), "--weight", "w", "--output", str(output),
                 *beam_flags])
    assert WeightTable.load(str(output)).content_equal(table)
    return table


@pytest.fixture(scope="module")
def in_process(dataset):
    root, labels, weights = dataset
    table = stats(root, "direct")
    ref = WeightTable.from_labels(labels, sample_weight=weights)
    np.testing.assert_allclose(table.counts, ref.counts, rtol=1e-12)
    assert table.num_examples == pytest.approx(weights.sum(), rel=1e-12)
    return table


def test_direct_multi_processing_two_workers(dataset, in_process, capsys, monkeypatch):
    monkeypatch.setenv("REBALANCE_PROGRESS_SECONDS", "0.05")
    table = stats(dataset[0], "multi", "--direct_num_workers=2",
                  "--direct_running_mode=multi_processing")
    assert table.content_equal(in_process)
    # The worker processes note their shards where the command reads them.
    last = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress:")][-1]
    assert last.startswith(f"progress: 5/5 shards, {N:,} records, "), last


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def job_service():
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main",
         f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, "the job service exited"
                assert time.monotonic() < deadline, "the job service did not start"
                time.sleep(0.2)
        yield f"localhost:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_portable_runner_on_local_job_service(dataset, in_process, job_service):
    table = stats(dataset[0], "portable", "--runner=PortableRunner",
                  f"--job_endpoint={job_service}", "--environment_type=LOOPBACK")
    assert table.content_equal(in_process)


def test_portable_runner_reports_job_errors(dataset, job_service, tmp_path):
    output = tmp_path / "t.json"
    # The worker runs in another process, yet the caller gets the job's own error, typed, with its place.
    with pytest.raises(InvalidDataError, match=r"class ids in \[0, 3\). Received: labels=\d+. Found in file") as info:
        run(["--input", str(dataset[0] / "d" / "*"), "--num_classes", "3", "--output", str(output),
             "--runner=PortableRunner", f"--job_endpoint={job_service}",
             "--environment_type=LOOPBACK"])
    assert info.value.path.startswith(str(dataset[0] / "d")) and isinstance(info.value.record, int)
    assert f"Found in file {info.value.path!r}, record {info.value.record}" in str(info.value)
    assert not output.exists()


def test_resharded_records_give_the_same_counts(dataset, in_process, tmp_path):
    _, labels, weights = dataset
    # The same records in other files, in another order and another sharding.
    order = np.random.default_rng(9).permutation(N)
    write_tfrecords(tmp_path / "d", [example(label=labels[i], w=float(weights[i])) for i in order],
                    shards=3, prefix="z")
    table = run(["--input", str(tmp_path / "d" / "*"), "--weight", "w",
                 "--output", str(tmp_path / "t.json")])
    np.testing.assert_allclose(table.counts, in_process.counts, rtol=1e-12)
    assert table.num_examples == pytest.approx(in_process.num_examples, rel=1e-12)
    assert table.provenance["fingerprint"] != in_process.provenance["fingerprint"]


def test_every_dofn_and_transform_pickles(tmp_path):
    from apache_beam.internal import pickler

    path = write_parquet(tmp_path / "p.parquet", {"label": np.arange(10) % 3})
    config = StatsConfig(input=(path,), format="parquet")
    objects = [CountShards(config), CountShards(config), CountShards(config),
               CountCombineFn(True), ComputeClassStats(config)]
    for obj in objects:
        for dumps, loads in ((pickle.dumps, pickle.loads), (pickler.dumps, pickler.loads)):
            clone = loads(dumps(obj))
            assert type(clone) is type(obj)
    # Unpickled in a fresh interpreter (as on a worker), with no main session.
    blob = pickler.dumps(CountShards(config))
    code = ("import sys; from apache_beam.internal import pickler; "
            "from pipelines.config import Shard; fn = pickler.loads(sys.stdin.buffer.read()); "
            f"fn.setup(); print(fn.count(Shard({path!r}, row_group=0)).finish().ids.tolist())")
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True)
    assert out.stdout.decode().strip() == "[4, 3, 3]"


def test_import_pipelines_does_not_import_beam():
    code = ("import sys, pipelines; assert 'ComputeClassStats' in pipelines.__all__; "
            "assert 'apache_beam' not in sys.modules, 'beam imported'; "
            "pipelines.ComputeClassStats; assert 'apache_beam' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_local_table_io_does_not_import_tensorflow(tmp_path):
    # Workers that only write the table (all of them for CSV and Parquet) must
    # not pay TensorFlow's import; the table round-trips and no temp file is left.
    path = tmp_path / "sub" / "t.json"
    code = ("import sys; from balance.table import WeightTable; "
            "from pipelines.counting.transforms import save_table; "
            "t = WeightTable.from_counts([3.0, 1.0], task='multiclass'); "
            f"save_table(t, {str(path)!r}); assert WeightTable.load({str(path)!r}) == t; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
    assert [p.name for p in path.parent.iterdir()] == ["t.json"]
    assert WeightTable.load(str(path)).counts.tolist() == [3.0, 1.0]
