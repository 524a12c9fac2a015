"""Label shift at deployment: a model trained at 1:10 meets data at 10:1.

The class-conditional data stays the same; only the class mix moves (fraud
rates change, a new region has another mix). Without labels from the new
data, estimate its prior from the model's own predictions (EM; BBSE with a
labeled validation set at the training mix), then move the logits to it with
``losses.shift_logits``. The estimate also becomes a ``WeightTable`` marked
as estimated.

Run: python examples/label_shift.py [--smoke]
"""

import argparse
import json
import os
import tempfile

import keras
import numpy as np

import losses
from balance import WeightTable

MEANS = np.array([[0.0, 0.0, 0.0, 0.0], [1.75, 1.75, 1.75, 1.75]], "float32")
TRAIN_COUNTS = [2_000, 20_000]  # 1:10
DEPLOY_COUNTS = [10_000, 1_000]  # 10:1


def draw(rng, counts):
    y = np.repeat(np.arange(len(counts)), counts)
    x = (rng.standard_normal((len(y), MEANS.shape[1])) + MEANS[y]).astype("float32")
    order = rng.permutation(len(y))
    return x[order], y[order]


def resample(rng, x, y, counts):
    """Keeps counts[c] examples of each class c: the same p(x | y), another p(y)."""
    idx = np.concatenate([rng.choice(np.flatnonzero(y == c), n, replace=False) for c, n in enumerate(counts)])
    return x[idx], y[idx]


def train(x, y, epochs):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((MEANS.shape[1],)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2)]
    )
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=256, epochs=epochs, verbose=0)
    return model


def softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer examples and epochs (used by the tests)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(7)
    x, y = draw(rng, TRAIN_COUNTS)
    x_val, y_val = draw(rng, TRAIN_COUNTS)  # held out, same 1:10 mix
    pool_x, pool_y = draw(rng, [2 * max(DEPLOY_COUNTS)] * 2)
    x_new, y_new = resample(rng, pool_x, pool_y, DEPLOY_COUNTS)

    table = WeightTable.from_labels(y)  # the training table: prior 1:10
    model = train(x, y, epochs=2 if args.smoke else 8)
    z_val = model.predict(x_val, verbose=0, batch_size=4096)
    z_new = model.predict(x_new, verbose=0, batch_size=4096)
    truth = np.asarray(DEPLOY_COUNTS) / sum(DEPLOY_COUNTS)
    train_prior = np.round(table.prior().astype(float), 4).tolist()
    print(f"training prior {train_prior}, deployment prior {np.round(truth, 4).tolist()}")

    em = losses.estimate_prior_em(softmax(z_new), table)
    estimates = {
        "em": em,
        "bbse": losses.estimate_prior_bbse(z_new, y_val, z_val, from_logits=True),
        "bbse soft": losses.estimate_prior_bbse(z_new, y_val, z_val, from_logits=True, soft=True),
    }
    errors = {name: float(np.abs(shares - truth).sum()) for name, shares in estimates.items()}
    for name, shares in estimates.items():
        print(f"{name} estimate {np.round(shares, 4).tolist()}, L1 error {errors[name]:.4f}")

    def accuracy(logits):
        return float(np.mean(keras.ops.convert_to_numpy(logits).argmax(-1) == y_new))

    accuracies = {"uncorrected": accuracy(z_new)}
    for name, shares in {**estimates, "true prior": truth}.items():
        accuracies[name] = accuracy(losses.shift_logits(z_new, table, shares))
    print("accuracy at deployment: " + ", ".join(f"{k} {v:.4f}" for k, v in accuracies.items()))

    estimated = losses.estimated_table(em, len(y_new), method="em", like=table, inputs=["deployment predictions"])
    with tempfile.TemporaryDirectory() as tmp:
        reloaded = WeightTable.load(estimated.save(os.path.join(tmp, "deployment.json")))
    marked = json.dumps(reloaded.provenance["estimated"])
    print(f"estimated table {reloaded.counts.round(1).tolist()}, provenance {marked}")

    assert max(errors.values()) < 0.05, errors
    assert min(accuracies[name] for name in estimates) >= accuracies["uncorrected"], accuracies
    print(
        f"OK: every estimate within L1 0.05 of the deployment prior; shifting the logits lifts accuracy from "
        f"{accuracies['uncorrected']:.3f} to {accuracies['em']:.3f} (EM)"
    )


if __name__ == "__main__":
    main()
