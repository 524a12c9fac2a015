"""Multi-output models: one table per head, per-output weights, losses, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import balance
import losses
from balance import WeightTable

N = 4000


@pytest.fixture(scope="module")
def heads():
    rng = np.random.default_rng(0)
    y_a = (rng.random(N) < 1 / 51).astype(np.int64)  # 1:50
    y_b = rng.integers(0, 3, N)  # balanced, 3 classes
    x = np.stack([y_a * 1.2 + rng.normal(size=N), np.eye(3)[y_b] @ [0.0, 1.0, 2.0] + 0.3 * rng.normal(size=N)],
                 axis=1).astype(np.float32)
    return x, y_a, y_b, {"a": WeightTable.from_labels(y_a), "b": WeightTable.from_labels(y_b)}


def mix(y, w, k):
    totals = np.bincount(y, weights=w, minlength=k)
    return totals / totals.sum()


def test_per_output_weights_are_each_tables_class_weights(heads):
    x, y_a, y_b, tables = heads
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}))
    batch = next(iter(balance.rebalance(ds, tables, method="weight", batch_size=N)))
    _, labels, weights = batch
    assert set(labels) == set(weights) == {"a", "b"}
    np.testing.assert_allclose(weights["a"], tables["a"].class_weights("balanced")[y_a], rtol=1e-6)
    np.testing.assert_allclose(weights["b"], tables["b"].class_weights("balanced")[y_b], rtol=1e-6)


def test_dict_elements_tuple_labels_and_heads_without_a_table(heads):
    x, y_a, y_b, tables = heads
    flat = tf.data.Dataset.from_tensor_slices({"x": x, "a": y_a, "b": y_b})
    features, labels, weights = next(iter(balance.rebalance(flat, tables, method="weight", batch_size=64)))
    assert set(features) == {"x"} and set(labels) == {"a", "b"}
    pairs = tf.data.Dataset.from_tensor_slices((x, (y_a, y_b)))
    _, (la, lb), (wa, wb) = next(iter(balance.rebalance(pairs, (tables["a"], None), method="weight",
                                                         batch_size=64)))
    np.testing.assert_allclose(wa, tables["a"].class_weights("balanced")[la.numpy()], rtol=1e-6)
    np.testing.assert_array_equal(wb, np.ones(64))  # no table: weight 1


@pytest.mark.parametrize("resample_on", ["a", None])
def test_both_hits_the_target_on_the_head_it_samples_on(heads, resample_on):
    x, y_a, y_b, tables = heads
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}))
    out = balance.rebalance(ds, tables, method="both", batch_size=128, seed=0, resample_on=resample_on)
    ys = {"a": [], "b": []}
    ws = {"a": [], "b": []}
    for _, labels, weights in out.as_numpy_iterator():
        for head in ys:
            ys[head].append(labels[head])
            ws[head].append(weights[head])
    ys = {h: np.concatenate(v) for h, v in ys.items()}
    ws = {h: np.concatenate(v) for h, v in ws.items()}
    l1_a = np.abs(mix(ys["a"], ws["a"], 2) - 0.5).sum()
    l1_b = np.abs(mix(ys["b"], ws["b"], 3) - 1 / 3).sum()
    assert l1_a < (0.05 if resample_on == "a" else 0.15)
    assert l1_b < 0.1


def recall_and_accuracy(model, x, y_a, y_b):
    out = model.predict(x, verbose=0, batch_size=1024)
    rare_recall = float(np.mean(np.argmax(out["a"], -1)[y_a == 1] == 1))
    return rare_recall, float(np.mean(np.argmax(out["b"], -1) == y_b))


def two_heads():
    inputs = keras.Input((2,), name="x")
    hidden = keras.layers.Dense(16, activation="relu")(inputs)
    outputs = {"a": keras.layers.Dense(2, name="a")(hidden), "b": keras.layers.Dense(3, name="b")(hidden)}
    return keras.Model(inputs, outputs)


def test_two_head_model_trains_and_the_rare_class_recall_rises(heads):
    x, y_a, y_b, tables = heads
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}))
    loss = {h: keras.losses.SparseCategoricalCrossentropy(from_logits=True) for h in ("a", "b")}
    results = {}
    for name, train in [("plain", ds.batch(64)), ("weighted", balance.rebalance(ds, tables, method="weight",
                                                                                 batch_size=64))]:
        keras.utils.set_random_seed(0)
        model = two_heads()
        assert balance.check_model_outputs(model, tables) == {"a": 2, "b": 3}
        model.compile(keras.optimizers.Adam(0.02), loss=loss)
        model.fit(train, epochs=4, verbose=0)
        results[name] = recall_and_accuracy(model, x, y_a, y_b)
    (plain_recall, plain_acc), (weighted_recall, weighted_acc) = results["plain"], results["weighted"]
    assert weighted_recall > plain_recall + 0.3  # rare class of head a found far more often
    assert weighted_acc > plain_acc - 0.03  # the balanced head is not hurt


def test_losses_for_outputs_save_and_load(heads, tmp_path):
    x, y_a, y_b, tables = heads
    per_output = losses.losses_for_outputs(tables)
    assert isinstance(per_output["a"], losses.WeightedSparseCategoricalCrossentropy)
    np.testing.assert_allclose(per_output["a"].class_weights, tables["a"].class_weights("balanced"), rtol=1e-6)
    model = two_heads()
    model.compile("adam", loss=per_output)
    model.fit(x[:256], {"a": y_a[:256], "b": y_b[:256]}, epochs=1, verbose=0)
    path = str(tmp_path / "two_heads.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded.predict(x[:8], verbose=0)["a"], model.predict(x[:8], verbose=0)["a"],
                               rtol=1e-5)
    assert loaded.loss["a"].class_weights == per_output["a"].class_weights


def test_bad_input_is_refused_before_data_flows(heads):
    x, y_a, y_b, tables = heads
    two = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}))
    one = tf.data.Dataset.from_tensor_slices((x, y_a))
    with pytest.raises(ValueError, match=r"Expected keys among the label keys \['a', 'b'\].*No label for \['c'\]"):
        balance.rebalance(two, {"a": tables["a"], "c": tables["b"]}, method="weight")
    with pytest.raises(ValueError, match="a single WeightTable for a dataset with one label"):
        balance.rebalance(one, tables, method="weight")
    with pytest.raises(ValueError, match="one table per output"):
        balance.rebalance(two, tables["a"], method="weight")
    with pytest.raises(ValueError, match="`resample_on`. Expected one of the heads"):
        balance.rebalance(two, tables, method="resample", resample_on="z", seed=0)
    with pytest.raises(ValueError, match="`resample_on`. Expected None for a single table"):
        balance.rebalance(one, tables["a"], method="resample", resample_on="a", seed=0)
    with pytest.raises(ValueError, match="model output 'b'"):
        balance.check_model_outputs(two_heads(), {"a": tables["a"], "b": tables["a"]})
    too_many = tf.data.Dataset.from_tensor_slices((x[:4], {"a": y_a[:4], "b": np.array([0, 1, 2, 7])}))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 3\)"):
        list(balance.rebalance(too_many, tables, method="weight", batch_size=4))


def one_batch(ds, tables, **kwargs):
    return next(iter(balance.rebalance(ds, tables, batch_size=N, **kwargs)))


def test_each_head_gets_what_a_single_output_would_get(heads):
    # One path: a head's weights are exactly the single-output weights for the same options.
    x, y_a, y_b, tables = heads
    two = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}))
    _, _, weights = one_batch(two, tables, method="weight", scheme={"a": "effective_number"},
                              target={"b": "original"})
    _, _, alone_a = one_batch(tf.data.Dataset.from_tensor_slices((x, y_a)), tables["a"], method="weight",
                              scheme="effective_number")
    np.testing.assert_allclose(weights["a"], alone_a, rtol=1e-6)
    np.testing.assert_allclose(weights["b"], np.ones(N), rtol=1e-6)  # q = p: weight 1
    _, _, shared = one_batch(two, tables, method="weight", target=0.5)  # one value for every head
    for head, y in (("a", y_a), ("b", y_b)):
        _, _, alone = one_batch(tf.data.Dataset.from_tensor_slices((x, y)), tables[head], method="weight",
                                target=0.5)
        np.testing.assert_allclose(shared[head], alone, rtol=1e-6)


def test_a_multilabel_head_takes_its_own_scheme(heads):
    x, y_a, _, tables = heads
    rows = np.stack([y_a, 1 - y_a, (np.arange(N) % 4 == 0)], axis=1).astype(np.float32)
    table_m = WeightTable.from_labels(rows, task="multilabel")
    ds = tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "m": rows}))
    _, _, weights = one_batch(ds, {"a": tables["a"], "m": table_m}, method="weight", scheme={"m": "pos_weight"})
    pos, neg = table_m.label_weights("pos_weight")
    np.testing.assert_allclose(weights["m"], rows * pos + (1 - rows) * neg, rtol=1e-6)
    np.testing.assert_allclose(weights["a"], tables["a"].class_weights("balanced")[y_a], rtol=1e-6)


def test_existing_weights_combine_as_for_one_output(heads):
    x, y_a, y_b, tables = heads
    w = np.linspace(0.5, 1.5, N).astype(np.float32)
    rows = np.stack([y_a, 1 - y_a], axis=1).astype(np.float32)
    table_m = WeightTable.from_labels(rows, task="multilabel")
    plain = one_batch(tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "m": rows})),
                      {"a": tables["a"], "m": table_m}, method="weight")[2]
    # One weight for every head; a (B,) weight times a multi-hot head's (B, L) weights gains an axis.
    shared = one_batch(tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "m": rows}, w)),
                       {"a": tables["a"], "m": table_m}, method="weight")[2]
    np.testing.assert_allclose(shared["a"], plain["a"] * w, rtol=1e-6)
    np.testing.assert_allclose(shared["m"], plain["m"] * w[:, None], rtol=1e-6)
    per_head = one_batch(tf.data.Dataset.from_tensor_slices((x, {"a": y_a, "b": y_b}, {"a": w, "b": 2 * w})),
                         {"a": tables["a"], "b": None}, method="weight")[2]
    np.testing.assert_allclose(per_head["a"], tables["a"].class_weights("balanced")[y_a] * w, rtol=1e-6)
    np.testing.assert_allclose(per_head["b"], 2 * w, rtol=1e-6)  # no table: weight 1 times its own


def test_dict_elements_name_each_heads_label(heads):
    x, y_a, y_b, tables = heads
    flat = tf.data.Dataset.from_tensor_slices({"x": x, "y_a": y_a, "y_b": y_b})
    features, labels, weights = next(iter(balance.rebalance(
        flat, tables, method="weight", batch_size=64, label={"a": "y_a", "b": lambda e: e["y_b"]})))
    assert set(features) == {"x", "y_b"} and set(labels) == set(weights) == {"a", "b"}
    np.testing.assert_array_equal(labels["a"], y_a[:64])
    np.testing.assert_allclose(weights["b"], tables["b"].class_weights("balanced")[y_b[:64]], rtol=1e-6)


@pytest.mark.parametrize("kwargs, match", [
    ({"target": {"z": "uniform"}}, r"`target`. Expected one value for all heads, or a mapping keyed by the heads"),
    ({"repeat_threshold": {"a": 0.1}}, r"`repeat_threshold\['a'\]`. Expected None for this head"),
    ({"repeat_threshold": 0.1}, "`repeat_threshold`. Expected None: no head uses it"),
    ({"scheme": {"b": "balanced"}, "target": {"b": "uniform"}}, r"`scheme`. Expected None when `target`.*head 'b'"),
    ({"label": "a"}, "`label`. Expected a mapping"),
    ({"label": {"c": "a"}}, r"`label`. Expected keys among the table keys.*No table for \['c'\]"),
])
def test_per_head_options_that_cannot_apply_are_refused(heads, kwargs, match):
    x, y_a, y_b, tables = heads
    flat = tf.data.Dataset.from_tensor_slices({"x": x, "a": y_a, "b": y_b})
    with pytest.raises(ValueError, match=match):
        balance.rebalance(flat, tables, method="both", seed=0, **kwargs)
