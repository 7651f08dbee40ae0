"""The bus on Redis Cluster and Sentinel: the same app code, only the URL changes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bus import Bus, Retry
from bus.settings import BusSettings
from tests.bus.helpers import FAST, drain, spawn, write_settings
from tests.support.polling import wait_for
from tests.support.topologies import RedisCluster, RedisSentinel


def fresh_bus(url: str) -> Bus:
    """A bus on an empty database whose publishes wait for a replica (both topologies have them)."""
    b = Bus(settings=BusSettings(redis_url=url, publish_replicas=1))
    if b.redis.__class__.__name__ == "RedisCluster":
        b.redis.flushall(target_nodes=b.redis.PRIMARIES)
    else:
        b.redis.flushall()
    return b


def exercise(b: Bus) -> None:
    """Publish, drive, ride across apps and queues, retry, fail, retry from failed, delay."""
    calls: Counter[str] = Counter()
    flaky: list[int] = []

    def record(name: str) -> Any:
        return lambda a: calls.update([f"{name}:{a['n']}"])

    def sometimes(attributes: dict[str, Any]) -> None:
        flaky.append(attributes["n"])
        if flaky.count(attributes["n"]) == 1:
            raise RuntimeError("first try fails")

    def never(attributes: dict[str, Any]) -> None:
        raise ValueError("always fails")

    b.dispatch("profile").add("rating_created", record("profile"))
    b.dispatch("mailer").add("rating_created", record("mailer"), queue="critical")
    b.dispatch("audit").add("audit", record("audit"), matcher={"bus_event_type": "(?-mix:.)"})
    b.dispatch("sync").add("rating_created", sometimes, retry=Retry(max_retries=3, base_delay=0.05))
    b.dispatch("broken").add("boom", never, retry=Retry(max_retries=0))
    b.subscribe_all()
    b.publish_many([("rating_created", {"n": n}) for n in range(48)])
    b.publish("rating_created", {"n": 48})
    asyncio.run(b.apublish("rating_created", {"n": 49}))
    b.publish_with(lambda pipe: pipe.set("record", "1"), "boom", {"n": 99})
    queues = ["bus_incoming", *b.app_queues()]
    drain(b, queues)
    assert all(calls[f"profile:{n}"] == 1 and calls[f"mailer:{n}"] == 1 for n in range(50))
    assert sum(v for k, v in calls.items() if k.startswith("audit:")) == 51
    assert sorted(set(flaky)) == list(range(50)) and len(flaky) == 100
    [failure] = b.failures.list()
    assert failure.exception == "ValueError" and failure.queue == "broken_default"
    assert b.failures.retry(failure)
    drain(b, queues)
    assert b.failures.count() == 1  # it failed again, as it should, and came back once

    later = 2_000_000_000
    bus_id = b.publish_at(later, "rating_created", {"n": 500})
    assert b.delayed.find(bus_id) is not None
    assert b.scheduler(clock=lambda: later + 1).move_due() == 1
    drain(b, queues)
    assert calls["profile:500"] == 1
    assert b.delayed.count() == 0


def test_the_bus_on_a_cluster(cluster: RedisCluster) -> None:
    b = fresh_bus(cluster.url)
    exercise(b)
    owners = {cluster.master_of(f"resque:queue:{q}").port for q in ["bus_incoming", *b.app_queues()]}
    assert len(owners) >= 2, "queues spread over the shards"
    # The driver waited for the replicas of each master it fanned out to (a write of its own first).
    marked = {cluster.master_of(b.keys.queue(q)).port: False for q in b.app_queues()}
    for q in b.app_queues():
        marked[cluster.master_of(b.keys.queue(q)).port] |= bool(b.redis.exists(b.keys.replicated_mark(b.keys.queue(q))))
    assert len(marked) >= 2 and all(marked.values()), marked


def test_the_bus_on_sentinel(sentinel: RedisSentinel) -> None:
    exercise(fresh_bus(sentinel.url))


def test_a_publish_waits_for_its_replicas(sentinel: RedisSentinel, caplog: pytest.LogCaptureFixture) -> None:
    """With one of the two replicas frozen, WAIT gets one of two: the publish says so."""
    b = Bus(settings=BusSettings(redis_url=sentinel.url, publish_replicas=2, publish_replica_timeout=0.2))
    b.publish("x", {"n": 1})  # both replicas answer
    caplog.clear()
    replica = next(n for n in sentinel.data if n.client().info("replication")["role"] == "slave")
    os.kill(replica.pid, signal.SIGSTOP)  # well under the sentinels' down-after (1 s)
    try:
        b.publish("x", {"n": 2})
    finally:
        os.kill(replica.pid, signal.SIGCONT)
    assert [m for m in caplog.messages if "replicas" in m] == [
        "published, but held by 1 of 2 replicas after 0.2s: a failover now could lose it"
    ]


def test_a_publish_waiting_for_replicas_follows_its_queue_to_another_master(
    fresh_cluster: RedisCluster, caplog: pytest.LogCaptureFixture
) -> None:
    """The waiting push talks to the slot's master directly: a MOVED sends it after the slot."""
    b = Bus(settings=BusSettings(redis_url=fresh_cluster.url, publish_replicas=1))
    b.publish("x", {"n": 1})
    incoming = b.keys.queue("bus_incoming")
    source = fresh_cluster.master_of(incoming)
    target = next(m for m in fresh_cluster.masters() if m.port != source.port)
    fresh_cluster.move_slot_of(incoming, target.port)
    b.publish_with(lambda pipe: pipe.incr("writes"), "x", {"n": 2})  # the writes are not sent again
    fresh_cluster.move_slot_of(incoming, source.port)
    asyncio.run(b.apublish("x", {"n": 3}))
    assert fresh_cluster.master_of(incoming).port == source.port
    assert [json.loads(json.loads(j)["args"][0])["n"] for j in b.redis.lrange(incoming, 0, -1)] == [1, 2, 3]
    assert b.redis.get("writes") == b"1"
    assert sum("moved or went away" in m for m in caplog.messages) == 2
    assert not any("held by" in m for m in caplog.messages)


