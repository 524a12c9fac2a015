"""Resampling and exact composition: achieved mixes, seeds, spreading, forms."""

import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable

N = 12000
SHARES = [0.75, 0.2, 0.05]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    y = rng.choice(3, size=N, p=SHARES).astype(np.int64)
    x = np.arange(N, dtype=np.int64)  # the example's id, to count copies
    return x, y, WeightTable.from_labels(y, class_names=["a", "b", "c"])


def collect(ds):
    """Concatenates (x, y[, w]) batches or elements into numpy arrays."""
    parts = list(ds.batch(4096).as_numpy_iterator()) if ds.element_spec[1].shape.rank == 0 else list(
        ds.as_numpy_iterator()
    )
    return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


def mix(y, w=None, k=3):
    totals = np.bincount(y, weights=w, minlength=k)
    return totals / totals.sum()


@pytest.mark.parametrize(
    "target, expected",
    [
        ("uniform", [1 / 3] * 3),
        ("original", SHARES),
        (0.5, np.sqrt(SHARES) / np.sqrt(SHARES).sum()),
        ({"a": 0.5, "b": 0.25, "c": 0.25}, [0.5, 0.25, 0.25]),
        ([0.0, 1.0, 1.0], [0.0, 0.5, 0.5]),
    ],
)
@pytest.mark.parametrize("batched", [False, True])
def test_achieved_mix_matches_target(data, target, expected, batched):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.batch(100) if batched else ds
    out = balance.resample(ds, table, target=target, seed=1, batch_size=64 if batched else None)
    _, ys = collect(out)
    np.testing.assert_allclose(mix(ys), expected, atol=0.02)
    assert abs(len(ys) - N) < 0.03 * N  # epoch size kept in expectation


@pytest.mark.parametrize("strength", [0.0, 0.5, 0.8])
def test_weighted_mix_under_both_equals_target(data, strength):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(128)
    out = balance.rebalance(ds, table, target=[0.2, 0.3, 0.5], sampling_strength=strength, seed=3,
                            batch_size=128)
    _, ys, ws = collect(out)
    plan = balance.sampling_plan(table, [0.2, 0.3, 0.5], sampling_strength=strength)
    np.testing.assert_allclose(mix(ys), plan.sampled, atol=0.02)
    np.testing.assert_allclose(mix(ys, ws), [0.2, 0.3, 0.5], atol=0.02)
    assert ws.mean() == pytest.approx(1.0, abs=0.05)  # mean one per example


def test_weights_only_leaves_data_alone(data):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices({"pixels": x, "label": y}).batch(256)
    batches = list(balance.rebalance(ds, table, method="weight").as_numpy_iterator())
    assert set(batches[0][0]) == {"pixels"}  # the label left the features
    ys, ws = np.concatenate([b[1] for b in batches]), np.concatenate([b[2] for b in batches])
    np.testing.assert_array_equal(ys, y)
    np.testing.assert_allclose(mix(ys, ws), [1 / 3] * 3, atol=1e-6)  # exact, no sampling noise


def test_dict_elements_keep_their_structure(data):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices({"id": x, "label": y})
    out = balance.resample(ds, table, seed=0)
    assert set(out.element_spec) == {"id", "label"}
    ids, labels = [], []
    for e in out.batch(4096).as_numpy_iterator():
        ids.append(e["id"])
        labels.append(e["label"])
    ids, labels = np.concatenate(ids), np.concatenate(labels)
    np.testing.assert_array_equal(y[ids], labels)  # features travel with their label
    np.testing.assert_allclose(mix(labels), [1 / 3] * 3, atol=0.02)


def test_same_seed_same_stream_new_draw_each_epoch(data):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    first = balance.resample(ds, table, seed=7, mixing_window=2048)
    again = balance.resample(ds, table, seed=7, mixing_window=2048)
    other = balance.resample(ds, table, seed=8, mixing_window=2048)
    epoch1, epoch2 = collect(first)[0], collect(first)[0]
    np.testing.assert_array_equal(epoch1, collect(again)[0])
    assert not np.array_equal(epoch1, collect(other)[0])
    assert not np.array_equal(epoch1, epoch2)  # a new iteration draws afresh
    fixed = balance.resample(ds, table, seed=7, redraw_each_epoch=False)
    np.testing.assert_array_equal(collect(fixed)[0], collect(fixed)[0])
    two = collect(balance.resample(ds, table, seed=7).repeat(2))[0]
    assert not np.array_equal(two[: len(two) // 2], two[len(two) // 2:])


def test_duplicates_are_spread_across_batches():
    # One rare class with factor ~50: its copies must not pile up in one batch.
    y = np.array([0] * 5000 + [1] * 20, dtype=np.int64)
    table = WeightTable.from_labels(y)
    ds = tf.data.Dataset.from_tensor_slices((np.arange(len(y)), y)).shuffle(len(y), seed=0)
    out = balance.resample(ds, table, target=[0.8, 0.2], seed=0, mixing_window=2510).batch(64)
    worst, copies = 0, []
    for xs, _ in out.as_numpy_iterator():
        counts = np.bincount(xs, minlength=len(y))
        worst = max(worst, counts.max())
        copies.append(counts)
    total = np.sum(copies, axis=0)
    assert total[5000:].mean() == pytest.approx(0.2 * 5020 / 20, rel=0.1)  # about 50 copies each
    # ~50 copies over a 4096-example window: about 50 * 64 / 4096 < 1 per batch.
    assert worst <= 3


def test_keep_all_never_drops_an_example(data):
    x, y, table = data
    out = balance.resample(tf.data.Dataset.from_tensor_slices((x, y)), table, epoch_size="keep_all", seed=0)
    xs, _ = collect(out)
    assert set(xs.tolist()) == set(x.tolist())
    plan = balance.sampling_plan(table, epoch_size="keep_all")
    assert len(xs) == pytest.approx(plan.expected_epoch_size, rel=0.03)


@pytest.mark.parametrize("form", ["one_hot", "string", "binary_column"])
def test_other_label_forms_resample(form):
    rng = np.random.default_rng(1)
    ids = rng.choice(2, size=6000, p=[0.9, 0.1])
    if form == "one_hot":
        labels, table = np.eye(2, dtype=np.float32)[ids], WeightTable.from_labels(ids)
    elif form == "string":
        labels = np.array(["neg", "pos"])[ids]
        table = WeightTable.from_labels(labels, class_names=["neg", "pos"])
    else:
        labels = ids.astype(np.float32)[:, None]  # (N, 1), as for a sigmoid output
        table = WeightTable.from_labels(ids, task="binary")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((6000, 2), np.float32), labels)).batch(50)
    out = balance.rebalance(ds, table, method="resample", seed=0, batch_size=50)
    _, ys = collect(out)
    if form == "one_hot":
        ys = ys.argmax(-1)
    elif form == "string":
        ys = (ys == b"pos").astype(int)
    else:
        ys = ys[:, 0].astype(int)
    np.testing.assert_allclose(mix(ys, k=2), [0.5, 0.5], atol=0.02)


