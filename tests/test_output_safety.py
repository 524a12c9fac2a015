"""Nothing is lost that the user did not ask to lose: ``--overwrite`` replaces only a directory that
rebalance wrote (its manifest lists exactly the files it holds), an output never holds or is an input,
and a job failing half-way leaves the old output and the user's files as they were.

Every case runs the ``rebalance`` command line (``pipelines.cli.main``)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from _pipelines_data import example, write_csv, write_tfrecords

from balance import WeightTable
from pipelines import cli
from pipelines.io.publish import MANIFEST_NAME

LABELS = (np.arange(300) % 3).tolist()


def snapshot(root) -> dict[str, bytes]:
    """Every file under ``root`` (hidden ones too), by relative path, with its bytes."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, root)] = handle.read()
    return found


@pytest.fixture
def project(tmp_path):
    """A user's project: data and notes, side by side."""
    root = tmp_path / "proj"
    write_csv(root / "data.csv", {"y": LABELS, "b": [v % 2 for v in LABELS]})
    (root / "notes.txt").write_text("my notes")
    return root


def rebalance(*argv: str) -> int:
    return cli.main([str(a) for a in argv])


def sample(data, output, *flags):
    return rebalance("sample", "--input", data, "--label", "y", "--max_ratio", "1", "--output", output,
                     "--quiet", *flags)


def stats2(data, output, *flags):
    return rebalance("stats", "--input", data, "--label", "y", "--label", "b", "--output", output, "--quiet",
                     *flags)


JOBS = {"sample": sample, "stats": stats2}


