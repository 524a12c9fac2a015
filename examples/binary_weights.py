"""binary, 500k negatives vs 31k positives (scaled down 10x here).

A popular answer multiplies the *logits* by class weights. That is wrong:
log(sum_j exp(w * x_j)) is not w * log(sum_j exp(x_j)), so it is not the
weighted loss, and the network can partly undo it by learning other logits.
The correct approach multiplies each example's *loss* by its class's weight:
per-example weights gathered from the labels.

Run: python examples/binary_weights.py [--smoke]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import balance
from balance import WeightTable

NEGATIVES, POSITIVES = 50_000, 3_100


def make_data(rng, negatives, positives):
    y = np.concatenate([np.zeros(negatives, "int64"), np.ones(positives, "int64")])
    x = (rng.normal(size=(len(y), 6)) + 1.0 * y[:, None]).astype("float32")
    order = rng.permutation(len(y))
    return x[order], y[order]


class MultiplyLogits(keras.layers.Layer):
    """The wrong recipe: scale each class's logit by that class's weight."""

    def __init__(self, weights, **kwargs):
        super().__init__(**kwargs)
        self.class_weights = tf.constant(weights, tf.float32)

    def call(self, logits):
        return logits * self.class_weights


def model_with(head=None):
    keras.utils.set_random_seed(0)
    layers = [keras.Input((6,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    model = keras.Sequential(layers + ([head] if head else []))
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def positive_recall(model, x, y):
    pred = model.predict(x, verbose=0, batch_size=4096).argmax(-1)
    return float(np.mean(pred[y == 1] == 1)), float(np.mean(pred[y == 0] == 0))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer examples and epochs (used by the tests)")
    args = parser.parse_args(argv)
    scale = 4 if args.smoke else 1
    epochs = 3 if args.smoke else 5
    rng = np.random.default_rng(4)
    x, y = make_data(rng, NEGATIVES // scale, POSITIVES // scale)
    x_test, y_test = make_data(rng, 10_000, 10_000)

    table = WeightTable.from_labels(y, task="binary")
    weights = table.class_weights("balanced")
    print(f"counts {table.counts.astype(int).tolist()}, balanced weights {[round(float(w), 3) for w in weights]}, "
          f"pos_weight {table.pos_weight()[0]:.2f}")

    # The algebra: the loss of weight-multiplied logits is not the weighted loss.
    logits = tf.constant([[2.0, -1.0], [0.5, 1.5]])
    labels = tf.constant([1, 0])
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction=None)
    wrong = ce(labels, logits * weights).numpy()
    right = (tf.gather(weights, labels) * ce(labels, logits)).numpy()
    print(f"loss with multiplied logits {[round(float(v), 4) for v in wrong]} "
          f"vs weighted loss {[round(float(v), 4) for v in right]}")
    assert not np.allclose(wrong, right)

    dataset = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(y), seed=0).batch(256)
    runs = {
        "plain": (model_with(), dataset),
        "multiply the logits (wrong)": (model_with(MultiplyLogits(weights)), dataset),
        "per-example weights (right)": (model_with(), balance.attach_sample_weights(dataset, table)),
    }
    recalls = {}
    for name, (model, data) in runs.items():
        model.fit(data, epochs=epochs, verbose=0, shuffle=False)  # tf.data shuffles
        recalls[name] = positive_recall(model, x_test, y_test)
        print(f"{name:<28} recall on positives {recalls[name][0]:.3f}, on negatives {recalls[name][1]:.3f}")

    right_recall = recalls["per-example weights (right)"][0]
    assert right_recall > recalls["plain"][0] + 0.15, recalls
    assert right_recall > recalls["multiply the logits (wrong)"][0] + 0.15, recalls
    print("OK: per-example weights raise recall on the small class; multiplying the logits falls far short.")
    return recalls


if __name__ == "__main__":
    main()
