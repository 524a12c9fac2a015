"""WeightTable: persistence, validation, every label form, and bad input."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from balance import WeightTable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _valid_dict():
    return WeightTable.from_counts([5.0, 3.0, 2.0], class_names=["a", "b", "c"]).to_dict()


# ------------------------------------------------------------------ persistence
def test_json_round_trip_local_path(tmp_path):
    table = WeightTable.from_counts([198, 436, 710, 272], class_names=list("wxyz"))
    path = str(tmp_path / "sub" / "table.json")
    assert table.save(path) == path
    loaded = WeightTable.load(path)
    assert loaded == table
    np.testing.assert_array_equal(loaded.class_weights(), table.class_weights())
    assert os.listdir(tmp_path / "sub") == ["table.json"]  # no temp file left behind


def test_table_text_is_what_json_indent_2_writes():
    # Tables are written by a faster encoder; their text stays json.dumps(indent=2)'s, byte for byte.
    names = ["a, b", "line\nbreak", "quote\"", "猫", "\u2028", "x" * 40] + [f"c{i}" for i in range(200)]
    counts = [0.1, 1e16, 3.0, 2**60, 1e-7, 7.5] + list(range(1, 201))
    tables = [
        dataclasses.replace(WeightTable.from_counts(counts, class_names=names),
                            provenance={"inputs": ["a*", "b"], "n": {"x": [1, 2.5], "y": {}}, "e": []}),
        WeightTable.from_counts([10.0, 1.0]).with_precomputed("effective_number", scheme_params={"beta": 0.9}),
        WeightTable.from_labels(np.array([[1, 0], [1, 1], [0, 0]]), task="multilabel"),
    ]
    for table in tables:
        assert table.to_json() == json.dumps(table.to_dict(), indent=2, allow_nan=False) + "\n"
        assert WeightTable.from_json(table.to_json()) == table


def test_json_round_trip_through_ram_filesystem():
    table = WeightTable.from_labels(np.array([[1, 0], [1, 1], [0, 0]]), task="multilabel")
    table.save("ram://tables/multilabel.json")
    assert WeightTable.load("ram://tables/multilabel.json") == table


def test_precomputed_weights_round_trip(tmp_path):
    table = WeightTable.from_counts([10.0, 1.0]).with_precomputed("effective_number", scheme_params={"beta": 0.9})
    path = table.save(str(tmp_path / "t.json"))
    loaded = WeightTable.load(path)
    assert loaded.precomputed["scheme"] == "effective_number"
    np.testing.assert_allclose(loaded.precomputed["weights"], table.class_weights("effective_number", beta=0.9))


def test_save_is_atomic_when_the_rename_fails(tmp_path, monkeypatch):
    path = str(tmp_path / "table.json")
    old = WeightTable.from_counts([1.0, 2.0])
    old.save(path)

    def crash(*args, **kwargs):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ValueError, match=r"Expected a path where the table can be written.*simulated crash"):
        WeightTable.from_counts([7.0, 8.0, 9.0]).save(path)
    assert os.listdir(tmp_path) == ["table.json"]  # no temp file left behind
    assert WeightTable.load(path) == old  # the previous table is intact


def test_save_to_a_remote_path_is_atomic_too(monkeypatch):
    path = "ram://atomic/table.json"
    old = WeightTable.from_counts([1.0, 2.0])
    old.save(path)

    def crash(*args, **kwargs):
        raise OSError("simulated crash between write and rename")

    monkeypatch.setattr(tf.io.gfile, "rename", crash)
    with pytest.raises(ValueError, match=r"Expected a path where the table can be written.*simulated crash"):
        WeightTable.from_counts([7.0, 8.0, 9.0]).save(path)
    assert tf.io.gfile.listdir("ram://atomic") == ["table.json"]
    assert WeightTable.load(path) == old


def test_local_tables_need_no_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from balance import WeightTable\n"
        f"path = WeightTable.from_counts([3, 1]).save({str(tmp_path / 't.json')!r})\n"
        "assert WeightTable.load(path).counts.tolist() == [3.0, 1.0]\n"
        "assert 'tensorflow' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_tables_are_immutable():
    table = WeightTable.from_counts([1.0, 2.0])
    with pytest.raises(AttributeError):  # dataclasses.FrozenInstanceError
        table.task = "binary"
    with pytest.raises(ValueError):
        table.counts[0] = 5.0


def test_provenance_records_inputs_version_and_fingerprint():
    a = WeightTable.from_labels(np.array([0, 1, 1]))
    b = WeightTable.from_labels(np.array([0, 1, 1]))
    c = WeightTable.from_labels(np.array([1, 0, 1]))
    assert a.provenance["tool_version"] and a.provenance["created"]
    assert a.provenance["fingerprint"] == b.provenance["fingerprint"] != c.provenance["fingerprint"]
    assert a.content_equal(b)


# -------------------------------------------------------------- label forms
def test_from_labels_int_labels():
    table = WeightTable.from_labels(np.array([0, 2, 2, 1, 2]))
    np.testing.assert_array_equal(table.counts, [1, 1, 3])
    assert table.num_examples == 5 and table.num_elements is None and table.label_dtype == "int"


def test_from_labels_int_labels_with_num_classes_keeps_empty_classes():
    table = WeightTable.from_labels(np.array([0, 1]), num_classes=4)
    np.testing.assert_array_equal(table.counts, [1, 1, 0, 0])


def test_from_labels_string_labels_sorted_vocabulary():
    table = WeightTable.from_labels(np.array([b"cat", b"dog", b"ant", b"dog"]))
    assert table.class_names == ("ant", "cat", "dog") and table.label_dtype == "string"
    np.testing.assert_array_equal(table.counts, [1, 1, 2])


def test_from_labels_string_labels_in_given_order():
    table = WeightTable.from_labels(["dog", "cat"], class_names=["dog", "cat", "eel"])
    np.testing.assert_array_equal(table.counts, [1, 1, 0])


def test_from_labels_one_hot_equals_sparse():
    sparse = np.array([0, 2, 2, 1])
    one_hot = tf.keras.utils.to_categorical(sparse, 3)
    table = WeightTable.from_labels(one_hot)
    np.testing.assert_array_equal(table.counts, WeightTable.from_labels(sparse).counts)
    np.testing.assert_array_equal(table.counts, [1, 1, 2])


def test_from_labels_multi_hot_and_id_lists_agree():
    multi_hot = np.array([[1, 0, 0, 0, 1], [0, 0, 1, 0, 1], [0, 0, 0, 0, 0]])
    id_lists = [[0, 4], [2, 4, 4], []]
    a = WeightTable.from_labels(multi_hot, task="multilabel")
    b = WeightTable.from_labels(id_lists, task="multilabel", num_classes=5)
    np.testing.assert_array_equal(a.counts, [1, 0, 1, 0, 2])
    np.testing.assert_array_equal(a.counts, b.counts)
    np.testing.assert_array_equal(a.negatives(), [2, 3, 2, 3, 1])


def test_from_labels_dense_sequence_and_pixel_labels():
    tokens = np.array([[0, 0, 1], [2, 0, 0]])
    table = WeightTable.from_labels(tokens)
    np.testing.assert_array_equal(table.counts, [4, 1, 1])
    assert table.num_examples == 2 and table.num_elements == 6
    masks = np.zeros((3, 4, 4), dtype=np.int32)
    masks[0, :2, :2] = 1
    masks[1, 0, 0] = 255
    table = WeightTable.from_labels(masks, ignore_value=255, num_classes=2)
    np.testing.assert_array_equal(table.counts, [43, 4])
    assert table.num_elements == 47


def test_from_labels_binary_and_weighted_counts():
    table = WeightTable.from_labels(np.array([[0], [1], [0]]), task="binary")
    np.testing.assert_array_equal(table.counts, [2, 1])
    weighted = WeightTable.from_labels(np.array([0, 1, 1]), sample_weight=[2.0, 0.5, 0.25])
    np.testing.assert_allclose(weighted.counts, [2.0, 0.75])
    assert weighted.num_examples == pytest.approx(2.75)


def test_from_counts_dicts_by_id_and_by_name():
    by_id = WeightTable.from_counts({2: 5, 0: 1})
    np.testing.assert_array_equal(by_id.counts, [1, 0, 5])
    by_name = WeightTable.from_counts({"b": 2, "a": 1})
    assert by_name.class_names == ("a", "b") and by_name.label_dtype == "string"


# ------------------------------------------------------------- keras interop
def test_keras_class_weight_is_sklearns_balanced_weights_as_a_complete_dict():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1, 2, 2])
    sk = compute_class_weight("balanced", classes=np.arange(3), y=y)  # an array, which model.fit refuses
    weights = WeightTable.from_labels(y).keras_class_weight("balanced")
    assert list(weights) == [0, 1, 2] and list(weights.values()) == pytest.approx(sk.tolist())
    with pytest.raises(ValueError, match=r"Received: scheme='auto'. 'auto' was never a valid Keras class_weight"):
        WeightTable.from_labels(y).keras_class_weight("auto")


# ------------------------------------------------------------------ imports
def test_balance_and_losses_import_without_apache_beam():
    code = (
        "import sys, balance, losses\n"
        "import balance.table, balance.schemes\n"
        "assert 'apache_beam' not in sys.modules, sorted(m for m in sys.modules if 'beam' in m)\n"
        "print('ok')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-2000:]