@pytest.mark.slow
def test_a_driver_acknowledges_an_event_once_the_replicas_of_its_fan_out_hold_it(
    fresh_cluster: RedisCluster,
) -> None:
    """With the replica of the app queue's master frozen, the fanned-out event stays in flight."""
    b = Bus(settings=BusSettings(redis_url=fresh_cluster.url, publish_replicas=1, publish_replica_timeout=10))
    b.dispatch("app").add("work", lambda attributes: None)
    incoming, app_queue = b.keys.queue("bus_incoming"), b.keys.queue("app_default")
    home = fresh_cluster.master_of(incoming)
    if fresh_cluster.master_of(app_queue).port == home.port:
        fresh_cluster.move_slot_of(app_queue, next(m for m in fresh_cluster.masters() if m.port != home.port).port)
    b.subscribe_all()
    b.publish("work", {"n": 1})
    worker = b.worker(["bus_incoming"], burst=True, install_signals=False, settings=FAST)
    holding = b.keys.inflight("bus_incoming", worker.id)
    app_master = fresh_cluster.master_of(app_queue)
    [replica] = [m for m in fresh_cluster.members() if m.master_id == app_master.node_id]
    os.kill(fresh_cluster.node(replica.port).pid, signal.SIGSTOP)  # its master still counts it as connected
    driving = threading.Thread(target=worker.run)
    try:
        driving.start()
        wait_for(lambda: b.redis.llen(app_queue) == 1)
        with fresh_cluster.node(app_master.port).client() as master:
            wait_for(lambda: any(c["cmd"] == "wait" for c in master.client_list()), message="the driver in WAIT")
        assert b.redis.llen(holding) == 1, "fanned out, but not acknowledged while the replica lags"
    finally:
        os.kill(fresh_cluster.node(replica.port).pid, signal.SIGCONT)
    driving.join(timeout=15)
    assert not driving.is_alive() and b.redis.llen(holding) == 0 and b.redis.llen(incoming) == 0
    assert b.redis.exists(b.keys.replicated_mark(app_queue))


def test_the_dashboard_on_a_cluster(cluster: RedisCluster) -> None:
    from starlette.testclient import TestClient

    from bus.web.app import create_app
    from bus.web.settings import WebSettings

    b = fresh_bus(cluster.url)
    b.dispatch("shop").add("order", lambda a: None)
    b.subscribe_all()
    b.publish_many([("order", {"n": n}) for n in range(5)])
    drain(b, ["bus_incoming"])
    with TestClient(create_app(b, WebSettings()), base_url="http://127.0.0.1") as client:
        overview = client.get("/api/overview").json()
        pending = {q["name"]: q["pending"] for q in overview["queues"]}
        assert pending["shop_default"] == 5
        assert client.get("/queues/shop_default").status_code == 200
        assert "bus_queue_pending" in client.get("/metrics").text


# --- faults ------------------------------------------------------------------------------
APP = """
import os
from bus import Bus

bus = Bus()
app = bus.dispatch("app")
log = open(os.environ["DONE_FILE"] + "." + str(os.getpid()), "a", buffering=1)

@app.subscribe("work")
def work(attributes):
    log.write(f"{attributes['n']}\\n")
"""


def handled(directory: Path) -> set[int]:
    return {int(line) for f in directory.glob("done.*") for line in f.read_text().split()}


