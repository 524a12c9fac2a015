"""Benchmark: the tf.data layer against the fastest plain pipeline, shape by shape.

Data: N examples (default 1M), K classes (default 100) long-tailed at 1:1000,
target uniform, batches of 256. Each example carries its id (to count copies
per batch).

Input shapes. For each, the plain pipeline is the fastest of the common ways
to write it: every candidate is timed first (medians of ``--repeats``), the
winner is printed with its rate, and ours then runs on the winner's source,
taking turns with the winning plain pipeline.

* A. unbatched dicts from TFRecord; ours gets ``batch_size=256``. Sources:
  per-record ``map(parse_single)`` or ``batch(1024).map(parse).unbatch()``,
  each with and without ``num_parallel_reads``. Plain: ``shuffle(10000).batch(256)``.
* B. batched dicts from TFRecord; ours gets ``batch_size=256``. Sources:
  ``batch(256).map(parse)`` (the vectorised parse) or
  ``map(parse_single).batch(256)``, each with and without
  ``num_parallel_reads``. Plain: the batches as they come.
* C. in-memory ``(x, y)`` from ``from_tensor_slices``, batched by the user
  afterwards (``rebalance(...).batch(256)``). Plain: ``shuffle(10000).batch(256)``;
  "limit" adds the one ``batch(block).unbatch()`` that resampled unbatched
  output needs, which is what C is held to.
* D. TFDS-style ``(uint8 image 28x28x1, int64 label)`` tuples, unbatched;
  ours gets ``batch_size=256``. Plain: ``shuffle(10000).batch(256)``.
* E. in-memory batched ``from_tensor_slices((x, y)).batch(256)``, the fastest
  source there is, at K classes and at ``--many_classes`` (default 100,000);
  ours gets ``batch_size=256``. Plain: the batches as they come.
* F (not in the default run). in-memory unbatched ``(x, y)`` with
  ``batch_size=256``, at both class counts. Plain: ``shuffle(10000).batch(256)``.

Methods: ``resample``, ``both`` (sigma 0.5) and ``weight``. ``resample`` and
``both`` shuffle within their mixing window, so they get no extra shuffle;
``weight`` does not reorder, so on unbatched input it gets the same
``shuffle(10000)`` as plain.

Consumers: "bare" pulls labels and weights to numpy and nothing else;
"fit" runs ``model.fit`` of a small model for ``--fit_steps`` batches.
Reported per variant: examples/s (median of ``--repeats`` passes, variants
taking turns), the ratio to the plain pipeline, CPU µs per example (process
CPU time, consumer included) and ours minus plain, the L1 distance of the
(weighted) class mix to the target with the L1 an exact sampler would show
on a draw of the same size (the noise floor, large at 100k classes), and the
most copies of one example in one batch (first 400 batches).

Usage:
  python bench/tfdata_bench.py                                   # every figure, full size
  python bench/tfdata_bench.py --examples 100000 --repeats 1     # quick
  python bench/tfdata_bench.py --shapes B,E --consumers bare
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
REJECTION = "tf.data rejection_resample (time-bounded)"


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


def with_head_b(example):
    """A second, balanced 3-class head for the two-head rows."""
    return {**example, "head_b": (example["label"] * 7) % 3}


def records(files: list[str], parallel: bool) -> tf.data.Dataset:
    return tf.data.TFRecordDataset(files, num_parallel_reads=len(files) if parallel else None)


def parse_batches(files, parse_batch: int, parallel: bool) -> tf.data.Dataset:
    """``batch(n).map(parse_example)``: the vectorised parse."""
    return records(files, parallel).batch(parse_batch).map(
        lambda r: with_head_b(tf.io.parse_example(r, SPEC)), num_parallel_calls=tf.data.AUTOTUNE)


def parse_each(files, parallel: bool) -> tf.data.Dataset:
    """``map(parse_single_example)``: one record at a time."""
    return records(files, parallel).map(
        lambda r: with_head_b(tf.io.parse_single_example(r, SPEC)), num_parallel_calls=tf.data.AUTOTUNE)


def images(labels: np.ndarray) -> np.ndarray:
    """28x28x1 uint8 images whose first three pixels spell the example's id."""
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(len(labels), 28, 28, 1), dtype=np.uint8)
    ids = np.arange(len(labels))
    for j in range(3):
        img[:, 0, j, 0] = (ids >> (8 * j)) & 255
    return img


