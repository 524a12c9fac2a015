"""What the user's terminal shows: each `rebalance` command, run as written by its console script in a
clean environment (no TF_CPP_MIN_LOG_LEVEL), prints its own lines only, and a failure as one error line,
on every runner; `--verbose` adds the traceback and the log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rebalance_demo.data import make_demo_data

ROOT = Path(__file__).resolve().parent.parent
REBALANCE = Path(sys.executable).parent / "rebalance"  # the console script pip installed
INPUT = "data/train-*.tfrecord"
OTHER_TABLE = ("rebalance sample: error: Invalid value for argument `table`. Expected the counts of this input "
               "(the stats job's table for the same files). Received: table=['other/train-*.tfrecord']. The input "
               "holds other counts (class 0: table 500, input 300); nothing was published. Omit --table to count "
               "the input first")
BAD_LABEL = ("rebalance stats: error: Invalid value for argument `labels`. Expected class ids in [0, 3). Received: "
             "labels=6. Found in file 'data/train-00000-of-00004.tfrecord', record 18")
COUNTING = "Counting 'label' in one pass over 4 shard(s) of data/train-*.tfrecord"
PROGRESS = re.compile(r"progress: 4/4 shards, 745 records, [\d,]+ records/s, \d+ s elapsed")
FAILED_PROGRESS = re.compile(r"progress: 4/4 shards, 0 records, 0 records/s, \d+ s elapsed")
CHECKING = "The table was counted from other files; this pass checks its counts against the input"


def rebalance(*args: str, cwd: Path, check: int | None = 0) -> subprocess.CompletedProcess:
    """``rebalance ARGS`` as a user's shell runs it: no TensorFlow log level set, our code on the path."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "PYTEST_"))}
    env.update(PYTHONPATH=str(ROOT), REBALANCE_PROGRESS_SECONDS="600")  # one progress line, at the end
    done = subprocess.run([str(REBALANCE), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    if check is not None:
        assert done.returncode == check, done.stdout[-2000:] + done.stderr[-4000:]
    return done


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """data/ (745 examples, class 0: 300) and other/ (class 0: 500), with the table of other/."""
    where = tmp_path_factory.mktemp("terminal")
    make_demo_data(str(where / "data"), largest=300, seed=0)
    make_demo_data(str(where / "other"), largest=500, seed=3)
    rebalance("stats", "--input", "other/train-*.tfrecord", "--label", "label", "--output", "other.json",
              "--quiet", cwd=where)
    return where


@pytest.mark.parametrize("args", [["--help"], ["stats", "--help"], ["sample", "--help"], ["show", "--help"],
                                  ["merge", "--help"], ["demo", "--help"]])
def test_help_prints_the_help_only(work, args):
    done = rebalance(*args, cwd=work)
    assert done.stderr == ""
    assert done.stdout.startswith("usage: rebalance")
    if len(args) == 2:
        assert "--verbose" in done.stdout


def test_stats_show_and_merge_print_their_own_lines_only(work):
    stats = rebalance("stats", "--input", INPUT, "--label", "label", "--output", "table.json", cwd=work)
    lines = stats.stderr.splitlines()
    assert lines[0] == COUNTING and PROGRESS.fullmatch(lines[1]) and len(lines) == 2, stats.stderr
    assert stats.stdout.startswith("Wrote table.json\n  examples: 745\n")
    show = rebalance("show", "table.json", cwd=work)
    assert show.stderr == "" and show.stdout.startswith(" class  name           count     share  weight (balanced)")
    merge = rebalance("merge", "table.json", "other.json", "--output", "both.json", cwd=work)
    assert merge.stderr == ""
    assert merge.stdout == ("Wrote both.json: 2 tables, 1987 examples, 10 classes (multiclass, label 'label')\n")


@pytest.mark.parametrize("runner", [["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"],
                                    ["--runner", "dask", "--dask_workers", "2"]], ids=["multi_processing", "dask"])
def test_worker_processes_print_nothing(work, runner):
    done = rebalance("stats", "--input", INPUT, "--label", "label", "--output", f"{runner[1]}.json", *runner,
                     cwd=work)
    lines = done.stderr.splitlines()
    assert lines[0] == COUNTING and PROGRESS.fullmatch(lines[1]) and len(lines) == 2, done.stderr


ERRORS = {
    "another dataset's table": (
        ["sample", "--input", INPUT, "--label", "label", "--table", "other.json", "--max_ratio", "5",
         "--output", "sample"], [CHECKING, OTHER_TABLE]),
    "a bad record": (["stats", "--input", INPUT, "--label", "label", "--num_classes", "3", "--output", "bad.json"],
                     [COUNTING, BAD_LABEL]),
    "a missing file": (
        ["stats", "--input", "data/missing.tfrecord", "--label", "label", "--output", "missing.json"],
        ["rebalance stats: error: Invalid value for argument `input`. Expected a file, directory or glob matching "
         "at least one file. Received: input='data/missing.tfrecord'. Empty input: nothing to count"]),
    "a missing table": (["show", "missing.json"],
                        ["rebalance show: error: Invalid value for argument `path`. Expected an existing weight "
                         "table file. Received: path='missing.json'"]),
    "a table that is not JSON": (["merge", "data/train-00000-of-00004.tfrecord", "--output", "m.json"], None),
    "a bad demo flag": (["demo", "--out", "demo", "--epochs", "0"],
                        ["rebalance demo: error: Invalid value for argument `epochs`. Expected an int >= 1. "
                         "Received: epochs=0"]),
}
DASK = ["--runner", "dask", "--dask_workers", "2"]


@pytest.mark.parametrize("case, runner", [
    *((case, []) for case in ERRORS),
    ("another dataset's table", DASK), ("a bad record", DASK),
], ids=lambda x: " ".join(x) if isinstance(x, list) else x)
def test_a_failure_is_one_error_line(work, case, runner):
    args, expected = ERRORS[case]
    done = rebalance(*args, *runner, cwd=work, check=1)
    # The job's own progress line, when its runner finished reading before the error was raised.
    lines = [line for line in done.stderr.splitlines() if not FAILED_PROGRESS.fullmatch(line)]
    if expected is None:  # the message names the file and what was expected; one line
        assert len(lines) == 1 and lines[0].startswith("rebalance merge: error: ") and "train-00000" in lines[0]
    else:
        assert lines == expected, done.stderr
    assert not (work / "sample").exists() and not (work / "bad.json").exists()


def test_verbose_shows_the_traceback_and_the_log_above_the_same_line(work):
    args, expected = ERRORS["a bad record"]
    done = rebalance(*args, "--verbose", cwd=work, check=1)
    assert "Traceback (most recent call last):" in done.stderr
    assert "INFO:apache_beam" in done.stderr  # Beam's own log
    assert done.stderr.splitlines()[-1] == expected[-1]


def test_a_flag_argparse_cannot_parse_exits_2_with_usage_and_one_line(work):
    done = rebalance("stats", "--input", INPUT, "--output", "t.json", "--num_classes", "x", cwd=work, check=2)
    usage, error = done.stderr.strip().split("\n", 1)[0], done.stderr.strip().splitlines()[-1]
    assert usage.startswith("usage: rebalance stats --input PATTERN --output TABLE.json")
    assert error == "rebalance stats: error: argument --num_classes: invalid int value: 'x'"


def test_the_readme_quickstart_runs_as_written_in_the_activated_venv(tmp_path):
    """The README says to `source .venv/bin/activate`, which puts the venv's bin first on PATH; the
    Quickstart's commands then run as written, each printing only its own lines."""
    from test_docs_code import blocks_of, shell_commands  # noqa: PLC0415

    blocks = blocks_of("README.md")
    first = next(i for i, b in enumerate(blocks) if b.language == "bash" and "rebalance_demo.data data" in b.code)
    assert "source .venv/bin/activate" in blocks[first - 1].code
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "PYTEST_"))}
    env.update(PATH=os.pathsep.join([str(REBALANCE.parent), env.get("PATH", "")]),
               VIRTUAL_ENV=str(REBALANCE.parent.parent), PYTHONPATH=str(ROOT), REBALANCE_PROGRESS_SECONDS="600")
    own = re.compile(r"Counting 'label' in one pass over 4 shard\(s\) of data/train-\*\.tfrecord|"
                     r"progress: 4/4 shards, 4,964 records, [\d,]+ records/s, \d+ s elapsed")
    commands = shell_commands(blocks[first].code)
    assert [argv[:2] for argv in commands] == [["python", "-m"], ["rebalance", "stats"], ["rebalance", "show"]]
    for argv in commands:
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        assert all(own.fullmatch(line) for line in done.stderr.splitlines()), done.stderr
        assert done.stdout
    assert (tmp_path / "table.json").is_file()
