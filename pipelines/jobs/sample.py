"""Beam job: write a down-sampled copy of a dataset, with an exact table of the sample.

Usage::

  rebalance sample --input 'data/train-*.tfrecord' --label label --table table.json \\
      --output sample/ --max_ratio 10 --seed 0 [--weight_feature w] [Beam flags ...]

Down-sampling only: each class keeps ``min(1, ...)`` of its records, so no
class is ever oversampled (the tf.data layer's ``resample`` and ``both`` do
that at read time). ``--max_ratio R`` caps every class at R times the rarest
class; ``--target uniform|sqrt|FILE.json`` keeps ``scale * target_c / share_c``
with the largest scale that needs no oversampling. Whether a record is kept
depends only on ``--seed`` and the record's bytes. The output has the input's
format, then ``DIR/_table.json`` (written last) counts what was written and
records the keep rates and the source table. Map a model trained on the
sample back to the source prior with
``losses.shift_logits(logits, table, table.source_counts())``. See docs/sampling.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import time
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from balance import fileio
from balance.errors import invalid
from balance.table import WeightTable
from pipelines.config import StatsConfig
from pipelines.counting.combiners import CountCombineFn
from pipelines.counting.transforms import ComputeClassStats, WriteWeightTable
from pipelines.io.plan import one_task_per_shard, plan_inputs
from pipelines.io.publish import check_apart, check_output, makedirs, remove_staging, staging_dir
from pipelines.jobs import dask as dask_setup
from pipelines.jobs.flags import BEAM_NOTE, add_read_flags, config_from_args, group, parse_flags
from pipelines.jobs.runner import (
    auto_read_threads,
    counters,
    job_error,
    progress_of,
    resolve_runner,
    run_as_command,
    run_pipeline,
)
from pipelines.progress import Progress
from pipelines.sampling.decide import METRICS_NAMESPACE, SOURCE_KEY, SampleShards
from pipelines.sampling.rates import (
    SampleSpec,
    check_max_ratio,
    default_num_shards,
    keep_rates,
    load_target,
    negative_keep,
)
from pipelines.sampling.write import SOURCE_TABLE_NAME, TABLE_NAME, Publisher, WriteShard, publish_sample

_LOG = logging.getLogger(__name__)


EXAMPLES = """\
examples:
  rebalance sample --input 'data/train-*.tfrecord' --label label --table table.json \\
      --output sample/ --max_ratio 10
  rebalance sample --input data/train.csv --format csv --label species --label_dtype string \\
      --output sample/ --target sqrt --weight_feature w
  rebalance sample --input 'data/*.parquet' --format parquet --label y --table table.json \\
      --output sample/ --max_ratio 1 --seed 7 --runner DirectRunner --direct_num_workers 2"""


def build_parser() -> argparse.ArgumentParser:
    """The stats job's input, labels and performance flags, plus the sampling flags."""
    parser = argparse.ArgumentParser(
        prog="rebalance sample", allow_abbrev=False,
        usage="rebalance sample --input PATTERN --output DIR (--max_ratio R | --target T) [flags] [Beam options]",
        description="Write a down-sampled copy of a dataset (Apache Beam), with an exact table of the sample. "
        "Down-sampling only: every class keeps min(1, ...) of its records; oversample at read time with "
        "balance.rebalance. See docs/sampling.md.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=f"{BEAM_NOTE}\n\n{EXAMPLES}")
    add_read_flags(parser)
    # Stats job options, refused with a reason (see _check_flags) rather than as unknown flags.
    parser.add_argument("--scheme", help=argparse.SUPPRESS)
    add = group(parser, "output").add_argument
    add("--output", required=True, help="Directory of the sample (local or gs://); must be new or empty.")
    add("--num_shards", type=int, help="Output shards (default: about 256 MiB each).")
    add("--overwrite", action="store_true", help="Replace a non-empty --output that rebalance wrote (its "
        "_rebalance_manifest.json lists exactly its files); a directory with other files is refused.")
    add("--weight_feature", help="Also write 1 / keep_c into each kept record under this feature/column, so that "
        "training on the sample with these weights is unbiased for the source distribution.")
    sampling = group(parser, "sampling")
    how = sampling.add_mutually_exclusive_group(required=True)
    how.add_argument("--max_ratio", type=float,
                     help="Cap every class at R x the rarest class's count (R >= 1; 1 balances the classes).")
    how.add_argument("--target", help="uniform, sqrt, or a JSON file of shares (a list of K numbers or "
                     "{class: share}); each class keeps min(1, scale * target_c / share_c), the largest "
                     "scale needing no oversampling (the class furthest below its target is kept whole).")
    add = sampling.add_argument
    add("--seed", type=int, default=0, help="Key of the record hash that decides what is kept (default 0).")
    add("--table", help="The source table (from rebalance stats on the same input). Without it the stats job "
        "runs first (one more pass) and its table is kept as DIR/_source_table.json.")
    return parser


def _refuse_tfds(args: argparse.Namespace) -> None:
    if args.format == "tfds":  # before the config, whose own checks would say less
        raise invalid("format", "tfrecord, csv or parquet (rebalance sample rewrites files)", "tfds",
                      hint=_tfds_hint(args))


def _check_flags(args: argparse.Namespace, config: StatsConfig) -> None:
    for flag, value in (("scheme", args.scheme), ("ignore_value", args.ignore_value)):
        if value is not None:
            raise invalid(flag, "not set for rebalance sample", value,
                          hint="It is a stats job option; the sample's table stores counts only")
    if config.form == "dense":
        raise invalid("label_form", "sparse, id_lists or multi_hot (one decision per record)", "dense",
                      hint="Dense labels (tokens, pixels) have no single class per record")
    if args.num_shards is not None and args.num_shards < 1:
        raise invalid("num_shards", "a positive int", args.num_shards)
    if args.weight_feature is not None and args.weight_feature in ("", config.label, config.weight):
        raise invalid("weight_feature", "a new feature name (not the label or --weight)", args.weight_feature)
    if args.max_ratio is not None:
        check_max_ratio(args.max_ratio)
    check_output(args.output, args.overwrite)


def _tfds_hint(config: argparse.Namespace) -> str:
    pattern = "<data_dir>/<name>/<version>/<name>-<split>.tfrecord-*"
    try:
        import tensorflow_datasets as tfds  # noqa: PLC0415

        builder = tfds.builder(config.tfds_name, data_dir=config.tfds_data_dir)
        pattern = f"{builder.data_dir}/{builder.name}-{config.tfds_split}.tfrecord-*"
    except Exception:  # noqa: BLE001, S110 (only the hint's pattern depends on it)
        pass
    return (f"A prepared TFDS dataset is TFRecord files of tf.train.Example: pass --format tfrecord "
            f"--input '{pattern}' (and --label with the feature's key)")


def _check_table(table: WeightTable, config: StatsConfig) -> StatsConfig:
    """The table must be for this task, label and classes; returns the config completed from it."""
    if table.task != config.task:
        raise invalid("table", f"a table for task={config.task!r}", table.task, hint="Pass --task or another table")
    if table.label_key not in (None, config.label):
        raise invalid("table", f"a table of label {config.label!r}", table.label_key,
                      hint="Pass the --label the table was counted from")
    if config.num_classes not in (None, table.num_classes):
        raise invalid("table", f"a table of {config.num_classes} classes (--num_classes)", table.num_classes)
    if config.class_names is not None and tuple(config.class_names) != table.class_names:
        raise invalid("table", "the classes of --class_names", table.class_names)
    if config.label_dtype not in ("auto", table.label_dtype):
        raise invalid("table", f"a table of {config.label_dtype} labels", table.label_dtype)
    names = table.class_names if table.label_dtype == "string" else config.class_names
    return dataclasses.replace(config, num_classes=table.num_classes, class_names=names,
                               label_dtype=table.label_dtype)


def run(argv: Sequence[str] | None = None) -> WeightTable:
    """Runs the job; returns the sample's table (``DIR/_table.json``).

    Raises:
      ValueError: bad flags, a table that does not match the input, bad input.
        Nothing is published then.
    """
    args, beam_args = parse_flags(argv, build_parser())
    options = PipelineOptions(beam_args)
    dask = resolve_runner(args, options)  # Dask, Flink, Spark
    _refuse_tfds(args)
    config = config_from_args(args, read_threads=auto_read_threads(options))
    _check_flags(args, config)
    plan = plan_inputs(config)
    output = args.output.rstrip("/")
    read = {s.path for s in plan.shards} | {f for f in (args.table, args.target) if f and fileio.exists(f)}
    check_apart(output, sorted(read), directory=True)
    staging = staging_dir(output)
    progress = progress_of(args, options, dask)
    start = time.monotonic()
    if args.table:  # every check on the table and the target comes before any data is read
        source, counted = WeightTable.load(args.table), False
        config, target, described = _resolve(args, config, source, plan)
    try:
        makedirs(staging)
        with dask_setup.cluster(dask, options):  # one local cluster for both passes
            if not args.table:
                print(f"No --table given: counting {config.label!r} with the stats job first (one more pass); "
                      f"the table is kept as {output}/{SOURCE_TABLE_NAME}, pass it as --table next time",
                      flush=True)
                source, counted = _count_source(config, options, f"{staging}/{SOURCE_TABLE_NAME}", plan,
                                                progress), True
                config, target, described = _resolve(args, config, source, plan)
            keep = keep_rates(source, max_ratio=args.max_ratio, target=target)
            kept_fraction = float(source.counts @ keep / source.counts.sum()) if source.task != "multilabel" else 1.0
            size = sum(fileio.size(s.path) for s in plan.shards)
            spec = SampleSpec(config, tuple(keep.tolist()), negative_keep(source, keep), args.seed,
                              args.weight_feature, args.num_shards or default_num_shards(size, kept_fraction))
            publisher = Publisher(spec, source, staging, output, args.overwrite, described)
            result = _sample(spec, plan, source, staging, publisher, options, progress)
    except BaseException as err:
        remove_staging(staging)
        raise job_error(err) from err
    table = WeightTable.load(f"{output}/{TABLE_NAME}")
    print(summary(table, source, _counters_of(result), time.monotonic() - start, output, counted))
    return table


def _resolve(args: argparse.Namespace, config: StatsConfig, source: WeightTable, plan):
    """Checks the table against the flags; returns the completed config, the target and its description."""
    config = _check_table(source, config)
    if source.provenance.get("fingerprint") != plan.fingerprint:
        _LOG.info("The table was counted from other files; this pass checks its counts against the input")
    if args.target is None:
        return config, None, {"max_ratio": args.max_ratio}
    if args.target in ("uniform", "sqrt"):
        keep_rates(source, target=args.target)  # refuses multilabel tables now
        return config, args.target, {"target": args.target}
    shares = load_target(args.target, source)
    return config, shares, {"target": args.target, "shares": shares}


def _count_source(config: StatsConfig, options: PipelineOptions, path: str, plan, progress: Progress) -> WeightTable:
    def attach(pipeline):
        _ = (pipeline | "ComputeClassStats" >> ComputeClassStats(config, progress_dir=progress.directory)
             | "WriteTable" >> WriteWeightTable(path))

    run_pipeline(options, progress, len(plan.shards), attach)
    return WeightTable.load(path)


def _sample(spec: SampleSpec, plan, source: WeightTable, staging: str, publisher: Publisher, options,
            progress: Progress):
    config = spec.config
    names = source.class_names if source.label_dtype == "string" else None

    def attach(pipeline):
        # The plan already holds one shard per file, Parquet row group or CSV byte range.
        one_task_per_shard(pipeline, len(plan.shards))
        shards = pipeline | "ListShards" >> beam.Create(plan.shards) | "SpreadShards" >> beam.Reshuffle()
        read = shards | "Sample" >> beam.ParDo(SampleShards(spec, names, progress.directory))
        # One linear graph of single-output steps, so that every runner (the DaskRunner
        # included) runs it: source counts and written counts meet in one CombinePerKey.
        source_counts = read | "SourceCounts" >> beam.Filter(_is_source) | "KeySource" >> beam.Map(_as_source)
        written = (
            read
            | "KeptBatches" >> beam.Filter(_is_kept)
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShards" >> beam.ParDo(WriteShard(spec, staging))
            | "KeyWritten" >> beam.Map(_as_written)
        )
        _ = (
            (source_counts, written)
            | "Both" >> beam.Flatten()
            | "MergeCounts" >> beam.CombinePerKey(CountCombineFn(config.weighted))
            | "ToDict" >> beam.combiners.ToDict()
            | "Publish" >> beam.Map(_publish, publisher, CountCombineFn(config.weighted).create_accumulator())
        )

    return run_pipeline(options, progress, len(plan.shards), attach)


def _is_source(pair) -> bool:
    return pair[0] == SOURCE_KEY


def _is_kept(pair) -> bool:
    return pair[0] != SOURCE_KEY


def _as_source(pair):
    return "source", pair[1]


def _as_written(counts):
    return "written", counts


def _publish(counts: dict, publisher: Publisher, empty) -> WeightTable:
    # No "written" key when nothing was kept; the publisher then fails on the empty sample.
    return publish_sample(counts.get("written", empty), counts["source"], publisher)


def _counters_of(result) -> dict[str, int]:
    return counters(result, METRICS_NAMESPACE)


def summary(table: WeightTable, source: WeightTable, counters: dict[str, int], seconds: float, output: str,
            counted: bool) -> str:
    """The end-of-job report: records kept, keep rates, imbalance before and after, time."""
    keep = table.keep_rates()
    whole = int((keep >= 1.0).sum())
    lines = [
        f"Wrote {output}/ ({table.provenance['inputs'].__len__()} shard(s)) and {output}/{TABLE_NAME}"
        + (f" (source counts in {output}/{SOURCE_TABLE_NAME})" if counted else ""),
        f"  kept: {table.num_examples:,.0f} of {source.num_examples:,.0f} examples "
        f"({table.num_examples / source.num_examples:.4%}); records read: {counters.get('records', 'n/a')}",
        f"  keep rates: min {keep.min():.4g} (class {int(keep.argmin())}), {whole} of {len(keep)} classes kept whole",
        f"  imbalance ratio: {source.imbalance_ratio():.4g} -> {table.imbalance_ratio():.4g}",
        f"  seed: {table.provenance['sample']['seed']}, target: {table.provenance['sample']['target']}",
        "  back to the source prior: losses.shift_logits(logits, table, table.source_counts())",
        f"  wall time: {seconds:.2f} s",
    ]
    far = _far_from_expected(table, source, keep)
    if far:
        lines.append(f"  warning: {far}")
    return "\n".join(lines)


def _far_from_expected(table: WeightTable, source: WeightTable, keep) -> str | None:
    """Kept counts beyond 6 sd of ``n_c * keep_c`` mean many identical records (they share one decision)."""
    if table.task == "multilabel" or len(source.counts) != len(table.counts):
        return None
    expected = source.counts * keep
    sd = (expected * (1.0 - keep)) ** 0.5
    far = [c for c in range(len(keep)) if abs(table.counts[c] - expected[c]) > 6 * sd[c] + 1]
    if not far:
        return None
    c = far[0]
    return (f"{len(far)} class(es) kept far from n_c * keep_c (class {c}: {table.counts[c]:,.0f} kept, "
            f"{expected[c]:,.0f} expected). Identical records share one keep decision; give each record a "
            "unique id to sample copies independently")


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point of the sample job; see ``pipelines.jobs.runner.run_as_command``."""
    return run_as_command("rebalance sample", run, argv)



if __name__ == "__main__":
    sys.exit(main())
