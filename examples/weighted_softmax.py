"""four imbalanced classes (198/436/710/272), softmax output.

`tf.nn.weighted_cross_entropy_with_logits` is the weighted *sigmoid* loss and
the wrong tool here. What the user needs, in a few lines each:

* a per-example weight gathered from the true label on the softmax CE;
* inverse-frequency weights, normalised to sum to 1 or to K;
* weights chosen by the *predicted* label instead;
* a full KxK cost matrix, and the Bayes (cost-minimising) decision.

Run: python examples/weighted_softmax.py [--smoke]
"""

import argparse

import keras
import numpy as np

import losses
from balance import WeightTable

COUNTS = [198, 436, 710, 272]


def make_data(counts, rng, separation=0.6):
    means = rng.normal(scale=separation, size=(len(counts), 8))
    y = np.repeat(np.arange(len(counts)), counts)
    x = (means[y] + rng.normal(size=(len(y), 8))).astype("float32")
    return x, y, means


def train(x, y, loss, epochs, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(4)])
    model.compile(keras.optimizers.Adam(3e-3), loss)
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0, shuffle=True)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer epochs (used by the tests)")
    args = parser.parse_args(argv)
    epochs = 15 if args.smoke else 40
    rng = np.random.default_rng(1)
    x, y, means = make_data(COUNTS, rng)
    # Evaluate on a class-balanced test set: balanced accuracy = plain accuracy there.
    x_test = (np.repeat(means, 500, axis=0) + rng.normal(size=(2000, 8))).astype("float32")
    y_test = np.repeat(np.arange(4), 500)

    table = WeightTable.from_labels(y)
    print("counts:", table.counts.astype(int).tolist())
    show = lambda w: [round(float(v), 4) for v in w]  # noqa: E731
    print("balanced weights:", show(table.class_weights("balanced")))
    print("inverse, sum to 1:", show(table.class_weights("inverse", normalize="sum_to_one")))
    print("inverse, sum to K:", show(table.class_weights("inverse", normalize="sum_to_num_classes")))

    runs = {
        "plain CE": keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        "weighted by true label": losses.WeightedSparseCategoricalCrossentropy.from_table(
            table, "balanced", from_logits=True),
        "weighted by predicted label": losses.WeightedSparseCategoricalCrossentropy.from_table(
            table, "balanced", weight_by="predicted", from_logits=True),
    }
    scores = {}
    for name, loss in runs.items():
        model = train(x, y, loss, epochs)
        pred = model.predict(x_test, verbose=0).argmax(-1)
        recalls = [float(np.mean(pred[y_test == c] == c)) for c in range(4)]
        scores[name] = (float(np.mean(recalls)), recalls[0])
        print(f"{name:<28} balanced accuracy {scores[name][0]:.3f}  per-class recall {np.round(recalls, 3).tolist()}")
        if name == "plain CE":
            plain_model = model

    # Cost matrix: missing class 0 (the rarest) costs 5, any other mistake 1.
    cost = np.ones((4, 4)) - np.eye(4)
    cost[0, 1:] = 5.0
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(plain_model.predict(x_test, verbose=0)))
    argmax_cost = cost[y_test, probs.argmax(-1)].mean()
    bayes_cost = cost[y_test, keras.ops.convert_to_numpy(losses.bayes_decision(probs, cost))].mean()
    print(f"mean cost per example: argmax {argmax_cost:.4f}, Bayes decision {bayes_cost:.4f}")

    (plain_bacc, plain_rare), (weighted_bacc, weighted_rare) = scores["plain CE"], scores["weighted by true label"]
    assert weighted_bacc > plain_bacc and weighted_rare > plain_rare + 0.05, scores
    assert bayes_cost < argmax_cost, (bayes_cost, argmax_cost)
    print("OK: the weighted softmax beats plain CE on balanced accuracy and on the rarest class's "
          "recall, and the Bayes decision lowers the expected cost.")
    return scores | {'argmax cost': argmax_cost, 'bayes cost': bayes_cost}


if __name__ == "__main__":
    main()
