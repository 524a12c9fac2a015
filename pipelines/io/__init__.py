"""The file-system side of the jobs: input planning (patterns -> shards), one reader per input format,
record hashes, and publishing a finished output directory.

A new input format is a ``Reader`` in ``pipelines.io.readers`` (and, if its
files split into several shards, a case in ``pipelines.io.split``).
"""
