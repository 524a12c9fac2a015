"""Every loss and metric on fixed inputs, computed with whichever Keras backend is active.

``tests/test_losses_backends.py`` computes these values in its own (TensorFlow
backend) process and in a subprocess with ``KERAS_BACKEND=jax`` (or ``torch``),
and compares them. On another backend nothing here imports TensorFlow except
through ``balance``'s tf.data layer in ``train_one_epoch_on_rebalanced``, which
is the point of that check.

Run as a script it prints one JSON line: ``python tests/_backend_cases.py MODEL.keras``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile

import keras
import numpy as np

import losses

K = 4
N = 24
W = [2.0, 0.5, 1.0, 4.0]
COST = ((1 - np.eye(K)) * np.array([1.0, 2.0, 5.0, 1.0])[:, None]).tolist()
PRIOR_COUNTS = [700, 200, 80, 20]
LOG_PRIOR = np.log(np.array(PRIOR_COUNTS) / sum(PRIOR_COUNTS)).tolist()


def inputs() -> dict[str, np.ndarray]:
    """The same arrays in every process (a fixed numpy seed)."""
    rng = np.random.default_rng(20)
    ids = rng.integers(0, K, N)
    logits = (rng.standard_normal((N, K)) * 3).astype(np.float32)
    return {
        "ids": ids.astype(np.int32),
        "onehot": np.eye(K, dtype=np.float32)[ids],
        "soft": rng.dirichlet(np.ones(K), N).astype(np.float32),
        "multilabel": (rng.random((N, K)) < 0.3).astype(np.float32),
        "logits": logits,
        "probs": (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype(np.float32),
        "sigmoid_probs": (1 / (1 + np.exp(-logits))).astype(np.float32),
        "tokens": rng.integers(0, K, (4, 6)).astype(np.int32),
        "token_logits": rng.standard_normal((4, 6, K)).astype(np.float32),
        "sample_weight": rng.random(N).astype(np.float32),
        "binary_ids": rng.integers(0, 2, (N, 1)).astype(np.float32),
        "binary_logit": rng.standard_normal((N, 1)).astype(np.float32),
    }


def loss_cases() -> dict[str, tuple[keras.losses.Loss, str, str]]:
    """name -> (loss with reduction=None, label input, prediction input)."""
    L = losses
    return {
        "weighted_sparse_logits": (L.WeightedSparseCategoricalCrossentropy(W, from_logits=True), "ids", "logits"),
        "weighted_sparse_probs": (L.WeightedSparseCategoricalCrossentropy(W), "ids", "probs"),
        "weighted_sparse_predicted": (
            L.WeightedSparseCategoricalCrossentropy(W, weight_by="predicted", from_logits=True), "ids", "logits"),
        "weighted_sparse_tokens": (
            L.WeightedSparseCategoricalCrossentropy(W, from_logits=True), "tokens", "token_logits"),
        "weighted_categorical_smoothed": (
            L.WeightedCategoricalCrossentropy(W, from_logits=True, label_smoothing=0.1), "onehot", "logits"),
        "weighted_categorical_soft_probs": (L.WeightedCategoricalCrossentropy(W), "soft", "probs"),
        "weighted_binary_logits": (
            L.WeightedBinaryCrossentropy([3.0, 1.0, 9.0, 27.0], [1.0, 0.5, 1.0, 1.0], from_logits=True),
            "multilabel", "logits"),
        "weighted_binary_probs": (L.WeightedBinaryCrossentropy(5.0), "multilabel", "sigmoid_probs"),
        "cost_argmax_weight": (
            L.CostSensitiveCategoricalCrossentropy((np.array(COST) + np.eye(K)).tolist(), mode="argmax_weight",
                                                   from_logits=True), "onehot", "logits"),
        "cost_expected": (
            L.CostSensitiveCategoricalCrossentropy(COST, mode="expected_cost", from_logits=True, ce_weight=1.0),
            "ids", "logits"),
        "cost_expected_probs": (L.CostSensitiveCategoricalCrossentropy(COST, mode="expected_cost"), "soft", "probs"),
        "focal_sparse_logits": (L.SparseCategoricalFocalCrossentropy(W, 2.0, from_logits=True), "ids", "logits"),
        "focal_sparse_probs": (L.SparseCategoricalFocalCrossentropy(None, 1.5), "ids", "probs"),
        "focal_categorical": (L.CategoricalFocalCrossentropy(W, 2.0, from_logits=True), "onehot", "logits"),
        "focal_binary_logits": (
            L.BinaryFocalCrossentropy([0.25, 0.5, 0.75, 0.9], 2.0, from_logits=True), "multilabel", "logits"),
        "focal_binary_probs": (L.BinaryFocalCrossentropy(0.25, 2.0), "multilabel", "sigmoid_probs"),
        "logit_adjusted": (L.LogitAdjustedSparseCategoricalCrossentropy(LOG_PRIOR, 1.0), "ids", "logits"),
        "ldam": (L.LDAMLoss(PRIOR_COUNTS, 0.5, 1.0, class_weights=W), "ids", "logits"),
    }


def _gradient(loss, y, z) -> np.ndarray:
    """d mean(loss) / d logits, with the active backend's autodiff."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax  # noqa: PLC0415

        return jax.grad(lambda t: loss(y, t))(z)
    if backend == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        z = tf.convert_to_tensor(z)
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(y, z)
        return tape.gradient(value, z)
    if backend == "torch":
        import torch  # noqa: PLC0415

        z = torch.tensor(z, requires_grad=True)
        loss(y, z).backward()
        return z.grad
    raise ValueError(f"no gradient helper for backend {backend!r}")


