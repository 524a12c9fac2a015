"""Benchmark: the tf.data layer against the plain pipeline, on four input shapes.

Data: N examples (default 1M), K classes (default 100) long-tailed at 1:1000,
target uniform. Each example carries its id (to count copies per batch).

Input shapes, each with the plain pipeline a user would write for it:

* A. unbatched dicts: TFRecord parsed in batches of 1024, then ``unbatch()``;
  ours gets ``batch_size=256``. Plain: ``shuffle(10000).batch(256)``.
* B. batched dicts: TFRecord parsed in batches of 256; ours gets
  ``batch_size=256``. Plain: the parsed batches as they are.
* C. in-memory ``(x, y)`` from ``from_tensor_slices``; the user batches
  afterwards (``rebalance(...).batch(256)``). Plain: ``shuffle(10000).batch(256)``.
  "limit" is plain plus one ``batch(block).unbatch()``, the regrouping that
  resampling unbatched output needs.
* D. TFDS-style ``(uint8 image 28x28x1, int64 label)`` tuples, unbatched (what
  ``tfds.load(..., as_supervised=True)`` yields); ours gets ``batch_size=256``.
  Plain: ``shuffle(10000).batch(256)``.

Methods: ``resample``, ``both`` (sigma 0.5) and ``weight``. ``resample`` and
``both`` shuffle within their mixing window, so they get no extra shuffle;
``weight`` does not reorder, so it gets the same ``shuffle(10000)`` as plain.

Consumers: "bare" pulls labels and weights to numpy and nothing else;
"fit" runs ``model.fit`` of a small model for a fixed number of steps.
Reported: examples/s (median of ``--repeats`` passes), the ratio to plain
for the same shape, the L1 distance of the (weighted) class mix to the
target, and the most copies of one example in one batch.

Usage:
  python bench/tfdata_bench.py                                   # full size
  python bench/tfdata_bench.py --examples 100000 --repeats 1     # quick
  python bench/tfdata_bench.py --shapes A,C --consumers bare
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
import tensorflow as tf

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import balance
from balance.resampling import DEFAULT_MIXING_WINDOW

BATCH = 256
tf.get_logger().setLevel("ERROR")  # rejection_resample logs its whole distribution at every step
FEATURES = 8
SHUFFLE = 10_000
METHODS = ("resample", "both", "weight")


def long_tail(num_examples: int, num_classes: int, imbalance: float) -> np.ndarray:
    shares = imbalance ** (-np.arange(num_classes) / (num_classes - 1))
    counts = np.floor(shares / shares.sum() * num_examples).astype(np.int64)
    counts[0] += num_examples - counts.sum()
    return counts


def make_arrays(num_examples: int, num_classes: int, imbalance: float):
    rng = np.random.default_rng(0)
    labels = rng.permutation(np.repeat(np.arange(num_classes), long_tail(num_examples, num_classes, imbalance)))
    x = rng.normal(size=(num_examples, FEATURES)).astype(np.float32)
    x[:, 0] = np.arange(num_examples)  # the id, exact in float32 below 2**24
    return x, labels.astype(np.int64)


def write_tfrecords(data_dir: str, x: np.ndarray, labels: np.ndarray, shards: int = 4) -> list[str]:
    """Writes {label, x} records once; reused when present."""
    marker = os.path.join(data_dir, f"done-{len(labels)}")
    files = [os.path.join(data_dir, f"data-{s:05d}.tfrecord") for s in range(shards)]
    if os.path.exists(marker):
        return files
    os.makedirs(data_dir, exist_ok=True)
    for s, path in enumerate(files):
        with tf.io.TFRecordWriter(path) as writer:
            for i in range(s, len(labels), shards):
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[labels[i]])),
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=x[i])),
                })).SerializeToString())
    open(marker, "w").close()
    return files


SPEC = {"label": tf.io.FixedLenFeature([], tf.int64), "x": tf.io.FixedLenFeature([FEATURES], tf.float32)}


def parsed(files: list[str], parse_batch: int) -> tf.data.Dataset:
    """Parsed dicts {label, head_b, x}; head_b is a second, balanced 3-class head."""
    def parse(records):
        example = tf.io.parse_example(records, SPEC)
        return {**example, "head_b": (example["label"] * 7) % 3}

    ds = tf.data.TFRecordDataset(files, num_parallel_reads=len(files))
    return ds.batch(parse_batch).map(parse, num_parallel_calls=tf.data.AUTOTUNE)


def images(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """28x28x1 uint8 images whose first three pixels spell the example's id."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(len(labels), 28, 28, 1), dtype=np.uint8)
    ids = np.arange(len(labels))
    for j in range(3):
        img[:, 0, j, 0] = (ids >> (8 * j)) & 255
    return img


