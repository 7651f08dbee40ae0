"""Publishing: metadata, hooks, context, local modes, batches, asyncio, bad input."""

from __future__ import annotations

import asyncio
import datetime
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from bus import Bus, InvalidEvent, LocalMode, RedisUnavailable, in_context, local_mode
from bus.settings import BusSettings
from tests.bus.helpers import queue_jobs
from tests.support.polling import wait_for
from tests.support.servers import RedisProcess
from tests.support.topologies import DOWN, HOST, free_ports, server_node


def test_metadata_and_user_attributes_override_it(bus: Bus, r: redis.Redis) -> None:
    bus_id = bus.publish("user_created", {"id": 1, "bus_app_hostname": "custom"})
    [event] = queue_jobs(r, "bus_incoming")
    assert event["bus_id"] == bus_id
    assert event["bus_event_type"] == "user_created"
    assert event["bus_app_hostname"] == "custom"  # attributes merge over metadata, as in queue-bus
    assert isinstance(event["bus_published_at"], int)
    assert event["bus_class_proxy"] == "QueueBus::Driver"


def test_before_publish_hooks_see_and_change_every_event(bus: Bus, r: redis.Redis) -> None:
    @bus.before_publish
    def stamp(attributes: dict[str, Any]) -> None:
        attributes["request_id"] = "req-9"
        attributes.pop("password", None)

    bus.publish("login", {"user": "ann", "password": "hunter2"})
    [event] = queue_jobs(r, "bus_incoming")
    assert event["request_id"] == "req-9"
    assert "password" not in event


@pytest.mark.parametrize(
    ("event_type", "attributes", "message"),
    [
        ("", {}, "non-empty string"),
        (None, {}, "non-empty string"),
        ("x", ["not", "a", "dict"], "mapping"),
        ("x", {1: "numeric key"}, "strings"),
        ("x", {"when": datetime.datetime(2026, 1, 1)}, "not JSON-serialisable"),
        ("x", {"n": float("nan")}, "not JSON-serialisable"),
        ("x", {"s": {1, 2}}, "not JSON-serialisable"),
    ],
)
def test_bad_events_raise_before_anything_is_written(
    bus: Bus, r: redis.Redis, event_type: Any, attributes: Any, message: str
) -> None:
    with pytest.raises(InvalidEvent, match=message):
        bus.publish(event_type, attributes)
    assert r.keys("*") == []


