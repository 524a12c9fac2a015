"""How the job's own errors travel from the workers back to ``run``, typed.

Runners that execute in other processes (multi-process DirectRunner, portable
runners, cloud runners) hand an exception raised on a worker back as a
``RuntimeError`` holding the worker's traceback text, so its type and fields
are lost. So the job does not raise its own errors on workers: a reader
catches a ``balance.errors`` error and carries it in the shard's
``ClassCounts``; the combiner keeps one (the first by file and record, so the
same whatever the order); the last step reports it in a Beam metric and writes
no table; ``run`` reads the metric and raises the same error in the caller.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from balance import errors

METRICS_NAMESPACE = "tf_rebalance.class_stats"
FAILURE_METRIC = "job_errors"
FAILED_COUNTER = "failed"
_TYPES = {cls.__name__: cls for cls in (errors.InvalidArgumentError, errors.InvalidDataError,
                                        errors.InvalidTableError, errors.JobError, errors.RebalanceError)}


def as_data_error(err: errors.RebalanceError, path: str) -> errors.RebalanceError:
    """An error met while reading ``path``, as an ``InvalidDataError`` naming that file (in its message too)."""
    if isinstance(err, errors.InvalidDataError) and err.path is not None:
        return err
    message = str(err)
    if path not in message:  # say which file, as every error met in data does
        message = f"{message.rstrip('.')}. {errors.where_text(path, None)}"
    return errors.InvalidDataError(message, path=path, record=getattr(err, "record", None))


def for_label(err: errors.RebalanceError, label: str) -> errors.RebalanceError:
    """The same error (type and fields), its message prefixed with the label it is about (one of several)."""
    return type(err)(f"Label {label!r}: {err}", *err.args[1:])


def first_error(a: errors.RebalanceError | None, b: errors.RebalanceError | None) -> errors.RebalanceError | None:
    """The one of two errors to report: the first by (file, record, message); None if both are None."""
    found = [e for e in (a, b) if e is not None]
    return min(found, key=_order) if found else None


def _order(err: errors.RebalanceError) -> tuple:
    path, record = getattr(err, "path", None), getattr(err, "record", None)
    return (path is None, path or "", -1 if record is None else record, str(err))


def to_text(err: errors.RebalanceError) -> str:
    fields = {k: v for k, v in vars(err).items() if k in ("path", "record", "source", "name", "expected", "state")}
    return json.dumps({"type": type(err).__name__, "message": str(err), **fields}, sort_keys=True, default=str)


def from_text(text: str) -> errors.RebalanceError:
    data = json.loads(text)
    cls = _TYPES.get(data.pop("type"), errors.RebalanceError)
    message = data.pop("message")
    if cls is errors.RebalanceError:
        return cls(message)
    keys = {"InvalidArgumentError": ("name", "expected"), "InvalidDataError": ("path", "record"),
            "InvalidTableError": ("source",), "JobError": ("state",)}[cls.__name__]
    return cls(message, **{k: data.get(k) for k in keys})


def report(err: errors.RebalanceError) -> None:
    """On a worker: records the job's error where ``job_failure`` finds it."""
    import apache_beam as beam  # noqa: PLC0415

    logging.getLogger(__name__).error("The class-statistics job failed: %s", err)
    beam.metrics.Metrics.string_set(METRICS_NAMESPACE, FAILURE_METRIC).add(to_text(err))
    beam.metrics.Metrics.counter(METRICS_NAMESPACE, FAILED_COUNTER).inc()


def job_failure(result: Any) -> errors.RebalanceError | None:
    """On the driver: the error a finished job reported, or None."""
    from apache_beam.metrics.metric import MetricsFilter  # noqa: PLC0415

    try:
        found = result.metrics().query(MetricsFilter().with_namespace(METRICS_NAMESPACE).with_name(FAILURE_METRIC))
    except Exception:  # noqa: BLE001 (some runners do not report metrics)
        return None
    texts: set[str] = set()
    for metric in found.get("string_sets", []):
        texts |= set(metric.committed or ()) | set(metric.attempted or ())
    failures = [from_text(t) for t in texts]
    return min(failures, key=_order) if failures else None
