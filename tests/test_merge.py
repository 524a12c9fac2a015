"""Exact merges: the tables of disjoint parts add up to the Beam job's table of the union."""

from __future__ import annotations

import numpy as np
import pytest
from _pipelines_data import example, same_counts, write_tfrecords

from balance import WeightTable
from pipelines import run_class_stats as run
from pipelines.cli import main


def _job(tmp_path, name, *inputs, flags=()):
    output = tmp_path / "tables" / f"{name}.json"
    args = [a for path in inputs for a in ("--input", str(path))]
    return run([*args, *flags, "--output", str(output)]), str(output)


def _parts(tmp_path, name, labels_a, labels_b, make):
    a = write_tfrecords(tmp_path / name / "a", [make(v) for v in labels_a], shards=2, prefix="a")
    b = write_tfrecords(tmp_path / name / "b", [make(v) for v in labels_b], shards=2, prefix="b")
    return a, b


def test_merge_of_two_days_equals_the_job_on_both_string_labels(tmp_path, capsys):
    rng = np.random.default_rng(5)
    # Day a has no "eel", day b no "ant": the merged vocabulary is the sorted union.
    day_a = rng.choice(["ant", "cat", "dog"], 300, p=[0.1, 0.6, 0.3])
    day_b = rng.choice(["cat", "dog", "eel"], 200, p=[0.5, 0.3, 0.2])
    a, b = _parts(tmp_path, "s", day_a, day_b, lambda v: example(y=str(v), w=1.5))
    flags = ("--label", "y", "--weight", "w", "--scheme", "effective_number")
    table_a, path_a = _job(tmp_path, "a", *a, flags=flags)
    table_b, path_b = _job(tmp_path, "b", *b, flags=flags)
    union, _ = _job(tmp_path, "union", *a, *b, flags=flags)

    merged = WeightTable.merge(table_a, table_b)
    assert same_counts(merged, union)  # counts, vocabulary, num_examples, precomputed weights
    assert merged.class_names == ("ant", "cat", "dog", "eel")
    np.testing.assert_array_equal(merged.counts, 1.5 * np.array([
        np.sum(day_a == n) + np.sum(day_b == n) for n in ("ant", "cat", "dog", "eel")]))
    assert merged.precomputed["scheme"] == "effective_number"
    assert merged.provenance["inputs"] == [*a, *b]
    assert [p["fingerprint"] for p in merged.provenance["parts"]] == [
        table_a.provenance["fingerprint"], table_b.provenance["fingerprint"]]
    assert [p["num_examples"] for p in merged.provenance["parts"]] == [450.0, 300.0]

    # The command line does the same and says so.
    out = str(tmp_path / "all.json")
    assert main(["merge", path_a, path_b, "--output", out]) == 0
    assert "Wrote " + out + ": 2 tables, 750 examples, 4 classes (multiclass, label 'y')" in capsys.readouterr().out
    assert WeightTable.load(out).content_equal(merged)


def test_merge_of_int_parts_pads_classes_a_part_never_saw(tmp_path):
    rng = np.random.default_rng(6)
    part_a = rng.integers(0, 3, 250)  # ids 0..2: the job infers 3 classes
    part_b = rng.integers(0, 5, 150)  # ids 0..4: 5 classes
    a, b = _parts(tmp_path, "i", part_a, part_b, lambda v: example(label=int(v)))
    table_a, _ = _job(tmp_path, "a", *a)
    table_b, _ = _job(tmp_path, "b", *b)
    union, _ = _job(tmp_path, "union", *a, *b)
    assert (table_a.num_classes, table_b.num_classes) == (3, 5)
    assert same_counts(WeightTable.merge(table_b, table_a), union)
    np.testing.assert_array_equal(
        WeightTable.merge(table_a, table_b).counts, np.bincount(np.concatenate([part_a, part_b]), minlength=5))


