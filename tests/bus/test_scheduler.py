"""Delayed publish, the scheduler and the heartbeat, in resque-scheduler's layout."""

from __future__ import annotations

import json
import signal
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import redis

from bus import Bus, InvalidEvent, InvalidSubscription
from bus.scheduling.heartbeat import heartbeat_attributes
from bus.settings import BusSettings
from tests.bus.helpers import drain, queue_jobs, spawn, write_settings
from tests.support.polling import wait_for

NOW = 1795823508.0
LATER = int(NOW) + 3600


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_publish_at_writes_resque_schedulers_layout(redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url, hostname="web-1", clock=Clock())
    bus_id = b.publish_at(datetime.fromtimestamp(LATER, UTC), "invoice_due", {"invoice": 12})
    job = (
        '{"class":"QueueBus::Worker","args":["{\\"bus_event_type\\":\\"invoice_due\\",\\"bus_id\\":\\"'
        + bus_id
        + '\\",\\"bus_app_hostname\\":\\"web-1\\",\\"invoice\\":12,'
        '\\"bus_delayed_until\\":1795827108,\\"bus_class_proxy\\":\\"QueueBus::Publisher\\"}"],'
        '"queue":"bus_incoming"}'
    )
    assert r.zrange("resque:delayed_queue_schedule", 0, -1, withscores=True) == [(str(LATER).encode(), LATER)]
    assert r.lrange(f"resque:delayed:{LATER}", 0, -1) == [job.encode()]
    assert r.smembers(f"resque:timestamps:{job}") == {f"delayed:{LATER}".encode()}
    assert r.llen("resque:queue:bus_incoming") == 0


def test_due_events_reach_subscribers_with_their_bus_id(redis_url: str, r: redis.Redis) -> None:
    clock = Clock()
    b = Bus(redis_url, clock=clock)
    seen: list[dict[str, Any]] = []
    b.dispatch("billing").add("invoice_due", seen.append)
    b.subscribe_all()
    bus_id = b.publish_in(timedelta(hours=1), "invoice_due", {"invoice": 12})
    scheduler = b.scheduler(clock=clock)

    assert scheduler.move_due() == 0  # not yet
    clock.now = LATER - 1
    assert scheduler.move_due() == 0
    clock.now = LATER
    assert scheduler.move_due() == 1
    assert r.keys("resque:delayed*") == [] and r.keys("resque:timestamps:*") == []
    [moved] = r.lrange("resque:queue:bus_incoming", 0, -1)
    assert list(json.loads(moved)) == ["class", "args"]  # "queue" is dropped, as Resque::Job.create does

    clock.now = LATER + 5
    drain(b, ["bus_incoming", "billing_default"], clock=clock)
    [event] = seen
    assert event["bus_id"] == bus_id
    assert event["bus_delayed_until"] == LATER
    assert event["bus_published_at"] == LATER + 5  # stamped when it really publishes
    assert event["invoice"] == 12


def test_rubys_publish_at_is_delivered(redis_url: str, r: redis.Redis) -> None:
    """What Ruby's QueueBus.publish_at writes (through resque-scheduler's delayed_push)."""
    job = (
        b'{"class":"QueueBus::Worker","args":["{\\"bus_event_type\\":\\"reminder\\",\\"bus_id\\":\\"1795820000-ruby\\",'
        b'\\"bus_app_hostname\\":\\"rails-1\\",\\"bus_locale\\":\\"en\\",\\"note\\":\\"hi\\",'
        b'\\"bus_delayed_until\\":1795823000,\\"bus_class_proxy\\":\\"QueueBus::Publisher\\"}"],"queue":"bus_incoming"}'
    )
    r.rpush("resque:delayed:1795823000", job)
    r.sadd(b"resque:timestamps:" + job, "delayed:1795823000")
    r.zadd("resque:delayed_queue_schedule", {"1795823000": 1795823000})
    b = Bus(redis_url, clock=Clock())
    seen: list[dict[str, Any]] = []
    b.dispatch("app").add("reminder", seen.append)
    b.subscribe_all()
    b.scheduler(clock=Clock()).move_due()
    drain(b, ["bus_incoming", "app_default"])
    assert [(e["bus_id"], e["note"], e["bus_locale"]) for e in seen] == [("1795820000-ruby", "hi", "en")]
    assert r.keys(b"resque:timestamps:*") == []


