"""Bad input on the command line: `rebalance stats`, `rebalance show`, `rebalance demo`.

A flag nothing knows fails before any data is read, naming it and the closest
known flag; Beam's own options keep working."""

from __future__ import annotations

import numpy as np
import pytest

from balance import WeightTable
from pipelines.jobs.flags import parse_flags
from pipelines.jobs.stats import build_parser
from pipelines.cli import main

REQUIRED = ["--input", "data.tfrecord", "--output", "t.json"]


def error_of(capsys, argv) -> str:
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


# ------------------------------------------------------------------ stats
@pytest.mark.parametrize("flag, value, suggestion", [
    ("--labell", "y", "--label"),
    ("--lab", "y", "--label"),  # no abbreviations: --lab is not --label
    ("--num_class", "3", "--num_classes"),
    ("--runer", "DirectRunner", "--runner"),
    ("--direct_num_worker", "2", "--direct_num_workers"),
    ("--temp_locaton", "/tmp", "--temp_location"),
])
def test_stats_unknown_flag_fails_before_reading_and_suggests(tmp_path, capsys, flag, value, suggestion):
    output = tmp_path / "t.json"
    # The input matches nothing: reading it would fail differently, so the flag is checked first.
    err = error_of(capsys, ["stats", "--input", str(tmp_path / "none-*"), "--output", str(output), flag, value])
    assert f"Received: flags='{flag}'. Unknown flag {flag}: did you mean {suggestion}?" in err
    assert not output.exists()


def test_stats_flag_with_equals_and_stray_argument(capsys):
    err = error_of(capsys, ["stats", *REQUIRED, "--labell=y"])
    assert "Unknown flag --labell: did you mean --label?" in err
    err = error_of(capsys, ["stats", "data.tfrecord", *REQUIRED])
    assert "Received: flags='data.tfrecord'. Unexpected argument 'data.tfrecord'; inputs are passed with --input" in err


def test_beam_options_keep_working():
    beam = ["--runner", "DirectRunner", "--project", "p", "--temp_location", "/tmp/x", "--direct_num_workers", "2",
            "--direct_running_mode=multi_processing", "--environment_type", "LOOPBACK", "--flink_master", "h:8081",
            "--dask_client_address", "tcp://h:8786", "--experiments", "a", "--experiments=b", "--save_main_session"]
    args, passed = parse_flags([*REQUIRED, "--label", "y", *beam], build_parser())
    assert args.label == ["y"] and passed == beam


def test_beam_option_with_a_bad_value_names_it(capsys):
    err = error_of(capsys, ["stats", *REQUIRED, "--direct_num_workers", "two"])
    assert "argument --direct_num_workers: invalid int value: 'two'" in err


@pytest.mark.parametrize("flags, message", [
    (["--num_classes", "x"], "argument --num_classes: invalid int value: 'x'"),
    (["--format", "xml"], "argument --format: invalid choice: 'xml'"),
    (["--max_bad_fraction", "lots"], "argument --max_bad_fraction: invalid float value: 'lots'"),
    (["--batch_size", "1.5"], "argument --batch_size: invalid int value: '1.5'"),
])
def test_stats_flag_of_the_wrong_type_exits_2_naming_it(capsys, flags, message):
    with pytest.raises(SystemExit) as exit_:
        main(["stats", *REQUIRED, *flags])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_stats_without_output_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["stats", "--input", "data.tfrecord"])
    assert exit_.value.code == 2 and "the following arguments are required: --output" in capsys.readouterr().err


# ------------------------------------------------------------------- show
@pytest.fixture
def table_path(tmp_path):
    return WeightTable.from_counts({"cat": 500, "dog": 120, "eel": 3}).save(str(tmp_path / "table.json"))


@pytest.fixture
def multilabel_path(tmp_path):
    table = WeightTable.from_labels(np.array([[1, 0], [0, 1], [0, 1]]), task="multilabel")
    return table.save(str(tmp_path / "ml.json"))


@pytest.mark.parametrize("flags, message", [
    (["--schem", "inverse"], "Received: flags='--schem'. Unknown flag --schem: did you mean --scheme?"),
    (["--max_row", "3"], "Unknown flag --max_row: did you mean --max_rows?"),
    (["--max_rows", "0"], "`max_rows`. Expected an int >= 2 (half the rows list the largest classes, half the "
     "smallest). Received: max_rows=0"),
    (["--plot", "chart.jpg"], "`plot`. Expected a path ending in .png. Received: plot='chart.jpg'"),
    (["--param", "beta=nan"], "`param`. Expected NAME=NUMBER with a finite number, e.g. beta=0.999. Received: "
     "param='beta=nan'"),
    (["--scheme", "effective_number", "--param", "beta=0.9", "--param", "beta=0.99"],
     "`param`. Expected each name once (beta is given twice). Received: param='beta=0.99'"),
    (["--normalize", "sum"], "`normalize`. Expected one of"),
    (["--zero_count", "skip"], "`zero_count`. Expected one of"),
    (["--scheme", "effective_number", "--param", "beta=2"], "`beta`. Expected a number in [0, 1). Received: beta=2"),
])
def test_show_refuses_bad_flags_before_printing(capsys, table_path, flags, message):
    assert message in error_of(capsys, ["show", table_path, *flags])


@pytest.mark.parametrize("flags, name", [
    (["--scheme", "inverse"], "scheme"), (["--normalize", "sum_to_one"], "normalize"),
    (["--param", "beta=0.9"], "param"),
])
def test_show_refuses_scheme_options_for_a_multilabel_table(capsys, multilabel_path, flags, name):
    err = error_of(capsys, ["show", multilabel_path, *flags])
    assert f"`{name}`. Expected no value for a multilabel table (it shows pos_weight per label)" in err


def test_show_missing_table_and_bad_scheme(capsys, tmp_path):
    err = error_of(capsys, ["show", str(tmp_path / "nope.json")])
    assert f"`path`. Expected an existing weight table file. Received: path='{tmp_path / 'nope.json'}'" in err
    with pytest.raises(SystemExit) as exit_:
        main(["show", str(tmp_path / "nope.json"), "--scheme", "balancd"])
    assert exit_.value.code == 2 and "argument --scheme: invalid choice: 'balancd'" in capsys.readouterr().err


# ---------------------------------------------------------- demo, commands
@pytest.mark.parametrize("flags, message", [
    (["--epoch", "2"], "Unknown flag --epoch: did you mean --epochs?"),
    (["--epochs", "0"], "`epochs`. Expected an int >= 1. Received: epochs=0"),
    (["--largest", "10"], "`largest`. Expected an int >= 100 (the rarest class has 1/100 of it). Received: largest=10"),
])
def test_demo_refuses_bad_flags_before_generating(capsys, tmp_path, flags, message):
    assert message in error_of(capsys, ["demo", "--out", str(tmp_path / "demo"), *flags])
    assert not (tmp_path / "demo").exists()


def test_unknown_command_suggests_the_closest(capsys):
    assert main(["stat", "--input", "x"]) == 2
    assert "unknown command 'stat'. Did you mean 'stats'?" in capsys.readouterr().err
