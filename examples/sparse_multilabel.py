"""thirty sparse binary labels, noisy features.

About one positive per row (rate ~1/30), and the feature that reflects a
positive label fires only 10% of the time. Plain binary cross-entropy learns to
predict all zeros: high accuracy, terrible recall. The answer:

* per-label `pos_weight` (negatives/positives, ~29 here) from the table, in a
  numerically stable weighted sigmoid cross-entropy on logits;
* no sigmoid on the last layer;
* recall computed from logits.

The same weights can come from the tf.data layer instead of the loss:
`balance.attach_sample_weights(ds, table, scheme="pos_weight")` gives a (B, 30, 1)
per-label weight for labels shaped (B, 30, 1) (Keras's binary cross-entropy averages
over the last axis before applying sample_weight, hence the trailing axis).

Run: python examples/sparse_multilabel.py [--smoke]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import balance
import losses
from balance import WeightTable

NUM_LABELS = 30


def make_data(rng, n):
    """The user's generator: one positive per row, a feature that fires 10% of the time."""
    y = np.zeros((n, NUM_LABELS), dtype="float32")
    y[np.arange(n), rng.integers(0, NUM_LABELS, size=n)] = 1.0
    fires = rng.random((n, NUM_LABELS)) < 0.10
    sharp = 3.0 * y * fires + rng.normal(scale=0.5, size=(n, NUM_LABELS))
    weak = 0.8 * y + rng.normal(scale=1.0, size=(n, NUM_LABELS))  # a weaker, always-on cue
    return np.concatenate([sharp, weak], axis=1).astype("float32"), y


def train(data, loss, epochs, output_shape=(NUM_LABELS,)):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((2 * NUM_LABELS,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(NUM_LABELS),  # logits: no sigmoid, the loss and metric take logits
        keras.layers.Reshape(output_shape),
    ])
    model.compile(keras.optimizers.Adam(2e-3), loss,
                  metrics=[losses.Recall(from_logits=True, name="recall"),
                           losses.Precision(from_logits=True, name="precision")])
    model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # tf.data shuffles
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer epochs (used by the tests)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(3)
    x, y = make_data(rng, 6000)
    x_test, y_test = make_data(rng, 3000)
    epochs = 5 if args.smoke else 15

    table = WeightTable.from_labels(y.astype(int), task="multilabel")
    pos_weight = table.pos_weight()
    print(f"positives per label: {table.counts.min():.0f}..{table.counts.max():.0f} of "
          f"{table.num_examples:.0f}; pos_weight {pos_weight.min():.1f}..{pos_weight.max():.1f}")

    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    rows = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=0).batch(128)
    per_label = tf.data.Dataset.from_tensor_slices((x, y[..., None])).shuffle(len(y), seed=0).batch(128)
    runs = {  # name: (data, loss, output shape, test labels)
        "plain binary CE": (rows, bce, (NUM_LABELS,), y_test),
        "pos_weight loss": (rows, losses.WeightedBinaryCrossentropy.from_table(table, from_logits=True),
                            (NUM_LABELS,), y_test),
        "pos_weight via tf.data": (balance.attach_sample_weights(per_label, table, scheme="pos_weight"),
                                   bce, (NUM_LABELS, 1), y_test[..., None]),
    }
    results = {}
    for name, (data, loss, shape, labels) in runs.items():
        model = train(data, loss, epochs, shape)
        metrics = model.evaluate(x_test, labels, verbose=0, return_dict=True)
        results[name] = metrics["recall"]
        print(f"{name:<24} recall {metrics['recall']:.3f}  precision {metrics['precision']:.3f}")

    plain = results["plain binary CE"]
    assert results["pos_weight loss"] > plain + 0.2, results
    assert results["pos_weight via tf.data"] > plain + 0.2, results
    print(f"OK: recall rises from {plain:.3f} to {results['pos_weight loss']:.3f} with the table's "
          f"pos_weight in the loss, and to {results['pos_weight via tf.data']:.3f} with the same "
          "weights attached by tf.data.")
    return results


if __name__ == "__main__":
    main()
