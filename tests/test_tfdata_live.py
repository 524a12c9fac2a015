"""The live rebalancer: a change reaches the running stream (same iterator) within the documented lag."""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest
import tensorflow as tf

import balance
from balance import WeightTable, schedules
from balance.errors import InvalidArgumentError
from balance.live_callbacks import RecallDrivenTarget, Schedule

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RNG = np.random.default_rng(0)
N = 40_000
Y = RNG.choice(4, N, p=[0.6, 0.25, 0.1, 0.05])
IDS = np.arange(N, dtype=np.float32)[:, None]
TABLE = WeightTable.from_labels(Y)
NEW = [0.1, 0.2, 0.3, 0.4]


def take(iterator, count, head=None):
    """The next ``count`` examples' labels and weights (1 without weights)."""
    ys, ws, got = [], [], 0
    while got < count:
        element = next(iterator)
        y = element[1] if head is None else element[1][head]
        w = element[2] if len(element) == 3 else None
        w = w if w is None or head is None else w[head]
        ys.append(y.numpy().reshape(-1))
        ws.append(np.ones(len(ys[-1])) if w is None else w.numpy().reshape(-1))
        got += len(ys[-1])
    return np.concatenate(ys)[:count], np.concatenate(ws)[:count]


def l1(y, w, want):
    mix = np.bincount(y, weights=w, minlength=len(want))
    return float(np.abs(mix / mix.sum() - np.asarray(want)).sum())


def lag_of(y, w, plan):
    """Examples before the last one still weighted by another setting."""
    stale = ~np.isclose(w, plan.weights[y].astype(np.float32), rtol=1e-5)
    return int(np.flatnonzero(stale).max()) + 1 if stale.any() else 0


@pytest.mark.parametrize("method", ["both", "resample", "weight"])
def test_a_change_reaches_the_next_pass_on_the_same_iterator(method):
    # The lag is at most max_lag_examples (here 4 blocks of 250 on 2 cores, 2.5% of a pass).
    sampler = {"mixing_window": 256} if method == "weight" else {"seed": 0, "mixing_window": 256}
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method=method,
                                  batch_size=256, **sampler)
    iterator = iter(live.dataset.repeat())
    y, w = take(iterator, N)
    start = live.plans[0]
    assert l1(y, w, start.sampled if method == "resample" else start.target) < 0.02
    time.sleep(0.3)  # let the pipeline fill its buffers: the lag is then at its largest
    plan = live.update(target=NEW, **({"sampling_strength": 0.8} if method == "both" else {}))[0]
    y, w = take(iterator, N)  # the next pass, on the same iterator
    want = plan.sampled if method == "resample" else plan.target
    assert l1(y, w, want) < 0.02, (method, l1(y, w, want))
    bound = live.max_lag_examples
    assert l1(y[bound:], w[bound:], want) < 0.02
    if method != "resample":  # the weights say which setting each example came from
        assert lag_of(y, w, plan) <= bound
        np.testing.assert_allclose(w[bound:].mean(), 1.0, atol=0.02)  # mean one per example


def test_both_is_exact_at_every_strength_and_blocks_never_mix_settings():
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="both",
                                  target=NEW, batch_size=256, seed=1, mixing_window=1024)
    iterator = iter(live.dataset.repeat())
    previous = live.plans[0]
    for sigma in (0.0, 0.3, 0.7, 1.0):
        plan = live.update(sampling_strength=sigma)[0]
        y, w = take(iterator, N)
        lag = lag_of(y, w, plan)
        assert lag <= live.max_lag_examples
        old = np.isclose(w[:lag], previous.weights[y[:lag]].astype(np.float32), rtol=1e-5)
        new = np.isclose(w[:lag], plan.weights[y[:lag]].astype(np.float32), rtol=1e-5)
        assert np.all(old | new)  # every example's weight belongs to one setting
        assert l1(y[lag:], w[lag:], NEW) < 0.02, sigma  # the weighted mix is the target at every sigma
        # the sampled (unweighted) mix follows s ∝ p^(1-sigma) q^sigma
        assert l1(y[lag:], np.ones(len(y) - lag), plan.sampled) < 0.02
        previous = plan