def test_a_delayed_item_that_is_not_a_job_goes_to_failed_once(redis_url: str, r: redis.Redis) -> None:
    r.rpush("resque:delayed:100", "{not json", '{"class":"X","args":[]}')
    r.zadd("resque:delayed_queue_schedule", {"100": 100})
    b = Bus(redis_url)
    scheduler = b.scheduler(clock=Clock())
    assert scheduler.move_due() == 0
    assert scheduler.failed == 2
    assert scheduler.move_due() == 0 and scheduler.failed == 2  # not retried forever
    entries = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert [e["payload"]["args"][0] for e in entries] == ["{not json", '{"class":"X","args":[]}']
    assert all("not a job" in e["error"] for e in entries)
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_racing_schedulers_deliver_each_event_exactly_once(redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url, clock=Clock(NOW - 100))
    expected = {b.publish_at(NOW - 50 + (n % 40), "tick", {"n": n}) for n in range(2000)}
    start = threading.Barrier(4)

    def race() -> None:
        scheduler = Bus(redis_url).scheduler(clock=Clock(), batch=7)
        start.wait()
        scheduler.move_due()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    delivered = [e["bus_id"] for e in queue_jobs(r, "bus_incoming")]
    assert len(delivered) == 2000
    assert set(delivered) == expected
    assert r.zcard("resque:delayed_queue_schedule") == 0


@pytest.mark.slow
def test_sigkill_mid_move_loses_and_duplicates_nothing(tmp_path: Path, redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url, clock=Clock(NOW - 100))
    total = 20000
    pipe_bus = [("tick", {"n": n}) for n in range(total)]
    for start in range(0, total, 2000):
        for event_type, attributes in pipe_bus[start : start + 2000]:
            b.publish_at(NOW - 90 + attributes["n"] % 60, event_type, attributes)
    write_settings(tmp_path)
    scheduler = spawn(tmp_path, redis_url, "scheduler", "--interval", "0.01")
    try:
        wait_for(lambda: r.llen("resque:queue:bus_incoming") > 0, timeout=20)
        scheduler.send_signal(signal.SIGKILL)
        scheduler.wait()
    finally:
        if scheduler.poll() is None:
            scheduler.kill()
    delivered = [e["n"] for e in queue_jobs(r, "bus_incoming")]
    remaining = b.delayed.count()
    assert len(delivered) == len(set(delivered))
    assert len(delivered) + remaining == total
    b.scheduler(clock=Clock()).move_due()
    assert sorted(e["n"] for e in queue_jobs(r, "bus_incoming")) == list(range(total))


def test_bad_times_are_refused_and_past_times_publish_at_once(bus: Bus, r: redis.Redis) -> None:
    with pytest.raises(InvalidEvent, match="naive datetime"):
        bus.publish_at(datetime(2030, 1, 1), "x")
    with pytest.raises(InvalidEvent, match="aware datetime or epoch seconds"):
        bus.publish_at("tomorrow", "x")  # type: ignore[arg-type]
    with pytest.raises(InvalidEvent, match="timedelta or seconds"):
        bus.publish_in("soon", "x")  # type: ignore[arg-type]
    bus_id = bus.publish_at(datetime(2001, 1, 1, tzinfo=timezone(timedelta(hours=2))), "late", {"a": 1})
    [event] = queue_jobs(r, "bus_incoming")
    assert (event["bus_id"], event["bus_delayed_until"], event["bus_class_proxy"]) == (
        bus_id,
        978300000,
        "QueueBus::Driver",
    )
    assert r.zcard("resque:delayed_queue_schedule") == 0


def test_delayed_cli_lists_shows_removes_and_clears(
    redis_url: str, r: redis.Redis, capsys: pytest.CaptureFixture[str]
) -> None:
    from bus.cli import main

    b = Bus(redis_url)
    first = b.publish_in(600, "reminder", {"to": "ann"})
    second = b.publish_in(60, "reminder", {"to": "bob"})
    third = b.publish_in(7200, "digest")

    def run(*args: str) -> Any:
        try:
            main([*args, "--redis-url", redis_url, "--json"])
        except SystemExit as exc:
            assert not exc.code
        return json.loads(capsys.readouterr().out)

    listing = run("delayed", "list")
    assert listing["total"] == 3
    assert [e["bus_id"] for e in listing["entries"]] == [second, first, third]  # earliest first
    assert run("delayed", "show", first)["attributes"]["to"] == "ann"
    assert run("delayed", "remove", first) == {"removed": 1}
    assert b.delayed.find(first) is None
    assert run("delayed", "clear") == {"removed": 2}
    assert r.keys("resque:delayed*") == [] and r.keys("resque:timestamps:*") == []


# --- heartbeat -------------------------------------------------------------------------
def test_heartbeat_attributes_match_queue_bus() -> None:
    minute = int(datetime(2026, 11, 29, 2, 30, tzinfo=UTC).timestamp()) // 60  # a Sunday
    assert heartbeat_attributes(minute) == {
        "epoch_seconds": minute * 60,
        "epoch_minutes": minute,
        "epoch_hours": minute // 60,
        "epoch_days": minute // 1440,
        "minute": 30,
        "hour": 2,
        "day": 29,
        "month": 11,
        "year": 2026,
        "yday": 333,
        "wday": 0,
    }


