"""Rebalancing that changes during training, on the demo's data: ERM, the best fixed recipe, DRW,
progressive sigma and a recall-driven target, same model, steps and seeds.

Every run trains the demo's MLP (64-64, Adam 1e-3, batch 256) from the same initial weights for the
same number of steps on one `.repeat()`ed dataset, and is scored on the same long-tailed test set:

* ERM: the data as it is (shuffled).
* fixed weight: `balance.rebalance(method="weight")`, uniform target, i.e. "balanced" class weights
  (mean one per example); the best balanced accuracy in `make demo`.
* DRW: `LiveRebalancer(method="weight")` with `schedules.deferred_reweighting` (Cao et al. 2019):
  weights 1, then effective-number weights (Cui et al. 2019, beta 0.9999) for the last quarter.
* progressive sigma: `LiveRebalancer(method="both")`, sigma 0 -> 1 over training; the weighted mix
  is uniform at every sigma, the work moves from the weights to the sampler.
* recall-driven (CDB): `LiveRebalancer(method="weight")` with `RecallDrivenTarget` (Sinha et al.
  2020): after each epoch, class-wise difficulty-balanced weights w_c = (1 - recall_c)^tau from recall
  on a validation set (never the test set), tau dynamic; epoch 0 is plain, as CDB starts with equal
  weights. The target is q_c ∝ n_c w_c: CDB weights the data as it is.
* recall-driven, uniform base: the same weights on top of the class-balanced mix, q_c ∝ w_c (our
  combination, not the paper's); epoch 0 is class-balanced.

The data is the demo's (`rebalance_demo.data.make_demo_data`: 10 Gaussian blobs, 12,000 down to
120 examples, 16 features, separation 0.6, test set with the same tail), drawn here in memory by the same
functions with the same seed, plus a validation set (largest class 2,000) drawn around the
same class means.

Run: python examples/live_rebalancing.py [--smoke] [--epochs 12] [--seeds 0,1,2]
"""

import argparse
import math

import keras
import numpy as np
import tensorflow as tf

import balance
from balance import WeightTable, schedules
from balance.live_callbacks import RecallDrivenTarget, Schedule
from rebalance_demo.data import long_tail_counts, sample_blobs

BATCH = 256
RUNS = ("ERM", "fixed weight", "DRW", "progressive sigma", "recall-driven (CDB)", "recall-driven, uniform base")


def demo_data(seed=0):
    """Train and test arrays as the demo draws them (same recipe, same seed), then a validation set."""
    rng = np.random.default_rng(seed)
    blobs = dict(num_features=16, separation=0.6, rng=rng)
    x, y, means = sample_blobs(long_tail_counts(10, 12000, 100.0), **blobs)
    x_test, y_test, _ = sample_blobs(long_tail_counts(10, 5000, 100.0), means=means, **blobs)
    x_val, y_val, _ = sample_blobs(long_tail_counts(10, 2000, 100.0), means=means, **blobs)
    return x, y, x_test, y_test, x_val, y_val


def model_for(seed, num_features, k):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((num_features,)), keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(64, activation="relu"), keras.layers.Dense(k)])
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train(run, data, table, seed, epochs):
    x, y, _, _, x_val, y_val = data
    source = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=seed, reshuffle_each_iteration=True)
    steps = math.ceil(len(y) / BATCH)
    callbacks = []
    if run == "ERM":
        train_data = source.batch(BATCH)
    elif run == "fixed weight":
        train_data = balance.rebalance(source, table, method="weight", batch_size=BATCH)
    elif run == "DRW":
        live = balance.LiveRebalancer(source, table, method="weight", target="original", batch_size=BATCH)
        drw = schedules.deferred_reweighting(epochs - max(1, epochs // 4), "effective_number",
                                             scheme_params={"beta": 0.9999})
        train_data, callbacks = live.dataset, [Schedule(live, drw)]
    elif run == "progressive sigma":
        live = balance.LiveRebalancer(source, table, method="both", sampling_strength=0.0, batch_size=BATCH,
                                      seed=seed, mixing_window=2048)
        train_data, callbacks = live.dataset, [Schedule(live, schedules.progressive_strength(0, epochs - 1))]
    else:
        base = "original" if run == "recall-driven (CDB)" else "uniform"
        live = balance.LiveRebalancer(source, table, method="weight", target=base, batch_size=BATCH)
        train_data, callbacks = live.dataset, [RecallDrivenTarget(live, (x_val, y_val), base=base)]
    model = model_for(seed, x.shape[1], table.num_classes)
    model.fit(train_data.repeat(), epochs=epochs, steps_per_epoch=steps, callbacks=callbacks, verbose=0)
    return model


def score(model, data, table):
    _, _, x_test, y_test, _, _ = data
    recall = balance.per_class_recall(y_test, model.predict(x_test, batch_size=4096, verbose=0),
                                      table.num_classes)
    rarest = np.argsort(table.counts, kind="stable")[:3]
    return float(np.nanmean(recall)), float(np.mean(recall[rarest]))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="one seed, 6 epochs (used by the tests)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args(argv)
    epochs, seeds = (6, [0]) if args.smoke else (args.epochs, [int(s) for s in args.seeds.split(",")])
    data = demo_data()
    table = WeightTable.from_labels(data[1])
    results = {run: [] for run in RUNS}
    for seed in seeds:
        for run in RUNS:
            results[run].append(score(train(run, data, table, seed, epochs), data, table))
    steps = math.ceil(len(data[1]) / BATCH)
    print(f"{len(data[1]):,} training examples, {table.num_classes} classes at 1:100; {epochs} epochs of "
          f"{steps} steps (batch {BATCH}); seeds {seeds}; mean ± std over seeds")
    print(f"{'run':<30}{'balanced acc':>18}{'recall (3 rarest)':>22}")
    summary = {}
    for run, scores in results.items():
        scores = np.asarray(scores)
        mean, std = scores.mean(axis=0), scores.std(axis=0)
        summary[run] = [float(mean[0]), float(mean[1])]
        print(f"{run:<30}{mean[0]:>11.3f} ± {std[0]:.3f}{mean[1]:>15.3f} ± {std[1]:.3f}")
    return summary


if __name__ == "__main__":
    main()
