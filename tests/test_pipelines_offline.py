"""Local runs stay offline and light: no Prism download, no TensorFlow for CSV jobs."""

import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from _pipelines_data import example, write_tfrecords
from apache_beam.options.pipeline_options import PipelineOptions

from balance import WeightTable
from pipelines import run_class_stats as run
from pipelines.jobs.runner import auto_read_threads

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_direct_runner_job_does_not_try_the_prism_download(tmp_path, caplog):
    labels = np.array([0, 1, 1, 2, 2, 2])
    files = write_tfrecords(tmp_path / "d", [example(label=int(y)) for y in labels], shards=2)
    caplog.set_level(logging.INFO)
    for runner_flags in ([], ["--runner", "DirectRunner"]):
        output = tmp_path / f"t{len(runner_flags)}.json"
        table = run(["--input", ",".join(files), "--label", "label", "--output", str(output),
                     *runner_flags])
        np.testing.assert_array_equal(table.counts, WeightTable.from_labels(labels).counts)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "Prism" not in logged and "prism" not in logged


def test_local_csv_job_runs_without_importing_tensorflow(tmp_path):
    """Planning, counting and writing a local CSV job need neither TF nor gfile."""
    (tmp_path / "a.csv").write_text("label\ncat\ndog\ncat\n")
    output = tmp_path / "t.json"
    code = (
        "import sys\n"
        "from pipelines import run_class_stats as run\n"
        f"table = run(['--format', 'csv', '--input', {str(tmp_path / 'a.csv')!r}, '--output', {str(output)!r}])\n"
        "assert table.class_names == ('cat', 'dog') and table.counts.tolist() == [2.0, 1.0]\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.exists()


@pytest.mark.parametrize("flags, expected", [
    ([], os.cpu_count() or 1),
    (["--runner", "DirectRunner", "--direct_num_workers=2", "--direct_running_mode=multi_processing"],
     max(1, (os.cpu_count() or 1) // 2)),
    (["--runner", "PortableRunner", "--job_endpoint=localhost:1"], 1),
])
def test_read_threads_default_to_cores_per_local_worker(flags, expected):
    assert auto_read_threads(PipelineOptions(flags)) == expected


def test_read_threads_one_and_many_give_the_same_table(tmp_path):
    labels = np.arange(60) % 7
    files = write_tfrecords(tmp_path / "d", [example(label=int(y)) for y in labels], shards=4)
    tables = [
        run(["--input", ",".join(files), "--output", str(tmp_path / f"t{n}.json"), "--read_threads", str(n)])
        for n in (1, 3)
    ]
    assert tables[0].content_equal(tables[1])
    np.testing.assert_array_equal(tables[1].counts, WeightTable.from_labels(labels).counts)
    with pytest.raises(ValueError, match=r"`read_threads`. Expected a positive int"):
        run(["--input", ",".join(files), "--output", str(tmp_path / "bad.json"), "--read_threads", "-2"])
    assert not (tmp_path / "bad.json").exists()