def heartbeat_events(r: redis.Redis) -> list[int]:
    return [e["epoch_minutes"] for e in queue_jobs(r, "bus_incoming") if e["bus_event_type"] == "heartbeat_minutes"]


def test_heartbeat_once_per_minute_across_schedulers(redis_url: str, r: redis.Redis) -> None:
    clock = Clock()
    beats = [Bus(redis_url).heartbeat(clock) for _ in range(3)]
    for _ in range(3):
        for beat in beats:
            beat.tick()
    assert heartbeat_events(r) == [int(NOW // 60)]
    clock.now += 60
    threads = [threading.Thread(target=beat.tick) for beat in beats]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert heartbeat_events(r) == [int(NOW // 60), int(NOW // 60) + 1]
    assert int(r.get("resque:bus:heartbeat:timestamp") or 0) == int(NOW // 60) + 1
    assert r.get("resque:bus:heartbeat:lock") is None  # released after each round


def test_heartbeat_backfills_missed_minutes(redis_url: str, r: redis.Redis) -> None:
    clock = Clock()
    Bus(redis_url).heartbeat(clock).tick()
    clock.now += 10 * 60  # ten minutes with no scheduler running
    Bus(redis_url).heartbeat(clock).tick()
    first = int(NOW // 60)
    assert heartbeat_events(r) == list(range(first, first + 11))


def test_heartbeat_backfill_is_capped_in_test_environments(redis_url: str, r: redis.Redis) -> None:
    clock = Clock()
    b = Bus(settings=BusSettings(redis_url=redis_url, environment="test"))
    b.heartbeat(clock).tick()
    clock.now += 10 * 60
    b.heartbeat(clock).tick()
    first = int(NOW // 60)
    assert heartbeat_events(r) == [first, first + 8, first + 9, first + 10]


def test_a_held_lock_keeps_other_heartbeats_out_until_it_expires(redis_url: str, r: redis.Redis) -> None:
    clock = Clock()
    r.set("resque:bus:heartbeat:lock", int(NOW) + 30)  # Ruby's heartbeat holds it
    assert Bus(redis_url).heartbeat(clock).tick() == 0
    clock.now += 40  # the holder died: the lock expired
    assert Bus(redis_url).heartbeat(clock).tick() == 1


def test_on_heartbeat_filters(bus: Bus, r: redis.Redis) -> None:
    app = bus.dispatch("cron")
    calls: list[tuple[str, int, int]] = []

    @app.on_heartbeat("nightly_digest", hour=2, minute=30)
    def nightly(a: dict[str, Any]) -> None:
        calls.append(("nightly", a["hour"], a["minute"]))

    @app.on_heartbeat("sync", minute_interval=20)
    def sync(a: dict[str, Any]) -> None:
        calls.append(("sync", a["hour"], a["minute"]))

    @app.on_heartbeat("sundays", wday=0, hour=2, minute=31)
    def sundays(a: dict[str, Any]) -> None:
        calls.append(("sunday", a["hour"], a["minute"]))

    bus.subscribe_all()
    stored = {s.key: s.matcher.to_redis() for s in bus.registry.load()}
    assert stored["nightly_digest"] == {"bus_event_type": "heartbeat_minutes", "hour": "2", "minute": "30"}
    assert stored["sync"]["minute"] == "(?-mix:^(?:0|20|40)$)"
    start = int(datetime(2026, 11, 29, 2, 0, tzinfo=UTC).timestamp()) // 60  # Sunday 02:00 UTC
    for minute in range(start, start + 61):
        bus.publish("heartbeat_minutes", heartbeat_attributes(minute))
    drain(bus, ["bus_incoming", "cron_default"])
    assert sorted(calls) == [
        ("nightly", 2, 30),
        ("sunday", 2, 31),
        ("sync", 2, 0),
        ("sync", 2, 20),
        ("sync", 2, 40),
        ("sync", 3, 0),
    ]
    assert r.llen("resque:queue:cron_default") == 0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"minute_interval": 0}, "minute_interval must be a positive integer"),
        ({"hour_interval": -2}, "hour_interval must be a positive integer"),
        ({"minute": 60}, "minute must be an integer from 0 to 59"),
        ({"hour": -1}, "hour must be an integer from 0 to 23"),
        ({"wday": 7}, "wday must be an integer from 0 to 6"),
    ],
)
def test_on_heartbeat_rejects_bad_schedules_at_declaration(options: dict[str, Any], message: str) -> None:
    app = Bus("redis://127.0.0.1:1/0").dispatch("cron")
    with pytest.raises(InvalidSubscription, match=message):
        app.on_heartbeat("x", **options)