def _numpy(value) -> list:
    return np.asarray(keras.ops.convert_to_numpy(value), dtype=np.float64).tolist()


def _loss_outputs(data: dict) -> dict:
    out = {}
    for name, (loss, label, pred) in loss_cases().items():
        y, z = data[label], data[pred]
        config = loss.get_config()
        out[f"{name}/per_example"] = type(loss).from_config({**config, "reduction": None})(y, z)
        if len(z.shape) == 2:
            sum_loss = type(loss).from_config({**config, "reduction": "sum"})
            out[f"{name}/sum_weighted"] = sum_loss(y, z, data["sample_weight"])
        out[f"{name}/mean"] = loss(y, z)
        out[f"{name}/gradient"] = _gradient(loss, y, z)
    return out


def loss_values() -> dict[str, list]:
    """Per-example values, reductions with sample_weight, and gradients of every loss.

    Under JAX all of it is one ``jax.jit`` (as ``model.fit`` runs a loss), which
    is also far quicker than JAX's op-by-op dispatch.
    """
    compute = _loss_outputs
    if keras.backend.backend() == "jax":
        import jax  # noqa: PLC0415

        compute = jax.jit(_loss_outputs)
    return {name: _numpy(value) for name, value in compute(inputs()).items()}


def _metric_cases(data: dict) -> dict:
    return {
        "per_class_recall": (losses.PerClassRecall(K), data["ids"], data["logits"]),
        "balanced_accuracy": (losses.BalancedAccuracy(K), data["onehot"], data["logits"]),
        "balanced_accuracy_sigmoid": (
            losses.BalancedAccuracy(2, from_logits=True), data["binary_ids"], data["binary_logit"]),
        "recall_logits": (losses.Recall(from_logits=True), data["multilabel"], data["logits"]),
        "precision_logits": (losses.Precision(from_logits=True), data["multilabel"], data["logits"]),
        "recall_class_id": (losses.Recall(class_id=2), data["multilabel"], data["sigmoid_probs"]),
    }


def _metric_outputs(data: dict, variables: dict) -> dict:
    """Streams two weighted batches through every metric, statelessly (so it can be jitted)."""
    half, sw = N // 2, data["sample_weight"]
    out = {}
    for name, (metric, y, z) in _metric_cases(data).items():
        state = variables[name]
        state = metric.stateless_update_state(state, y[:half], z[:half], sample_weight=sw[:half])
        state = metric.stateless_update_state(state, y[half:], z[half:], sample_weight=sw[half:])
        out[f"metric/{name}"] = metric.stateless_result(state)
    return out


