"""Progress lines of `rebalance stats` and `rebalance sample` on stderr: shards done of total, records,
rate, elapsed; `--quiet`."""

from __future__ import annotations

import re

import pytest

from pipelines import run_class_stats, run_sample
from pipelines.progress import INTERVAL_ENV, Progress, note_shard, read_progress
from tests._pipelines_data import write_csv

LINE = re.compile(r"^progress: (\d+)/(\d+) shards, ([\d,]+) records, [\d,]+ records/s, \d+ s elapsed$")
FILES, ROWS = 4, 250


@pytest.fixture
def csv_files(tmp_path):
    for i in range(FILES):
        write_csv(tmp_path / f"part-{i}.csv", {"label": [(i + r) % 3 for r in range(ROWS)]})
    return str(tmp_path / "part-*.csv")


def progress_lines(err: str) -> list[tuple[int, int, int]]:
    found = [LINE.match(line) for line in err.splitlines() if line.startswith("progress:")]
    assert all(found), err
    return [(int(m[1]), int(m[2]), int(m[3].replace(",", ""))) for m in found]


def test_stats_job_prints_progress_with_shard_total_and_final_record_count(tmp_path, csv_files, capsys, monkeypatch):
    # Worker processes (multi-process DirectRunner, local Dask): see test_pipelines_runners and _dask.
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    run_class_stats(["--input", csv_files, "--format", "csv", "--output", str(tmp_path / "t.json")])
    lines = progress_lines(capsys.readouterr().err)
    assert len(lines) >= 2  # lines while the job runs, then the last one
    assert all(total == FILES for _, total, _ in lines)
    assert lines[-1] == (FILES, FILES, FILES * ROWS)
    done = [shards for shards, _, _ in lines]
    assert done == sorted(done)
    assert not list(tmp_path.glob("rebalance-progress-*"))


def test_quiet_prints_no_progress(tmp_path, csv_files, capsys, monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    table = run_class_stats(["--input", csv_files, "--format", "csv", "--output", str(tmp_path / "t.json"),
                             "--quiet"])
    captured = capsys.readouterr()
    assert "progress" not in captured.err and table.num_examples == FILES * ROWS


def test_sample_job_prints_progress_and_quiet_silences_it(tmp_path, csv_files, capsys, monkeypatch):
    monkeypatch.setenv(INTERVAL_ENV, "0.05")
    flags = ["--input", csv_files, "--format", "csv", "--max_ratio", "1"]
    run_sample([*flags, "--output", str(tmp_path / "s1"), "--quiet"])  # no --table: counts, then samples
    assert "progress" not in capsys.readouterr().err
    run_sample([*flags, "--output", str(tmp_path / "s2"), "--table", str(tmp_path / "s1" / "_source_table.json")])
    lines = progress_lines(capsys.readouterr().err)
    assert len(lines) >= 2 and all(total == FILES for _, total, _ in lines)
    assert lines[-1] == (FILES, FILES, FILES * ROWS)  # every record read, kept or not
    assert [shards for shards, _, _ in lines] == sorted(shards for shards, _, _ in lines)


def test_a_remote_runner_gets_one_line_pointing_to_its_ui(capsys):
    progress = Progress(local=False, runner="DataflowRunner")
    assert progress.directory is None
    with progress.watch(10):
        pass
    assert capsys.readouterr().err == (
        "progress: not shown on DataflowRunner; see the job's page in the Google Cloud console (Dataflow > Jobs)\n")


def test_the_side_channel_never_fails_and_skips_a_half_written_line(tmp_path):
    note_shard(str(tmp_path / "missing"), 5)  # no directory: nothing happens, nothing raises
    note_shard(str(tmp_path), 7)
    note_shard(str(tmp_path), 3)
    (tmp_path / "other.txt").write_text("11\n4")  # another process, mid-append
    assert read_progress(str(tmp_path)) == (3, 21)
