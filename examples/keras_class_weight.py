"""Keras `class_weight` done right.

The traps, each answered in a line or two:

* sklearn's `compute_class_weight` returns an array; Keras wants a dict covering every class;
* one-hot labels (N, K);
* multi-hot rows, which Keras silently argmaxes;
* `class_weight='auto'`, never a valid value;
* other formulas: n/n_c, max/n_c, the log-smoothed rule with mu=0.15;
* per-timestep weights for sequence labels (B, T), where Keras's class_weight fails.

Run: python examples/keras_class_weight.py [--smoke]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf
from sklearn.utils.class_weight import compute_class_weight

import balance
from balance import WeightTable

ASKED_COUNTS = {0: 2813, 1: 78, 2: 2814, 3: 78, 4: 7914, 5: 248, 6: 7914, 7: 248}


def make_data(rng, counts=(3000, 600, 120, 40), dims=8, separation=0.7):
    means = rng.normal(scale=separation, size=(len(counts), dims))
    y = np.repeat(np.arange(len(counts)), counts)
    x = (means[y] + rng.normal(size=(len(y), dims))).astype("float32")
    y_test = np.repeat(np.arange(len(counts)), 300)
    x_test = (means[y_test] + rng.normal(size=(len(y_test), dims))).astype("float32")
    return x, y, x_test, y_test


def mlp(dims, k, seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential([keras.Input((dims,)), keras.layers.Dense(32, activation="relu"),
                             keras.layers.Dense(k)])


def balanced_accuracy(model, x, y):
    pred = model.predict(x, verbose=0).argmax(-1)
    return float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)]))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer epochs (used by the tests)")
    args = parser.parse_args(argv)
    epochs = 8 if args.smoke else 20
    rng = np.random.default_rng(2)
    x, y, x_test, y_test = make_data(rng)
    k = 4

    # 1. sklearn's array: Keras fails with "'numpy.ndarray' object has no attribute 'get'".
    # The table gives the same weights as the dict Keras wants, one entry per class.
    sk_weights = compute_class_weight("balanced", classes=np.arange(k), y=y)
    table = WeightTable.from_labels(y)
    class_weight = table.keras_class_weight("balanced")
    assert np.allclose(list(class_weight.values()), sk_weights, rtol=1e-6)
    print("class_weight (sklearn's balanced weights):", {c: round(w, 3) for c, w in class_weight.items()})

    scores = {}
    for name, weights in (("plain", None), ("class_weight (balanced)", class_weight)):
        model = mlp(x.shape[1], k)
        model.compile(keras.optimizers.Adam(3e-3),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, class_weight=weights)
        scores[name] = balanced_accuracy(model, x_test, y_test)
        print(f"{name:<24} balanced accuracy {scores[name]:.3f}")

    # 2. One-hot labels: count them directly, train with CategoricalCrossentropy.
    one_hot = keras.utils.to_categorical(y, k)
    one_hot_table = WeightTable.from_labels(one_hot)
    assert np.array_equal(one_hot_table.counts, table.counts)
    model = mlp(x.shape[1], k)
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    model.fit(x, one_hot, epochs=1, verbose=0, class_weight=one_hot_table.keras_class_weight())
    print("one-hot labels: same counts, same class_weight dict, model.fit runs")

    # 3. Multi-hot rows: refused, because Keras would silently use only the argmax label.
    multi_hot = np.array([[1, 0, 0, 0, 1, 0, 0], [0, 1, 0, 0, 0, 0, 0]])
    try:
        WeightTable.from_labels(multi_hot, task="multilabel").keras_class_weight()
        raise AssertionError("multi-hot class_weight must be refused")
    except ValueError as err:
        print("multi-hot refused:", err)

    # 4. 'auto' is refused with an explanation instead of failing deep inside Keras.
    try:
        table.keras_class_weight("auto")
        raise AssertionError("'auto' must be refused")
    except ValueError as err:
        print("'auto' refused:", err)

    # 5. The formulas users ask for, on the counts of the question.
    asked = WeightTable.from_counts(ASKED_COUNTS)
    n_over_count = asked.num_examples * asked.class_weights("inverse", normalize="none")
    log_smoothed = asked.keras_class_weight("log_smoothed", scheme_params={"mu": 0.15})
    print("n / n_c:       ", [round(float(w), 2) for w in n_over_count])
    print("max / n_c:     ", [round(float(w), 2) for w in asked.class_weights("max_over_count")])
    print("log-smoothed:  ", {c: round(w, 4) for c, w in log_smoothed.items()})
    assert {c: round(w, 4) for c, w in log_smoothed.items()} == {
        0: 1.0, 1: 3.7498, 2: 1.0, 3: 3.7498, 4: 1.0, 5: 2.5931, 6: 1.0, 7: 2.5931}

    # 6. Per-timestep weights for sequence labels (B, T): a weight map of the same shape.
    steps = 12
    tokens = rng.choice(3, size=(400, steps), p=[0.9, 0.08, 0.02])
    features = (np.eye(3)[tokens] + rng.normal(scale=1.0, size=(400, steps, 3))).astype("float32")
    seq_table = WeightTable.from_labels(tokens)
    seq_ds = tf.data.Dataset.from_tensor_slices((features, tokens)).batch(32)
    weighted = balance.attach_sample_weights(seq_ds, seq_table, scheme="balanced")
    _, _, weight_map = next(iter(weighted))
    assert weight_map.shape == (32, steps)
    seq_model = keras.Sequential([keras.Input((steps, 3)), keras.layers.Dense(16, activation="relu"),
                                  keras.layers.Dense(3)])
    seq_model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    seq_model.fit(weighted, epochs=1, verbose=0, shuffle=False)  # the dataset is the pipeline
    print(f"per-timestep weights: sample_weight of shape {tuple(weight_map.shape)}, model.fit runs")

    assert scores["class_weight (balanced)"] > scores["plain"] + 0.02, scores
    print("OK: class_weight from the table beats plain training on balanced accuracy.")
    return scores


if __name__ == "__main__":
    main()
