"""Class-weighting schemes: pure functions of a count vector.

Notation: ``n_c`` is the (possibly weighted) count of class ``c``, ``n = sum_c n_c``
and ``K`` the number of classes. Every scheme maps counts to raw weights; then
``compute_weights`` applies the zero-count policy, a normalisation and a clip,
in that order.

| scheme            | raw weight                        | default normalize     |
|-------------------|-----------------------------------|-----------------------|
| balanced          | n / (K * n_c)  (scikit-learn)     | none (already mean_one)|
| inverse           | 1 / n_c                           | mean_one              |
| inverse_sqrt      | 1 / sqrt(n_c)                     | mean_one              |
| power(alpha)      | n_c ** -alpha                     | mean_one              |
| effective_number(beta) | (1 - beta) / (1 - beta ** n_c) (Cui et al. 2019) | sum_to_num_classes |
| median_frequency  | median_c(f_c) / f_c, f_c = n_c / n (Eigen & Fergus 2015) | none |
| max_over_count    | max_c n_c / n_c                   | none (largest gets 1) |
| log_smoothed(mu)  | max(1, ln(mu * n / n_c))          | none                  |
| uniform           | 1                                 | none                  |

Normalisations: ``none``; ``sum_to_one`` (sum_c w_c = 1); ``sum_to_num_classes``
(sum_c w_c = K); ``mean_one`` (sum_c n_c w_c = n, so the average example weight
is 1 and the loss scale, hence the effective learning rate, stays put).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping

import numpy as np

from balance.errors import InvalidArgumentError, invalid, invalid_choice

NORMALIZATIONS = ("none", "sum_to_one", "sum_to_num_classes", "mean_one")
ZERO_COUNT_POLICIES = ("error", "zero", "max")


@dataclasses.dataclass(frozen=True)
class Scheme:
    """A named weighting rule: ``formula(counts, **params) -> raw weights``."""

    name: str
    formula: Callable[..., np.ndarray]
    default_normalize: str
    params: Mapping[str, float] = dataclasses.field(default_factory=dict)
    # Whether a zero count makes the weight undefined (inf or nan).
    needs_nonzero: bool = True
    formula_text: str = ""


def _balanced(counts: np.ndarray) -> np.ndarray:
    return counts.sum() / (len(counts) * counts)


def _inverse(counts: np.ndarray) -> np.ndarray:
    return 1.0 / counts


def _inverse_sqrt(counts: np.ndarray) -> np.ndarray:
    return 1.0 / np.sqrt(counts)


def _power(counts: np.ndarray, alpha: float) -> np.ndarray:
    return counts ** (-alpha)


def _effective_number(counts: np.ndarray, beta: float) -> np.ndarray:
    # 1 - beta**n_c computed as -expm1(n_c * log(beta)) so that beta close to 1
    # (0.9999 is common) and large counts keep their precision.
    if beta == 0.0:
        return np.where(counts > 0, 1.0, np.inf)
    return (1.0 - beta) / -np.expm1(counts * np.log(beta))


def _median_frequency(counts: np.ndarray) -> np.ndarray:
    freqs = counts / counts.sum()
    present = freqs[counts > 0]
    return np.median(present) / freqs


def _max_over_count(counts: np.ndarray) -> np.ndarray:
    return counts.max() / counts


def _log_smoothed(counts: np.ndarray, mu: float) -> np.ndarray:
    return np.maximum(1.0, np.log(mu * counts.sum() / counts))


def _uniform(counts: np.ndarray) -> np.ndarray:
    return np.ones_like(counts)


SCHEMES: dict[str, Scheme] = {
    s.name: s
    for s in (
        Scheme("balanced", _balanced, "none", formula_text="n / (K * n_c)"),
        Scheme("inverse", _inverse, "mean_one", formula_text="1 / n_c"),
        Scheme("inverse_sqrt", _inverse_sqrt, "mean_one", formula_text="1 / sqrt(n_c)"),
        Scheme("power", _power, "mean_one", {"alpha": 0.5}, formula_text="n_c ** -alpha"),
        Scheme(
            "effective_number",
            _effective_number,
            "sum_to_num_classes",
            {"beta": 0.999},
            formula_text="(1 - beta) / (1 - beta ** n_c)",
        ),
        Scheme("median_frequency", _median_frequency, "none", formula_text="median(f) / f_c"),
        Scheme("max_over_count", _max_over_count, "none", formula_text="max(n) / n_c"),
        Scheme(
            "log_smoothed",
            _log_smoothed,
            "none",
            {"mu": 0.15},
            formula_text="max(1, ln(mu * n / n_c))",
        ),
        Scheme("uniform", _uniform, "none", needs_nonzero=False, formula_text="1"),
    )
}


WEIGHT_OPTIONS = ("normalize", "clip", "zero_count")


def option_names() -> tuple[str, ...]:
    """Every key ``scheme_params`` may hold: the weight options and every scheme's parameters."""
    return WEIGHT_OPTIONS + tuple(sorted({p for s in SCHEMES.values() for p in s.params}))


def check_scheme_params(scheme_params: Mapping[str, object] | None) -> dict[str, object]:
    """``scheme_params`` as a dict: the keyword options of ``WeightTable.class_weights``.

    Names are checked by the scheme itself, which knows its parameters.
    """
    if scheme_params is None:
        return {}
    if not isinstance(scheme_params, Mapping) or not all(isinstance(k, str) for k in scheme_params):
        raise invalid("scheme_params", "a dict of scheme options, e.g. {'beta': 0.999}", scheme_params)
    return dict(scheme_params)


