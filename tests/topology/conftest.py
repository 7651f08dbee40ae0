"""Cluster and Sentinel fixtures: one shared topology per session, a fresh one for each fault test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster

from tests.support.topologies import RedisCluster, RedisSentinel


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """3 masters + 3 replicas shared by tests that do not kill nodes."""
    with RedisCluster(tmp_path_factory.mktemp("cluster")) as topology:
        yield topology


@pytest.fixture
def cluster_client(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    """A client of the shared cluster, emptied first."""
    client = cluster.client(decode_responses=True)
    client.flushall(target_nodes=redis.cluster.RedisCluster.PRIMARIES)
    yield client
    client.close()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A private cluster for a test that kills nodes."""
    with RedisCluster(tmp_path / "cluster") as topology:
        yield topology


@pytest.fixture(scope="session")
def sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinel]:
    """Master, 2 replicas and 3 sentinels shared by tests that do not kill nodes."""
    with RedisSentinel(tmp_path_factory.mktemp("sentinel")) as topology:
        yield topology


@pytest.fixture
def sentinel_master(sentinel: RedisSentinel) -> Iterator[redis.Redis]:
    """A sentinel-managed client of the shared master, emptied first."""
    client = sentinel.master_client(decode_responses=True)
    client.flushall()
    yield client
    client.close()


@pytest.fixture
def fresh_sentinel(tmp_path: Path) -> Iterator[RedisSentinel]:
    """A private Sentinel topology for a test that kills the master."""
    with RedisSentinel(tmp_path / "sentinel") as topology:
        yield topology