def test_batched_input_and_several_outputs():
    y_b = (Y * 7 + RNG.integers(0, 2, N)) % 3
    tables = {"a": TABLE, "b": WeightTable.from_labels(y_b)}
    ds = tf.data.Dataset.from_tensor_slices((IDS, {"a": Y, "b": y_b})).batch(128, drop_remainder=True)
    live = balance.LiveRebalancer(ds, tables, method="both", seed=0, mixing_window=1024, resample_on="a")
    iterator = iter(live.dataset.repeat())
    take(iterator, N, head="a")
    plans = live.update(target={"a": NEW, "b": "original"}, sampling_strength=0.3)
    y, w = take(iterator, N, head="a")
    lag = lag_of(y, w, plans[0])
    assert lag <= live.max_lag_examples
    assert l1(y[lag:], w[lag:], NEW) < 0.02
    assert next(iterator)[0].shape[0] == 128  # batched input keeps its batch size
    _, w_b = take(iterator, 1000, head="b")
    np.testing.assert_allclose(w_b, 1.0)  # head b's target is now its own mix: weight 1


def test_update_is_checked_before_anything_changes():
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="both", seed=0)
    before = live.variable.numpy().copy()
    with pytest.raises(InvalidArgumentError, match="sampling_strength"):
        live.update(sampling_strength=1.5)
    with pytest.raises(InvalidArgumentError, match="target"):
        live.update(target=[1.0, 2.0])
    np.testing.assert_array_equal(live.variable.numpy(), before)
    assert live.setting.sampling_strength == 0.5
    weight = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="weight")
    with pytest.raises(InvalidArgumentError, match="sampling_strength"):
        weight.update(sampling_strength=0.5)
    with pytest.raises(InvalidArgumentError, match="seed"):
        balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="weight", seed=0)
    multi = WeightTable.from_labels((RNG.random((100, 3)) < 0.3).astype("float32"), task="multilabel")
    with pytest.raises(InvalidArgumentError, match="multilabel"):
        balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS[:100], np.zeros((100, 3)))), multi)


def test_schedules_as_functions():
    drw = schedules.deferred_reweighting(3, "effective_number", scheme_params={"beta": 0.999})
    assert drw(2) == {"target": "original"}
    assert drw(3) == {"scheme": "effective_number", "scheme_params": {"beta": 0.999}}
    ramp = schedules.progressive_strength(2, 6)
    assert [ramp(e)["sampling_strength"] for e in (0, 2, 4, 6, 9)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    pb = schedules.progressive_target(TABLE, 0, 4)
    np.testing.assert_allclose(pb(2)["target"], 0.5 * TABLE.prior() + 0.5 * np.full(4, 0.25))
    # DRW with method="weight": weights 1, then the scheme's weights normalised to mean one per example.
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="weight")
    np.testing.assert_allclose(live.update(**drw(0))[0].weights, 1.0)
    weights = live.update(**drw(5))[0].weights
    cb = TABLE.class_weights("effective_number", beta=0.999)
    np.testing.assert_allclose(weights / weights[0], cb / cb[0], rtol=1e-6)
    np.testing.assert_allclose(np.dot(TABLE.prior(), weights), 1.0)


def test_difficulty_target_is_cdb():
    recall = np.array([0.9, 0.6, 0.3, 0.5])
    d = 1 - recall
    np.testing.assert_allclose(schedules.difficulty_target(TABLE, recall, tau=2.0),
                               TABLE.counts * d**2 / np.sum(TABLE.counts * d**2))
    tau = 1 / (1 + np.exp(-(1 - d.min()) / (1 - d.max() + 0.01)))  # CDB's dynamic tau
    np.testing.assert_allclose(schedules.difficulty_target(TABLE, recall),
                               TABLE.counts * d**tau / np.sum(TABLE.counts * d**tau))
    assert schedules.difficulty_target(TABLE, [1.0, 1.0, 1.0, 0.0], tau=1.0).min() > 0  # the floor keeps classes
    on_uniform = schedules.difficulty_target(TABLE, recall, tau=1.0, base="uniform")
    np.testing.assert_allclose(on_uniform, d / d.sum())
    with pytest.raises(InvalidArgumentError, match="recall"):
        schedules.difficulty_target(TABLE, [0.5, 0.5])


