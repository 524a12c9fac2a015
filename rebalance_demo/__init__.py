"""The ``rebalance demo`` application: generated long-tailed data, the stats job, five ways to train.

An application on top of ``balance``, ``losses`` and ``pipelines`` (only
``pipelines.cli`` starts it; no library module imports it):
``rebalance_demo.data`` writes the data (``python -m rebalance_demo.data``),
``rebalance_demo.train`` compares the training runs, ``rebalance_demo.app``
runs the whole chain.
"""
