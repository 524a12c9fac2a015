"""One worker of the two-process MultiWorkerMirroredStrategy test (run by
tests/test_workers.py with TF_CONFIG set). Writes what it saw to argv[1]."""

import json
import sys

import numpy as np
import tensorflow as tf

import balance

import keras


class MultiWorkerSequential(keras.Sequential):
    """Two fixes for Keras 3's model.fit under MultiWorkerMirroredStrategy
    (keras-team/keras#20585): Keras builds the model from the first batch
    reduced across workers, which the strategy refuses for a tuple (build it
    from this worker's batch), and averages each step's scalar logs over axis
    0 across workers, which has no axis 0 (give them one)."""

    def train_step(self, data):
        return {name: tf.reshape(value, [1]) for name, value in super().train_step(data).items()}

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and data_batch is None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0], next(batches))
                break
        super()._maybe_symbolic_build(data_batch=data_batch)

GLOBAL_BATCH = 256
FIT_STEPS = 5


def data():
    rng = np.random.default_rng(0)  # the same data on every worker
    y = rng.choice(4, size=40_000, p=[0.7, 0.2, 0.07, 0.03])
    x = rng.normal(y[:, None], 1.0, size=(len(y), 3)).astype("float32")
    ids = (np.arange(len(y)) * 1e-5).astype("float32")[:, None]  # the example's id, recovered exactly
    return np.concatenate([ids, x], axis=1), y


def main(out_path: str) -> None:
    x, y = data()
    table = balance.WeightTable.from_labels(y)
    strategy = tf.distribute.MultiWorkerMirroredStrategy(
        communication_options=tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING))
    ds = tf.data.Dataset.from_tensor_slices((x, y))

    def per_worker(ctx):
        return balance.rebalance_for_worker(ctx, ds, table, global_batch_size=GLOBAL_BATCH, seed=7,
                                            target="uniform", sampling_strength=0.5)

    dist = strategy.distribute_datasets_from_function(per_worker)
    steps = balance.worker_steps_per_epoch(table, GLOBAL_BATCH)
    ids, labels, weights = [], [], []
    iterator = iter(dist)
    for _ in range(steps):
        xb, yb, wb = (strategy.experimental_local_results(part)[0] for part in next(iterator))
        ids.append(np.round(xb[:, 0].numpy().astype(np.float64) * 1e5).astype(np.int64))
        labels.append(yb.numpy())
        weights.append(wb.numpy())
    # A global count of the steps: every worker adds its own; hangs if one stopped early.
    total = strategy.reduce(tf.distribute.ReduceOp.SUM,
                            strategy.run(lambda: tf.constant(float(steps))), axis=None)

    with strategy.scope():
        model = MultiWorkerSequential([keras.Input((4,)), keras.layers.Dense(4)])
        model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = model.fit(dist, epochs=1, steps_per_epoch=FIT_STEPS, verbose=0)
    np.savez(out_path, ids=np.concatenate(ids), labels=np.concatenate(labels), weights=np.concatenate(weights))
    with open(out_path + ".json", "w") as f:
        json.dump({"steps": steps, "steps_sum": float(total), "loss": history.history["loss"],
                   "task": json.loads(__import__("os").environ["TF_CONFIG"])["task"]["index"]}, f)


if __name__ == "__main__":
    main(sys.argv[1])