@pytest.mark.parametrize("job", JOBS)
def test_an_output_that_holds_the_input_is_refused_and_nothing_is_lost(project, job, capsys):
    before = snapshot(project)
    assert JOBS[job](project / "data.csv", project, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "`output`. Expected a directory written by rebalance" in err and "'data.csv'" in err
    assert snapshot(project) == before
    assert os.listdir(project.parent) == ["proj"]  # no staging directory


@pytest.mark.parametrize("job", JOBS)
def test_our_own_output_is_not_replaced_while_it_is_the_input(project, job, tmp_path, capsys):
    out = tmp_path / "out"
    assert sample(project / "data.csv", out) == 0  # rebalance's own directory, read back as the input
    before = snapshot(out)
    assert JOBS[job](out, out, "--overwrite", "--format", "csv") == 1
    err = capsys.readouterr().err
    assert "`output`. Expected a directory that holds none of the inputs" in err and "part-00000-of" in err
    assert snapshot(out) == before


@pytest.mark.parametrize("job", JOBS)
def test_overwrite_refuses_a_directory_with_the_users_files_before_reading(project, job, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    (out / "results.csv").write_text("a,b\n")
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"PAR1 not data at all \x00\xff")  # reading it would fail with another message
    assert JOBS[job](broken, out, "--overwrite", "--format", "csv") == 1
    err = capsys.readouterr().err
    assert "`output`. Expected a directory written by rebalance" in err
    assert str(out) in err and "'notes.txt'" in err and "'results.csv'" in err and MANIFEST_NAME in err
    assert snapshot(out) == {"notes.txt": b"mine", "results.csv": b"a,b\n"}


@pytest.mark.parametrize("job", JOBS)
def test_overwrite_replaces_our_own_output_and_refuses_it_once_a_file_is_added(project, job, tmp_path, capsys):
    out = tmp_path / "out"
    assert JOBS[job](project / "data.csv", out) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert sorted(manifest["files"]) == sorted(n for n in os.listdir(out) if n != MANIFEST_NAME)
    assert JOBS[job](project / "data.csv", out, "--overwrite") == 0  # ours, unchanged: replaced
    (out / "notes.txt").write_text("mine")
    before = snapshot(out)
    assert JOBS[job](project / "data.csv", out, "--overwrite") == 1
    assert "files rebalance did not write: 'notes.txt'" in capsys.readouterr().err
    assert snapshot(out) == before
    assert sorted(os.listdir(tmp_path)) == ["out", "proj"]


def test_a_table_output_that_is_an_input_is_refused(project, capsys):
    data = project / "data.csv"
    before = snapshot(project)
    assert rebalance("stats", "--input", data, "--label", "y", "--output", data, "--quiet") == 1
    err = capsys.readouterr().err
    assert "`output`. Expected a path that is not one of the inputs" in err and "data.csv" in err
    assert snapshot(project) == before


def test_a_sample_output_that_holds_the_table_is_refused(project, tmp_path, capsys):
    out = tmp_path / "out"
    assert sample(project / "data.csv", out) == 0
    table = out / "_source_table.json"  # counted by the first run: the user now passes it as --table
    assert table.exists()
    before = snapshot(out)
    assert sample(project / "data.csv", out, "--overwrite", "--table", table) == 1
    assert "holds the input" in capsys.readouterr().err and snapshot(out) == before


def _bad_copy(project, tmp_path):
    """The same data with one label that fails the job once records flow (a fractional class id)."""
    bad = tmp_path / "bad"
    write_csv(bad / "data.csv", {"y": [*LABELS[:-1], 1.5], "b": [v % 2 for v in LABELS]})
    return bad / "data.csv"


@pytest.mark.parametrize("job", JOBS)
def test_a_job_failing_half_way_leaves_the_old_output_and_the_users_files(project, job, tmp_path, capsys):
    out = project / "out"  # the output lives in the user's project, beside their files
    assert JOBS[job](project / "data.csv", out) == 0
    before = snapshot(project)
    assert JOBS[job](_bad_copy(project, tmp_path), out, "--overwrite") == 1
    assert "1.5" in capsys.readouterr().err  # it failed reading the data, after staging began
    assert snapshot(project) == before  # the old output, its manifest and the notes: all as they were
    assert sorted(os.listdir(project)) == ["data.csv", "notes.txt", "out"]  # no staging directory left


def test_an_empty_directory_is_a_fine_output(project, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    assert sample(project / "data.csv", out) == 0
    assert (out / "_table.json").exists() and (out / MANIFEST_NAME).exists()


def test_a_sample_failing_once_its_shards_are_staged_leaves_everything_as_it_was(project, tmp_path, capsys):
    """The shards are written into the staging directory; the last step then finds that --table counts
    other data and publishes nothing: the old sample, its manifest and the user's files stay."""
    out = project / "out"
    assert sample(project / "data.csv", out) == 0
    other = tmp_path / "other"
    write_csv(other / "data.csv", {"y": [0, 1, 2] * 90 + [0] * 30})  # the same classes, other counts
    assert rebalance("stats", "--input", other / "data.csv", "--label", "y", "--output", tmp_path / "other.json",
                     "--quiet") == 0
    before = snapshot(project)
    assert sample(project / "data.csv", out, "--overwrite", "--table", tmp_path / "other.json") == 1
    assert "the counts of this input" in capsys.readouterr().err
    assert snapshot(project) == before
    assert sorted(os.listdir(project)) == ["data.csv", "notes.txt", "out"]


@pytest.mark.parametrize("command", ["stats", "merge"])
def test_a_table_output_that_is_a_users_file_is_refused_and_kept(tmp_path, capsys, command):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    if command == "stats":
        data = write_tfrecords(tmp_path / "d", [example(label=i % 3) for i in range(30)], shards=1)
        argv = ["stats", "--input", data[0], "--label", "label", "--output", str(notes), "--quiet"]
    else:
        part = tmp_path / "part.json"
        WeightTable.from_counts([3, 2]).save(str(part))
        argv = ["merge", str(part), "--output", str(notes)]
    assert cli.main(argv) == 1
    assert notes.read_text() == "my notes\n"
    assert f"{str(notes)!r} exists and is not a weight table" in capsys.readouterr().err


def test_a_table_output_that_is_a_table_is_replaced(tmp_path):
    out = tmp_path / "t.json"
    WeightTable.from_counts([1, 1]).save(str(out))
    data = write_tfrecords(tmp_path / "d", [example(label=i % 3) for i in range(30)], shards=1)
    assert cli.main(["stats", "--input", data[0], "--label", "label", "--output", str(out), "--quiet"]) == 0
    assert WeightTable.load(str(out)).counts.tolist() == [10, 10, 10]


@pytest.mark.parametrize("job", JOBS)
def test_a_file_edited_in_our_output_is_refused_and_kept(project, job, tmp_path, capsys):
    out = tmp_path / "out"
    assert JOBS[job](project / "data.csv", out) == 0
    edited = sorted(n for n in os.listdir(out) if n != MANIFEST_NAME)[0]
    with open(out / edited, "a") as handle:
        handle.write("\n")  # the user's edit, under a name the manifest lists
    before = snapshot(out)
    assert JOBS[job](project / "data.csv", out, "--overwrite") == 1
    assert f"files changed since rebalance wrote them: {edited!r}" in capsys.readouterr().err
    assert snapshot(out) == before
