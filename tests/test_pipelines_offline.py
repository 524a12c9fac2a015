"""The job runs offline: local runs never reach for Beam's Prism binary download."""

import logging

import numpy as np
from _pipelines_data import example, write_tfrecords

from balance import WeightTable
from pipelines.class_stats import run


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
