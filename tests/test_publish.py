"""Publishing an output directory: staged, renamed into place, marker then manifest last, the old output removed
only then, and only if the manifest says it is ours and unchanged."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from balance.errors import InvalidArgumentError
from pipelines.io.publish import MANIFEST_NAME, publish, staging_dir


def staged(output, files: dict[str, str]) -> str:
    staging = staging_dir(str(output))
    os.makedirs(staging)
    for name, text in files.items():
        with open(os.path.join(staging, name), "w") as handle:
            handle.write(text)
    return staging


def write_marker(out: str) -> None:
    with open(os.path.join(out, "index.json"), "w") as handle:
        handle.write("{}")


def test_publish_replaces_the_output_and_leaves_no_hidden_directory(tmp_path):
    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)
    publish(staged(out, {"b.json": "2"}), str(out), overwrite=True, complete=write_marker)
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "b.json", "index.json"]
    assert os.listdir(tmp_path) == ["out"]


def test_the_manifest_lists_every_file_written_and_the_version(tmp_path):
    import json

    import balance

    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["files"] == ["a.json", "index.json"] and manifest["tool_version"] == balance.__version__


@pytest.mark.parametrize("change, named", [
    (lambda out: (out / "notes.txt").write_text("mine"), "notes.txt"),  # a foreign file beside ours
    (lambda out: (out / MANIFEST_NAME).unlink(), "a.json"),  # no manifest: not ours
    (lambda out: (out / "a.json").unlink(), "a.json"),  # the manifest lists a file that is gone
    (lambda out: (out / MANIFEST_NAME).write_text('{"format": "x"}'), "not a rebalance manifest"),
])
def test_overwrite_refuses_a_directory_that_is_not_ours_unchanged(tmp_path, change, named):
    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)
    change(out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(InvalidArgumentError, match=f"written by rebalance.*{named}"):
        publish(staged(out, {"b.json": "2"}), str(out), overwrite=True, complete=write_marker)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert os.listdir(tmp_path) == ["out"]


def test_a_non_empty_output_is_refused_without_overwrite_and_kept(tmp_path):
    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)
    with pytest.raises(InvalidArgumentError, match="new or empty directory"):
        publish(staged(out, {"b.json": "2"}), str(out), overwrite=False, complete=write_marker)
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "a.json", "index.json"]
    assert os.listdir(tmp_path) == ["out"]  # the staging directory is removed


def test_a_failed_marker_puts_the_previous_output_back(tmp_path):
    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)

    def fail(_out):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        publish(staged(out, {"b.json": "2"}), str(out), overwrite=True, complete=fail)
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "a.json", "index.json"]
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_removal_of_the_old_output_is_reported(tmp_path, monkeypatch, caplog):
    out = tmp_path / "out"
    publish(staged(out, {"a.json": "1"}), str(out), overwrite=False, complete=write_marker)
    real = shutil.rmtree

    def refuse_replaced(path, *args, **kwargs):
        if ".replaced-" in str(path):
            raise PermissionError(f"cannot remove {path}")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", refuse_replaced)
    with caplog.at_level(logging.WARNING, logger="pipelines.io.publish"):
        publish(staged(out, {"b.json": "2"}), str(out), overwrite=True, complete=write_marker)
    assert sorted(os.listdir(out)) == [MANIFEST_NAME, "b.json", "index.json"]  # the new output is complete
    left = [n for n in os.listdir(tmp_path) if ".replaced-" in n]
    assert len(left) == 1 and sorted(os.listdir(tmp_path / left[0])) == [MANIFEST_NAME, "a.json", "index.json"]
    assert "could not be removed" in caplog.text and left[0] in caplog.text


def test_a_file_is_never_replaced(tmp_path):
    out = tmp_path / "out"
    out.write_text("mine")
    with pytest.raises(InvalidArgumentError, match="not a file"):
        publish(staged(out, {"b.json": "2"}), str(out), overwrite=True, complete=write_marker)
    assert out.read_text() == "mine" and os.listdir(tmp_path) == ["out"]
