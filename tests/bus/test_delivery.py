"""At-least-once delivery, caused rather than hoped for: SIGKILL, SIGTERM, poison jobs, server restarts."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from bus import Bus
from bus.backend.embedded import free_port
from tests.bus.helpers import spawn, write_settings
from tests.support.polling import wait_for
from tests.support.servers import RedisProcess

pytestmark = pytest.mark.slow

APP = """
import os, time
import redis
from bus import Bus
from bus.backend.embedded import free_port

bus = Bus()
r = redis.Redis.from_url(os.environ["TEST_REDIS_URL"])
app = bus.dispatch("app")

@app.subscribe("work")
def work(attributes):
    r.rpush("test:started", attributes["n"])
    time.sleep(float(attributes.get("sleep", 0)))
    if attributes.get("poison"):
        os.kill(os.getpid(), 9)
    r.rpush("test:done", attributes["n"])
"""


@pytest.fixture
def app_dir(tmp_path: Path) -> Path:
    (tmp_path / "crashapp.py").write_text(APP)
    write_settings(tmp_path)
    return tmp_path


def numbers(r: redis.Redis, key: str) -> list[int]:
    return [int(x) for x in r.lrange(key, 0, -1)]


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def test_kill_9_of_a_worker_mid_job_loses_nothing(app_dir: Path, redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url)
    b.publish_many([("work", {"n": n, "sleep": 0.1}) for n in range(30)])
    first = spawn(app_dir, redis_url, "work", "crashapp", "--driver")
    try:
        # a job is running (started, not done): it sits in the worker's in-flight list
        wait_for(lambda: len(numbers(r, "test:done")) >= 3 and r.llen("test:started") > r.llen("test:done"))
        first.send_signal(signal.SIGKILL)
        first.wait()
        inflight = r.keys("resque:inflight:*")
        assert inflight, "the killed worker's reserved jobs are visible in Redis"
        started_not_done = set(numbers(r, "test:started")) - set(numbers(r, "test:done"))
        assert started_not_done
    finally:
        stop(first)
    second = spawn(app_dir, redis_url, "work", "crashapp", "--driver")
    try:
        wait_for(lambda: set(numbers(r, "test:done")) == set(range(30)), timeout=60)
        wait_for(lambda: not r.keys("resque:inflight:*{resque:queue:app_default}:*" + str(first.pid) + "*"))
        assert not any(str(first.pid).encode() in w for w in r.smembers("resque:workers"))
    finally:
        stop(second)


def test_sigterm_finishes_the_running_job_requeues_the_rest_and_exits_0(
    app_dir: Path, redis_url: str, r: redis.Redis
) -> None:
    b = Bus(redis_url)
    b.publish_many([("work", {"n": n, "sleep": 0.3}) for n in range(10)])
    worker = spawn(app_dir, redis_url, "work", "crashapp", "--driver")
    try:
        wait_for(lambda: r.llen("test:started") >= 2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=20) == 0
    finally:
        stop(worker)
    started, done = numbers(r, "test:started"), numbers(r, "test:done")
    assert set(started) == set(done)  # nothing was cut off mid-job
    assert r.llen("resque:queue:app_default") + len(done) == 10  # the rest is back in the queue
    assert r.keys("resque:inflight:*") == []
    assert r.smembers("resque:workers") == set()
    assert r.hgetall("resque:bus:workers") == {}


def test_a_job_that_keeps_killing_its_worker_is_moved_to_failed(app_dir: Path, redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url)
    b.publish("work", {"n": 0})
    b.publish("work", {"n": 99, "poison": True})
    b.publish_many([("work", {"n": n}) for n in range(1, 6)])
    exits = []
    for _ in range(8):
        worker = spawn(app_dir, redis_url, "work", "crashapp", "--driver", "--burst")
        exits.append(worker.wait(timeout=60))
        if exits[-1] == 0:
            break
    assert exits[-1] == 0
    assert exits.count(-signal.SIGKILL) == 3  # max_crashes
    assert set(numbers(r, "test:done")) == {0, 1, 2, 3, 4, 5}  # at least once: a crash may repeat done work
    [entry] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "bus.errors.PoisonJob"
    assert "died 3 times" in entry["error"]
    assert json.loads(entry["payload"]["args"][0])["n"] == 99
    assert r.keys("resque:bus:crashes:*") == []


def kill_until_noticed(server: RedisProcess, worker_log: Path) -> None:
    """SIGKILL ``server`` (no chance to save anything beyond the append-only file); return
    once the worker has logged that Redis is unreachable."""
    before = len(worker_log.read_text())
    server.kill()
    wait_for(lambda: "Redis unreachable" in worker_log.read_text()[before:], message="the worker notices the outage")


def test_server_killed_and_restarted_mid_load_loses_no_acknowledged_event(
    app_dir: Path, own_server: RedisProcess
) -> None:
    r = own_server.client()
    worker = spawn(app_dir, own_server.url, "work", "crashapp", "--driver")
    b = Bus(own_server.url)
    try:
        wait_for(lambda: r.scard("resque:workers"))
        acknowledged = []
        for n in range(200):
            b.publish("work", {"n": n})
            acknowledged.append(n)
            if n == 100:
                [log] = app_dir.glob("worker-*.log")
                kill_until_noticed(own_server, log)
                own_server.start()
        wait_for(lambda: set(numbers(r, "test:done")) >= set(acknowledged), timeout=60)
        assert worker.poll() is None, "the worker rode through the outage"
    finally:
        stop(worker)


def restart_gracefully(server: RedisProcess) -> None:
    """A planned restart (SIGTERM, then start on the same data): nothing acknowledged is lost."""
    server.stop()
    server.start()


CALLS_APP = """
import os, time
from bus import Bus, current_ride

