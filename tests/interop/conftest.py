"""Fixtures for the interop tests: node-queue-bus processes bound to the test's server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.nodebus import NodeBus


@pytest.fixture
def node(redis_url: str, tmp_path: Path) -> Iterator[NodeBus]:
    """node-queue-bus on the test's server; every Node process it started is stopped at the end."""
    nodes = NodeBus(redis_url, tmp_path)
    yield nodes
    nodes.close()
