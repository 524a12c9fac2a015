"""Batches you can rely on: P classes x K examples, and every rare class in every batch.

200 classes, long-tailed at 1:100. Plain ``shuffle().batch(64)``:

* metric learning needs positives (another example of the anchor's class in
  the batch); in plain batches the examples of the 100 rarer classes almost
  never have one;
* long-tail training wants the rare classes present; most plain batches
  miss most of them.

``balance.pk_batches`` gives every batch 16 classes x 4 examples (3 positives
per anchor, every class equally often); ``balance.rare_class_batches`` puts 2
examples of each of the 5 rarest classes in every batch. Both stream from one
dataset; a short supervised training runs on the second.

Run: python examples/class_batches.py [--smoke]
"""

import argparse

import keras
import numpy as np
import tensorflow as tf

import balance
from balance import WeightTable
from balance.class_batches import rarest_classes

P, K, BATCH, RAREST, M = 16, 4, 64, 5, 2


def make_data(rng, n, classes=200, imbalance=100.0, dims=16):
    shares = imbalance ** (-np.arange(classes) / (classes - 1))
    y = rng.choice(classes, size=n, p=shares / shares.sum())
    y[:classes * K] = np.repeat(np.arange(classes), K)  # every class has at least K examples
    y = rng.permutation(y)
    means = rng.normal(size=(classes, dims))
    return (means[y] + rng.normal(size=(n, dims))).astype("float32"), y


def positives_per_anchor(labels):
    same = labels[:, None] == labels[None, :]
    return same.sum(1) - 1


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="less data (used by the tests)")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    x, y = make_data(rng, 20_000 if args.smoke else 100_000)
    table = WeightTable.from_labels(y, num_classes=200)
    rare = rarest_classes(table, RAREST)
    rarer_half = np.argsort(table.counts, kind="stable")[:100]
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    batches = 300

    plain = ds.shuffle(10_000, seed=0).repeat().batch(BATCH)
    pk = balance.pk_batches(ds.repeat(), table, classes_per_batch=P, examples_per_class=K, seed=0)
    with_rare = balance.rare_class_batches(ds.repeat(), table, batch_size=BATCH,
                                           rarest=RAREST, min_per_batch=M, seed=0)

    def stats(stream):
        rare_positive, rare_present, classes, class_counts = [], [], [], np.zeros(200)
        for _, labels in stream.take(batches).as_numpy_iterator():
            pos = positives_per_anchor(labels)
            rare_positive.extend(pos[np.isin(labels, rarer_half)] > 0)
            rare_present.append(all((labels == c).sum() >= M for c in rare))
            classes.append(len(np.unique(labels)))
            class_counts += np.bincount(labels, minlength=200)
        share = class_counts / class_counts.sum()
        return {"rarer classes' examples with a positive": float(np.mean(rare_positive)),
                "batches holding every rare class": float(np.mean(rare_present)),
                "classes per batch (min, max)": [min(classes), max(classes)],
                "L1 of the class mix to uniform": float(np.abs(share - 1 / 200).sum())}

    result = {"plain": stats(plain), "pk_batches": stats(pk), "rare_class_batches": stats(with_rare)}
    for name, numbers in result.items():
        print(name, numbers)

    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(200)])
    model.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(with_rare, epochs=1, steps_per_epoch=50 if args.smoke else len(y) // BATCH, verbose=0)
    result["fit loss"] = history.history["loss"][-1]
    assert result["pk_batches"]["classes per batch (min, max)"] == [P, P]
    assert result["rare_class_batches"]["batches holding every rare class"] == 1.0
    return result


if __name__ == "__main__":
    main()
