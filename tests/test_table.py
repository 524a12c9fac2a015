"""WeightTable: persistence, validation, every label form, and bad input."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from balance import WeightTable, to_keras_class_weight

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
    with pytest.raises(OSError, match="simulated crash"):
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
    with pytest.raises(OSError, match="simulated crash"):
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
def test_to_keras_class_weight_accepts_what_users_have():
    from sklearn.utils.class_weight import compute_class_weight

    y = np.array([0, 0, 0, 1, 2, 2])
    sk = compute_class_weight("balanced", classes=np.arange(3), y=y)
    assert to_keras_class_weight(sk) == pytest.approx({0: 2 / 3, 1: 2.0, 2: 1.0})
    assert to_keras_class_weight([1, 2]) == {0: 1.0, 1: 2.0}
    assert to_keras_class_weight({np.int64(1): 2, "0": 1}) == {0: 1.0, 1: 2.0}


def test_keras_class_weight_weights_the_gradient_as_computed_by_hand():
    # One full-batch SGD step from zero weights: softmax gives p = 1/2 everywhere, so the
    # bias gradient is mean_i w[y_i] * (1/2 - onehot(y_i)). Balanced weights give both
    # classes the same total pull (60 * 64/120 = 4 * 64/8 = 32), so the bias stays 0;
    # unweighted, the 60 negatives pull it towards class 0.
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32")
    y = np.array([0] * 60 + [1] * 4)
    table = WeightTable.from_labels(y)
    class_weight = table.keras_class_weight()
    assert class_weight == pytest.approx({0: 64 / 120, 1: 64 / 8})
    for weights in (class_weight, None):
        model = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2, kernel_initializer="zeros")])
        model.compile(tf.keras.optimizers.SGD(learning_rate=1.0),
                      tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        history = model.fit(x, y, class_weight=weights, batch_size=64, epochs=1, shuffle=False, verbose=0)
        w = np.array([1.0 if weights is None else weights[int(c)] for c in y])
        grad = np.mean(w[:, None] * (0.5 - np.eye(2)[y]), axis=0)
        np.testing.assert_allclose(model.layers[0].bias.numpy(), -grad, atol=1e-6)
        np.testing.assert_allclose(history.history["loss"][0], np.log(2) * w.mean(), rtol=1e-5)
    np.testing.assert_allclose(-grad, [0.4375, -0.4375])  # the last (unweighted) run moved the bias


# ----------------------------------------------------------------- bad input
def _mutated(**changes):
    data = _valid_dict()
    for key, value in changes.items():
        if value is KeyError:
            data.pop(key)
        else:
            data[key] = value
    return data


BAD_TABLES = [
    ("unknown format_version", _mutated(format_version=99), "format_version"),
    ("negative count", _mutated(counts=[5.0, -1.0, 2.0]), r"counts.*finite counts >= 0"),
    ("NaN count", _mutated(counts=[5.0, float("nan"), 2.0]), "counts"),
    ("length mismatch", _mutated(counts=[5.0, 3.0]), r"class_names.*2 names|counts.*one count per class"),
    ("num_classes mismatch", _mutated(num_classes=4), r"counts.*num_classes=4"),
    ("duplicate class names", _mutated(class_names=["a", "a", "c"]), r"class_names.*unique.*'a'"),
    ("unknown task", _mutated(task="regression"), r"task.*'multiclass'"),
    ("missing counts", _mutated(counts=KeyError), r"counts.*missing"),
    ("unknown field", _mutated(weights=[1, 2, 3]), r"weights"),
    ("counts not a list", _mutated(counts="5,3,2"), r"counts.*JSON list"),
    ("num_examples disagrees", _mutated(num_examples=11.0), r"num_examples.*sum of counts"),
    ("label dtype", _mutated(label={"key": "y", "dtype": "float"}), r"label_dtype"),
    (
        "positives above num_examples",
        {**_mutated(task="multilabel", num_examples=4.0)},
        r"counts.*positives <= num_examples",
    ),
    ("binary with 3 classes", _mutated(task="binary"), r"num_classes.*2 for task='binary'"),
    ("zero examples", _mutated(counts=[0.0, 0.0, 0.0], num_examples=0.0), r"num_examples.*positive"),
    (
        "bad precomputed",
        _mutated(precomputed={"scheme": "balanced", "options": {}, "weights": [1.0]}),
        r"precomputed.*3 finite weights",
    ),
]


@pytest.mark.parametrize("data, match", [(d, m) for _, d, m in BAD_TABLES], ids=[c for c, _, _ in BAD_TABLES])
def test_load_rejects_bad_tables_naming_the_field(tmp_path, data, match):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=match) as info:
        WeightTable.load(str(path))
    assert "bad.json" in str(info.value)


def test_load_rejects_non_json_nan_and_missing_file(tmp_path):
    (tmp_path / "nan.json").write_text(json.dumps(_valid_dict()).replace("5.0", "NaN"))
    with pytest.raises(ValueError, match=r"field `counts`: expected finite JSON numbers; received NaN \(not JSON\)"):
        WeightTable.load(str(tmp_path / "nan.json"))
    (tmp_path / "pickle.json").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(ValueError, match="expected UTF-8 text"):
        WeightTable.load(str(tmp_path / "pickle.json"))
    with pytest.raises(ValueError, match=r"path.*existing weight table"):
        WeightTable.load(str(tmp_path / "absent.json"))


BAD_CALLS = [
    ("unknown scheme", lambda t: t.class_weights("auto"), r"scheme.*'balanced'.*Received: scheme='auto'"),
    ("unknown normalize", lambda t: t.class_weights(normalize="l2"), r"normalize.*'mean_one'"),
    ("unknown zero_count", lambda t: t.class_weights(zero_count="skip"), r"zero_count.*'max'"),
    ("unknown param", lambda t: t.class_weights("balanced", beta=0.9), r"`beta`.*balanced"),
    ("beta out of range", lambda t: t.class_weights("effective_number", beta=1.0), r"beta.*\[0, 1\)"),
    ("bad clip", lambda t: t.class_weights(clip=(5, 1)), r"clip"),
    ("keras weights for multilabel", None, r"task.*argmax"),
]


@pytest.mark.parametrize("call, match", [(c, m) for _, c, m in BAD_CALLS], ids=[n for n, _, _ in BAD_CALLS])
def test_bad_options_raise_listing_valid_choices(call, match):
    if call is None:
        table = WeightTable.from_labels(np.array([[1, 0], [0, 1]]), task="multilabel")
        with pytest.raises(ValueError, match=match):
            table.keras_class_weight()
        return
    with pytest.raises(ValueError, match=match):
        call(WeightTable.from_counts([5.0, 1.0]))


BAD_LABELS = [
    ("empty", dict(labels=np.array([], dtype=int)), r"labels.*at least one example"),
    ("negative id", dict(labels=np.array([0, -1])), r"labels.*>= 0"),
    ("id beyond num_classes", dict(labels=np.array([0, 5]), num_classes=3), r"labels.*\[0, 3\).*5"),
    ("float ids", dict(labels=np.array([0.5, 1.0])), r"labels.*integer class ids"),
    ("not one-hot", dict(labels=np.array([[1.0, 1.0], [0.0, 1.0]])), r"one-hot rows.*multilabel"),
    ("unknown string", dict(labels=["a", "z"], class_names=["a", "b"]), r"labels.*unknown \['z'\]"),
    ("multilabel from ids", dict(labels=np.array([0, 1]), task="multilabel"), r"multi-hot"),
    ("non-binary multi-hot", dict(labels=np.array([[2, 0]]), task="multilabel"), r"0/1 matrix"),
    ("bad weights", dict(labels=np.array([0, 1]), sample_weight=[1.0]), r"sample_weight.*\(2,\)"),
    ("binary with 3 values", dict(labels=np.array([0, 1, 2]), task="binary"), r"\[0, 2\)"),
    ("unknown label_form", dict(labels=np.array([0]), label_form="sparse_matrix"), r"label_form"),
]


@pytest.mark.parametrize("kwargs, match", [(k, m) for _, k, m in BAD_LABELS], ids=[n for n, _, _ in BAD_LABELS])
def test_from_labels_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        WeightTable.from_labels(**kwargs)


BAD_KERAS_WEIGHTS = [
    ("auto", "auto", r"class_weight.*'auto'.*never valid"),
    ("missing class", {0: 1.0, 2: 3.0}, r"every class.*missing \[1\]"),
    ("unknown class", {0: 1.0, 1: 1.0, 5: 2.0}, r"\[0, 2\)"),
    ("name keys", {"cat": 1.0}, r"integer class ids"),
    ("negative", [1.0, -2.0], r"finite weights >= 0"),
    ("nan", np.array([1.0, np.nan]), r"finite weights >= 0"),
    ("2-D", np.ones((2, 2)), r"1-D"),
]


@pytest.mark.parametrize(
    "value, match", [(v, m) for _, v, m in BAD_KERAS_WEIGHTS], ids=[n for n, _, _ in BAD_KERAS_WEIGHTS]
)
def test_to_keras_class_weight_rejects_bad_input(value, match):
    num_classes = 2 if isinstance(value, dict) and 5 in value else None
    with pytest.raises(ValueError, match=match):
        to_keras_class_weight(value, num_classes=num_classes)


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
