"""Local runs stay offline and light: no Prism download, no TensorFlow for CSV jobs."""

import logging
import os
import subprocess
import sys

import numpy as np
from _pipelines_data import example, write_tfrecords

from balance import WeightTable
from pipelines.class_stats import run

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
        "from pipelines.class_stats import run\n"
        f"table = run(['--format', 'csv', '--input', {str(tmp_path / 'a.csv')!r}, '--output', {str(output)!r}])\n"
        "assert table.class_names == ('cat', 'dog') and table.counts.tolist() == [2.0, 1.0]\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert output.exists()
