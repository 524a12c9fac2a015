"""`pip install tf-rebalance` without the [plot] extra, then `rebalance demo`: the demo runs to the end,
names the pictures it skipped and how to get them. With matplotlib it draws them; both print only the
demo's own lines."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REBALANCE = Path(sys.executable).parent / "rebalance"
# Imported at start-up from PYTHONPATH: matplotlib cannot be imported, as when it is not installed.
NO_MATPLOTLIB = '''\
import sys


class NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "matplotlib":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)


sys.meta_path.insert(0, NoMatplotlib())
'''
PICTURES = ("table.png", "results.png", "recall_by_class.png")


def run(args: list[str], cwd: Path, *, matplotlib: bool) -> subprocess.CompletedProcess:
    path = [str(ROOT)]
    if not matplotlib:
        (cwd / "site").mkdir(exist_ok=True)
        (cwd / "site" / "sitecustomize.py").write_text(NO_MATPLOTLIB)
        path.insert(0, str(cwd / "site"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join(path)
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.parametrize("matplotlib", [False, True], ids=["without matplotlib", "with matplotlib"])
def test_demo_runs_to_the_end_and_names_the_pictures_it_skipped(tmp_path, matplotlib):
    probe = run([sys.executable, "-c", "import matplotlib"], tmp_path, matplotlib=matplotlib)
    assert (probe.returncode == 0) == matplotlib  # the environment is the one the test means

    done = run([str(REBALANCE), "demo", "--out", "demo", "--largest", "300", "--epochs", "1", "--quiet"], tmp_path,
               matplotlib=matplotlib)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert done.stderr == "Counting 'label' in one pass over 4 shard(s) of demo/data/train-*.tfrecord\n"
    assert "[4/4] Results on the held-out test set" in done.stdout
    last = done.stdout.splitlines()[-2:] if not matplotlib else done.stdout.splitlines()[-1:]
    if matplotlib:
        assert re.fullmatch(r"Wrote demo/table\.json, table\.png, results\.json, results\.png, "
                            r"recall_by_class\.png in \d+s", last[0]), done.stdout
    else:
        assert re.fullmatch(r"Wrote demo/table\.json, results\.json in \d+s", last[0]), done.stdout
        assert last[1] == ("Skipped table.png, results.png, recall_by_class.png: Plotting needs matplotlib. "
                           "Install the plot extra: pip install 'tf-rebalance[plot]'")
    out = tmp_path / "demo"
    assert (out / "table.json").is_file() and (out / "results.json").is_file()
    assert [(out / name).is_file() for name in PICTURES] == [matplotlib] * 3
