"""Down-sample offline, rebalance online, correct at inference (a click model at 1% positives).

1. ``rebalance stats``: count the classes of the TFRecord files.
2. ``rebalance sample --max_ratio 10``: keep every positive and about 10 negatives
   per positive, written once as TFRecord with an exact table of the sample.
3. Train on the sample with ``balance.rebalance(method="resample")`` to a 1:1 mix.
4. At inference, move the logits from the training mix (1:1) back to the
   population's: ``losses.shift_logits(z, "uniform", table.source_counts())``,
   which for one logit is ``z + log(n_pos / n_neg)``.

Run: python examples/downsample_and_correct.py [--smoke]
"""

import argparse
import contextlib
import io
import os
import tempfile

import keras
import numpy as np
import tensorflow as tf

import balance
import losses
import pipelines

FEATURES = 4


def make_data(rng, n, rate=0.01):
    y = (rng.random(n) < rate).astype(np.int64)
    x = (rng.normal(size=(n, FEATURES)) + 1.2 * y[:, None]).astype(np.float32)
    return x, y


def write(path, x, y):
    with tf.io.TFRecordWriter(path) as writer:
        for features, label in zip(x, y, strict=True):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=features)),
                "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())


SPEC = {"x": tf.io.FixedLenFeature([FEATURES], tf.float32), "label": tf.io.FixedLenFeature([], tf.int64)}


def read(files):
    return tf.data.TFRecordDataset(files).map(lambda r: tf.io.parse_single_example(r, SPEC)).map(
        lambda e: (e["x"], e["label"]))


def log_loss(y, p):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def main(argv=None):
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="fewer records and epochs")
    args = parser.parse_args(argv)
    n, epochs = (100_000, 8) if args.smoke else (400_000, 8)
    rng = np.random.default_rng(0)
    x, y = make_data(rng, n)
    x_test, y_test = make_data(rng, 100_000)
    quiet = contextlib.redirect_stdout(io.StringIO())
    with tempfile.TemporaryDirectory() as root:
        os.makedirs(f"{root}/data")
        for s in range(2):
            write(f"{root}/data/part-{s}.tfrecord", x[s::2], y[s::2])
        with quiet:
            source = pipelines.run_class_stats(["--input", f"{root}/data/*", "--task", "binary",
                                                "--output", f"{root}/source.json"])
            table = pipelines.run_sample(["--input", f"{root}/data/*", "--task", "binary", "--table",
                                          f"{root}/source.json", "--output", f"{root}/sample", "--max_ratio", "10"])
        print(f"source: {source.counts.astype(int).tolist()} (negatives, positives), "
              f"{source.counts[1] / source.num_examples:.2%} positives")
        print(f"sample: {table.counts.astype(int).tolist()}, keep rates {np.round(table.keep_rates(), 4).tolist()}, "
              f"each epoch reads {table.num_examples / source.num_examples:.1%} of the records")

        files = sorted(tf.io.gfile.glob(f"{root}/sample/part-*"))
        train = balance.rebalance(read(files).cache(), table, method="resample", target="uniform", seed=0)
        train = train.shuffle(4096, seed=0).batch(256).map(lambda f, c: (f, tf.cast(c, tf.float32)[:, None]))
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((FEATURES,)), keras.layers.Dense(1)])
        model.compile(keras.optimizers.Adam(0.05), keras.losses.BinaryCrossentropy(from_logits=True))
        model.fit(train, epochs=epochs, verbose=0)

        z = model.predict(x_test, batch_size=8192, verbose=0)
        raw = tf.sigmoid(z).numpy().ravel()
        # Trained at 1:1 (the resampled mix), deployed at the population's mix.
        corrected = tf.sigmoid(losses.shift_logits(z, "uniform", table.source_counts())).numpy().ravel()
    rate = y_test.mean()
    print(f"test positives {rate:.4f}; mean predicted probability: raw {raw.mean():.4f}, "
          f"corrected {corrected.mean():.4f}")
    print(f"test log loss: raw {log_loss(y_test, raw):.4f}, corrected {log_loss(y_test, corrected):.4f}")
    assert abs(corrected.mean() - rate) < 0.15 * rate, (corrected.mean(), rate)
    assert raw.mean() > 10 * rate and log_loss(y_test, corrected) < log_loss(y_test, raw)
    print("OK: trained on a 1:10 down-sample resampled to 1:1, the corrected model is calibrated to the population.")
    return {"source_counts": source.counts.tolist(), "sample_counts": table.counts.tolist(), "test_rate": float(rate),
            "raw_mean": float(raw.mean()), "corrected_mean": float(corrected.mean()),
            "raw_log_loss": log_loss(y_test, raw), "corrected_log_loss": log_loss(y_test, corrected)}


if __name__ == "__main__":
    main()