def ride_through(tmp_path: Path, url: str, fault: Any) -> None:
    """Publish 600 events while two workers run; cause ``fault`` midway; every acked one is handled."""
    (tmp_path / "faultapp.py").write_text(APP)
    write_settings(tmp_path)
    done_file = str(tmp_path / "done")
    workers = [
        spawn(tmp_path, url, "work", "faultapp", "--driver", DONE_FILE=done_file, BUS_PUBLISH_REPLICAS="1")
        for _ in range(2)
    ]
    b = Bus(settings=BusSettings(redis_url=url, publish_replicas=1))  # acknowledged: on a replica too
    acknowledged: list[int] = []
    try:
        wait_for(lambda: len(b.redis.smembers("resque:workers")) == 2, timeout=30)
        for n in range(600):
            b.publish("work", {"n": n})
            acknowledged.append(n)
            if n == 200:
                threading.Thread(target=fault, daemon=True).start()
        try:
            wait_for(lambda: handled(tmp_path) >= set(acknowledged), timeout=90, interval=0.2)
        except AssertionError:
            missing = sorted(set(acknowledged) - handled(tmp_path))
            raise AssertionError(f"not handled: {missing[:20]} ({len(missing)}); {whereabouts(b, missing)}") from None
        assert all(w.poll() is None for w in workers), "the workers rode through the fault"
    finally:
        for w in workers:
            stop(w)


def whereabouts(b: Bus, numbers: list[int]) -> str:
    """Which keys still hold the given events (a lost one is in none)."""
    wanted = set(numbers)
    found: dict[str, list[int]] = {}
    for key in b.redis.scan_iter("resque:*"):
        kind = b.redis.type(key)
        values: list[bytes] = []
        if kind == b"list":
            values = b.redis.lrange(key, 0, -1)
        elif kind == b"zset":
            values = b.redis.zrange(key, 0, -1)
        elif kind == b"hash":
            values = list(b.redis.hvals(key))
        hits = {int(n) for v in values for n in re.findall(r'n\\*":(\d+)', v.decode(errors="replace"))} & wanted
        if hits:
            found[key.decode()] = sorted(hits)[:10]
    return f"found in {found}" if found else "in no key"


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.mark.slow
def test_killing_a_cluster_master_under_load_loses_no_acknowledged_event(
    fresh_cluster: RedisCluster, tmp_path: Path
) -> None:
    ride_through(tmp_path, fresh_cluster.url, lambda: fresh_cluster.kill_master_of("resque:queue:bus_incoming"))


@pytest.mark.slow
def test_killing_the_master_of_an_apps_queue_under_load_loses_no_driven_event(
    fresh_cluster: RedisCluster, tmp_path: Path
) -> None:
    """Workers ride through losing a master they only fan out to (the ack's wait for its
    replica is pinned down by test_a_driver_acknowledges_an_event_once_...: a kill rarely
    lands inside the window it closes)."""
    app_queue = "resque:queue:app_default"
    if fresh_cluster.master_of(app_queue).port == fresh_cluster.master_of("resque:queue:bus_incoming").port:
        target = next(m for m in fresh_cluster.masters() if m.port != fresh_cluster.master_of(app_queue).port)
        fresh_cluster.move_slot_of(app_queue, target.port)  # another master than bus_incoming's
    ride_through(tmp_path, fresh_cluster.url, lambda: fresh_cluster.kill_master_of(app_queue))


@pytest.mark.slow
def test_killing_the_sentinel_master_under_load_loses_no_acknowledged_event(
    fresh_sentinel: RedisSentinel, tmp_path: Path
) -> None:
    ride_through(tmp_path, fresh_sentinel.url, fresh_sentinel.kill_master)


def test_fast_settings_are_used() -> None:
    assert FAST.dead_after < 5  # the in-process drains above rely on quick heartbeats


@pytest.mark.parametrize("topology", ["cluster", "sentinel"])
def test_round_trips_on_a_cluster_and_on_sentinel(topology: str, request: pytest.FixtureRequest) -> None:
    """A cluster pipeline goes alone (routed by slot); a Sentinel master's pipelines go together."""
    url = request.getfixturevalue(topology).url
    b = fresh_bus(url)

    async def scenario() -> list[list[Any]]:
        async def one(i: int) -> list[Any]:
            pipe = b.async_redis.pipeline(transaction=False)
            pipe.set(f"rt:{{a}}:{i}", i)  # keys in several slots on a cluster
            pipe.incrby(f"rt:{{b}}:{i}", 10)
            pipe.get(f"rt:{{a}}:{i}")
            return await b.round_trips.execute(pipe)

        return list(await asyncio.gather(*(one(i) for i in range(50))))

    assert asyncio.run(scenario()) == [[True, 10, str(i).encode()] for i in range(50)]