def test_context_is_per_thread(bus: Bus, r: redis.Redis) -> None:
    barrier = threading.Barrier(2)

    def publish_in(context: str) -> None:
        with in_context(context, locale=context[:2]):
            barrier.wait()
            bus.publish("ctx", {"who": context})
            barrier.wait()

    threads = [threading.Thread(target=publish_in, args=(name,)) for name in ("frontend", "backend")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bus.publish("ctx", {"who": "outside"})
    events = {e["who"]: e for e in queue_jobs(r, "bus_incoming")}
    assert events["frontend"]["bus_context"] == "frontend" and events["frontend"]["bus_locale"] == "fr"
    assert events["backend"]["bus_context"] == "backend" and events["backend"]["bus_locale"] == "ba"
    assert "bus_context" not in events["outside"] and "bus_locale" not in events["outside"]


def test_context_is_per_asyncio_task(bus: Bus, r: redis.Redis) -> None:
    async def publish_in(context: str, both_inside: asyncio.Barrier) -> str:
        with in_context(context):
            await both_inside.wait()  # the other task is inside its own block too
            return await bus.apublish("ctx", {"who": context})

    async def main() -> list[str]:
        both_inside = asyncio.Barrier(2)
        return list(await asyncio.gather(publish_in("a", both_inside), publish_in("b", both_inside)))

    ids = asyncio.run(main())
    events = {e["who"]: e for e in queue_jobs(r, "bus_incoming")}
    assert {events["a"]["bus_context"], events["b"]["bus_context"]} == {"a", "b"}
    assert sorted(ids) == sorted(e["bus_id"] for e in events.values())


def test_publish_many_is_one_batch_in_order(bus: Bus, r: redis.Redis) -> None:
    ids = bus.publish_many([("n", {"i": i}) for i in range(500)])
    events = queue_jobs(r, "bus_incoming")
    assert [e["i"] for e in events] == list(range(500))
    assert [e["bus_id"] for e in events] == ids
    assert len(set(ids)) == 500


def test_apublish_many_is_one_batch_in_order_on_the_event_loop(bus: Bus, r: redis.Redis) -> None:
    ids = asyncio.run(bus.apublish_many([("n", {"i": i}) for i in range(300)]))
    events = queue_jobs(r, "bus_incoming")
    assert [e["i"] for e in events] == list(range(300)) and [e["bus_id"] for e in events] == ids
    assert r.smembers("resque:queues") == {b"bus_incoming"}
    assert asyncio.run(bus.apublish_many([])) == []
    with local_mode("suppress"):
        assert len(asyncio.run(bus.apublish_many([("n", {"i": 1})]))) == 1
    assert r.llen("resque:queue:bus_incoming") == 300


def test_publish_with_sends_the_callers_writes_and_the_event_together(bus: Bus, r: redis.Redis) -> None:
    bus_id = bus.publish_with(lambda pipe: pipe.hset("record:7", "status", "sent"), "record_sent", {"id": 7})
    assert r.hget("record:7", "status") == b"sent"
    [event] = queue_jobs(r, "bus_incoming")
    assert event["bus_id"] == bus_id and event["id"] == 7
    with local_mode("suppress"):  # the writes are the caller's: they land whatever the mode
        bus.publish_with(lambda pipe: pipe.hset("record:8", "status", "sent"), "record_sent", {"id": 8})
    assert r.hget("record:8", "status") == b"sent" and r.llen("resque:queue:bus_incoming") == 1


def test_inline_mode_runs_local_handlers_without_redis() -> None:
    b = Bus("redis://127.0.0.1:1/0", local_mode="inline")  # nothing listens there: must not be needed
    seen: list[dict[str, Any]] = []
    b.dispatch("profile").add("rating_created", seen.append)
    b.dispatch("other").add("something_else", seen.append)
    b.publish("rating_created", {"id": 7})
    assert len(seen) == 1
    assert seen[0]["id"] == 7
    assert seen[0]["bus_rider_app_key"] == "profile"
    assert "bus_executed_at" in seen[0]


def test_inline_handler_errors_reach_the_publisher() -> None:
    b = Bus("redis://127.0.0.1:1/0", local_mode=LocalMode.INLINE)

    def boom(attributes: dict[str, Any]) -> None:
        raise RuntimeError("handler failed")

    b.dispatch("app").add("x", boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        b.publish("x")


def test_suppress_mode_writes_nothing(bus: Bus, r: redis.Redis) -> None:
    with local_mode("suppress"):
        bus_id = bus.publish("anything", {"a": 1})
    assert bus_id
    assert r.keys("*") == []


def test_standalone_mode_skips_the_driver(bus: Bus, r: redis.Redis) -> None:
    bus.dispatch("profile").add("rating_created", lambda a: None, queue="critical")
    with bus.local_mode("standalone"):
        bus.publish("rating_created", {"id": 7})
    assert r.llen("resque:queue:bus_incoming") == 0
    [job] = queue_jobs(r, "profile_critical")
    assert job["bus_rider_sub_key"] == "rating_created" and job["id"] == 7


def test_local_mode_is_scoped_per_thread(bus: Bus, r: redis.Redis) -> None:
    inside = threading.Event()
    release = threading.Event()

    def suppressed() -> None:
        with local_mode("suppress"):
            inside.set()
            release.wait()
            bus.publish("hidden")

    t = threading.Thread(target=suppressed)
    t.start()
    inside.wait()
    bus.publish("visible")  # this thread is not in the block
    release.set()
    t.join()
    assert [e["bus_event_type"] for e in queue_jobs(r, "bus_incoming")] == ["visible"]


def test_unknown_local_mode_is_a_clear_error() -> None:
    from bus import ConfigurationError

    with pytest.raises(ConfigurationError, match="unknown local mode 'inlined'"):
        Bus(local_mode="inlined")


def test_publish_with_retried_through_an_outage_still_registers_the_queue(
    own_server: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Resque lists queues from ``resque:queues``: the retried send must carry the SADD too."""
    b = Bus(own_server.url)
    own_server.stop()
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(b.publish_with(lambda pipe: pipe.set("record", "1"), "record_sent"))
        except Exception as exc:  # reported below
            outcome.append(exc)

    sent = threading.Thread(target=send)
    sent.start()
    wait_for(lambda: any("Redis unreachable during publish" in m for m in caplog.messages))
    own_server.start()
    sent.join(timeout=30)
    assert not sent.is_alive() and len(outcome) == 1 and isinstance(outcome[0], str), outcome
    r = own_server.client()
    assert r.llen("resque:queue:bus_incoming") == 1
    assert r.smembers("resque:queues") == {b"bus_incoming"}
    b.close()


def test_publish_keeps_trying_for_its_whole_timeout_then_says_why() -> None:
    b = Bus(settings=BusSettings(redis_url="redis://127.0.0.1:1/0", publish_timeout=1.0))  # nothing listens
    started = time.monotonic()
    with pytest.raises(RedisUnavailable, match=r"publish failed: Redis unreachable for 1\.\ds"):
        b.publish("x")
    assert time.monotonic() - started >= 1.0


def test_publish_waits_only_for_replicas_the_master_has_and_says_so(
    redis_url: str, r: redis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    """Sentinel and Cluster tests cover real replicas; here there are none to answer."""
    b = Bus(settings=BusSettings(redis_url=redis_url, publish_replicas=1, publish_replica_timeout=0.05))
    b.publish("x", {"n": 1})
    b.publish_many([("x", {"n": 2})])
    b.publish_with(lambda pipe: pipe.set("record", "1"), "x", {"n": 3})
    asyncio.run(b.apublish("x", {"n": 4}))
    asyncio.run(b.apublish_with(lambda pipe: pipe.set("record", "2"), "x", {"n": 5}))
    asyncio.run(b.apublish_many([("x", {"n": 6})]))
    assert [job["n"] for job in queue_jobs(r, "bus_incoming")] == [1, 2, 3, 4, 5, 6]
    assert r.get("record") == b"2"
    assert r.smembers("resque:queues") == {b"bus_incoming"}
    # No replica: said once, and publishes do not wait for one that is not there.
    assert [m for m in caplog.messages if "replica" in m] == [
        "the master has 0 replica(s) connected; publishes wait for 0, not 1, until more connect"
    ]


def test_every_publish_waits_for_a_replica(own_server: RedisProcess, tmp_path: Path) -> None:
    replica = server_node(free_ports(1)[0], tmp_path, "--replicaof", HOST, str(own_server.port))
    replica.start()
    try:
        wait_for(
            lambda: replica.client().info("replication").get("master_link_status") == "up",
            timeout=30,
            message="replica in sync",
            not_yet=DOWN,
        )
        b = Bus(settings=BusSettings(redis_url=own_server.url, publish_replicas=1))
        master = own_server.client()
        waits = []
        for publish in (
            lambda: b.publish("x", {"n": 1}),
            lambda: b.publish_many([("x", {"n": 2})]),
            lambda: b.publish_with(lambda pipe: pipe.set("record", "1"), "x", {"n": 3}),
            lambda: asyncio.run(b.apublish("x", {"n": 4})),
            lambda: asyncio.run(b.apublish_with(lambda pipe: pipe.set("record", "2"), "x", {"n": 5})),
            lambda: asyncio.run(b.apublish_many([("x", {"n": 6})])),
        ):
            publish()
            waits.append(master.info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
        assert waits == [1, 2, 3, 4, 5, 6]
        assert replica.client().llen("resque:queue:bus_incoming") == 6  # held there when publish returned
    finally:
        replica.kill()


def test_async_publishes_wait_out_a_redis_restart(own_server: RedisProcess) -> None:
    """Each event loop gets its own connection; a publish made while Redis is down goes through
    once it is back, its writes with it."""
    b = Bus(settings=BusSettings(redis_url=own_server.url, publish_timeout=30.0))
    asyncio.run(b.apublish("x", {"n": 1}))  # a first loop, now closed

    async def while_down() -> list[str]:
        return [
            await b.apublish_with(lambda pipe: pipe.set("record", "written"), "x", {"n": 2}),
            await b.apublish("x", {"n": 3}),
        ]

    own_server.kill()
    restart = threading.Timer(0.5, own_server.start)
    restart.start()
    try:
        ids = asyncio.run(while_down())
    finally:
        restart.join()
    r = own_server.client()
    events = queue_jobs(r, "bus_incoming")
    assert [e["n"] for e in events] == [1, 2, 3] and [e["bus_id"] for e in events[1:]] == ids
    assert r.get("record") == b"written"
