"""The benchmark suite: ``./run bench`` (``python -m bench --help``).

It starts its own Redis, runs each scenario several times in worker processes, and
reports every figure with the raw-Redis baseline measured in the same run.
"""
