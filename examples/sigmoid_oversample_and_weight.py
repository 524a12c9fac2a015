"""sigmoid loss, 95% negatives vs 5% positives.

The user passed a *scalar* weight to the sigmoid loss and saw no change: a
scalar only rescales the loss, like the learning rate. What works:

* a class-dependent weight, here `pos_weight = negatives / positives` from the table;
* oversampling the rare class in tf.data;
* both together, *without overdoing it*. Oversampling to 50:50 and then also
  applying pos_weight = 19 trains at an effective 1:19 mix in the positives'
  favour and over-corrects. `balance.rebalance(method="both")` corrects the
  weights for what the sampler already did, so the weighted mix is exactly the
  target.

Run: python examples/sigmoid_oversample_and_weight.py [--smoke]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import balance
import losses
from balance import WeightTable

BATCH = 64


def make_data(rng, negatives, positives):
    y = np.concatenate([np.zeros(negatives), np.ones(positives)]).astype("int64")
    x = (rng.normal(size=(len(y), 4)) + 0.9 * y[:, None]).astype("float32")
    order = rng.permutation(len(y))
    return x[order], y[order]


def float_labels(*element):
    x, y, *rest = element
    return (x, tf.cast(y, tf.float32), *rest)


def weighted_positive_share(dataset, steps, loss_pos_weight=1.0):
    """Share of the total weight (sample weight x the loss's pos_weight) that positives carry."""
    totals = np.zeros(2)
    for _x, y, *w in dataset.take(steps):
        weight = w[0].numpy() if w else np.ones(len(y))
        totals += [weight[y.numpy() == 0].sum(), loss_pos_weight * weight[y.numpy() == 1].sum()]
    return totals[1] / totals.sum()


def train(dataset, loss, epochs, steps):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(1)])  # logits
    model.compile(keras.optimizers.Adam(3e-3), loss)
    model.fit(dataset.map(float_labels), epochs=epochs, steps_per_epoch=steps, verbose=0, shuffle=False)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer epochs (used by the tests)")
    args = parser.parse_args(argv)
    epochs = 3 if args.smoke else 8
    rng = np.random.default_rng(5)
    x, y = make_data(rng, 9500, 500)
    x_test, y_test = make_data(rng, 5000, 5000)
    table = WeightTable.from_labels(y, task="binary")
    pos_weight = float(table.pos_weight()[0])
    print(f"counts {table.counts.astype(int).tolist()}, pos_weight {pos_weight:.1f}")

    # The pitfall: the same weight for both classes is a scalar in disguise.
    try:
        losses.WeightedBinaryCrossentropy(pos_weight=2.0, neg_weight=2.0, from_logits=True)
        raise AssertionError("a scalar class weight must be refused")
    except ValueError as err:
        print("scalar weight refused:", err)

    source = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=0, reshuffle_each_iteration=True)
    plain_data = source.batch(BATCH).repeat()
    oversampled = balance.resample(source, table, target="uniform", seed=1).batch(BATCH).repeat()
    exact = balance.rebalance(source, table, method="both", target="uniform",
                              sampling_strength=0.5, seed=1).batch(BATCH).repeat()
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    weighted_bce = losses.WeightedBinaryCrossentropy.from_table(table, from_logits=True)
    naive_pos = lambda *e: (e[0], e[1], tf.where(e[1] == 1, pos_weight, 1.0))  # noqa: E731
    runs = {  # name: (data, loss, the loss's own weight on positives)
        "plain": (plain_data, bce, 1.0),
        "pos_weight": (plain_data, weighted_bce, pos_weight),
        "oversample to 50:50": (oversampled, bce, 1.0),
        "oversample + pos_weight (naive)": (oversampled.map(naive_pos), bce, 1.0),
        "rebalance both (exact)": (exact, bce, 1.0),
    }
    steps = len(y) // BATCH
    results = {}
    for name, (data, loss, loss_pos_weight) in runs.items():
        share = weighted_positive_share(data, 40, loss_pos_weight)
        model = train(data, loss, epochs, steps)
        pred = model.predict(x_test, verbose=0, batch_size=2048)[:, 0] > 0
        recall_pos, recall_neg = pred[y_test == 1].mean(), (~pred[y_test == 0]).mean()
        results[name] = (share, recall_pos, recall_neg)
        print(f"{name:<32} positives' share of the weighted mix {share:.2f}   "
              f"recall: positives {recall_pos:.3f}, negatives {recall_neg:.3f}")

    naive, exact_run, plain = (results[k] for k in ("oversample + pos_weight (naive)",
                                                    "rebalance both (exact)", "plain"))
    assert abs(exact_run[0] - 0.5) < 0.08, results    # exact composition hits the 50:50 target
    assert naive[0] > 0.85, results                    # the naive combination trains at ~95:5 reversed
    assert exact_run[1] > plain[1] + 0.2, results      # rebalancing finds the positives
    assert naive[2] < exact_run[2] - 0.1, results      # and over-correcting loses the negatives
    print("OK: the exact composition hits the target mix; the naive combination over-corrects.")
    return results


if __name__ == "__main__":
    main()