bus = Bus()
app = bus.dispatch("app")

@app.subscribe("work")
def work(attributes):
    # Each call is written down outside Redis, so an outage cannot make the handler fail.
    with open(os.environ["CALLS_FILE"], "a") as calls:
        calls.write(f"{attributes['n']}\\n")
    time.sleep(float(attributes.get("sleep", 0)))
    current_ride().on_ack(lambda pipe: pipe.rpush("test:done", attributes["n"]))
"""


def test_reconnects_run_no_job_twice(app_dir: Path, own_server: RedisProcess) -> None:
    (app_dir / "callsapp.py").write_text(CALLS_APP)
    calls = app_dir / "calls.txt"
    worker = spawn(app_dir, own_server.url, "work", "callsapp", "--driver", CALLS_FILE=str(calls))
    b = Bus(own_server.url)
    r = own_server.client()
    try:
        wait_for(lambda: r.scard("resque:workers"))

        # An idle worker, blocked waiting for work, through three restarts: one event after each.
        def done_at_least(count: int) -> Callable[[], bool]:
            return lambda: int(own_server.client().llen("test:done")) >= count

        for n in range(3):
            restart_gracefully(own_server)
            b.publish("work", {"n": n})
            wait_for(done_at_least(n + 1), timeout=30, message=f"event {n} handled")
        # A worker draining a backlog, through three restarts.
        b.publish_many([("work", {"n": n, "sleep": 0.004}) for n in range(100, 700)])
        for turn in range(1, 4):
            wait_for(done_at_least(3 + turn * 100), timeout=60)
            restart_gracefully(own_server)
        wait_for(done_at_least(603), timeout=60, message="every event handled")
        handled = Counter(int(line) for line in calls.read_text().split())
        assert sorted(handled) == [0, 1, 2, *range(100, 700)]
        assert {n: c for n, c in handled.items() if c > 1} == {}, "a reconnect ran a job twice"
        assert worker.poll() is None, "the worker rode through the restarts"
    finally:
        stop(worker)


@pytest.mark.parametrize("options", [[], ["--no-subscribe"]])  # stopped while subscribing; while registering
def test_sigterm_while_starting_against_an_unreachable_redis_stops_at_once(app_dir: Path, options: list[str]) -> None:
    worker = spawn(app_dir, f"redis://127.0.0.1:{free_port()}/0", "-v", "work", "crashapp", "--driver", *options)
    try:
        [log] = app_dir.glob("worker-*.log")
        wait_for(lambda: "Redis unreachable" in log.read_text(), message="the worker is retrying its start")
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=10)
        assert time.monotonic() - started < 5  # not the 30 s grace period: nothing was taken
        text = log.read_text()
        assert code == 0 and "Traceback" not in text and "took nothing" in text, text
    finally:
        stop(worker)
