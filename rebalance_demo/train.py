"""The demo's training comparison: one model, five ways to handle imbalance.

Every run reads the same TFRecord shards through tf.data, trains the same
architecture from the same initial weights for the same number of steps, and
is scored on the same test set.
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

import balance
import losses
from balance import WeightTable
from balance.report import pyplot, save_png
from rebalance_demo.data import DemoData

BATCH_SIZE = 256
NUM_RARE = 3  # "rarest classes" in the report: the three smallest


def _training_data(files, num_features, feature_key, label_key, seed) -> tf.data.Dataset:
    spec = {feature_key: tf.io.FixedLenFeature([num_features], tf.float32),
            label_key: tf.io.FixedLenFeature([], tf.int64)}
    return (tf.data.TFRecordDataset(list(files))
            .shuffle(20_000, seed=seed, reshuffle_each_iteration=True)
            .batch(BATCH_SIZE)
            .map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE)
            .map(lambda d: (d[feature_key], d[label_key])))


def _run_setups(dataset: tf.data.Dataset, table: WeightTable, seed: int) -> dict:
    """run name -> (training dataset, loss); the losses all take logits."""
    plain_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    return {
        "plain": (dataset, plain_loss),
        "class weights": (dataset, losses.WeightedSparseCategoricalCrossentropy.from_table(
            table, "balanced", from_logits=True)),
        "resample": (balance.rebalance(dataset, table, method="resample", target="uniform",
                                       seed=seed, batch_size=BATCH_SIZE), plain_loss),
        "both": (balance.rebalance(dataset, table, method="both", target="uniform",
                                   sampling_strength=0.5, seed=seed, batch_size=BATCH_SIZE), plain_loss),
        "logit-adjusted": (dataset, losses.LogitAdjustedSparseCategoricalCrossentropy.from_table(table)),
    }


def _model(num_features: int, num_classes: int, seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((num_features,)),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(num_classes),  # logits
    ])


def _score(model: keras.Model, data: DemoData, table: WeightTable) -> dict:
    k = table.num_classes
    logits = model.predict(data.x_test, batch_size=4096, verbose=0)
    y = data.y_test
    balanced = losses.BalancedAccuracy(k, from_logits=True)
    balanced.update_state(y, logits)
    per_class = losses.PerClassRecall(k, from_logits=True)
    per_class.update_state(y, logits)
    f1 = keras.metrics.F1Score(average="macro")
    pred = np.argmax(logits, axis=-1)
    f1.update_state(tf.one_hot(y, k), tf.one_hot(pred, k))
    recalls = np.asarray(per_class.result())
    rarest = np.argsort(table.counts, kind="stable")[:NUM_RARE]
    return {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float(balanced.result()),
        "macro_f1": float(f1.result()),
        "rare_recall": float(np.mean(recalls[rarest])),
        "per_class_recall": [float(r) for r in balance.per_class_recall(y, logits, k)],
    }


class _EpochTimer(keras.callbacks.Callback):
    """Epoch wall times, so throughput can leave out the first (tracing) epoch."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def compare_runs(data: DemoData, table: WeightTable, feature_key: str, label_key: str, *,
                 epochs: int, seed: int = 0, verbose: int = 2) -> dict:
    """Trains one model per run with an equal budget; returns ``{run: metrics}``."""
    num_features = data.x_train.shape[1]
    dataset = _training_data(data.train_files, num_features, feature_key, label_key, seed)
    steps = math.ceil(len(data.y_train) / BATCH_SIZE)
    results = {}
    for name, (train_data, loss) in _run_setups(dataset, table, seed).items():
        print(f"--- {name}", flush=True)
        model = _model(num_features, table.num_classes, seed)
        balance.check_model_outputs(model, table)
        model.compile(keras.optimizers.Adam(1e-3), loss)
        timer = _EpochTimer()
        model.fit(train_data.repeat(), epochs=epochs, steps_per_epoch=steps, verbose=verbose, shuffle=False,
                  callbacks=[timer])
        timed = timer.seconds[1:] or timer.seconds  # the first epoch includes tracing
        results[name] = {**_score(model, data, table),
                         "examples_per_second": len(timed) * steps * BATCH_SIZE / sum(timed)}
    return results


def results_table(results: dict) -> str:
    header = (f"{'run':<16}{'accuracy':>10}{'balanced acc':>14}{'macro-F1':>10}"
              f"{f'recall ({NUM_RARE} rarest)':>20}{'train ex/s':>12}")
    lines = [header, "-" * len(header)]
    for name, m in results.items():
        lines.append(f"{name:<16}{m['accuracy']:>10.3f}{m['balanced_accuracy']:>14.3f}{m['macro_f1']:>10.3f}"
                     f"{m['rare_recall']:>20.3f}{m['examples_per_second']:>12,.0f}")
    return "\n".join(lines)


def plot_results(results: dict, path: str) -> str:
    """A grouped bar chart of the metrics per run; returns ``path``.

    Raises:
      ImportError: when matplotlib is missing, naming the extra to install.
    """
    plt = pyplot()
    metrics = ("accuracy", "balanced_accuracy", "macro_f1", "rare_recall")
    names = list(results)
    width = 0.8 / len(names)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    for i, name in enumerate(names):
        values = [results[name][m] for m in metrics]
        ax.bar(np.arange(len(metrics)) + i * width, values, width, label=name)
    ax.set_xticks(np.arange(len(metrics)) + 0.4 - width / 2,
                  ["accuracy", "balanced accuracy", "macro-F1", f"recall ({NUM_RARE} rarest)"])
    ax.set_ylim(0, 1)
    ax.set_title("Same model, same budget, five ways to handle a 1:100 long tail")
    ax.legend(loc="lower left", fontsize=8)
    return save_png(fig, path)
