"""Every loss: extreme logits, half precision, reductions with sample_weight,
and serialization (config round-trip and a saved ``.keras`` model)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import losses

RNG = np.random.default_rng(3)
K = 4
W = [2.0, 0.5, 1.0, 4.0]
COST = (1 - np.eye(K)) * np.array([1.0, 2.0, 5.0, 1.0])[:, None]
LOG_PRIOR = np.log([0.7, 0.2, 0.08, 0.02]).tolist()

# id -> (factory, label kind); every loss from logits.
CATALOG = {
    "weighted_sparse": (
        lambda **kw: losses.WeightedSparseCategoricalCrossentropy(W, from_logits=True, **kw),
        "sparse",
    ),
    "weighted_sparse_predicted": (
        lambda **kw: losses.WeightedSparseCategoricalCrossentropy(
            W, weight_by="predicted", from_logits=True, **kw
        ),
        "sparse",
    ),
    "weighted_categorical": (
        lambda **kw: losses.WeightedCategoricalCrossentropy(
            W, from_logits=True, label_smoothing=0.1, **kw
        ),
        "onehot",
    ),
    "weighted_binary": (
        lambda **kw: losses.WeightedBinaryCrossentropy(
            [3.0, 1.0, 9.0, 27.0], [1.0, 0.5, 1.0, 1.0], from_logits=True, **kw
        ),
        "multilabel",
    ),
    "cost_argmax": (
        lambda **kw: losses.CostSensitiveCategoricalCrossentropy(
            COST + np.eye(K), mode="argmax_weight", from_logits=True, **kw
        ),
        "onehot",
    ),
    "cost_expected": (
        lambda **kw: losses.CostSensitiveCategoricalCrossentropy(
            COST, mode="expected_cost", from_logits=True, ce_weight=1.0, **kw
        ),
        "sparse",
    ),
    "focal_sparse": (
        lambda **kw: losses.SparseCategoricalFocalCrossentropy(W, 2.0, from_logits=True, **kw),
        "sparse",
    ),
    "focal_categorical": (
        lambda **kw: losses.CategoricalFocalCrossentropy(W, 2.0, from_logits=True, **kw),
        "onehot",
    ),
    "focal_binary": (
        lambda **kw: losses.BinaryFocalCrossentropy(
            [0.25, 0.5, 0.75, 0.9], 2.0, from_logits=True, **kw
        ),
        "multilabel",
    ),
    "logit_adjusted": (
        lambda **kw: losses.LogitAdjustedSparseCategoricalCrossentropy(LOG_PRIOR, 1.0, **kw),
        "sparse",
    ),
    "ldam": (
        lambda **kw: losses.LDAMLoss([700, 200, 80, 20], 0.5, 30.0, class_weights=W, **kw),
        "sparse",
    ),
}
IDS = sorted(CATALOG)


def _labels(kind, n=16):
    if kind == "multilabel":
        return (RNG.random((n, K)) < 0.3).astype(np.float32)
    ids = RNG.integers(0, K, n)
    return np.eye(K, dtype=np.float32)[ids] if kind == "onehot" else ids


def _value_and_grad(loss, y, z):
    z = tf.convert_to_tensor(z)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = loss(y, z)
    return value, tape.gradient(value, z)


@pytest.mark.parametrize("name", IDS)
def test_extreme_logits_give_finite_loss_and_gradient(name):
    factory, kind = CATALOG[name]
    y = _labels(kind, 32)
    z = (np.sign(RNG.standard_normal((32, K))) * 1e4).astype(np.float32)
    value, grad = _value_and_grad(factory(), y, z)
    assert np.isfinite(value.numpy()), value
    assert np.all(np.isfinite(grad.numpy()))
    assert np.any(grad.numpy() != 0)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("name", IDS)
def test_half_precision_is_close_to_float32_and_finite_at_large_logits(name, dtype):
    factory, kind = CATALOG[name]
    y = _labels(kind, 32)
    z = RNG.standard_normal((32, K)).astype(np.float32)
    reference = factory()(y, z).numpy()
    half = factory(dtype=dtype)
    value = half(y, tf.cast(z, half.dtype))
    assert value.dtype == half.dtype
    np.testing.assert_allclose(float(value), reference, rtol=3e-2, atol=1e-2)
    # Logits of +-50: per-example losses in the hundreds, whose batch sum still
    # fits float16 (max 65504); at +-1e4 the true loss itself would overflow.
    # LDAM expects cosine logits (|z| <= 1), which it multiplies by 30.
    large = tf.cast(np.sign(z) * (1.0 if name == "ldam" else 50.0), half.dtype)
    value, grad = _value_and_grad(half, y, large)
    assert np.isfinite(float(value)) and np.all(np.isfinite(tf.cast(grad, tf.float32).numpy()))


@pytest.mark.parametrize("name", IDS)
def test_reductions_compose_with_sample_weight(name):
    factory, kind = CATALOG[name]
    y = _labels(kind, 16)
    z = RNG.standard_normal((16, K)).astype(np.float32) * 3
    sw = RNG.random(16).astype(np.float32)
    per_example = factory(reduction=None)(y, z).numpy()
    assert per_example.shape == (16,)
    np.testing.assert_allclose(factory(reduction="none")(y, z, sw), per_example * sw, rtol=1e-5)
    np.testing.assert_allclose(
        factory(reduction="sum")(y, z, sw), (per_example * sw).sum(), rtol=1e-5
    )
    for reduction in ("sum_over_batch_size", "mean"):
        np.testing.assert_allclose(
            factory(reduction=reduction)(y, z, sw), (per_example * sw).mean(), rtol=1e-5
        )
    np.testing.assert_allclose(
        factory(reduction="mean_with_sample_weight")(y, z, sw),
        (per_example * sw).sum() / sw.sum(),
        rtol=1e-5,
    )
    np.testing.assert_allclose(factory()(y, z), per_example.mean(), rtol=1e-5)


@pytest.mark.parametrize("name", IDS)
def test_config_round_trip(name):
    factory, kind = CATALOG[name]
    loss = factory(reduction="sum", name="custom", dtype="float32")
    config = loss.get_config()
    clone = type(loss).from_config(config)
    assert clone.get_config() == config
    serialized = keras.losses.serialize(loss)
    assert serialized["registered_name"] == f"tf_rebalance>{type(loss).__name__}"
    restored = keras.losses.deserialize(serialized)
    assert type(restored) is type(loss) and restored.get_config() == config
    y, z = _labels(kind), RNG.standard_normal((16, K)).astype(np.float32)
    np.testing.assert_allclose(restored(y, z), loss(y, z), rtol=1e-6)


@pytest.mark.parametrize("name", IDS)
def test_saved_keras_model_reloads_with_the_same_loss(name, tmp_path):
    factory, kind = CATALOG[name]
    loss = factory()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(K)])
    model.compile(optimizer="sgd", loss=loss)
    x = RNG.standard_normal((32, 6)).astype(np.float32)
    y = _labels(kind, 32)
    before = model.evaluate(x, y, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert type(reloaded.loss) is type(loss)
    assert reloaded.loss.get_config() == loss.get_config()
    np.testing.assert_allclose(reloaded.evaluate(x, y, verbose=0), before, rtol=1e-6)


def test_trains_under_mixed_float16_policy():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(K)]
        )
        model.compile(
            optimizer="adam",
            loss=losses.WeightedSparseCategoricalCrossentropy(W, from_logits=True),
            metrics=[losses.BalancedAccuracy(K)],
        )
        x = RNG.standard_normal((256, 6)).astype(np.float32)
        y = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0)
        history = model.fit(x, y, epochs=5, batch_size=32, verbose=0).history
    finally:
        keras.config.set_dtype_policy(previous)
    assert np.all(np.isfinite(history["loss"]))
    assert history["loss"][-1] < history["loss"][0]