def other_values() -> dict[str, list]:
    """Metrics (streamed over two batches, with sample weights) and the logit helpers."""
    data = inputs()
    variables = {name: [v.value for v in m.variables] for name, (m, _, _) in _metric_cases(data).items()}
    compute = _metric_outputs
    if keras.backend.backend() == "jax":
        import jax  # noqa: PLC0415

        compute = jax.jit(_metric_outputs)
    out = {name: _numpy(value) for name, value in compute(data, variables).items()}
    logits = data["logits"]
    out["shift_logits"] = _numpy(losses.shift_logits(logits, PRIOR_COUNTS, "uniform"))
    out["shift_logits_sigmoid"] = _numpy(losses.shift_logits(data["binary_logit"], [0.9, 0.1], [0.5, 0.5]))
    out["adjust_logits"] = _numpy(losses.adjust_logits(logits, LOG_PRIOR, tau=0.5))
    out["bayes_decision"] = _numpy(losses.bayes_decision(data["probs"], COST))
    return out


def values() -> dict[str, list]:
    return {**loss_values(), **other_values()}


def compiled_model(seed: int = 0) -> keras.Model:
    """A small logits model compiled with a weighted loss and the imbalance metrics."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(K)])
    model.compile(
        optimizer="sgd",
        loss=losses.SparseCategoricalFocalCrossentropy(W, 2.0, from_logits=True),
        metrics=[losses.BalancedAccuracy(K), losses.PerClassRecall(K)],
    )
    return model


def model_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(21)
    x = rng.standard_normal((64, 6)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int32) + 2 * (x[:, 1] > 0).astype(np.int32)


def evaluate(model: keras.Model) -> dict[str, list]:
    x, y = model_data()
    scores = model.evaluate(x, y, verbose=0, return_dict=True, batch_size=64)
    return {k: _numpy(v) for k, v in scores.items()}


def reload_and_evaluate(path: str, directory: str) -> dict[str, object]:
    """Loads a .keras model (saved by any backend), saves it again here, loads that, evaluates it."""
    model = keras.models.load_model(path)
    again = os.path.join(directory, "again.keras")
    model.save(again)
    loaded = keras.models.load_model(again)
    return {
        "evaluate": evaluate(loaded),
        "loss": keras.losses.serialize(loaded.loss),
        "metrics": [keras.metrics.serialize(m) for m in loaded.metrics[1].metrics],
    }


def train_one_epoch_on_rebalanced() -> dict[str, object]:
    """One epoch of model.fit on a balance.rebalance dataset (tf.data feeding this backend)."""
    import tensorflow as tf  # noqa: PLC0415 (tf.data only; the model runs on the active backend)

    import balance  # noqa: PLC0415

    rng = np.random.default_rng(22)
    y = np.repeat(np.arange(K), [600, 200, 60, 20]).astype(np.int64)
    x = (rng.standard_normal((y.size, 6)) + y[:, None]).astype(np.float32)
    table = balance.WeightTable.from_labels(y)
    dataset = balance.rebalance(
        tf.data.Dataset.from_tensor_slices((x, y)).shuffle(y.size, seed=0), table, method="both", seed=0
    ).batch(64)
    model = compiled_model(seed=1)
    start = [np.array(w) for w in model.get_weights()]
    history = model.fit(dataset, epochs=1, verbose=0).history
    moved = max(float(np.abs(a - np.array(b)).max()) for a, b in zip(start, model.get_weights(), strict=True))
    return {"loss": history["loss"], "balanced_accuracy": history["balanced_accuracy"], "weights_moved": moved}


def main(argv: list[str]) -> None:
    """Prints everything this backend computes as one JSON line; argv[0] is a saved .keras model."""
    report: dict[str, object] = {"backend": keras.backend.backend(), "values": values()}
    with tempfile.TemporaryDirectory() as tmp:
        report["keras_file"] = reload_and_evaluate(argv[0], tmp)
    report["fit_rebalanced"] = train_one_epoch_on_rebalanced()
    print("RESULT " + json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
