"""Fixtures: every bus test talks to a real server over a real connection."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.settings import BusSettings, ObserveSettings
from tests.support.servers import RedisProcess


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    """One server for the whole run; tests that crash or restart it get their own."""
    server = RedisProcess(tmp_path_factory.mktemp("redis-shared"), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(shared_server: RedisProcess) -> str:
    shared_server.client().flushall()
    return shared_server.url


@pytest.fixture
def r(redis_url: str) -> redis.Redis:
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def bus(redis_url: str) -> Iterator[Bus]:
    """A bus that traces every event, so tests can follow any one of them."""
    b = Bus(settings=BusSettings(redis_url=redis_url, observe=ObserveSettings(trace_sample=1.0)))
    yield b
    b.close()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisProcess]:
    """A private server with an append-only file, for tests that kill or restart it."""
    server = RedisProcess(tmp_path / "redis").start()
    yield server
    server.kill()


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up a developer's BUS_* variables."""
    for name in list(os.environ):
        if name.startswith("BUS_"):
            monkeypatch.delenv(name)