class Shape:
    """One input shape: its plain candidates (name -> source), how ours is called, its data."""

    def __init__(self, name, sources, mode, labels, table, table_b=None, image=False):
        self.name, self.sources, self.mode = name, sources, mode
        self.labels, self.table, self.table_b, self.image = labels, table, table_b, image

    def plain(self, source):
        if self.mode == "batched":
            return source
        return lambda: source().shuffle(SHUFFLE, seed=0).batch(BATCH)

    def variants(self, source):
        """[(name, builder)] on one source: plain, (limit), ours x 3, (two heads, rejection)."""
        table = self.table

        def ours(method, two_heads=False):
            def build():
                ds = source()
                if method == "weight" and self.mode not in ("batched",):
                    ds = ds.shuffle(SHUFFLE, seed=0)
                kwargs = {} if self.mode == "after" else {"batch_size": BATCH}
                if method != "weight":
                    kwargs["seed"] = 0
                tables = table
                if two_heads:  # the second head rides along; sampling (if any) is on the first
                    tables = {"label": table, "head_b": self.table_b}
                    if method != "weight":
                        kwargs["resample_on"] = "label"
                out = balance.rebalance(ds, tables, method=method, **kwargs)
                return out.batch(BATCH) if self.mode == "after" else out
            return build

        out = [("plain", self.plain(source))]
        if self.mode == "after":
            block = DEFAULT_MIXING_WINDOW
            out.append(("limit", lambda: source().shuffle(SHUFFLE, seed=0).batch(block).unbatch().batch(BATCH)))
        out += [(method, ours(method)) for method in METHODS]
        if self.table_b is not None:
            out += [(f"{method}, two heads", ours(method, two_heads=True)) for method in ("both", "weight")]
        if self.name == "A":
            k = table.num_classes

            def rejection():  # tf.data's own resampler; it only undersamples, so it is slow at 1:1000
                ds = source().rejection_resample(lambda e: tf.cast(e["label"], tf.int32), target_dist=[1.0 / k] * k,
                                                 initial_dist=table.prior().tolist(), seed=0)
                return ds.map(lambda _, e: e).batch(BATCH)

            out.append((REJECTION, rejection))
        return out


def build_shapes(args, chosen):
    x, labels = make_arrays(args.examples, args.classes, args.imbalance)
    table = balance.WeightTable.from_labels(labels)
    shapes = {}
    if {"A", "B"} & set(chosen):
        data_dir = args.data_dir or os.path.join(tempfile.gettempdir(), f"tfdata_bench_{args.examples}")
        files = write_tfrecords(data_dir, x, labels)
        table_b = balance.WeightTable.from_labels((labels * 7) % 3)
        shapes["A"] = Shape("A", {
            **{f"map(parse_single){npr}": (lambda p=p: parse_each(files, p)) for p, npr in PARALLEL},
            **{f"batch(1024).map(parse).unbatch(){npr}": (lambda p=p: parse_batches(files, 1024, p).unbatch())
               for p, npr in PARALLEL},
        }, "batch_size", labels, table, table_b)
        shapes["B"] = Shape("B", {
            **{f"batch(256).map(parse){npr}": (lambda p=p: parse_batches(files, BATCH, p)) for p, npr in PARALLEL},
            **{f"map(parse_single).batch(256){npr}": (lambda p=p: parse_each(files, p).batch(BATCH))
               for p, npr in PARALLEL},
        }, "batched", labels, table, table_b)
    shapes["C"] = Shape("C", {"from_tensor_slices((x, y))": lambda: tf.data.Dataset.from_tensor_slices((x, labels))},
                        "after", labels, table)
    if "D" in chosen:
        img = images(labels)
        shapes["D"] = Shape("D", {"from_tensor_slices((image, y))": lambda: tf.data.Dataset.from_tensor_slices(
            (img, labels))}, "batch_size", labels, table, image=True)
    for k in (args.classes, args.many_classes):
        if not {"E", "F"} & set(chosen):
            break
        xk, yk = (x, labels) if k == args.classes else make_arrays(args.examples, k, args.imbalance)
        tk = table if k == args.classes else balance.WeightTable.from_labels(yk, num_classes=k)
        shapes[f"E{k}"] = Shape(f"E {k:,} classes", {"from_tensor_slices((x, y)).batch(256)": (
            lambda xk=xk, yk=yk: tf.data.Dataset.from_tensor_slices((xk, yk)).batch(BATCH))}, "batched", yk, tk)
        shapes[f"F{k}"] = Shape(f"F {k:,} classes", {"from_tensor_slices((x, y))": (
            lambda xk=xk, yk=yk: tf.data.Dataset.from_tensor_slices((xk, yk)))}, "batch_size", yk, tk)
    return shapes


PARALLEL = ((False, ""), (True, ", num_parallel_reads=4"))


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


def fastest_source(shape: Shape, repeats: int):
    """Times every plain candidate (bare consumer); returns (name, source, ex/s) of the fastest."""
    if len(shape.sources) == 1:
        (name, source), = shape.sources.items()
        return name, source, None
    runs = {name: [] for name in shape.sources}
    for _ in range(repeats):
        for name, source in shape.sources.items():
            seconds, y, _, _ = bare_pass(shape.plain(source)())
            runs[name].append(len(y) / seconds)
    rates = {name: statistics.median(r) for name, r in runs.items()}
    for name, rate in sorted(rates.items(), key=lambda item: -item[1]):
        print(f"  {shape.name} plain candidate: {name}: {rate:,.0f} ex/s", flush=True)
    best = max(rates, key=rates.get)
    return best, shape.sources[best], rates[best]


