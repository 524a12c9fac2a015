"""Every code block of the README, docs/ and examples/README.md runs as written.

A fenced block is code when its info string starts with ``python``, ``bash`` or
``sh``; other blocks (no language, ``text``, ``json``) show output or formulas.
A code block that cannot run here (cloud runners, a cluster, a benchmark,
``make``) says so in its info string: ```` ```sh no-run ````. Each page runs in
a fresh working directory, its blocks in order: the Python blocks in one
namespace, shell commands one line at a time, ``rebalance ...`` and
``python -m pipelines.MODULE ...`` (or ``rebalance_demo.MODULE``) in process (they are the same entry points
the console script calls), so a page makes its own data, as a reader would.
"""

from __future__ import annotations

import importlib
import re
import shlex
import warnings
from pathlib import Path
from typing import NamedTuple

import pytest

from pipelines.cli import main as rebalance

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")), "examples/README.md"]
CODE = {"python", "bash", "sh"}
FENCE = re.compile(r"^```(.*)$")
# The first words of a line that is a command or Python, not output (`rebalance stats: error: ...` is output).
LOOKS_LIKE_CODE = re.compile(r"^(rebalance (?!\w+: error: )|python |import |from \w+ import |make )")


class Block(NamedTuple):
    page: str
    line: int
    language: str
    no_run: bool
    code: str


def blocks_of(page: str) -> list[Block]:
    """The fenced blocks of a Markdown page, in order."""
    lines = (ROOT / page).read_text().splitlines()
    found, start, info = [], None, ""
    for number, line in enumerate(lines, 1):
        match = FENCE.match(line)
        if not match:
            continue
        if start is None:
            start, info = number, match[1].split()
        else:
            found.append(Block(page, start, info[0] if info else "", "no-run" in info[1:],
                               "\n".join(lines[start:number - 1])))
            start = None
    assert start is None, f"{page}:{start}: a code fence is not closed"
    return found


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block: continuation lines joined, comments dropped."""
    text = code.replace("\\\n", " ")
    return [shlex.split(line, comments=True) for line in text.splitlines() if shlex.split(line, comments=True)]


def run_command(argv: list[str], where: str) -> None:
    if argv[0] == "rebalance":
        assert rebalance(argv[1:]) == 0, f"{where}: {shlex.join(argv)} failed"
    elif argv[:2] == ["python", "-m"] and argv[2].startswith(("pipelines.", "rebalance_demo.")):
        assert importlib.import_module(argv[2]).main(argv[3:]) == 0, f"{where}: {shlex.join(argv)} failed"
    else:
        pytest.fail(f"{where}: the test cannot run {shlex.join(argv)!r}; mark its block `no-run` if it "
                    "cannot run here")


@pytest.mark.parametrize("page", PAGES)
def test_every_code_block_runs_as_written(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Keras cuts training short, with only this warning, when an epoch yields fewer batches than the first.
    warnings.filterwarnings("error", message="Your input ran out of data")
    monkeypatch.setenv("REBALANCE_PROGRESS_SECONDS", "600")  # no progress lines mid-job
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks_of(page):
        where = f"{page}:{block.line}"
        if block.language not in CODE:
            # An output block must not hide a command or code that the test would then skip.
            first = block.code.lstrip().splitlines()[0] if block.code.strip() else ""
            assert not LOOKS_LIKE_CODE.match(first), f"{where}: code in a block without a language"
            continue
        if block.no_run:
            continue
        if block.language == "python":
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102 (the docs' own code)
        else:
            for argv in shell_commands(block.code):
                run_command(argv, where)
        ran += 1
    no_run = [b for b in blocks_of(page) if b.language in CODE and b.no_run]
    assert ran + len(no_run) == sum(b.language in CODE for b in blocks_of(page))


def test_no_run_blocks_are_few_and_named():
    """Blocks skipped here are the ones that need a cluster, a cloud account, a benchmark's time or make."""
    skipped = [b for page in PAGES for b in blocks_of(page) if b.language in CODE and b.no_run]
    for block in skipped:
        assert re.search(r"make |bench/|gs://|HOST|SCHEDULER|dask_kubernetes|dask_jobqueue|helm|build|"
                         r"PortableRunner|FlinkRunner|SparkRunner|multi_processing|dask_workers|pip install|TF_CONFIG|MultiWorkerMirroredStrategy|# about \d+ min", block.code), (
            f"{block.page}:{block.line} is marked no-run but needs nothing this machine lacks")
    ran = sum(b.language in CODE and not b.no_run for page in PAGES for b in blocks_of(page))
    assert ran > len(skipped)