def test_counts_add_for_multilabel_and_dense_tables():
    a = WeightTable.from_counts([3, 0, 5], task="multilabel", num_examples=10, label_key="tags")
    b = WeightTable.from_counts([1, 2, 0], task="multilabel", num_examples=4, label_key="tags")
    merged = WeightTable.merge(a, b)
    assert merged.counts.tolist() == [4, 2, 5] and merged.num_examples == 14 and merged.task == "multilabel"
    pixels_a = WeightTable.from_labels(np.array([[[0, 1], [1, 1]]]), label_form="dense")
    pixels_b = WeightTable.from_labels(np.array([[[2, 2], [0, 0]], [[0, 1], [2, 2]]]), label_form="dense")
    both = WeightTable.from_labels(
        np.array([[[0, 1], [1, 1]], [[2, 2], [0, 0]], [[0, 1], [2, 2]]]), label_form="dense")
    assert same_counts(WeightTable.merge(pixels_a, pixels_b), both)
    assert WeightTable.merge(pixels_a, pixels_b).num_elements == 12


def test_class_order_given_or_common_is_kept():
    a = WeightTable.from_counts({"low": 5, "high": 1}, class_names=["low", "high"])
    b = WeightTable.from_counts({"low": 2, "high": 7}, class_names=["low", "high"])
    assert WeightTable.merge(a, b).class_names == ("low", "high")  # the parts' common (not sorted) order
    c = WeightTable.from_counts({"mid": 4})
    ordered = WeightTable.merge(a, c, class_names=["low", "mid", "high"])
    assert ordered.class_names == ("low", "mid", "high") and ordered.counts.tolist() == [5, 4, 1]
    with pytest.raises(ValueError, match="not sorted.*pass class_names"):
        WeightTable.merge(a, c)


def test_a_single_table_merges_to_itself_with_provenance():
    table = WeightTable.from_counts([4, 6], inputs=["x.tfrecord"])
    merged = WeightTable.merge(table)
    assert same_counts(merged, table) and merged.provenance["parts"][0]["inputs"] == ["x.tfrecord"]


def test_precomputed_weights_are_dropped_when_parts_disagree():
    a = WeightTable.from_counts([4, 6]).with_precomputed("balanced")
    b = WeightTable.from_counts([1, 9]).with_precomputed("inverse")
    assert WeightTable.merge(a, b).precomputed is None
    merged = WeightTable.merge(a, a, disjoint=True)
    assert merged.precomputed["weights"] == pytest.approx(a.class_weights("balanced").tolist())


