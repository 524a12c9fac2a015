"""`rebalance show`: the text table, the PNG plot, and its errors."""

import os
import subprocess
import sys

import numpy as np
import pytest

from balance import WeightTable
from pipelines.cli import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def table_path(tmp_path):
    table = WeightTable.from_counts({"cat": 500, "dog": 120, "eel": 3})
    return table.save(str(tmp_path / "table.json"))


def test_show_prints_counts_shares_weights_and_summary(table_path, capsys):
    assert main(["show", table_path, "--scheme", "inverse", "--normalize", "sum_to_one"]) == 0
    out = capsys.readouterr().out
    assert "weight (inverse)" in out
    eel = next(line for line in out.splitlines() if " eel " in line)
    assert eel.split()[2:4] == ["3", "0.48%"]
    expected = (1 / 3) / (1 / 500 + 1 / 120 + 1 / 3)
    assert float(eel.split()[4]) == pytest.approx(expected, rel=1e-5)
    assert "examples: 623" in out and "imbalance ratio (largest / smallest non-empty): 166.7" in out


def test_show_passes_scheme_parameters(table_path, capsys):
    assert main(["show", table_path, "--scheme", "effective_number", "--param", "beta=0.5"]) == 0
    eel = next(line for line in capsys.readouterr().out.splitlines() if " eel " in line)
    raw = [(1 - 0.5) / (1 - 0.5**n) for n in (500, 120, 3)]
    assert float(eel.split()[4]) == pytest.approx(3 * raw[2] / sum(raw), rel=1e-5)
    assert main(["show", table_path, "--param", "beta"]) == 1
    assert "NAME=NUMBER" in capsys.readouterr().err
    assert main(["show", table_path, "--param", "gamma=2"]) == 1  # not a parameter of 'balanced'
    assert "`gamma`" in capsys.readouterr().err


def test_show_multilabel_lists_pos_weight(tmp_path, capsys):
    path = WeightTable.from_labels(np.array([[1, 0], [0, 0], [0, 1], [0, 1]]), task="multilabel").save(
        str(tmp_path / "ml.json"))
    assert main(["show", path]) == 0
    out = capsys.readouterr().out
    assert "pos_weight" in out and "positives" in out


def test_show_writes_a_png(table_path, tmp_path):
    png = str(tmp_path / "plot.png")
    assert main(["show", table_path, "--plot", png]) == 0
    with open(png, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    assert sorted(os.listdir(tmp_path)) == ["plot.png", "table.json"]  # no temp file left


def test_show_plots_to_a_remote_path(table_path):
    import tensorflow as tf

    assert main(["show", table_path, "--plot", "ram://plots/table.png"]) == 0
    with tf.io.gfile.GFile("ram://plots/table.png", "rb") as handle:
        assert handle.read(4) == b"\x89PNG"


def test_show_reports_a_bad_table_and_a_bad_option(tmp_path, table_path, capsys):
    (tmp_path / "bad.json").write_text('{"format_version": 7}')
    assert main(["show", str(tmp_path / "bad.json")]) == 1
    assert "format_version" in capsys.readouterr().err
    assert main(["show", table_path, "--normalize", "l2"]) == 1
    assert "normalize" in capsys.readouterr().err
    assert main(["nonsense"]) == 2


def test_plot_without_matplotlib_names_the_extra(table_path, tmp_path):
    code = (
        "import sys; sys.modules['matplotlib'] = None\n"
        "from pipelines.cli import main\n"
        f"sys.exit(main(['show', {table_path!r}, '--plot', {str(tmp_path / 'p.png')!r}]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 1
    assert "pip install 'tf-rebalance[plot]'" in result.stderr


def test_console_script_is_installed(table_path):
    script = os.path.join(os.path.dirname(sys.executable), "rebalance")
    result = subprocess.run([script, "show", table_path], capture_output=True, text=True)
    assert result.returncode == 0 and "cat" in result.stdout


def test_show_says_a_table_is_a_sample_with_its_keep_rates_and_source(tmp_path, capsys):
    data = tmp_path / "data.csv"
    rng = np.random.default_rng(3)
    labels = rng.choice(["cat", "dog", "eel"], 600, p=[0.8, 0.1, 0.1])
    data.write_text("id,y\n" + "".join(f"{i},{y}\n" for i, y in enumerate(labels)))
    assert main(["sample", "--input", str(data), "--format", "csv", "--label", "y", "--max_ratio", "2",
                 "--seed", "7", "--output", str(tmp_path / "samp"), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["show", str(tmp_path / "samp" / "_table.json")]) == 0
    out = capsys.readouterr().out
    table = WeightTable.load(str(tmp_path / "samp" / "_table.json"))
    rates = ", ".join(f"{name} {rate:.6g}" for name, rate in zip(table.class_names, table.keep_rates(), strict=True))
    assert f"a SAMPLE (rebalance sample, seed 7) of 600 examples counted from {data}" in out
    assert f"keep rates: {rates}" in out and "keep rates: cat 0.199187, dog 1, eel 1" in out
    assert "losses.shift_logits" in out
    source = WeightTable.load(str(tmp_path / "samp" / "_source_table.json"))
    assert main(["show", str(tmp_path / "samp" / "_source_table.json")]) == 0
    plain = capsys.readouterr().out
    assert "SAMPLE" not in plain and f"counted from: {data}" in plain and source.num_examples == 600


def test_show_says_a_table_is_estimated(tmp_path, capsys):
    import losses

    train = WeightTable.from_counts({"cat": 500, "dog": 100}, label_key="y")
    estimated = losses.estimated_table([0.3, 0.7], 2000, method="em", like=train, inputs=["unlabeled.csv"])
    assert main(["show", estimated.save(str(tmp_path / "est.json"))]) == 0
    out = capsys.readouterr().out
    assert ("label 'y'; ESTIMATED, not counted: label shift (em) from 2,000 unlabeled examples of unlabeled.csv"
            in out)
    assert f"estimated against the training table {train.provenance['fingerprint']}" in out
    assert main(["show", train.save(str(tmp_path / "train.json"))]) == 0
    assert "ESTIMATED" not in capsys.readouterr().out
