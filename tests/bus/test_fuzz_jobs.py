"""Garbage on the queues, as any client in any language can push it: nothing stalls, nothing is lost."""

from __future__ import annotations

import json
from typing import Any

import hypothesis.strategies as st
import redis
from hypothesis import HealthCheck, given, settings

from bus import Bus
from bus.settings import BusSettings
from tests.bus.helpers import FAST

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
PROXIES = st.sampled_from(["QueueBus::Driver", "::QueueBus::Rider", "QueueBus::Publisher", "QueueBus::Heartbeat", "X"])
KEYS = st.sampled_from(["bus_event_type", "bus_rider_app_key", "bus_rider_sub_key", "bus_id", "n", "bus_class_proxy"])


def _encode(value: Any) -> bytes:
    return json.dumps(value).encode()


def _text(value: Any) -> str:
    return json.dumps(value)


def deep(depth: int) -> str:
    return "[" * depth + "]" * depth


# Always bad: each must end in the failed list with a reason.
BAD = st.one_of(
    st.binary(max_size=64).filter(lambda b: not _is_json_object(b)),
    st.integers(1025, 3000).map(lambda d: deep(d).encode()),
    st.integers(1025, 3000).map(lambda d: json.dumps({"class": "QueueBus::Worker", "args": [deep(d)]}).encode()),
    JSON.filter(lambda v: not isinstance(v, dict)).map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["klass", "argz", "queue"]), JSON, max_size=3).map(
        lambda v: json.dumps(v).encode()
    ),
    JSON.map(lambda v: json.dumps({"class": v, "args": []}).encode()),
    JSON.filter(lambda v: not isinstance(v, str)).map(
        lambda v: json.dumps({"class": "QueueBus::Worker", "args": [json.dumps(v)]}).encode()
    ),
    st.text(max_size=10).map(lambda c: json.dumps({"class": "Other" + c, "args": [json.dumps({"a": 1})]}).encode()),
)
# Anything else shaped like a job: may run, may fail; must never stall or stop the worker.
ODD = st.builds(
    lambda fields, proxy: json.dumps(
        {"class": "QueueBus::Worker", "args": [json.dumps({**fields, "bus_class_proxy": proxy})]}
    ).encode(),
    st.dictionaries(KEYS, JSON | st.sampled_from(["app", "ok", "ping"]), max_size=5),
    PROXIES,
)


def _is_json_object(raw: bytes) -> bool:
    try:
        return isinstance(json.loads(raw), dict)
    except ValueError:
        return False


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    bad=st.lists(st.tuples(st.sampled_from(["bus_incoming", "app_default"]), BAD), max_size=6),
    odd=st.lists(st.tuples(st.sampled_from(["bus_incoming", "app_default"]), ODD), max_size=6),
    concurrency=st.sampled_from([1, 3]),
)
def test_garbage_between_good_events(
    redis_url: str, bad: list[tuple[str, bytes]], odd: list[tuple[str, bytes]], concurrency: int
) -> None:
    r = redis.Redis.from_url(redis_url)
    r.flushall()
    bus = Bus(settings=BusSettings(redis_url=redis_url, max_event_bytes=65_536))
    seen: list[Any] = []
    bus.dispatch("app").add("ok", lambda a: seen.append(a.get("good")))
    bus.subscribe_all()
    garbage = bad + odd
    good_events = max(len(garbage), 3)
    for i in range(good_events):
        bus.publish("ok", {"good": i})
        if i < len(garbage):
            r.rpush(f"resque:queue:{garbage[i][0]}", garbage[i][1])
    worker = bus.worker(
        ["bus_incoming", "app_default"], burst=True, install_signals=False, settings=FAST, concurrency=concurrency
    )
    assert worker.run() == 0
    good = sorted(g for g in seen if isinstance(g, int) and not isinstance(g, bool) and g >= 0)
    assert good[: max(len(garbage), 3)] == list(range(max(len(garbage), 3)))  # each good event exactly once...
    assert len([g for g in seen if g in range(max(len(garbage), 3)) and isinstance(g, int)]) >= max(len(garbage), 3)
    failures = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert len(failures) >= len(bad), "every bad job ends in the failed list"
    assert all(isinstance(f["exception"], str) and f["exception"] and isinstance(f["error"], str) for f in failures)
    leftovers = [k for k in r.scan_iter("resque:inflight:*") if r.llen(k)] + [
        q for q in ("resque:queue:bus_incoming", "resque:queue:app_default") if r.llen(q)
    ]
    assert leftovers == [], "nothing stuck in a queue or in flight"
