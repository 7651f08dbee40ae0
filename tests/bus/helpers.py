"""Small helpers shared by bus tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from bus import Bus, Retry
from bus.settings import BusSettings, WorkerSettings
from bus.stores.traces import traced

FAST = WorkerSettings(
    heartbeat_interval=0.2,
    dead_after=1.0,
    recovery_interval=0.2,
    retry_poll_interval=0.05,
    idle_wait=0.1,
    shutdown_grace=5.0,
)


def drain(bus: Bus, queues: list[str] | None = None, **options: Any) -> int:
    """Run a burst worker in this thread until the queues (and due retries) are empty."""
    options.setdefault("settings", FAST)
    worker = bus.worker(queues, burst=True, install_signals=False, **options)
    worker.run()
    return worker.processed


def queue_jobs(r: redis.Redis, queue: str) -> list[dict[str, Any]]:
    """The bus hashes of the jobs waiting in a queue."""
    return [json.loads(json.loads(raw)["args"][0]) for raw in r.lrange(f"resque:queue:{queue}", 0, -1)]


FAST_SETTINGS_TOML = """
[bus]
environment = "test"

[bus.worker]
heartbeat_interval = 0.2
dead_after = 1.5
recovery_interval = 0.2
retry_poll_interval = 0.05
idle_wait = 0.2
shutdown_grace = 5.0
batch_size = 10

[bus.retry]
max_retries = 2
base_delay = 0.05
max_delay = 0.1
"""


def write_settings(directory: Path, text: str = FAST_SETTINGS_TOML) -> Path:
    path = directory / "settings.toml"
    path.write_text(text)
    return path


def spawn(directory: Path, redis_url: str, *args: str, **extra_env: str) -> subprocess.Popen[bytes]:
    """Run ``bus ARGS`` as a real process in ``directory`` (where the app module lives)."""
    env = {
        **os.environ,
        "BUS_REDIS_URL": redis_url,
        "TEST_REDIS_URL": redis_url,
        "BUS_SETTINGS": str(directory / "settings.toml"),
        **extra_env,
    }
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(directory), env.get("PYTHONPATH", "")])
    log = open(directory / f"worker-{time.monotonic_ns()}.log", "wb")  # noqa: SIM115 - handed to the child
    return subprocess.Popen([sys.executable, "-m", "bus.cli", *args], cwd=directory, env=env, stdout=log, stderr=log)


ROOT = Path(__file__).resolve().parents[2]


def failed_orders_in_and_out_of_the_sample(redis_url: str) -> tuple[Bus, str, str]:
    """30 events that fail for good, ridden at the default ``trace_sample`` (failures are traced
    whatever the sample): the bus, then one event outside the sample and one inside it."""
    b = Bus(settings=BusSettings(redis_url=redis_url))
    b.dispatch("shop").add("order_placed", lambda a: 1 / 0, retry=Retry(max_retries=0))
    b.subscribe_all()
    ids = [b.publish("order_placed", {"n": n}) for n in range(30)]
    unsampled = next(i for i in ids if not traced(b.settings.observe, i))
    sampled = next(i for i in ids if traced(b.settings.observe, i))
    drain(b, ["bus_incoming", "shop_default"])
    return b, unsampled, sampled
