"""A Spark standalone cluster on this machine: a master and N workers on 127.0.0.1, from PySpark's jars.

The way to try ``--runner SparkRunner`` against a real standalone master
without installing Spark: PySpark from PyPI carries Spark's jars, and the
master and workers are started from them with ``java`` (the version must be
the Spark the Beam job server is built against, ``engines.SPARK_VERSION``)::

  pip install pyspark==3.2.2
  python -m pipelines.jobs.local_spark --workers 2    # prints the master's URL; Ctrl-C stops the cluster
  rebalance stats --input 'data/*.tfrecord' --output table.json \\
      --runner SparkRunner --spark_master_url spark://127.0.0.1:PORT --environment_type LOOPBACK

Every process listens on 127.0.0.1 only; their logs and work directories go
to a temporary directory removed when the cluster stops.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence

from balance.errors import JobError, invalid
from pipelines.jobs.engines import JAVA_OPENS, SPARK_VERSION

START_SECONDS = 120.0


def spark_home() -> str:
    """PySpark's directory (its ``jars/`` are Spark's).

    Raises:
      ImportError: PySpark is not installed.
    """
    try:
        import pyspark  # noqa: PLC0415
    except ImportError:
        raise ImportError(f"A local Spark cluster needs PySpark's jars. Install them with: "
                          f"pip install pyspark=={SPARK_VERSION}") from None
    return os.path.dirname(os.path.abspath(pyspark.__file__))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LocalSparkCluster:
    """A master and ``workers`` workers of ``cores`` cores each, started by ``start`` and stopped by ``stop``.

    Attributes:
      master_url: ``spark://127.0.0.1:PORT``, once started.
      ui_url: the master's web UI.
    """

    def __init__(self, workers: int = 2, *, cores: int = 1, memory: str = "1g") -> None:
        for name, value in (("workers", workers), ("cores", cores)):
            if not isinstance(value, int) or value < 1:
                raise invalid(name, "a positive int", value)
        self.workers, self.cores, self.memory = workers, cores, memory
        self.master_url = self.ui_url = ""
        self._procs: list[subprocess.Popen] = []
        self._dir = ""

    def _java(self, main: str, *args: str, log: str) -> subprocess.Popen:
        home = spark_home()
        # SPARK_SCALA_VERSION: what bin/load-spark-env.sh sets; the workers need it to build an executor's classpath.
        env = dict(os.environ, SPARK_HOME=home, SPARK_LOCAL_IP="127.0.0.1", SPARK_SCALA_VERSION="2.12")
        with open(os.path.join(self._dir, log), "w") as out:
            proc = subprocess.Popen(["java", *JAVA_OPENS.split(), "-Xmx512m", "-cp", os.path.join(home, "jars", "*"),
                                     main, *args], stdout=out, stderr=subprocess.STDOUT, env=env,
                                    start_new_session=True)
        self._procs.append(proc)
        return proc

    def start(self) -> LocalSparkCluster:
        """Starts the master and the workers; returns once every worker has registered.

        Raises:
          JobError: a process exited or the workers did not register in time (the log's last lines say why).
        """
        if shutil.which("java") is None:
            raise invalid("java", "Java 11+ on PATH for a Spark cluster", None)
        self._dir = tempfile.mkdtemp(prefix="rebalance-spark-")
        port, ui = free_port(), free_port()
        self.master_url, self.ui_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{ui}"
        try:
            self._java("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                       "--webui-port", str(ui), log="master.log")
            for i in range(self.workers):
                work = os.path.join(self._dir, f"worker-{i}")
                os.mkdir(work)
                self._java("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1", "--cores", str(self.cores),
                           "--memory", self.memory, "--webui-port", str(free_port()), "--work-dir", work,
                           self.master_url, log=f"worker-{i}.log")
            self._wait_for_workers()
        except BaseException:
            self.stop()
            raise
        return self

    def alive_workers(self) -> int:
        """Workers the master lists as ALIVE (0 while its UI is not up)."""
        try:
            with urllib.request.urlopen(f"{self.ui_url}/json/", timeout=2) as page:
                state = json.load(page)
        except (OSError, ValueError):
            return 0
        return sum(1 for worker in state.get("workers", []) if worker.get("state") == "ALIVE")

    def _wait_for_workers(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while self.alive_workers() < self.workers:
            for proc, log in zip(self._procs, self._logs(), strict=True):
                if proc.poll() is not None:
                    raise JobError(f"The local Spark {log[:-4]} exited (code {proc.returncode}): {self._tail(log)}")
            if time.monotonic() > deadline:
                raise JobError(f"The local Spark workers did not register with {self.master_url} in "
                               f"{START_SECONDS:.0f} s: {self._tail('master.log')}")
            time.sleep(0.5)

    def _logs(self) -> list[str]:
        return ["master.log", *(f"worker-{i}.log" for i in range(len(self._procs) - 1))]

    def _tail(self, log: str) -> str:
        with contextlib.suppress(OSError), open(os.path.join(self._dir, log)) as text:
            return " | ".join(text.read().strip().splitlines()[-3:])
        return "(no log)"

    def stop(self) -> None:
        """Stops the workers (and their executors), then the master; removes the logs. Safe to call twice."""
        for proc in reversed(self._procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self._procs = []
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = ""

    def __enter__(self) -> LocalSparkCluster:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """Starts a cluster, prints its master URL and waits for Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.jobs.local_spark",
                                     description="A Spark standalone master and workers on 127.0.0.1.")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--cores", type=int, default=1, help="Cores per worker (default 1).")
    parser.add_argument("--memory", default="1g", help="Memory per worker (default 1g).")
    args = parser.parse_args(argv)
    # The master and workers run in sessions of their own (a Ctrl-C in the terminal does not reach them):
    # a SIGTERM to this process stops them too, as Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with LocalSparkCluster(args.workers, cores=args.cores, memory=args.memory) as cluster:
        print(f"Spark master: {cluster.master_url} (web UI {cluster.ui_url}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
