"""Running a job's pipeline: the runner, threads, metrics, the job's reported error and the command-line wrapper.

Shared by every job (``pipelines.jobs.stats``, ``pipelines.jobs.sample``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

import apache_beam as beam
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, PortableOptions, StandardOptions
from apache_beam.runners.runner import PipelineState

from balance import fileio
from balance.errors import JobError, RebalanceError
from pipelines import console
from pipelines.outcome import FAILED_COUNTER, METRICS_NAMESPACE, job_failure
from pipelines.jobs import dask as dask_setup
from pipelines.jobs import engines
from pipelines.progress import Progress


# What Beam appends to an error raised in a step: the step's name, which says nothing to the user.
_STEP = re.compile(r"( \[while running '[^']*'\])+$")


def job_error(err: BaseException) -> BaseException:
    """The job's own error (without the step name Beam appends) if the runner raised it wrapped
    (in-process runners), else ``err``.

    The job reports its own errors as data (see ``pipelines.outcome``), so
    this only matters for a ``ComputeClassStats(on_error="raise")`` pipeline.
    """
    cause: BaseException | None = err
    while cause is not None:
        if isinstance(cause, RebalanceError):
            message = _STEP.sub("", str(cause))
            return cause if message == str(cause) else type(cause)(message, *cause.args[1:])
        cause = cause.__cause__ or cause.__context__
    return err


def raise_reported(result, counters: dict[str, int], previous: bytes | None, output: str) -> None:
    """Raises the error the job reported (typed), or fails if it wrote no new table."""
    failure = job_failure(result)
    if failure is not None:
        raise failure
    if counters.get(FAILED_COUNTER):
        raise JobError("The class-statistics job failed on a worker and this runner does not report "
                       "its error; see the worker log")
    if not fileio.exists(output) or (not counters and previous == fileio.read_bytes(output)):
        raise JobError(f"The class-statistics job finished without writing a new table to {output!r}")


def reports_metrics(options: PipelineOptions) -> bool:
    """False for Beam's DaskRunner, which reports no metrics. There the job's errors are raised on
    the workers instead, and Dask hands them back pickled, with their type and fields."""
    return "dask" not in str(options.view_as(StandardOptions).runner or "").lower()


def is_local(options: PipelineOptions) -> bool:
    return options.view_as(StandardOptions).runner in (None, "DirectRunner", "direct")


def auto_read_threads(options: PipelineOptions) -> int:
    """Cores per local worker: the in-process runner runs a bundle on one thread,
    so without this a 2-core machine reads one shard at a time. Cloud runners
    already run a DoFn thread per core, so they keep 1."""
    if not is_local(options):
        return 1
    direct = options.view_as(DirectOptions)
    cores = os.cpu_count() or 1
    workers = 1 if direct.direct_running_mode == "in_memory" else (direct.direct_num_workers or cores)
    return max(1, cores // workers)


def resolve_runner(args, options: PipelineOptions) -> dask_setup.DaskSetup | None:
    """Validates the runner's flags and sets it up: Dask (returned; None on other runners), or the job
    server of Flink and Spark (see ``pipelines.jobs.engines``)."""
    dask = dask_setup.resolve(args, options)
    engines.resolve(args, options)
    return dask


def loopback(options: PipelineOptions) -> bool:
    """Whether a portable runner runs the SDK workers in this process (``--environment_type=LOOPBACK``)."""
    return str(options.view_as(PortableOptions).environment_type or "").upper() == "LOOPBACK"


def progress_of(args, options: PipelineOptions, dask) -> Progress:
    """The job's progress lines, unless ``--quiet``: shown where the workers share this machine's files
    (local runners, a local Dask cluster, loopback workers of Flink, Spark or the PortableRunner)."""
    local = is_local(options) or (dask is not None and dask.address is None) or loopback(options)
    return Progress(local=local, quiet=args.quiet, runner=str(options.view_as(StandardOptions).runner))


def local_runner(options: PipelineOptions):
    """The FnApiRunner for DirectRunner jobs; None (the options decide) otherwise.

    Beam's DirectRunner first tries the PrismRunner, which downloads a binary
    from the internet at run time, and falls back to the FnApiRunner when that
    fails. This batch job needs nothing Prism adds, so local runs go straight
    to the runner DirectRunner would end up with (it honours
    ``--direct_num_workers`` and ``--direct_running_mode``).
    """
    if not is_local(options):
        return None
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner  # noqa: PLC0415

    return FnApiRunner()


def run_pipeline(options: PipelineOptions, progress: Progress, shards: int, attach: Callable[[Any], None]) -> Any:
    """Runs a pipeline built by ``attach(pipeline)`` to its end, showing progress over ``shards``;
    returns Beam's result.

    Raises:
      The job's own error (see ``job_error``), or ``balance.errors.JobError``
      if the runner ended the job in another state than DONE.
    """
    with progress.watch(shards):
        pipeline = beam.Pipeline(runner=local_runner(options), options=options)
        attach(pipeline)
        result = None
        try:
            result = pipeline.run()
            state = result.wait_until_finish()
        except Exception as err:
            raise job_error(err) from err
        finally:
            dask_setup.close_client(result)
    if state not in (PipelineState.DONE, None):
        raise JobError(f"The job ended in state {state}; nothing was published", state=str(state))
    return result


def run_to_end(options: PipelineOptions, dask, progress: Progress, shards: int,
               attach: Callable[[Any], None]) -> Any:
    """``run_pipeline`` inside the local Dask cluster the job asked for (started and stopped here)."""
    with dask_setup.cluster(dask, options):
        return run_pipeline(options, progress, shards, attach)


def counters(result, namespace: str = METRICS_NAMESPACE) -> dict[str, int]:
    """The job's counters (summed over steps); empty when the runner reports no metrics."""
    try:
        found = result.metrics().query(MetricsFilter().with_namespace(namespace))
    except Exception:  # noqa: BLE001 (some runners do not report metrics)
        return {}
    totals: dict[str, int] = {}
    for counter in found.get("counters", []):
        value = counter.committed if counter.committed is not None else counter.attempted
        totals[counter.key.metric.name] = totals.get(counter.key.metric.name, 0) + int(value or 0)
    return totals


def number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.6g}"


def run_as_command(prog: str, job: Callable[[Sequence[str] | None], object], argv: Sequence[str] | None) -> int:
    """Runs a Beam job's ``run(argv)`` as the command ``prog`` (``python -m pipelines.jobs.stats``):
    its output, and an error as one line on stderr with exit code 1 (see ``pipelines.console``).
    ``argv`` None: the program's own arguments."""

    def command(args: list[str]) -> int:
        job(args)
        return 0

    return console.run(prog, command, sys.argv[1:] if argv is None else argv, process=argv is None)
