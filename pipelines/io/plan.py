"""Input planning: the input patterns (or a TFDS split) -> a sorted list of shards.

``plan_inputs`` expands the patterns into ``Shard``s (Parquet row groups and
CSV byte ranges, see ``pipelines.io.split``) and a fingerprint of the input files
(paths and sizes). It runs once, where the pipeline is constructed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Sequence
from typing import Any, NamedTuple

from balance import fileio
from balance.errors import invalid
from pipelines.config import GLOB_CHARS, Shard, StatsConfig
from pipelines.io.split import split_shards


class Plan(NamedTuple):
    """Resolved inputs: the config (completed from TFDS), shards, provenance."""

    config: StatsConfig
    shards: tuple[Shard, ...]
    inputs: tuple[str, ...]
    fingerprint: str


HIDDEN = (".", "_")  # names whole-directory readers skip (Spark's _SUCCESS, our _table.json, .staging)


def _expand(pattern: str) -> list[str]:
    """The files of a pattern; a directory or glob skips names starting with ``_`` or ``.`` (unless the
    glob's own last part does, as in ``DIR/_*``)."""
    if any(c in pattern for c in GLOB_CHARS):
        asks_hidden = pattern.rstrip("/").rsplit("/", 1)[-1].startswith(HIDDEN)
        return [p for p in fileio.glob(pattern)
                if (asks_hidden or not p.rstrip("/").rsplit("/", 1)[-1].startswith(HIDDEN)) and not fileio.isdir(p)]
    if fileio.isdir(pattern):
        names = sorted(fileio.listdir(pattern))
        base = pattern.rstrip("/")
        return [
            f"{base}/{n}" for n in names
            if not n.startswith(HIDDEN) and not fileio.isdir(f"{base}/{n}")
        ]
    return [pattern] if fileio.exists(pattern) else []


# File names -> format, for --format inferred from the extension (".gz": compressed, which the readers sniff).
_FORMAT_OF_NAME = ((re.compile(r"\.tfrecords?(-\d+-of-\d+)?$"), "tfrecord"), (re.compile(r"\.csv$"), "csv"),
                   (re.compile(r"\.parquet$"), "parquet"))
DEFAULT_FORMAT = "tfrecord"


def format_of_name(path: str) -> str | None:
    """The format a file name says (``.tfrecord``, ``.tfrecords``, ``.csv``, ``.parquet``, each maybe ``.gz``);
    None if it says none."""
    name = path.rstrip("/").rsplit("/", 1)[-1].lower()
    name = name[:-3] if name.endswith(".gz") else name
    return next((fmt for pattern, fmt in _FORMAT_OF_NAME if pattern.search(name)), None)


def infer_format(patterns: Sequence[str]) -> str:
    """The input format, from the names of the patterns (or, for a directory or a glob without an
    extension, of the files they match); ``tfrecord`` if no name says one.

    Raises:
      ValueError: the names say several formats (naming a file of each).
    """
    said: dict[str, str] = {}
    for pattern in split_patterns(patterns):
        fmt = format_of_name(pattern)
        if fmt is not None:
            said.setdefault(fmt, pattern)
        elif any(c in pattern for c in GLOB_CHARS) or fileio.isdir(pattern):
            for path in _expand(pattern):
                if (fmt := format_of_name(path)) is not None:
                    said.setdefault(fmt, path)
    if len(said) > 1:
        raise invalid("input", "files of one format (or pass --format)", sorted(said.values()),
                      hint="The names say " + ", ".join(f"{fmt} ({path!r})" for fmt, path in sorted(said.items())))
    return next(iter(said), DEFAULT_FORMAT)


def split_patterns(patterns: Sequence[str]) -> tuple[str, ...]:
    """Flattens comma-separated lists of patterns."""
    return tuple(p.strip() for item in patterns for p in item.split(",") if p.strip())


def fingerprint(shards: Sequence[Shard], sizes: Sequence[int]) -> str:
    """sha256 over sorted paths, sizes and slices: stable across runners."""
    digest = hashlib.sha256()
    for shard, size in sorted(zip(shards, sizes, strict=False)):
        digest.update(f"{shard.path}\t{size}\t{shard.skip}\t{shard.take}\n".encode())
    return "sha256:" + digest.hexdigest()


def plan_inputs(config: StatsConfig) -> Plan:
    """Expands the inputs into sorted shards; fails clearly when there are none."""
    if config.format == "tfds":
        return _plan_tfds(config)
    patterns = split_patterns(config.input)
    if not patterns:
        raise invalid("input", "at least one file pattern", list(config.input))
    paths: set[str] = set()
    for pattern in patterns:
        matched = _expand(pattern)
        if not matched:
            raise invalid("input", "a file, directory or glob matching at least one file", pattern,
                          hint="Empty input: nothing to count")
        paths.update(matched)
    files = tuple(Shard(p) for p in sorted(paths))
    sizes = [fileio.size(s.path) for s in files]

    return Plan(config, split_shards(config, files, sizes), patterns, fingerprint(files, sizes))


def _plan_tfds(config: StatsConfig) -> Plan:
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(config.tfds_name, data_dir=config.tfds_data_dir)
        split = builder.info.splits[config.tfds_split]
    except Exception as err:  # noqa: BLE001 (TFDS raises many types; report them uniformly)
        raise invalid("tfds_name", "a prepared TFDS dataset and split in tfds_data_dir",
                      f"{config.tfds_name}[{config.tfds_split}] in {config.tfds_data_dir}",
                      hint=f"{type(err).__name__}: {err}") from None
    file_format = str(getattr(builder.info, "file_format", "tfrecord") or "tfrecord").lower()
    if "tfrecord" not in file_format:
        raise invalid("tfds_name", "a dataset prepared as TFRecord", file_format)
    updates: dict = {}
    feature = _tfds_feature(builder.info.features, config.label)
    if isinstance(feature, tfds.features.ClassLabel):
        if config.num_classes not in (None, feature.num_classes):
            raise invalid("num_classes", f"{feature.num_classes} (the ClassLabel's)", config.num_classes)
        updates = {"num_classes": feature.num_classes, "class_names": tuple(feature.names),
                   "label_dtype": "int"}
    shards = tuple(
        Shard(str(fi.filename), skip=int(fi.skip), take=int(fi.take))
        for fi in split.file_instructions
    )
    if not shards:
        raise invalid("tfds_split", "a split with at least one file", config.tfds_split)
    sizes = [fileio.size(s.path) for s in shards]
    inputs = (f"tfds:{config.tfds_name}/{config.tfds_split}@{builder.data_dir}",)
    return Plan(dataclasses.replace(config, **updates), tuple(sorted(shards)), inputs,
                fingerprint(shards, sizes))


def _tfds_feature(features, key: str):
    node = features
    for part in key.split("/"):
        try:
            node = node[part]
        except (KeyError, TypeError):
            raise invalid("label", f"a feature of the TFDS dataset ({sorted(features.keys())})",
                          key) from None
    return node


def one_task_per_shard(pipeline: Any, shards: int) -> None:
    """On the DaskRunner, gives each shard its own partition (so its own task).

    The DaskRunner turns ``beam.Create`` into a Dask bag of 128 items per
    partition and treats ``Reshuffle`` as a no-op, so by default every shard
    of a job lands in one partition, read by one worker.

    An explicit ``--dask_npartitions`` or ``--dask_partition_size`` is kept.
    Other runners are left alone: ``beam.Create`` reshuffles its elements there.
    """
    modules = {cls.__module__ for cls in type(pipeline.runner).__mro__}
    if "apache_beam.runners.dask.dask_runner" not in modules:
        return
    from apache_beam.runners.dask.dask_runner import DaskOptions  # noqa: PLC0415 (the runner is Dask's)

    dask = pipeline.options.view_as(DaskOptions)
    if dask.npartitions is None and dask.partition_size is None:
        dask.npartitions = max(1, shards)