def small_model():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(4)])
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def test_callbacks_drive_fit_on_one_repeated_dataset():
    x = (Y[:, None] + RNG.normal(size=(N, 1))).astype("float32")
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((x, Y)), TABLE, method="both",
                                  sampling_strength=0.0, batch_size=256, seed=0)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(live.setting.sampling_strength)

    ramp = Schedule(live, schedules.progressive_strength(0, 2))
    recall = RecallDrivenTarget(live, (x[:4000], Y[:4000]), tau=1.0)
    model = small_model()
    model.fit(live.dataset.repeat(), epochs=3, steps_per_epoch=20, callbacks=[ramp, recall, Record()], verbose=0)
    assert seen == [0.0, 0.5, 1.0]
    assert [e for e, _ in ramp.applied] == [0, 1, 2]
    next_epoch, measured, target = recall.history[-1]
    assert next_epoch == 3
    np.testing.assert_allclose(measured, balance.per_class_recall(Y[:4000], model.predict(x[:4000], verbose=0), 4))
    np.testing.assert_allclose(live.plans[0].target, schedules.difficulty_target(TABLE, measured, tau=1.0))


def test_a_schedule_every_n_steps_gets_the_fractional_epoch():
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((IDS, Y)), TABLE, method="resample",
                                  batch_size=256, seed=0)
    ramp = Schedule(live, sampling_strength=lambda e: min(1.0, e / 2), every_steps=5)
    small_model().fit(live.dataset.repeat(), epochs=2, steps_per_epoch=10, callbacks=[ramp], verbose=0)
    assert [e for e, _ in ramp.applied] == [0, 0.5, 1, 1.5]
    assert live.setting.sampling_strength == 0.75


def test_a_resumed_run_continues_the_schedule(tmp_path):
    x = (Y[:, None] + RNG.normal(size=(N, 1))).astype("float32")
    validation = (x[:4000], Y[:4000])

    class Stop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:
                raise RuntimeError("interrupted")

    def run(extra):
        live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((x, Y)), TABLE, method="both",
                                      batch_size=256, seed=0)
        ramp = Schedule(live, sampling_strength=lambda e: min(1.0, e / 4))
        recall = RecallDrivenTarget(live, validation, tau=1.0)
        model = small_model()
        backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
        try:
            model.fit(live.dataset.repeat(), epochs=4, steps_per_epoch=10, verbose=0,
                      callbacks=[*extra, backup, ramp, recall])
        except RuntimeError:
            pass
        return ramp, recall

    first_ramp, first_recall = run([Stop()])
    ramp, recall = run([])
    assert [e for e, _ in first_ramp.applied] == [0, 1] and [e for e, _ in ramp.applied] == [2, 3]
    assert ramp.applied[0][1] == {"sampling_strength": 0.5}
    # Before resumed epoch 2 the restored model is measured: the target the interrupted run set for epoch 2.
    resumed_epoch, _, resumed_target = recall.history[0]
    interrupted = dict((e, q) for e, _, q in first_recall.history)
    assert resumed_epoch == 2
    np.testing.assert_allclose(resumed_target, interrupted[2], rtol=1e-5)


MIRRORED = textwrap.dedent(
    """
    import json, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, balance
    from balance.live_callbacks import Schedule

    rng = np.random.default_rng(0)
    y = rng.choice(3, size=8000, p=[0.8, 0.15, 0.05])
    x = rng.normal(y[:, None], 1.0, size=(8000, 4)).astype("float32")
    table = balance.WeightTable.from_labels(y)
    live = balance.LiveRebalancer(tf.data.Dataset.from_tensor_slices((x, y)), table, method="both",
                                  sampling_strength=0.0, batch_size=64, seed=0, mixing_window=1024)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with strategy.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(live.dataset.repeat(), epochs=3, steps_per_epoch=20, verbose=0,
                        callbacks=[Schedule(live, sampling_strength=lambda e: e / 2)])
    plan = live.plans[0]
    ys, ws = [], []
    for batch in strategy.experimental_distribute_dataset(live.dataset):
        ys += [p.numpy() for p in strategy.experimental_local_results(batch[1])]
        ws += [p.numpy() for p in strategy.experimental_local_results(batch[2])]
    y, w = np.concatenate(ys), np.concatenate(ws)
    mix = np.bincount(y, weights=w, minlength=3)
    json.dump({"loss": history.history["loss"], "sigma": live.setting.sampling_strength,
               "l1": float(np.abs(mix / mix.sum() - plan.target).sum()),
               "weights_are_new": bool(np.allclose(w, plan.weights[y]))}, sys.stdout)
    """
)


def test_mirrored_strategy():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-c", MIRRORED], capture_output=True, text=True, env=env,
                            check=False, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert np.all(np.isfinite(out["loss"])) and out["sigma"] == 1.0
    assert out["weights_are_new"] and out["l1"] < 0.02
