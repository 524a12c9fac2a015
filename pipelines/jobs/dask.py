"""Dask distributed as the job's engine: ``--runner dask``.

The job runs on Beam's own ``DaskRunner``. This module adds what it lacks for
this job:

* a short name, ``--runner dask``, and ``--dask_address`` for an existing
  cluster; without an address, a local cluster of ``--dask_workers`` processes
  that the job starts and stops (``dask.distributed.LocalCluster``);
* one task per shard (``pipelines.io.plan.one_task_per_shard``).

Requires ``pip install 'tf-rebalance[dask]'`` (``apache-beam[dask]``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import Any

from balance.errors import invalid

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
_NAMES = {"dask", "daskrunner", DASK_RUNNER.lower()}
_LOCAL_FLAGS = ("dask_workers", "dask_threads_per_worker")


def add_dask_flags(parser: argparse.ArgumentParser) -> None:
    """Adds ``--dask_address``, ``--dask_workers`` and ``--dask_threads_per_worker``."""
    group = parser.add_argument_group("Dask (with --runner dask)")
    group.add_argument("--dask_address",
                       help="Scheduler of a running Dask cluster, e.g. tcp://host:8786. Without it, "
                       "the job starts a local cluster of --dask_workers processes and stops it at the end.")
    group.add_argument("--dask_workers", type=int,
                       help="Worker processes of the local cluster (default: one per core).")
    group.add_argument("--dask_threads_per_worker", type=int,
                       help="Threads per local worker process (default 1: tf.data and pyarrow "
                       "already use several threads per shard).")


@dataclasses.dataclass(frozen=True)
class DaskSetup:
    """Where the job runs: ``address`` of a running cluster, or a local one to start."""

    address: str | None
    workers: int
    threads_per_worker: int


def _dask_options(options: Any) -> Any:
    try:
        import dask.distributed  # noqa: F401, PLC0415
        from apache_beam.runners.dask.dask_runner import DaskOptions  # noqa: PLC0415
    except ImportError as err:
        raise ImportError(f"--runner dask needs Dask distributed ({err}). Install it with: "
                          "pip install 'tf-rebalance[dask]'") from None
    return options.view_as(DaskOptions)


def resolve(args: argparse.Namespace, options: Any) -> DaskSetup | None:
    """Validates the Dask flags; rewrites ``--runner dask`` to Beam's DaskRunner.

    Returns:
      None when the job does not run on Dask, else where it runs.

    Raises:
      ValueError: a Dask flag without ``--runner dask``, a local-cluster flag
        with an address, or two different addresses.
    """
    import os  # noqa: PLC0415

    from apache_beam.options.pipeline_options import StandardOptions  # noqa: PLC0415

    standard = options.view_as(StandardOptions)
    given = [name for name in ("dask_address", *_LOCAL_FLAGS) if getattr(args, name) is not None]
    if str(standard.runner or "").lower() not in _NAMES:
        if given:
            raise invalid(given[0], "no value unless --runner dask", getattr(args, given[0]),
                          hint=f"The runner is {standard.runner or 'DirectRunner'}")
        return None
    if getattr(args, "read_threads", 0) not in (0, 1):
        # Beam's DaskRunner drops what a DoFn emits in finish_bundle, where shards
        # read concurrently are emitted; one shard per DoFn call is emitted at once.
        raise invalid("read_threads", "0 or 1 with --runner dask (the cluster's workers read the shards in "
                      "parallel)", args.read_threads, hint="Add Dask workers or threads instead")
    standard.runner = DASK_RUNNER
    dask = _dask_options(options)
    address = args.dask_address or dask.address
    if args.dask_address and dask.address and args.dask_address != dask.address:
        raise invalid("dask_address", f"the same address as --dask_client_address ({dask.address})",
                      args.dask_address)
    local = [name for name in _LOCAL_FLAGS if getattr(args, name) is not None]
    if (address or dask.scheduler_file) and local:
        raise invalid(local[0], "no value with --dask_address (it sizes the local cluster only)",
                      getattr(args, local[0]), hint="Size a running cluster where you start its workers")
    for name in local:
        if getattr(args, name) < 1:
            raise invalid(name, "a positive int", getattr(args, name))
    dask.address = address
    return DaskSetup(address or dask.scheduler_file, args.dask_workers or os.cpu_count() or 1,
                     args.dask_threads_per_worker or 1)


@contextlib.contextmanager
def cluster(setup: DaskSetup | None, options: Any) -> Iterator[None]:
    """Starts (and finally stops) the local cluster when the job needs one."""
    if setup is None or setup.address:
        yield
        return
    from dask.distributed import LocalCluster  # noqa: PLC0415

    # The cluster's own INFO lines (ports, worker start and stop) say nothing to a user of the job.
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with LocalCluster(n_workers=setup.workers, threads_per_worker=setup.threads_per_worker,
                          processes=True, host="127.0.0.1", dashboard_address=None) as local:
            _dask_options(options).address = local.scheduler_address
            yield
    finally:
        logger.setLevel(level)


def close_client(result: Any) -> None:
    """Closes the client the DaskRunner opened (it leaves it open)."""
    client = getattr(result, "client", None)
    if client is not None:
        client.close()
