"""Dask distributed as the job's engine: ``--runner dask``.

The job runs on Beam's own ``DaskRunner``. This module adds what it lacks for
this job:

* a short name, ``--runner dask``, and ``--dask_address`` for an existing
  cluster; without an address, a local cluster of ``--dask_workers`` processes
  that the job starts and stops (``dask.distributed.LocalCluster``);
* one task per shard: the DaskRunner turns ``beam.Create`` into a Dask bag of
  128 items per partition and treats ``Reshuffle`` as a no-op, so by default
  every shard of a job lands in one partition, read by one worker.
  ``pipelines.io.plan.one_task_per_shard`` asks for one partition per shard instead;
* TLS. Anyone who can reach a Dask scheduler runs code as its workers' user,
  so the local cluster listens on ``tls://127.0.0.1`` with throwaway
  certificates (``Security.temporary()``): only the job's own client has
  them. A secured cluster of your own is reached at a ``tls://`` address with
  Dask's TLS configuration (``distributed.comm.tls.*``) or with
  ``--dask_tls_ca_file``/``--dask_tls_cert``/``--dask_tls_key``, from which
  the job builds a ``distributed.security.Security``. Beam's DaskRunner opens
  its own ``Client`` and takes no ``Security``; it is handed over through
  Dask's ``distributed.client.security-loader`` setting while the job runs.

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
_TLS_FLAGS = ("dask_tls_ca_file", "dask_tls_cert", "dask_tls_key")
_LOADER = "distributed.client.security-loader"
_SECURITY: dict[str, Any] = {}  # scheduler address -> the Security its client uses, while a job runs


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
    group.add_argument("--dask_tls_ca_file", metavar="PEM",
                       help="With a tls:// --dask_address: the CA certificate the scheduler's certificate is "
                       "signed by. Without these flags Dask's own TLS configuration (distributed.comm.tls.*) "
                       "applies. The local cluster needs none: it uses throwaway certificates.")
    group.add_argument("--dask_tls_cert", metavar="PEM", help="The client certificate (with --dask_tls_ca_file).")
    group.add_argument("--dask_tls_key", metavar="PEM",
                       help="The client certificate's private key, if it is not in --dask_tls_cert.")


@dataclasses.dataclass(frozen=True)
class DaskSetup:
    """Where the job runs: ``address`` of a running cluster, or a local one to start.

    ``security``: the ``distributed.security.Security`` of the job's client for a
    running cluster, from the TLS flags; None for Dask's own configuration.
    """

    address: str | None
    workers: int
    threads_per_worker: int
    security: Any = None


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
    given = [name for name in ("dask_address", *_LOCAL_FLAGS, *_TLS_FLAGS) if getattr(args, name, None) is not None]
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
    security = _client_security(args, address or dask.scheduler_file)
    return DaskSetup(address or dask.scheduler_file, args.dask_workers or os.cpu_count() or 1,
                     args.dask_threads_per_worker or 1, security)


def _client_security(args: argparse.Namespace, address: str | None) -> Any:
    """The ``Security`` the TLS flags describe (None without them); refuses TLS flags that cannot apply."""
    import dask  # noqa: PLC0415

    from balance import fileio  # noqa: PLC0415

    given = [name for name in _TLS_FLAGS if getattr(args, name, None) is not None]
    if not given:
        if address and address.startswith("tls://") and not (
                dask.config.get("distributed.comm.tls.ca-file", None) or dask.config.get(_LOADER, None)):
            raise invalid("dask_address", "a tls:// scheduler with certificates to reach it", address,
                          hint="Pass --dask_tls_ca_file and --dask_tls_cert (and --dask_tls_key), or set them "
                          "in Dask's configuration (distributed.comm.tls.ca-file, distributed.comm.tls.client.cert)")
        return None
    if not address:
        raise invalid(given[0], "no value without --dask_address (the local cluster makes its own throwaway "
                      "certificates)", getattr(args, given[0]))
    if not address.startswith("tls://"):
        raise invalid(given[0], "no value unless --dask_address is a tls:// address", getattr(args, given[0]),
                      hint=f"The address is {address}")
    for name in ("dask_tls_ca_file", "dask_tls_cert"):
        if getattr(args, name, None) is None:
            raise invalid(name, "a PEM file with the other --dask_tls_* flags", None)
    for name in given:
        if not fileio.exists(getattr(args, name)):
            raise invalid(name, "an existing PEM file", getattr(args, name))
    from distributed.security import Security  # noqa: PLC0415

    return Security(tls_ca_file=args.dask_tls_ca_file, tls_client_cert=args.dask_tls_cert,
                    tls_client_key=args.dask_tls_key, require_encryption=True)


def security_loader(info: dict[str, Any]) -> Any:
    """Dask's ``distributed.client.security-loader`` while a job runs: the Security for its scheduler."""
    return _SECURITY.get(info.get("address"))


@contextlib.contextmanager
def _client_uses(address: str, security: Any) -> Iterator[None]:
    """Clients opened meanwhile (the DaskRunner's) connect to ``address`` with ``security``."""
    import dask  # noqa: PLC0415

    _SECURITY[address] = security
    try:
        with dask.config.set({_LOADER: f"{__name__}.security_loader"}):
            yield
    finally:
        _SECURITY.pop(address, None)


@contextlib.contextmanager
def cluster(setup: DaskSetup | None, options: Any) -> Iterator[None]:
    """Starts (and finally stops) the local cluster when the job needs one, on TLS with throwaway
    certificates; hands the job's client the Security of the TLS flags for a running cluster."""
    if setup is None or setup.address:
        if setup is not None and setup.security is not None:
            with _client_uses(setup.address, setup.security):
                yield
        else:
            yield
        return
    from dask.distributed import LocalCluster  # noqa: PLC0415
    from distributed.security import Security  # noqa: PLC0415

    try:
        security = Security.temporary()  # a key and certificate in memory, for this cluster only
    except ImportError:
        raise ImportError("The local Dask cluster needs the cryptography package for its TLS certificates. "
                          "Install it with: pip install 'tf-rebalance[dask]'") from None

    # The cluster's own INFO lines (ports, worker start and stop) say nothing to a user of the job.
    logger = logging.getLogger("distributed")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        with LocalCluster(n_workers=setup.workers, threads_per_worker=setup.threads_per_worker,
                          processes=True, host="127.0.0.1", dashboard_address=None, protocol="tls://",
                          security=security) as local, _client_uses(local.scheduler_address, security):
            _dask_options(options).address = local.scheduler_address
            yield
    finally:
        logger.setLevel(level)


def close_client(result: Any) -> None:
    """Closes the client the DaskRunner opened (it leaves it open)."""
    client = getattr(result, "client", None)
    if client is not None:
        client.close()
