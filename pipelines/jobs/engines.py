"""Flink and Spark as the job's engine: ``--runner FlinkRunner`` and ``--runner SparkRunner``.

Beam runs Python pipelines on Flink and Spark through a portable *job
server*, a Java program of the same Beam version as the Python SDK. Beam's
own runners download one prebuilt jar for it; this module builds the job
server from its Maven modules instead (``beam-runners-flink-<flink>`` or
``beam-runners-spark-3`` and what they depend on), fetched by Maven itself
(``mvn dependency:copy-dependencies``) into a cache, and hands Beam a small
jar whose manifest names them (``--flink_job_server_jar`` /
``--spark_job_server_jar``). Beam then starts and stops the job server as
usual:

* ``--runner FlinkRunner`` without ``--flink_master``: an embedded Flink
  cluster inside the job server (``--parallelism`` slots);
* ``--runner SparkRunner --spark_master_url spark://HOST:7077``: a Spark
  standalone cluster (without it, Spark's ``local[4]`` inside the job server).

The SDK harness runs in the command's own process with
``--environment_type=LOOPBACK`` (Flink's embedded cluster uses it by
default); on a cluster of other machines use ``PROCESS`` or ``DOCKER``.
``--job_endpoint`` of a running job server, or your own job-server jar, skip
the build. Needs Java 11+ and, for the build, Maven (``mvn``) on ``PATH``.
The cache is ``$REBALANCE_JOB_SERVER_CACHE`` or ``~/.cache/tf-rebalance/job-servers``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import subprocess
import uuid
import zipfile
from typing import Any

from balance.errors import JobError, invalid

CACHE_ENV = "REBALANCE_JOB_SERVER_CACHE"
_MARKER = "job-server.jar"  # written last: a directory without it is incomplete

# Packages the job server's libraries reach into by reflection; Java 17 opens them only when asked.
OPENS = ("java.base/java.io", "java.base/java.lang", "java.base/java.lang.invoke", "java.base/java.lang.reflect",
         "java.base/java.net", "java.base/java.nio", "java.base/java.util", "java.base/java.util.concurrent",
         "java.base/java.util.concurrent.atomic", "java.base/sun.nio.ch", "java.base/sun.nio.cs",
         "java.base/sun.security.action", "java.base/sun.util.calendar")
JAVA_OPENS = " ".join(f"--add-opens={name}=ALL-UNNAMED" for name in OPENS)


@dataclasses.dataclass(frozen=True)
class Engine:
    """One runner's job server: its Maven modules and main class."""

    runner: str
    main_class: str
    jar_flag: str  # Beam's option naming the job server's jar

    def modules(self, beam: str, options: Any) -> list[tuple[str, str, str]]:
        """``(group, artifact, version)`` of the modules the job server is built from (the first names it)."""
        if self.runner == "FlinkRunner":
            from apache_beam.options.pipeline_options import FlinkRunnerOptions  # noqa: PLC0415

            flink = options.view_as(FlinkRunnerOptions).flink_version
            return [("org.apache.beam", f"beam-runners-flink-{flink}", beam), _SLF4J_JDK14]
        # beam-runners-spark-3 leaves Spark itself to the cluster ("provided"): the job server needs it too.
        return [("org.apache.beam", "beam-runners-spark-3", beam),
                ("org.apache.spark", "spark-core_2.12", SPARK_VERSION),
                ("org.apache.spark", "spark-streaming_2.12", SPARK_VERSION)]


_SLF4J_JDK14 = ("org.slf4j", "slf4j-jdk14", "1.7.30")  # the job server's log lines (Spark brings its own)
# The Spark that beam-runners-spark-3 is built against, for the Beam release the tests pin.
SPARK_VERSION = "3.2.2"
ENGINES = {
    "flinkrunner": Engine("FlinkRunner", "org.apache.beam.runners.flink.FlinkJobServerDriver", "flink_job_server_jar"),
    "sparkrunner": Engine("SparkRunner", "org.apache.beam.runners.spark.SparkJobServerDriver", "spark_job_server_jar"),
}