@pytest.mark.parametrize(
    "tables, kwargs, match",
    [
        ((), {}, "`tables`. Expected at least one WeightTable"),
        (([1, 2],), {}, "`tables\\[0\\]`. Expected a balance.WeightTable"),
        ((WeightTable.from_counts([1, 2]), WeightTable.from_counts([1, 2], task="binary")), {},
         "`tables\\[1\\]`. Expected the same task as tables\\[0\\] \\('multiclass'\\)"),
        ((WeightTable.from_counts([1, 2], label_key="a"), WeightTable.from_counts([1, 2], label_key="b")), {},
         "same label_key"),
        ((WeightTable.from_counts({"a": 1}), WeightTable.from_counts([1, 2])), {}, "same label_dtype"),
        ((WeightTable.from_labels(np.zeros((1, 2, 2), int), label_form="dense"), WeightTable.from_counts([1])), {},
         "same num_elements.*dense labels"),
        ((WeightTable.from_counts([1, 2], class_names=["a", "b"]), WeightTable.from_counts([1, 2])), {},
         "`tables\\[1\\]`. Expected the class names \\['a', 'b'\\]"),
        ((WeightTable.from_counts([1, 2]),), {"class_names": ["a", "b"]}, "None for integer labels"),
        ((WeightTable.from_counts({"a": 1, "b": 2}),), {"class_names": ["a"]}, "Missing \\['b'\\]"),
        ((WeightTable.from_counts({"a": 1}),), {"class_names": ["a", "a"]}, "unique names"),
    ],
)
def test_tables_of_different_datasets_are_refused(tables, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightTable.merge(*tables, **kwargs)


def test_estimated_tables_are_refused():
    counted = WeightTable.from_counts([5, 5])
    estimated = WeightTable(task="multiclass", counts=[2.5, 7.5], num_examples=10.0,
                            provenance={"estimated": {"method": "em"}})
    with pytest.raises(ValueError, match="`tables\\[1\\]`. Expected a counted table.*not exact"):
        WeightTable.merge(counted, estimated)


def test_cli_merge_errors_name_the_files(tmp_path, capsys):
    a = WeightTable.from_counts([1, 2]).save(str(tmp_path / "a.json"))
    b = WeightTable.from_counts([1, 2], task="binary").save(str(tmp_path / "b.json"))
    assert main(["merge", a, b, "--output", str(tmp_path / "out.json")]) == 1
    err = capsys.readouterr().err
    assert "rebalance merge: error:" in err and "same task" in err and f"[1] {b}" in err
    assert not (tmp_path / "out.json").exists()
    assert main(["merge", a, str(tmp_path / "missing.json"), "--output", str(tmp_path / "out.json")]) == 1
    assert "missing.json" in capsys.readouterr().err
    assert main(["merge", a, a, "--outptu", str(tmp_path / "out.json")]) == 1
    assert "required: --output" in capsys.readouterr().err
    assert main(["merge", a, a, "--output", str(tmp_path / "out.json"), "--clas_names", "x"]) == 1
    assert "Unknown flag --clas_names: did you mean --class_names?" in capsys.readouterr().err
    assert not (tmp_path / "out.json").exists()


# ------------------------------------------------------- overlapping parts
def test_cli_merge_of_a_table_with_itself_is_refused(tmp_path, capsys):
    data = write_tfrecords(tmp_path / "d", [example(label=i % 3) for i in range(60)], shards=2)
    _, a = _job(tmp_path, "a", *data)
    out = str(tmp_path / "out.json")
    assert main(["merge", a, a, "--output", out]) == 1
    err = capsys.readouterr().err
    assert "Expected disjoint parts" in err
    assert "tables[0] and tables[1] both count a part with fingerprint sha256:" in err
    assert f"[0] {a}, [1] {a}" in err and "--disjoint" in err and "Traceback" not in err
    assert not (tmp_path / "out.json").exists()
    # Disjoint by construction: the user says so, with the same word in the API and the CLI.
    assert main(["merge", a, a, "--output", out, "--disjoint"]) == 0
    assert WeightTable.load(out).num_examples == 120
    assert WeightTable.merge(WeightTable.load(a), WeightTable.load(a), disjoint=True).num_examples == 120


def test_a_part_merged_into_a_table_that_already_contains_it_is_refused(tmp_path, capsys):
    a = WeightTable.from_counts([4, 6], inputs=["a.tfrecord"], fingerprint="sha256:a")
    b = WeightTable.from_counts([1, 9], inputs=["b.tfrecord"], fingerprint="sha256:b")
    c = WeightTable.from_counts([2, 2], inputs=["c.tfrecord"], fingerprint="sha256:c")
    ab = WeightTable.merge(a, b)
    with pytest.raises(ValueError, match=r"tables\[0\] and tables\[1\] both count a part with fingerprint sha256:a"):
        WeightTable.merge(ab, a)
    abc = WeightTable.merge(ab, c)  # a merge of merges lists every leaf part
    assert [p["fingerprint"] for p in abc.provenance["parts"]] == ["sha256:a", "sha256:b", "sha256:c"]
    assert abc.provenance["fingerprint"] == WeightTable.merge(a, WeightTable.merge(b, c)).provenance["fingerprint"]
    with pytest.raises(ValueError, match=r"tables\[0\] and tables\[1\] both count a part with fingerprint sha256:b"):
        WeightTable.merge(abc, b)
    paths = [abc.save(str(tmp_path / "abc.json")), b.save(str(tmp_path / "b.json"))]
    assert main(["merge", *paths, "--output", str(tmp_path / "out.json")]) == 1
    assert "fingerprint sha256:b" in capsys.readouterr().err


def test_parts_counted_from_the_same_input_are_refused():
    # The same pattern counted twice, the files changed between the counts: the fingerprints differ.
    monday = WeightTable.from_counts([4, 6], inputs=["data/*.csv"], fingerprint="sha256:1")
    tuesday = WeightTable.from_counts([5, 7], inputs=["data/*.csv", "extra.csv"], fingerprint="sha256:2")
    with pytest.raises(ValueError, match=r"tables\[0\] and tables\[1\] both count the input 'data/\*.csv'"):
        WeightTable.merge(monday, tuesday)
    assert WeightTable.merge(monday, tuesday, disjoint=True).num_examples == 22
    # Labels held in memory have no input path: only their fingerprints are compared.
    first, second = WeightTable.from_labels(np.array([0, 1, 1])), WeightTable.from_labels(np.array([1, 1, 0]))
    assert WeightTable.merge(first, second).num_examples == 6