def shapes(files, x, labels, img):
    """name -> (source builder, how ours is called: 'batch_size' or 'after')."""
    return {
        "A": (lambda: parsed(files, 1024).unbatch(), "batch_size"),
        "B": (lambda: parsed(files, BATCH), "batched"),
        "C": (lambda: tf.data.Dataset.from_tensor_slices((x, labels)), "after"),
        "D": (lambda: tf.data.Dataset.from_tensor_slices((img, labels)), "batch_size"),
    }


def pipelines_for(shape: str, source, mode: str, table: balance.WeightTable, table_b: balance.WeightTable):
    """[(variant name, builder)] for one input shape: plain, (limit), ours x 3."""
    def plain():
        return source() if mode == "batched" else source().shuffle(SHUFFLE, seed=0).batch(BATCH)

    def ours(method, two_heads=False):
        def build():
            ds = source()
            if method == "weight" and mode != "batched":
                ds = ds.shuffle(SHUFFLE, seed=0)
            kwargs = {} if mode == "after" else {"batch_size": BATCH}
            if method != "weight":
                kwargs["seed"] = 0
            tables = table
            if two_heads:  # the second head rides along; sampling (if any) is on the first
                tables = {"label": table, "head_b": table_b}
                kwargs.update(resample_on="label") if method != "weight" else None
            out = balance.rebalance(ds, tables, method=method, **kwargs)
            return out.batch(BATCH) if mode == "after" else out
        return build

    out = [("plain", plain)]
    if mode == "after":
        block = DEFAULT_MIXING_WINDOW
        out.append(("limit", lambda: source().shuffle(SHUFFLE, seed=0).batch(block).unbatch().batch(BATCH)))
    out += [(method, ours(method)) for method in METHODS]
    if shape in ("A", "B"):
        out += [(f"{method}, two heads", ours(method, two_heads=True)) for method in ("both", "weight")]
    if shape == "A":
        k = table.num_classes

        def rejection():  # tf.data's own resampler; it only undersamples, so it is slow at 1:1000
            ds = source().rejection_resample(lambda e: tf.cast(e["label"], tf.int32), target_dist=[1.0 / k] * k,
                                             initial_dist=table.prior().tolist(), seed=0)
            return ds.map(lambda _, e: e).batch(BATCH)

        out.append((REJECTION, rejection))
    return out


REJECTION = "tf.data rejection_resample (time-bounded)"


def split(element):
    """(ids, labels, weights or None) of one batch, whatever its structure.

    Two-head output: the first head's labels and weights (the other head's
    are pulled too, so the consumer pays for them)."""
    if isinstance(element, dict):
        return element["x"], element["label"], None
    x, y, w = element if len(element) == 3 else (*element, None)
    if isinstance(y, dict):
        _ = y["head_b"].numpy(), w["head_b"].numpy() if w is not None else None
        y, w = y["label"], w["label"] if w is not None else None
    return (x["x"] if isinstance(x, dict) else x), y, w


def bare_pass(ds: tf.data.Dataset, time_limit: float | None = None):
    """Pulls labels and weights to numpy, nothing else. Returns (seconds, labels, weights, CPU seconds)."""
    labels, weights = [], []
    cpu, start = time.process_time(), time.perf_counter()
    for element in ds.prefetch(tf.data.AUTOTUNE):
        _, y, w = split(element)
        labels.append(y.numpy())
        if w is not None:
            weights.append(w.numpy())
        if time_limit and time.perf_counter() - start > time_limit:
            break
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    flat = lambda parts: np.concatenate([np.reshape(p, -1) for p in parts])  # noqa: E731
    return seconds, flat(labels), flat(weights) if weights else None, cpu


def max_copies(ds: tf.data.Dataset, batches: int = 400) -> int:
    worst = 0
    for element in ds.take(batches):
        x, _, _ = split(element)
        x = x.numpy()
        ids = x[:, 0].astype(np.int64) if x.ndim == 2 else (
            x[:, 0, 0, 0].astype(np.int64) | (x[:, 0, 1, 0].astype(np.int64) << 8)
            | (x[:, 0, 2, 0].astype(np.int64) << 16))
        worst = max(worst, int(np.unique(ids, return_counts=True)[1].max()))
    return worst