def engine_of(options: Any) -> Engine | None:
    """The Flink or Spark engine ``--runner`` names, else None."""
    from apache_beam.options.pipeline_options import StandardOptions  # noqa: PLC0415

    runner = str(options.view_as(StandardOptions).runner or "").rsplit(".", 1)[-1].lower()
    return ENGINES.get(runner) or ENGINES.get(runner + "runner")  # Beam takes "flink" for FlinkRunner too


def resolve(args: argparse.Namespace, options: Any) -> Engine | None:
    """Points Beam's Flink or Spark runner at a job server built from Maven, unless the user gave one.

    Returns the engine (None for other runners).

    Raises:
      ValueError: ``--read_threads`` above 1 on these runners; no Java or Maven
        to build the job server.
    """
    from apache_beam.options.pipeline_options import JobServerOptions, PortableOptions  # noqa: PLC0415

    engine = engine_of(options)
    if engine is None:
        return None
    if getattr(args, "read_threads", 0) not in (0, 1):
        raise invalid("read_threads", f"0 or 1 with --runner {engine.runner} (its task slots read the shards "
                      "in parallel)", args.read_threads, hint="Raise --parallelism or add Spark workers instead")
    portable = options.view_as(PortableOptions)
    if engine.runner == "FlinkRunner" and not portable.environment_type and _embedded_flink(options):
        portable.environment_type = "LOOPBACK"  # what Beam's FlinkRunner picks there; said now, for progress
    all_options = options.get_all_options(drop_default=True)
    if portable.job_endpoint or all_options.get(engine.jar_flag):
        return engine  # a running job server, or the user's own jar
    from apache_beam import version  # noqa: PLC0415

    jar = job_server_jar(engine, version.__version__, options)
    setattr(options.view_as(_options_class(engine)), engine.jar_flag, jar)
    server = options.view_as(JobServerOptions)
    if engine.runner == "SparkRunner":
        server.job_server_jvm_properties = [*server.job_server_jvm_properties, *spark_executor_properties(jar)]
    return engine


def spark_executor_properties(jar: str) -> list[str]:
    """The job server is Spark's driver; what it asks of the executors a standalone cluster starts:
    Java 17's opens, and the job server's Guava before Spark's older one (Beam's GCS file system,
    which every executor loads, needs it). The Guava path is this machine's: elsewhere it is skipped."""
    lib = os.path.join(os.path.dirname(jar), "lib")
    guava = [os.path.join(lib, name) for name in sorted(os.listdir(lib))
             if name.startswith(("guava-", "failureaccess-"))]
    return [f"-Dspark.executor.extraJavaOptions={JAVA_OPENS}",
            f"-Dspark.executor.extraClassPath={os.pathsep.join(guava)}"]


def _embedded_flink(options: Any) -> bool:
    from apache_beam.options.pipeline_options import FlinkRunnerOptions  # noqa: PLC0415
    from apache_beam.runners.portability.flink_runner import MAGIC_HOST_NAMES  # noqa: PLC0415

    return options.view_as(FlinkRunnerOptions).flink_master in MAGIC_HOST_NAMES


def _options_class(engine: Engine) -> type:
    from apache_beam.options import pipeline_options  # noqa: PLC0415

    return getattr(pipeline_options, f"{engine.runner}Options")


def cache_root() -> str:
    return os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "tf-rebalance",
                                                     "job-servers")


