"""The embedded server: started on demand, shared by the project's processes, durable."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bus import Bus
from bus.backend.embedded import EmbeddedServer
from tests.bus.helpers import ROOT


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedServer]:
    server = EmbeddedServer(tmp_path / "var")
    yield server
    server.stop()


def test_bus_without_url_starts_and_reuses_the_embedded_server(embedded: EmbeddedServer, tmp_path: Path) -> None:
    from bus.settings import BusSettings

    settings = BusSettings(data_dir=tmp_path / "var")
    b = Bus(settings=settings)
    b.publish("hello", {"n": 1})
    assert embedded.running()
    assert (tmp_path / "var" / "redis" / "appendonlydir").is_dir()  # durable by default
    url = embedded.url
    # another process of the same project finds the same server
    out = subprocess.run(
        [sys.executable, "-m", "bus.cli", "queues", "--json"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "BUS_DATA_DIR": str(tmp_path / "var")},
    ).stdout
    assert '"pending": 1' in out
    assert embedded.url == url


def test_data_survives_a_stop_and_start(embedded: EmbeddedServer) -> None:
    import redis

    url = embedded.ensure()
    redis.Redis.from_url(url).rpush("k", "v")
    assert embedded.stop()
    assert not embedded.running()
    url = embedded.ensure()
    assert redis.Redis.from_url(url).lrange("k", 0, -1) == [b"v"]


def test_concurrent_starters_share_one_server(embedded: EmbeddedServer) -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        urls = set(pool.map(lambda _: embedded.ensure(), range(4)))
    assert len(urls) == 1
