"""`rebalance stats --help` and `rebalance sample --help`: usage, flag groups, examples that parse, the Beam note."""

from __future__ import annotations

import shlex

import pytest

from pipelines.jobs import sample as sample_job
from pipelines.jobs import stats as stats_job
from pipelines.jobs.flags import parse_flags
from pipelines.cli import main

JOBS = {"stats": stats_job, "sample": sample_job}
GROUPS = {
    "stats": ["input:", "labels:", "output:", "performance:", "Dask (with --runner dask):"],
    "sample": ["input:", "labels:", "output:", "performance:", "Dask (with --runner dask):", "sampling:"],
}


def help_of(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


def examples_of(text: str) -> list[list[str]]:
    """The epilog's example command lines, continuation lines joined, split as a shell would."""
    block = text.split("\nexamples:\n", 1)[1]
    commands = " ".join(line.strip() for line in block.splitlines()).replace("\\ ", "").split("rebalance ")
    return [shlex.split(c) for c in commands if c.strip()]


@pytest.mark.parametrize("command", JOBS)
def test_help_shows_usage_groups_examples_and_the_beam_note(capsys, command):
    text = help_of(capsys, command)
    assert text.startswith(f"usage: rebalance {command} --input PATTERN --output ")
    assert "python -m" not in text
    lines = text.splitlines()
    starts = [lines.index(title) for title in GROUPS[command]]  # each group is a section of its own
    assert starts == sorted(starts)
    # Each flag is listed once, under its group.
    assert text.count("\n  --input INPUT") == 1 and text.count("\n  --output OUTPUT") == 1
    assert lines.index("  --batch_size BATCH_SIZE") > lines.index("performance:")
    assert "Beam's pipeline options are accepted too" in text
    assert "--runner" in text and "--direct_num_workers" in text and '"Runners" in docs/pipelines.md' in text
    examples = examples_of(text)
    assert len(examples) == 3 and all(e[0] == command for e in examples)


@pytest.mark.parametrize("command", JOBS)
def test_every_example_in_the_help_parses(capsys, command):
    for example in examples_of(help_of(capsys, command)):
        parser = JOBS[command].build_parser()
        args, beam = parse_flags(example[1:], parser)
        assert args.input and args.output
        assert beam == example[example.index("--runner"):] if "--runner" in example else beam == []


def test_both_helps_name_quiet_and_sample_help_hides_stats_only_flags(capsys):
    stats, sample = help_of(capsys, "stats"), help_of(capsys, "sample")
    assert "--quiet" in stats and "--scheme" in stats
    assert "--quiet" in sample and "--scheme" not in sample


def test_sample_refuses_an_unknown_flag_before_reading(tmp_path):
    with pytest.raises(ValueError, match="Unknown flag --seeed: did you mean --seed?"):
        sample_job.run(["--input", str(tmp_path / "none-*"), "--output", str(tmp_path / "out"),
                        "--max_ratio", "2", "--seeed", "3"])
    assert not (tmp_path / "out").exists()