def noise_floor(labels: np.ndarray, size: int, k: int) -> float:
    """L1 to the uniform target (over present classes) of an exact multinomial draw of ``size``."""
    present = np.bincount(labels, minlength=k) > 0
    q = present / present.sum()
    draw = np.random.default_rng(0).multinomial(size, q)
    return float(np.abs(draw / size - q).sum())


def measure(shape: Shape, args, consumers) -> list[tuple]:
    winner, source, _ = fastest_source(shape, args.repeats)
    variants = shape.variants(source)
    k = shape.table.num_classes
    present = np.bincount(shape.labels, minlength=k) > 0
    q = present / present.sum()
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
                    fit[name].append(fit_pass(build(), args.fit_steps, shape.image, k))
    rows, refs = [], {}
    for name, build in variants:
        rate = cpu_us = l1 = floor = fit_rate = None
        if bare[name]:
            rate = statistics.median(len(r[1]) / r[0] for r in bare[name])
            cpu_us = statistics.median(r[3] / len(r[1]) * 1e6 for r in bare[name])
            _, y, w, _ = bare[name][-1]
            if name not in ("plain", "limit"):
                mix = np.bincount(y, weights=w, minlength=k)
                l1 = float(np.abs(mix / mix.sum() - q).sum())
                # weights alone are exact on any draw; a sampled stream has the noise of its draw
                floor = 0.0 if name.startswith("weight") else noise_floor(shape.labels, len(y), k)
        if fit[name]:
            fit_rate = statistics.median(args.fit_steps * BATCH / s for s in fit[name])
        if name in ("plain", "limit"):
            refs[name] = {"rate": rate, "cpu": cpu_us, "fit": fit_rate}
        base = refs["plain"]
        limit = refs.get("limit", {}) if name in METHODS else {}
        copies = max_copies(build().take(2) if name == REJECTION else build())
        row = (shape.name, name, winner if name == "plain" else "", rate, _ratio(rate, base["rate"]),
               _ratio(rate, limit.get("rate")), cpu_us,
               None if cpu_us is None or base["cpu"] is None else cpu_us - base["cpu"],
               fit_rate, _ratio(fit_rate, base["fit"]), l1, floor, copies)
        rows.append(row)
        print("  " + " | ".join(_cells(row)), flush=True)
    return rows


def _ratio(a, b):
    return a / b if a and b else None


HEADER = ("| shape | variant | plain: fastest source | bare ex/s | bare vs plain | vs limit | CPU µs/ex "
          "| CPU µs/ex, ours minus plain | fit ex/s | fit vs plain | L1 to target | L1 floor "
          "| max copies/batch |")


def _cells(row):
    (shape, name, winner, rate, ratio, limit_ratio, cpu_us, cpu_extra, fit_rate, fit_ratio, l1, floor,
     copies) = row
    fmt = lambda v, f: "-" if v is None else f.format(v)  # noqa: E731
    return [shape, name, winner or "", fmt(rate, "{:,.0f}"), fmt(ratio, "{:.2f}x"), fmt(limit_ratio, "{:.2f}x"),
            fmt(cpu_us, "{:.2f}"), fmt(cpu_extra, "{:+.2f}"), fmt(fit_rate, "{:,.0f}"), fmt(fit_ratio, "{:.2f}x"),
            fmt(l1, "{:.4f}"), fmt(floor, "{:.4f}"), str(copies)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=1_000_000)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--many_classes", type=int, default=100_000, help="the second class count of E and F")
    parser.add_argument("--imbalance", type=float, default=1000.0)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per variant (median)")
    parser.add_argument("--shapes", default="A,B,C,D,E", help="any of A,B,C,D,E,F")
    parser.add_argument("--consumers", default="bare,fit")
    parser.add_argument("--fit_steps", type=int, default=1000)
    parser.add_argument("--data_dir", default=None, help="default: a temp dir")
    args = parser.parse_args(argv)

    chosen = args.shapes.split(",")
    consumers = args.consumers.split(",")
    start = time.perf_counter()
    print(f"{args.examples:,} examples, {args.classes} classes (E, F also {args.many_classes:,}) at "
          f"1:{args.imbalance:g}; batch {BATCH}; {os.cpu_count()} CPUs; target uniform; repeats {args.repeats}; "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}", flush=True)
    shapes = build_shapes(args, chosen)
    rows = []
    for key, shape in shapes.items():
        if key[0] in chosen:
            rows += measure(shape, args, consumers)
    print(f"\nload average at the end {' '.join(f'{v:.1f}' for v in os.getloadavg())}; "
          f"{time.perf_counter() - start:.0f} s in all")
    print("\n" + HEADER)
    print("|---|---|---|" + "---:|" * 10)
    for row in rows:
        print("| " + " | ".join(_cells(row)) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
