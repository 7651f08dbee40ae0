"""The worker's own middleware: observing outermost, the retry policy around the app's middleware."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import redis

from bus import Bus, Reject, Retry, Ride
from bus.stores.traces import read_trace
from tests.bus.helpers import drain


def test_what_app_middleware_raises_is_retried_like_a_handler_error(bus: Bus, r: redis.Redis) -> None:
    calls: list[int] = []

    def flaky_guard(ride: Ride, call_next: Callable[[], Any]) -> Any:
        calls.append(ride.attempt)
        if ride.attempt == 0:
            raise ConnectionError("token service down")
        return call_next()

    bus.use(flaky_guard)
    bus.dispatch("app").add("x", lambda a: None, retry=Retry(max_retries=2, delays=(0.01,)))
    bus.subscribe_all()
    bus_id = bus.publish("x")
    drain(bus, ["bus_incoming", "app_default"])
    assert calls == [0, 1] and r.llen("resque:failed") == 0
    rides = [s.data for s in read_trace(r, bus.keys, bus_id) if s.data["step"] == "ride"]
    assert [(d["outcome"], d.get("attempt", 0)) for d in rides] == [("retried", 0), ("succeeded", 1)]
    assert rides[0]["error"] == "ConnectionError: token service down" and rides[0]["retry_in"] == 0.01


def test_a_handler_that_exits_is_retried_then_failed_and_the_worker_goes_on(bus: Bus, r: redis.Redis) -> None:
    seen: list[int] = []

    def exits(attributes: dict[str, Any]) -> None:
        sys.exit(3)

    bus.dispatch("app").add("bye", exits, retry=Retry(max_retries=1, delays=(0.01,)))
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    bus_id = bus.publish("bye")
    bus.publish("ok", {"n": 1})
    drain(bus, ["bus_incoming", "app_default"])
    assert seen == [1]
    (entry,) = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "SystemExit" and entry["error"] == "3"
    outcomes = [s.data["outcome"] for s in read_trace(r, bus.keys, bus_id) if s.data["step"] == "ride"]
    assert outcomes == ["retried", "failed"]


def test_reject_fails_at_once_whatever_the_retry_budget(bus: Bus, r: redis.Redis) -> None:
    def refuse(attributes: dict[str, Any]) -> None:
        raise Reject("no such order")

    bus.dispatch("app").add("x", refuse, retry=Retry(max_retries=5))
    bus.subscribe_all()
    bus.publish("x")
    drain(bus, ["bus_incoming", "app_default"])
    (entry,) = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert (entry["exception"], entry["error"]) == ("bus.errors.Reject", "no such order")
