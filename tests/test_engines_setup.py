"""Flink and Spark set-up that needs no engine (the runs are in test_pipelines_engines.py): what a
machine without Java or Maven is told, flags refused on these runners, a job server of the user's
own left alone."""

from __future__ import annotations

import argparse
import os
import shutil

import pytest
from _pipelines_data import example, write_tfrecords

from pipelines import run_class_stats as run
from pipelines.jobs import engines


@pytest.fixture
def records(tmp_path):
    return write_tfrecords(tmp_path / "d", [example(label=i % 3) for i in range(30)], shards=2)


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(engines.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def only_on_path(tmp_path, monkeypatch, *programs: str) -> None:
    """PATH holds only ``programs`` (links to the real ones)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for program in programs:
        os.symlink(shutil.which(program), bin_dir / program)
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.mark.parametrize("runner", ["FlinkRunner", "SparkRunner"])
def test_without_java_the_job_says_what_to_install(tmp_path, records, fresh_cache, monkeypatch, runner):
    only_on_path(tmp_path, monkeypatch)
    output = tmp_path / "t.json"
    with pytest.raises(ValueError, match=rf"`runner`. Expected Java 11\+ on PATH for {runner}'s job server. "
                       rf"Received: runner='{runner}'. Install a JDK"):
        run(["--input", str(tmp_path / "d" / "*"), "--output", str(output), "--runner", runner])
    assert not output.exists() and not fresh_cache.exists()


@pytest.mark.skipif(shutil.which("java") is None, reason="needs a java to leave on PATH")
def test_without_maven_the_job_names_it_and_the_ways_around(tmp_path, records, fresh_cache, monkeypatch):
    only_on_path(tmp_path, monkeypatch, "java")
    with pytest.raises(ValueError, match=r"Expected Maven \(mvn\) on PATH, to fetch FlinkRunner's job server.*"
                       r"pass --flink_job_server_jar JAR or --job_endpoint HOST:PORT"):
        run(["--input", str(tmp_path / "d" / "*"), "--output", str(tmp_path / "t.json"), "--runner", "FlinkRunner"])
    assert not fresh_cache.exists()


@pytest.mark.parametrize("runner", ["FlinkRunner", "SparkRunner"])
def test_read_threads_above_one_is_refused(tmp_path, records, runner):
    with pytest.raises(ValueError, match=rf"`read_threads`. Expected 0 or 1 with --runner {runner}.*"
                       r"Received: read_threads=2"):
        run(["--input", str(tmp_path / "d" / "*"), "--output", str(tmp_path / "t.json"), "--runner", runner,
             "--read_threads", "2"])
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("flags", [["--flink_job_server_jar", "/opt/my-job-server.jar"],
                                   ["--job_endpoint", "localhost:8099"]])
def test_a_job_server_of_the_users_own_is_left_alone(fresh_cache, flags):
    from apache_beam.options.pipeline_options import FlinkRunnerOptions, JobServerOptions, PipelineOptions

    options = PipelineOptions(["--runner", "FlinkRunner", *flags])
    assert engines.resolve(argparse.Namespace(read_threads=0), options).runner == "FlinkRunner"
    assert options.view_as(FlinkRunnerOptions).flink_job_server_jar == (flags[1] if "jar" in flags[0] else None)
    assert options.view_as(JobServerOptions).job_server_jvm_properties == []
    assert not fresh_cache.exists()  # nothing fetched


def test_other_runners_are_not_touched(fresh_cache):
    from apache_beam.options.pipeline_options import PipelineOptions

    options = PipelineOptions(["--runner", "PortableRunner", "--job_endpoint", "localhost:8099"])
    assert engines.resolve(argparse.Namespace(read_threads=4), options) is None
    assert options.get_all_options(drop_default=True).get("environment_type") is None


@pytest.mark.parametrize("runner, engine", [("flink", "FlinkRunner"), ("spark", "SparkRunner"),
                                            ("apache_beam.runners.portability.flink_runner.FlinkRunner",
                                             "FlinkRunner")])
def test_the_names_beam_takes_for_the_engines_are_ours_too(runner, engine):
    from apache_beam.options.pipeline_options import PipelineOptions

    assert engines.engine_of(PipelineOptions(["--runner", runner])).runner == engine
