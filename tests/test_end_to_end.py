"""The whole chain: TFRecord files -> Beam -> table -> tf.data -> loss -> fit -> metrics."""

import json
import os

import pytest

from balance import WeightTable
from rebalance_demo.app import RUNS, run_demo


@pytest.fixture(scope="module")
def demo_results(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo"))
    results = run_demo(out, seed=0, epochs=4, largest=4000, verbose=0)
    return out, results


def test_demo_writes_table_plots_and_results(demo_results):
    out, results = demo_results
    table = WeightTable.load(os.path.join(out, "table.json"))
    assert table.num_classes == 10 and table.imbalance_ratio() == pytest.approx(100, rel=0.05)
    assert table.label_key == "label" and table.provenance["inputs"]
    for name in ("table.png", "results.png"):
        with open(os.path.join(out, name), "rb") as handle:
            assert handle.read(4) == b"\x89PNG"
    with open(os.path.join(out, "results.json")) as handle:
        assert json.load(handle) == results
    assert list(results) == list(RUNS)


def test_rebalancing_beats_the_plain_baseline_on_balanced_accuracy(demo_results):
    _, results = demo_results
    plain = results["plain"]
    for name in RUNS[1:]:
        assert results[name]["balanced_accuracy"] > plain["balanced_accuracy"] + 0.05, (name, results)
        assert results[name]["rare_recall"] > plain["rare_recall"] + 0.2, (name, results)
    # The trade-off is real: plain accuracy on a long-tailed test set favours the baseline.
    assert plain["accuracy"] > min(results[name]["accuracy"] for name in RUNS[1:])
