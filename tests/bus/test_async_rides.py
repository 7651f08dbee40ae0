"""``async def`` handlers: many rides in flight on one event loop, with every guarantee of a sync ride."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import redis

from bus import Bus, Reject, Retry, Ride, current_ride
from bus.settings import WorkerSettings
from bus.stores.traces import read_trace
from tests.bus.helpers import FAST, drain

IN_FLIGHT = 60


def test_rides_wait_together_on_one_thread(bus: Bus, r: redis.Redis) -> None:
    """Every handler waits until all of them have started: only possible if they are all in
    flight at once; a worker running them one after another would time each out."""
    started: list[int] = []
    threads: set[int] = set()
    finished: list[int] = []

    async def wait_for_everyone(attributes: dict[str, Any]) -> None:
        started.append(attributes["n"])
        threads.add(threading.get_ident())
        async with asyncio.timeout(30):
            while len(started) < IN_FLIGHT:
                await asyncio.sleep(0.005)
        finished.append(attributes["n"])

    bus.dispatch("app").add("wait", wait_for_everyone, retry=Retry(max_retries=0))
    bus.subscribe_all()
    for n in range(IN_FLIGHT):
        bus.publish("wait", {"n": n})
    drain(bus, ["bus_incoming"])
    drain(bus, ["app_default"], concurrency=IN_FLIGHT)
    assert sorted(finished) == list(range(IN_FLIGHT))
    assert len(threads) == 1 and threading.get_ident() not in threads
    assert r.llen("resque:failed") == 0 and r.llen("resque:queue:app_default") == 0


def test_an_async_ride_sees_its_ride_and_writes_with_its_ack(bus: Bus, r: redis.Redis) -> None:
    async def handler(attributes: dict[str, Any]) -> None:
        ride = current_ride()
        await asyncio.sleep(0)
        ride.on_ack(lambda pipe: pipe.set("seen", f"{ride.sub_key}:{attributes['n']}:{ride.attempt}"))

    bus.dispatch("app").add("x", handler)
    bus.subscribe_all()
    bus.publish("x", {"n": 5})
    drain(bus, ["bus_incoming", "app_default"])
    assert r.get("seen") == b"x:5:0"


def test_async_failures_are_retried_then_failed_with_their_trace(bus: Bus, r: redis.Redis) -> None:
    attempts: list[int] = []

    async def flaky(attributes: dict[str, Any]) -> None:
        attempts.append(current_ride().attempt)
        await asyncio.sleep(0)
        raise ConnectionError(f"down {len(attempts)}")

    bus.dispatch("app").add("x", flaky, retry=Retry(max_retries=1, delays=(0.01,)))
    bus.subscribe_all()
    bus_id = bus.publish("x")
    drain(bus, ["bus_incoming", "app_default"])
    assert attempts == [0, 1]
    (entry,) = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert (entry["exception"], entry["error"]) == ("ConnectionError", "down 2")
    assert any("in `flaky'" in line for line in entry["backtrace"]), entry["backtrace"]
    rides = [s.data for s in read_trace(r, bus.keys, bus_id) if s.data["step"] == "ride"]
    assert [d["outcome"] for d in rides] == ["retried", "failed"]


def test_an_async_handler_that_exits_or_rejects_ends_only_its_own_ride(bus: Bus, r: redis.Redis) -> None:
    seen: list[int] = []

    async def exits(attributes: dict[str, Any]) -> None:
        sys.exit(4)

    async def refuses(attributes: dict[str, Any]) -> None:
        raise Reject("not mine")

    async def fine(attributes: dict[str, Any]) -> None:
        seen.append(attributes["n"])

    app = bus.dispatch("app")
    app.add("bye", exits, retry=Retry(max_retries=0))
    app.add("no", refuses, retry=Retry(max_retries=3))
    app.add("ok", fine)
    bus.subscribe_all()
    bus.publish("bye")
    bus.publish("no")
    for n in range(3):
        bus.publish("ok", {"n": n})
    drain(bus, ["bus_incoming", "app_default"], concurrency=4)
    assert sorted(seen) == [0, 1, 2]
    failures = sorted((e["exception"], e["error"]) for e in (json.loads(x) for x in r.lrange("resque:failed", 0, -1)))
    assert failures == [("SystemExit", "4"), ("bus.errors.Reject", "not mine")]


def test_plain_middleware_wraps_an_async_ride_and_sees_its_outcome(bus: Bus, r: redis.Redis) -> None:
    seen: list[tuple[str, int, str]] = []

    def plain(ride: Ride, call_next: Callable[[], Any]) -> Any:
        try:
            result = call_next()
        except ValueError as exc:
            seen.append(("plain", ride.attempt, f"raised {exc}"))
            raise
        seen.append(("plain", ride.attempt, f"returned {result}"))
        return result

    async def handler(attributes: dict[str, Any]) -> str:
        if current_ride().attempt == 0:
            raise ValueError("first try")
        return "ok"

    bus.use(plain)
    bus.dispatch("app").add("x", handler, retry=Retry(max_retries=1, delays=(0.01,)))
    bus.subscribe_all()
    bus.publish("x")
    drain(bus, ["bus_incoming", "app_default"])
    assert seen == [("plain", 0, "raised first try"), ("plain", 1, "returned ok")]
    assert r.llen("resque:failed") == 0


def test_async_middleware_wraps_both_kinds_of_handler(bus: Bus, r: redis.Redis) -> None:
    order: list[str] = []

    async def timing(ride: Ride, call_next: Callable[[], Awaitable[Any]]) -> Any:
        order.append(f"before {ride.sub_key}")
        result = await call_next()
        order.append(f"after {ride.sub_key}")
        return result

    async def async_handler(attributes: dict[str, Any]) -> None:
        order.append("async handler")

    def plain_handler(attributes: dict[str, Any]) -> None:
        order.append("plain handler")

    bus.use(timing)
    bus.dispatch("app").add("a", async_handler)
    bus.dispatch("app").add("p", plain_handler)
    bus.subscribe_all()
    bus.publish("a")
    drain(bus, ["bus_incoming", "app_default"])
    bus.publish("p")
    drain(bus, ["bus_incoming", "app_default"])
    assert order == ["before a", "async handler", "after a", "before p", "plain handler", "after p"]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_plain_and_async_handlers_share_a_worker(bus: Bus, r: redis.Redis, concurrency: int) -> None:
    done: list[str] = []

    async def later(attributes: dict[str, Any]) -> None:
        await asyncio.sleep(0.001)
        done.append(f"async {attributes['n']}")

    bus.dispatch("app").add("a", later)
    bus.dispatch("app").add("p", lambda attributes: done.append(f"plain {attributes['n']}"))
    bus.subscribe_all()
    for n in range(20):
        bus.publish("a" if n % 2 else "p", {"n": n})
    drain(bus, ["bus_incoming", "app_default"], concurrency=concurrency)
    assert sorted(done) == sorted(f"{'async' if n % 2 else 'plain'} {n}" for n in range(20))
    assert r.llen("resque:failed") == 0


def test_a_batch_of_rides_starts_taking_turns_by_queue(bus: Bus, r: redis.Redis) -> None:
    """One queue's backlog does not take every slot before another queue's rides start."""
    started: list[str] = []

    async def note(attributes: dict[str, Any]) -> None:
        started.append(current_ride().queue)
        await asyncio.sleep(0.01)

    bus.dispatch("app").add("a", note, queue="first")
    bus.dispatch("app").add("b", note, queue="second")
    bus.subscribe_all()
    for n in range(12):
        bus.publish("a", {"n": n})
    for n in range(6):
        bus.publish("b", {"n": n})
    drain(bus, ["bus_incoming"])
    drain(bus, ["app_first", "app_second"], concurrency=4)
    assert started[:4] == ["app_first", "app_second"] * 2, started
    assert sorted(started) == ["app_first"] * 12 + ["app_second"] * 6


def test_concurrency_bounds_the_async_rides_in_flight(bus: Bus, r: redis.Redis) -> None:
    active: list[int] = []
    most: list[int] = [0]

    async def busy(attributes: dict[str, Any]) -> None:
        active.append(attributes["n"])
        most[0] = max(most[0], len(active))
        await asyncio.sleep(0.02)
        active.remove(attributes["n"])

    bus.dispatch("app").add("x", busy)
    bus.subscribe_all()
    for n in range(30):
        bus.publish("x", {"n": n})
    drain(bus, ["bus_incoming"])
    drain(bus, ["app_default"], concurrency=5)
    assert most[0] == 5 and r.llen("resque:queue:app_default") == 0


def _exchanges(r: redis.Redis) -> int:
    """Worker round trips so far: each is one MULTI ... EXEC on a single server."""
    return int(r.info("commandstats").get("cmdstat_exec", {}).get("calls", 0))


@pytest.mark.parametrize(("linger", "most", "least"), [(1.0, 4, 0), (0.0, 100, 8)])
def test_outcomes_that_finish_close_together_share_a_round_trip(
    bus: Bus, r: redis.Redis, linger: float, most: int, least: int
) -> None:
    """20 rides end 10 ms apart: with a linger their acks travel together (0: a trip each)."""

    async def staggered(attributes: dict[str, Any]) -> None:
        await asyncio.sleep(0.01 * attributes["n"])

    bus.dispatch("app").add("x", staggered)
    bus.subscribe_all()
    for n in range(20):
        bus.publish("x", {"n": n})
    drain(bus, ["bus_incoming"])
    before = _exchanges(r)
    drain(bus, ["app_default"], concurrency=20, settings=_with_linger(linger))
    trips = _exchanges(r) - before
    assert least <= trips <= most, trips
    assert r.llen("resque:queue:app_default") == 0 and r.llen("resque:failed") == 0


def test_a_lone_ride_is_acknowledged_without_waiting_out_the_linger(bus: Bus, r: redis.Redis) -> None:
    """The linger ends once nothing is left running: a quiet worker acks at once."""

    async def quick(attributes: dict[str, Any]) -> None:
        await asyncio.sleep(0.05)

    bus.dispatch("app").add("x", quick)
    bus.subscribe_all()
    bus.publish("x")
    drain(bus, ["bus_incoming"])
    started = time.monotonic()
    drain(bus, ["app_default"], concurrency=4, settings=_with_linger(60.0))
    assert time.monotonic() - started < 20  # not the 60 s linger
    assert r.llen("resque:queue:app_default") == 0 and r.llen("resque:failed") == 0


def _with_linger(linger: float) -> WorkerSettings:
    return dataclasses.replace(FAST, linger=linger)
