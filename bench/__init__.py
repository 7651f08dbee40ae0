"""The benchmark: ``./run bench`` (``python -m bench --help``).

It starts its own Redis, runs each scenario (``scenarios/``) several times, the systems
compared (``systems/``) in worker processes, and reports every figure with its baseline
measured in the same run (the harness: ``cli``, ``runner``, ``harness``, ``report``).
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
"""The repository: the notification templates, and ``tests.support`` importable from there."""
