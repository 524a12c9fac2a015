"""Down-sampling: keep rates from a table, the keep decision per record, and writing the kept records.

A new sampling target or rule goes to ``pipelines.sampling.rates``.
"""
