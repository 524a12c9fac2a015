"""Bad input to the weight table: each public function's arguments and each
JSON field. Every case raises a ``ValueError`` naming the argument and value."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from balance import WeightTable
from balance.errors import InvalidDataError

WHOLE = r"Expected integer class ids \(a float label must be a whole number: 1.0 is class 1\)"


# ------------------------------------------------- float labels: the rule
def test_whole_number_floats_are_the_ids_they_equal():
    floats = WeightTable.from_labels(np.array([0.0, 1.0, 1.0, 2.0], dtype=np.float32))
    ints = WeightTable.from_labels(np.array([0, 1, 1, 2]))
    np.testing.assert_array_equal(floats.counts, ints.counts)
    lists = WeightTable.from_labels([[0.0, 2.0], [1.0]], task="multilabel", num_classes=3)
    np.testing.assert_array_equal(lists.counts, [1, 1, 1])


@pytest.mark.parametrize("bad, shown", [(1.5, "1.5"), (np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf"),
                                        (1e20, "1e+20")])
def test_non_whole_float_label_names_the_value_and_index(bad, shown):
    with pytest.raises(InvalidDataError, match=rf"{WHOLE}. Received: labels={re.escape(shown)}. Found in example 2$"):
        WeightTable.from_labels(np.array([0.0, 1.0, bad, 2.5]))


def test_non_whole_float_in_dense_labels_and_id_lists():
    with pytest.raises(ValueError, match=rf"{WHOLE}. Received: labels=0.25. Found in example 1$"):
        WeightTable.from_labels(np.array([[0.0, 1.0], [0.25, 1.0]]), label_form="dense")
    with pytest.raises(ValueError, match=rf"{WHOLE}. Received: labels=2.5. Found in example 1"):
        WeightTable.from_labels([[0, 1], [2.5]], task="multilabel")
    with pytest.raises(ValueError, match=r"lists of integer class ids. Received: labels=.*'a'.*Found in example 0"):
        WeightTable.from_labels([["a"], [1, 2]], task="multilabel")


@pytest.mark.parametrize("labels, kwargs, match", [
    (np.array([[0.0, np.nan], [1.0, 0.0]]), {"task": "multilabel"},
     r"0/1 matrix \(N, K\) for label_form='multi_hot'. Received: labels=nan. Found in example 0; at column 1"),
    (np.array([[0.5, 0.5], [1.0, 0.0]]), {},
     r"0/1 matrix \(N, K\) for label_form='one_hot'. Received: labels=0.5. Found in example 0; at column 0"),
])
def test_one_and_multi_hot_name_the_bad_cell(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightTable.from_labels(labels, **kwargs)


# --------------------------------------------------- from_labels arguments
@pytest.mark.parametrize("kwargs, match", [
    ({"labels": np.array([0, 1]), "task": "multi"}, r"`task`. Expected one of .* Received: task='multi'"),
    ({"labels": np.array([0, 1]), "label_form": "onehot"}, r"`label_form`. .* Received: label_form='onehot'"),
    ({"labels": np.array([0, 1]), "num_classes": 2.5}, r"`num_classes`. .*Received: num_classes=2.5"),
    ({"labels": np.array([0, 1]), "num_classes": True}, r"Received: num_classes=True"),
    ({"labels": np.array([[0, 1]]), "label_form": "dense", "ignore_value": 1.5},
     r"`ignore_value`. Expected an int class id. Received: ignore_value=1.5"),
    ({"labels": np.array([0, 1]), "ignore_value": 1},
     r"`ignore_value`. Expected None unless label_form='dense'. Received: ignore_value=1"),
    ({"labels": np.array(["a", "b"]), "class_names": "ab"}, r"`class_names`. Expected a list.*'ab'"),
    ({"labels": np.array([0, 1]), "sample_weight": ["a", "b"]}, r"`sample_weight`. Expected numbers.*'a'"),
    ({"labels": np.array([0, 1]), "sample_weight": [1, -1]}, r"`sample_weight`. Expected finite weights >= 0"),
    ({"labels": np.array([0, 1]), "sample_weight": [1, 1, 1]}, r"`sample_weight`. Expected shape \(2,\)"),
    ({"labels": {"a": 1}}, r"`labels`. Expected a numpy array, a tensor or a list. Received: labels='dict'"),
    ({"labels": np.array([0j, 1])}, r"`labels`. Expected integer class ids or strings.*'dtype complex128'"),
    ({"labels": np.array([0, 1]), "label_key": 3}, r"`label_key`. Expected a feature key .* Received: label_key=3"),
    ({"labels": np.array([0, 1, 2]), "task": "binary"}, r"class ids in \[0, 2\). Received: labels=2"),
    ({"labels": np.array([], dtype=int)}, r"`labels`. Expected at least one example"),
])
def test_from_labels_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightTable.from_labels(**kwargs)


# --------------------------------------------------- from_counts arguments
@pytest.mark.parametrize("args, kwargs, match", [
    (([1, -2],), {}, r"`counts`. Expected finite counts >= 0. Received: counts='-2.0 at class 1'"),
    (({0: "a", 1: 2},), {}, r"`counts`. Expected numbers as dict values. Received: counts=\"0: 'a'\""),
    (({0.0: 1},), {}, r"`counts`. Expected a dict keyed by class ids \(int\) or class names \(str\)"),
    (([1, 2],), {"class_names": "ab"}, r"`class_names`. Expected a list of names.*class_names='ab'"),
    (([1, 2],), {"class_names": ["a", 2]}, r"`class_names`. Expected non-empty str names.*Not a name: 2"),
    (([1, 2],), {"class_names": ["a", "a"]}, r"`class_names`. Expected unique names"),
    (([1, 2],), {"inputs": "data.csv"}, r"`inputs`. Expected a list of input paths.*inputs='data.csv'"),
    (([1, 2],), {"fingerprint": 5}, r"`fingerprint`. Expected a str.*fingerprint=5"),
    (([1, 2],), {"num_classes": -1}, r"`num_classes`. Expected a positive int. Received: num_classes=-1"),
    (([1, 2],), {"label_dtype": "float"}, r"`label_dtype`. .*Received: label_dtype='float'"),
    (([1, 2, 3],), {"task": "binary"}, r"`num_classes`. Expected 2 for task='binary'"),
    (([1, 2],), {"task": "multilabel"}, r"`num_examples`. Expected the number of examples for task='multilabel'"),
])
def test_from_counts_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightTable.from_counts(*args, **kwargs)


# ------------------------------------------------------------ methods
@pytest.mark.parametrize("call, match", [
    (lambda t: t.class_weights("balancd"), r"`scheme`. .*Received: scheme='balancd'"),
    (lambda t: t.class_weights(clip=(2, 1)), r"`clip`. .*Received: clip=\(2, 1\)"),
    (lambda t: t.class_weights("power", alpha=float("nan")), r"`alpha`. Expected a finite number. Received: alpha=nan"),
    (lambda t: t.class_weights(normalize="sum"), r"`normalize`. .*Received: normalize='sum'"),
    (lambda t: t.class_weights(zero_count="skip"), r"`zero_count`. .*Received: zero_count='skip'"),
    (lambda t: t.keras_class_weight(scheme_params={"normalise": "none"}), r"`normalise`. .*Received: normalise='none'"),
    (lambda t: t.log_prior(smoothing="1"), r"`smoothing`. Expected a number. Received: smoothing='1'"),
    (lambda t: t.log_prior(smoothing=-1), r"`smoothing`. Expected a number >= 0. Received: smoothing=-1"),
    (lambda t: t.pos_weight(), r"`task`. .*Received: task='multiclass'"),
    (lambda t: t.with_precomputed("nope"), r"`scheme`. .*Received: scheme='nope'"),
    (lambda t: t.content_equal(3), r"`other`. Expected a WeightTable. Received: other='int'"),
    (lambda t: t.save(3), r"`path`. Expected a non-empty path string.*Received: path=3"),
])
def test_method_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(WeightTable.from_counts([10, 5, 1]))


def test_save_to_a_directory_and_load_a_directory(tmp_path):
    table = WeightTable.from_counts([10, 5, 1])
    where = re.escape(str(tmp_path))
    with pytest.raises(ValueError, match=rf"`path`. Expected a file path .* Received: path='{where}'"):
        table.save(str(tmp_path))
    with pytest.raises(ValueError, match=rf"`path`. Expected a weight table file, or a directory holding _table.json. Received: path='{where}'"):
        WeightTable.load(str(tmp_path))


# ------------------------------------------------------------ JSON fields
GOOD = WeightTable.from_counts([10, 5, 1], class_names=["a", "b", "c"], label_key="y").to_dict()


@pytest.mark.parametrize("field, value, match", [
    ("format_version", True, r"`format_version`. Expected 1.* Received: format_version=True"),
    ("format_version", 1.0, r"Received: format_version=1.0"),
    ("task", "multi", r"`task`. .*Received: task='multi'"),
    ("counts", "1,2", r"`counts`. Expected a JSON list of numbers. Received: counts='1,2'"),
    ("counts", [1, True, 3], r"`counts`. Expected a JSON list of numbers"),
    ("num_examples", "16", r"`num_examples`. Expected a number. Received: num_examples='16'"),
    ("num_examples", 17, r"`num_examples`. Expected the sum of counts \(16\).* Received: num_examples=17"),
    ("num_classes", 3.0, r"`num_classes`. Expected a positive int. Received: num_classes=3.0"),
    ("class_names", "abc", r"`class_names`. Expected a list of names.*Received: class_names='abc'"),
    ("class_names", [1, 2, 3], r"`class_names`. Expected non-empty str names.*Not a name: 1"),
    ("class_names", ["a", None, "c"], r"Not a name: None"),
    ("label", {"key": 5, "dtype": "int"}, r"`label_key`. .* Received: label_key=5"),
    ("label", {"key": "y", "dtype": "int", "kind": "x"}, r"`label`. Expected only the fields .*Unknown field 'kind'"),
    ("label", {"key": "y", "dtype": "float"}, r"`label_dtype`. .*Received: label_dtype='float'"),
    ("num_elements", -1, r"`num_elements`. Expected the sum of counts"),
    ("provenance", [1], r"`provenance`. Expected a mapping. Received: provenance=\[1\]"),
    ("precomputed", {"scheme": "balanced", "options": [1], "weights": [1, 1, 1]},
     r"`precomputed`. Expected 'options' as an object.*Received: precomputed=\[1\]"),
    ("precomputed", {"scheme": "balanced", "options": {}, "weights": ["a", 1, 1]},
     r"`precomputed`. Expected 3 finite weights >= 0. Received: precomputed=\['a', 1, 1\]"),
    ("precomputed", {"scheme": "nope", "options": {}, "weights": [1, 1, 1]}, r"`scheme`. .*Received: scheme='nope'"),
    ("extra", 1, r"`extra`. Expected only the fields"),
])
def test_json_fields_name_the_field_and_value(tmp_path, field, value, match):
    data = dict(GOOD, **{field: value})
    path = tmp_path / "t.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=rf"Invalid weight table '{re.escape(str(path))}': Invalid value .*{match}"):
        WeightTable.load(str(path))


@pytest.mark.parametrize("field", ["format_version", "task", "counts", "num_examples"])
def test_missing_required_field(field):
    data = {k: v for k, v in GOOD.items() if k != field}
    with pytest.raises(ValueError, match=rf"`{field}`. .*Received: {field}='missing'"):
        WeightTable.from_dict(data)


def test_nan_and_non_json(tmp_path):
    text = json.dumps(GOOD).replace('"num_examples": 16.0', '"num_examples": NaN')
    with pytest.raises(ValueError, match=r"field `num_examples`: expected finite JSON numbers; received NaN"):
        WeightTable.from_json(text)
    with pytest.raises(ValueError, match=r"Invalid weight table <string>: not valid JSON"):
        WeightTable.from_json("{")
    (tmp_path / "b.json").write_bytes(b"\xff\xfe")
    with pytest.raises(ValueError, match=r"expected UTF-8 text; received byte b'\\xff' at offset 0"):
        WeightTable.load(str(tmp_path / "b.json"))