def test_multilabel_repeat_factor_sampling():
    rng = np.random.default_rng(2)
    rows = (rng.random((4000, 3)) < [0.5, 0.05, 0.01]).astype(np.float32)
    table = WeightTable.from_labels(rows, task="multilabel")
    ds = tf.data.Dataset.from_tensor_slices((np.arange(4000), rows)).batch(100)
    out = balance.rebalance(ds, table, method="resample", repeat_threshold=0.25, seed=0, batch_size=100)
    xs, _ = collect(out)
    plan = balance.sampling_plan(table, repeat_threshold=0.25, epoch_size="keep_all")
    factor = np.max(np.where(rows > 0, plan.factors, 1.0), axis=1)  # LVIS: max over positives
    copies = np.bincount(xs, minlength=4000)
    assert copies.sum() == pytest.approx(factor.sum(), rel=0.03)
    assert copies[factor > 4].mean() == pytest.approx(factor[factor > 4].mean(), rel=0.1)
    assert len(xs) <= plan.expected_epoch_size * 1.03
    with pytest.raises(ValueError, match="`method`. Expected 'resample' or 'weight'"):
        balance.rebalance(ds, table)


def test_sample_per_class(data):
    x, y, table = data
    full = tf.data.Dataset.from_tensor_slices((x, y))
    per_class = [full.filter(lambda _, label, c=c: label == c) for c in range(3)]
    out = balance.sample_per_class(per_class, table, target="uniform", seed=0, repeat=True)
    _, ys = collect(out.take(6000))
    np.testing.assert_allclose(mix(ys), [1 / 3] * 3, atol=0.02)
    # Without repeat, the epoch stops when the rarest class runs dry.
    short = collect(balance.sample_per_class(per_class, table, seed=0))[1]
    assert np.bincount(short, minlength=3)[2] == np.bincount(y)[2]
    assert len(short) < 4 * np.bincount(y)[2]
    rest = collect(balance.sample_per_class(per_class, table, seed=0, stop_on_empty_dataset=False))[1]
    assert len(rest) == N
    with pytest.raises(ValueError, match="3 datasets, one per class"):
        balance.sample_per_class(per_class[:2], table)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "both", "label_form": "dense"}, "Dense labels"),
        ({"method": "oversample"}, "`method`. Expected one of"),
        ({"method": "resample", "sampling_strength": 0.5}, "`sampling_strength`"),
        ({"mixing_window": 0}, "`mixing_window`. Expected a positive int"),
        ({"seed": "x"}, "`seed`"),
        ({"label": "target"}, "`label`"),
    ],
)
def test_bad_options_fail_before_data_flows(data, kwargs, match):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices({"x": x, "label": y})
    with pytest.raises(ValueError, match=match):
        balance.rebalance(ds, table, **kwargs)


def test_batched_input_without_static_size_needs_batch_size(data):
    x, y, table = data
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    with pytest.raises(ValueError, match="`batch_size`. Expected an int for batched input"):
        balance.resample(ds, table)
    static = balance.resample(tf.data.Dataset.from_tensor_slices((x, y)).batch(32, drop_remainder=True), table)
    assert static.element_spec[1].shape.as_list() == [None]
    assert max(b[1].shape[0] for b in static.as_numpy_iterator()) == 32


def test_unknown_label_stops_the_sampler():
    table = WeightTable.from_counts([10.0, 10.0])
    ds = tf.data.Dataset.from_tensor_slices((np.zeros(4), np.array([0, 1, 2, 1])))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"class ids in \[0, 2\)"):
        list(balance.resample(ds, table, seed=0).as_numpy_iterator())
    kept = list(balance.resample(ds, table, seed=0, on_unknown=0.0, target="original"))
    assert sorted(int(e[1]) for e in kept) == [0, 1, 1, 2]