def job_server_jar(engine: Engine, beam: str, options: Any, *, cache: str | None = None) -> str:
    """The job server's jar for Beam ``beam``: built once with Maven into ``cache``, then reused.

    The jar holds only a manifest (main class, Java 17's opens, and the
    classpath of the jars Maven fetched beside it), so ``java -jar`` runs it.

    Raises:
      ValueError: no ``java`` or ``mvn`` on ``PATH``, or Maven could not fetch
        the modules (its last lines are in the message).
    """
    modules = engine.modules(beam, options)
    name = "-".join([engine.runner.lower(), *(f"{artifact}-{version}" for _, artifact, version in modules[:1])])
    root = cache or cache_root()
    target = os.path.join(root, name)
    if os.path.exists(os.path.join(target, _MARKER)):
        return os.path.join(target, _MARKER)
    if shutil.which("java") is None:
        raise invalid("runner", f"Java 11+ on PATH for {engine.runner}'s job server", engine.runner,
                      hint="Install a JDK (e.g. apt-get install openjdk-17-jdk-headless)")
    if shutil.which("mvn") is None:
        raise invalid("runner", f"Maven (mvn) on PATH, to fetch {engine.runner}'s job server", engine.runner,
                      hint=f"Install Maven, or pass --{engine.jar_flag} JAR or --job_endpoint HOST:PORT "
                      "of a running job server")
    os.makedirs(root, exist_ok=True)
    staging = os.path.join(root, f".{name}.{uuid.uuid4().hex}")  # renamed into place once complete
    os.mkdir(staging)
    try:
        with open(os.path.join(staging, "pom.xml"), "w") as pom:
            pom.write(_pom(modules))
        done = subprocess.run(["mvn", "-B", "-q", "-f", os.path.join(staging, "pom.xml"),
                               "dependency:copy-dependencies", "-DincludeScope=runtime",
                               f"-DoutputDirectory={os.path.join(staging, 'lib')}"],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-5:])
            raise JobError(f"Maven could not fetch {engine.runner}'s job server (Beam {beam}): {tail}")
        jars = sorted(os.listdir(os.path.join(staging, "lib")))
        _write_manifest_jar(os.path.join(staging, _MARKER), engine.main_class, [f"lib/{j}" for j in jars])
        try:
            os.rename(staging, target)
        except OSError:  # another command built it meanwhile
            if not os.path.exists(os.path.join(target, _MARKER)):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return os.path.join(target, _MARKER)


def _pom(modules: list[tuple[str, str, str]]) -> str:
    deps = "".join(f"<dependency><groupId>{g}</groupId><artifactId>{a}</artifactId><version>{v}</version>"
                   "</dependency>\n" for g, a, v in modules)
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0">\n<modelVersion>4.0.0</modelVersion>\n'
            "<groupId>tf-rebalance</groupId><artifactId>job-server</artifactId><version>1</version>\n"
            f"<dependencies>\n{deps}</dependencies>\n</project>\n")


def _write_manifest_jar(path: str, main_class: str, classpath: list[str]) -> None:
    """A jar of one manifest; its Class-Path is relative to the jar (manifest lines wrap at 72 bytes)."""
    lines = ["Manifest-Version: 1.0", f"Main-Class: {main_class}",
             "Add-Opens: " + " ".join(OPENS),
             "Class-Path: " + " ".join(classpath)]
    text = "".join(_wrap(line) for line in lines) + "\n"
    with zipfile.ZipFile(path, "w") as jar:
        jar.writestr("META-INF/MANIFEST.MF", text)


def _wrap(line: str) -> str:
    data = line.encode()
    parts = [data[:72]] + [b" " + data[i:i + 71] for i in range(72, len(data), 71)]
    return "".join(p.decode() + "\r\n" for p in parts)


def main(argv: list[str] | None = None) -> int:
    """Builds (or finds) the job servers' jars and prints their paths: ``python -m pipelines.jobs.engines``."""
    from apache_beam import version  # noqa: PLC0415
    from apache_beam.options.pipeline_options import PipelineOptions  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m pipelines.jobs.engines",
                                     description="Fetch the Flink and Spark job servers of the installed Beam "
                                     "with Maven, and print the jar to run each (java -jar JAR --help).")
    parser.add_argument("runners", nargs="*", metavar="RUNNER",
                        help=f"Any of {[e.runner for e in ENGINES.values()]} (default: both).")
    parser.add_argument("--flink_version", help="Flink of the Flink job server (default: Beam's newest).")
    args = parser.parse_args(argv)
    for runner in args.runners:
        if runner.lower() not in ENGINES:
            parser.error(f"unknown runner {runner!r}; choose from {[e.runner for e in ENGINES.values()]}")
    options = PipelineOptions([f"--flink_version={args.flink_version}"] if args.flink_version else [])
    for runner in args.runners or [e.runner for e in ENGINES.values()]:
        print(f"{runner}: {job_server_jar(ENGINES[runner.lower()], version.__version__, options)}", flush=True)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main())