def fit_pass(ds: tf.data.Dataset, steps: int, image: bool, num_classes: int) -> float:
    """Seconds for ``model.fit`` of a small model over ``steps`` batches."""
    import keras

    if image:
        inputs = keras.Input((28, 28, 1), dtype="uint8")
        h = keras.layers.Flatten()(keras.layers.Rescaling(1 / 255)(inputs))
    else:
        inputs = {"x": keras.Input((FEATURES,), name="x")}
        h = inputs["x"]
    model = keras.Model(inputs, keras.layers.Dense(num_classes)(keras.layers.Dense(32, activation="relu")(h)))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))

    def to_model_input(*e):
        e = e[0] if len(e) == 1 else e
        if isinstance(e, dict):
            return {"x": e["x"]}, e["label"]
        if isinstance(e[1], dict):  # two heads: this one-output model trains on the first
            e = (e[0],) + tuple(part["label"] for part in e[1:])
        if isinstance(e[0], dict):
            return ({"x": e[0]["x"]},) + tuple(e[1:])
        return e if image else (({"x": e[0]},) + tuple(e[1:]))

    ds = ds.map(to_model_input).prefetch(tf.data.AUTOTUNE)
    model.fit(ds.take(20), epochs=1, verbose=0)  # build and trace outside the timing
    start = time.perf_counter()
    model.fit(ds.take(steps), epochs=1, verbose=0)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--imbalance", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per variant (median)")
    parser.add_argument("--shapes", default="A,B,C,D")
    parser.add_argument("--consumers", default="bare,fit")
    parser.add_argument("--fit_steps", type=int, default=1000)
    parser.add_argument("--data_dir", default=None, help="default: a temp dir")
    args = parser.parse_args(argv)

    x, labels = make_arrays(args.examples, args.classes, args.imbalance)
    data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), f"tfdata_bench_{args.examples}")
    files = write_tfrecords(data_dir, x, labels)
    chosen = args.shapes.split(",")
    img = images(x, labels) if "D" in chosen else None
    table = balance.WeightTable.from_labels(labels)
    table_b = balance.WeightTable.from_labels((labels * 7) % 3)
    k = args.classes
    consumers = args.consumers.split(",")
    print(f"{args.examples:,} examples, {k} classes at 1:{args.imbalance:g}; batch {BATCH}; "
          f"{os.cpu_count()} CPUs; target uniform; repeats {args.repeats}")

    rows = []
    all_shapes = shapes(files, x, labels, img)
    for shape in chosen:
        source, mode = all_shapes[shape]
        variants = pipelines_for(shape, source, mode, table, table_b)
        bare = {name: [] for name, _ in variants}
        if "bare" in consumers:
            for _ in range(args.repeats):  # variants take turns, so they share the machine's load alike
                for name, build in variants:
                    if name != REJECTION or not bare[name]:
                        bare[name].append(bare_pass(build(), 15.0 if name == REJECTION else None))
        fit = {name: [] for name, _ in variants}
        if "fit" in consumers:
            for _ in range(args.repeats):
                for name, build in variants:
                    if name != REJECTION:
                        fit[name].append(fit_pass(build(), args.fit_steps, shape == "D", k))
        base_bare = base_fit = base_cpu = None
        for name, build in variants:
            rate = l1 = cpu_rate = None
            if bare[name]:
                rate = statistics.median(len(r[1]) / r[0] for r in bare[name])
                _, y, w, _ = bare[name][-1]
                cpu_rate = statistics.median(len(r[1]) / r[3] for r in bare[name])
                mix = np.bincount(y, weights=w, minlength=k)
                l1 = float(np.abs(mix / mix.sum() - 1.0 / k).sum()) if name not in ("plain", "limit") else None
            fit_rate = statistics.median(args.fit_steps * BATCH / s for s in fit[name]) if fit[name] else None
            base_bare = base_bare or rate
            base_cpu = base_cpu if name != "plain" else cpu_rate
            base_fit = base_fit or fit_rate
            copies = max_copies(build().take(2) if name == REJECTION else build())
            rows.append((shape, name, rate, rate / base_bare if rate else None,
                         cpu_rate / base_cpu if cpu_rate else None,
                         fit_rate, fit_rate / base_fit if fit_rate else None, l1, copies))
            print("  " + " | ".join(_cells(rows[-1])), flush=True)

    print("\n| shape | variant | bare ex/s | bare vs plain | bare vs plain, CPU time | fit ex/s | fit vs plain "
          "| L1 to target | max copies/batch |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(_cells(row)) + " |")
    return 0


def _cells(row):
    shape, name, rate, ratio, cpu_ratio, fit_rate, fit_ratio, l1, copies = row
    fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
    return [shape, name, fmt(rate, "{:,.0f}"), fmt(ratio, "{:.2f}x"), fmt(cpu_ratio, "{:.2f}x"),
            fmt(fit_rate, "{:,.0f}"), fmt(fit_ratio, "{:.2f}x"), fmt(l1, "{:.4f}"), str(copies)]


if __name__ == "__main__":
    sys.exit(main())
