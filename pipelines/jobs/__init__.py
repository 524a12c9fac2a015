"""The jobs (``stats``, ``sample``) and what they share: flags, the runner and its outcome, the set-up of
Dask (``dask``) and of Flink and Spark (``engines``; ``local_spark`` starts a Spark cluster on this machine).

A job module imports no other job module. A new job is a module here with
``build_parser``, ``run(argv)`` and ``main(argv)``, listed in ``pipelines.cli.COMMANDS``;
a new flag every job reads goes to ``pipelines.jobs.flags.add_read_flags``
(and to ``pipelines.config.StatsConfig`` if the readers use it).
"""
