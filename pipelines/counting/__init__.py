"""Counting: the per-shard counter, the exact combiner, the table built from merged counts, and the
public PTransforms (``ComputeHeadStats``, ``ComputeClassStats``, ``WriteWeightTable(s)``).

A new label form is counted in ``balance.counting`` (shared with
``WeightTable.from_labels``) and set aside when bad in ``pipelines.counting.shard``.
"""