def get_scheme(name: str) -> Scheme:
    """Looks a scheme up by name, refusing unknown names with the valid ones."""
    if not isinstance(name, str) or name not in SCHEMES:
        hint = ("'auto' was never a valid Keras class_weight value (older Keras ignored it silently); "
                "'balanced' is scikit-learn's formula") if name == "auto" else None
        raise invalid_choice("scheme", SCHEMES, name, hint)
    return SCHEMES[name]


def resolve_params(scheme: Scheme, params: Mapping[str, float]) -> dict[str, float]:
    """Merges user params over the scheme's defaults and validates them."""
    unknown = set(params) - set(scheme.params)
    if unknown:
        name = sorted(unknown)[0]
        raise invalid(
            name,
            f"one of the parameters of scheme {scheme.name!r}: {sorted(scheme.params)!r}",
            params[name],
            hint="Unknown scheme options are never ignored",
        )
    resolved = {**scheme.params, **params}
    for key, value in resolved.items():
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise invalid(key, "a real number", value)
        if not np.isfinite(value):
            raise invalid(key, "a finite number", value)
    if scheme.name == "effective_number" and not 0.0 <= resolved["beta"] < 1.0:
        raise invalid("beta", "a number in [0, 1)", resolved["beta"])
    if scheme.name == "log_smoothed" and resolved["mu"] <= 0:
        raise invalid("mu", "a positive number", resolved["mu"])
    return {k: float(v) for k, v in resolved.items()}


def normalize_weights(weights: np.ndarray, counts: np.ndarray, normalize: str) -> np.ndarray:
    """Rescales ``weights`` so that the chosen normalisation holds."""
    if normalize == "none":
        return weights
    if normalize == "sum_to_one":
        total = weights.sum()
    elif normalize == "sum_to_num_classes":
        total = weights.sum() / len(weights)
    elif normalize == "mean_one":
        total = (counts * weights).sum() / counts.sum()
    else:
        raise invalid_choice("normalize", NORMALIZATIONS, normalize)
    if not total > 0:
        raise invalid(
            "normalize",
            "a normalisation whose total is positive",
            normalize,
            hint="All weights (or all weighted counts) are zero, so there is nothing to rescale",
        )
    return weights / total


def compute_weights(
    counts: np.ndarray,
    scheme: str = "balanced",
    *,
    normalize: str | None = None,
    clip: tuple[float, float] | None = None,
    zero_count: str = "error",
    class_names: list[str] | None = None,
    **params: float,
) -> np.ndarray:
    """Weights for a count vector under a scheme; see the module docstring.

    Args:
      counts: float64 vector of per-class counts.
      scheme: one of ``SCHEMES``.
      normalize: one of ``NORMALIZATIONS``, or None for the scheme's default.
      clip: ``(min, max)`` applied last, after normalisation.
      zero_count: ``"error"`` refuses classes with no examples, naming them;
        ``"zero"`` gives them weight 0; ``"max"`` gives them the largest weight
        of the classes that have examples.
      class_names: used only to name empty classes in errors.
      **params: the scheme's parameters (``alpha``, ``beta``, ``mu``).

    Returns:
      A float64 vector of length K.

    Raises:
      ValueError: for an unknown scheme, option or parameter, or empty classes
        under ``zero_count="error"``.
    """
    spec = get_scheme(scheme)
    resolved = resolve_params(spec, params)
    if normalize is None:
        normalize = spec.default_normalize
    if normalize not in NORMALIZATIONS:
        raise invalid_choice("normalize", NORMALIZATIONS, normalize)
    if zero_count not in ZERO_COUNT_POLICIES:
        raise invalid_choice("zero_count", ZERO_COUNT_POLICIES, zero_count)
    if clip is not None:
        clip = _check_clip(clip)

    counts = np.asarray(counts, dtype=np.float64)
    empty = counts <= 0
    if not np.any(~empty):
        raise invalid("counts", "at least one class with a positive count", counts.tolist())
    if spec.needs_nonzero and np.any(empty):
        if zero_count == "error":
            idx = np.flatnonzero(empty)
            named = [f"{i} ({class_names[i]!r})" if class_names else str(i) for i in idx[:10]]
            more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
            raise InvalidArgumentError(
                f"Invalid value for argument `zero_count`. Scheme {scheme!r} is undefined for "
                f"classes with no examples, and {len(idx)} class(es) have none: "
                f"{', '.join(named)}{more}. Received: zero_count='error'. Pass "
                "zero_count='zero' to give them weight 0 or zero_count='max' to give them the "
                "largest weight."
            )
        weights = np.zeros_like(counts)
        # The formula sees only the populated classes; K stays the full K for
        # "balanced" so that its meaning does not shift with empty classes.
        present = counts[~empty]
        raw = spec.formula(present, **resolved)
        if scheme == "balanced":
            raw = raw * len(present) / len(counts)
        weights[~empty] = raw
        if zero_count == "max":
            weights[empty] = raw.max()
    else:
        with np.errstate(divide="ignore"):
            weights = spec.formula(counts, **resolved)
    weights = normalize_weights(weights, counts, normalize)
    if clip is not None:
        weights = np.clip(weights, clip[0], clip[1])
    return weights


def _check_clip(clip: object) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in clip)  # type: ignore[union-attr]
    except (TypeError, ValueError):
        raise invalid("clip", "a pair (min, max) of numbers", clip) from None
    if not (np.isfinite(low) and np.isfinite(high)) or low < 0 or low > high:
        raise invalid("clip", "a pair (min, max) with 0 <= min <= max, both finite", clip)
    return low, high
