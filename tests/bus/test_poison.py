"""No single job stalls a queue: deep JSON, handlers that exit, crashes, oversized events."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from bus import Bus, InvalidEvent, Retry
from bus.runtime.grace import GraceExpired
from bus.settings import BusSettings, ObserveSettings
from tests.bus.helpers import FAST, drain
from tests.support.clirun import CliRun

DEEP = "[" * 1100 + "]" * 1100


def job_with(inner: str) -> bytes:
    return json.dumps({"class": "QueueBus::Worker", "args": [inner]}).encode()


@pytest.mark.parametrize(
    "raw",
    [
        DEEP.encode(),  # the whole job
        job_with(DEEP),  # inside args[0]
        b'{"class":"QueueBus::Worker","args":[' + DEEP.encode() + b"]}",  # args[0] as nested arrays
    ],
)
@pytest.mark.parametrize("queue", ["bus_incoming", "app_default"])
def test_deeply_nested_json_goes_to_failed_and_the_jobs_behind_it_run(
    bus: Bus, r: redis.Redis, raw: bytes, queue: str
) -> None:
    seen: list[int] = []
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    r.rpush(f"resque:queue:{queue}", raw)
    bus.publish("ok", {"n": 1})
    drain(bus, ["bus_incoming", "app_default"])
    assert seen == [1]
    (entry,) = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "bus.errors.MalformedJob" and entry["queue"] == queue
    assert "nested too deeply" in entry["error"] or "not a JSON object" in entry["error"]


@pytest.mark.parametrize("concurrency", [1, 3])
@pytest.mark.parametrize("exit_with", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_a_handler_raising_any_base_exception_fails_its_job_only(
    bus: Bus, r: redis.Redis, concurrency: int, exit_with: str
) -> None:
    seen: list[int] = []
    kinds = {"SystemExit": SystemExit, "KeyboardInterrupt": KeyboardInterrupt, "GeneratorExit": GeneratorExit}

    def leave(attributes: dict[str, Any]) -> None:
        raise kinds[exit_with]()

    bus.dispatch("app").add("leave", leave, retry=Retry(max_retries=0))
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    for n in range(6):  # more jobs than threads: a dead thread would leave some unrun
        bus.publish("leave")
        bus.publish("ok", {"n": n})
    drain(bus, ["bus_incoming", "app_default"], concurrency=concurrency)
    assert sorted(seen) == list(range(6))
    failures = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert [f["exception"] for f in failures] == [exit_with] * 6
    assert r.llen("resque:queue:app_default") == 0
    assert not any(k.startswith(b"resque:inflight:") and r.llen(k) for k in r.scan_iter("resque:inflight:*"))


def test_publishing_an_event_over_the_size_limit_is_refused(redis_url: str, r: redis.Redis) -> None:
    bus = Bus(settings=BusSettings(redis_url=redis_url, max_event_bytes=10_000))
    bus.publish("fits", {"blob": "x" * 9_000})
    with pytest.raises(InvalidEvent, match=r"over the bus's limit of 10,000 bytes \(max_event_bytes\)"):
        bus.publish("big", {"blob": "x" * 10_001})
    with pytest.raises(InvalidEvent):
        bus.publish_many([("big", {"blob": "x" * 20_000})])
    with pytest.raises(InvalidEvent):
        bus.publish_in(60, "big", {"blob": "x" * 20_000})
    assert r.llen("resque:queue:bus_incoming") == 1 and r.zcard("resque:delayed_queue_schedule") == 0


def test_a_worker_fails_an_oversized_job_and_keeps_a_small_trace_of_it(redis_url: str, r: redis.Redis) -> None:
    settings = BusSettings(redis_url=redis_url, max_event_bytes=4_096, observe=ObserveSettings(trace_sample=1.0))
    bus = Bus(settings=settings)
    seen: list[int] = []
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    # What a publisher with no limit (another language, an old version) may push.
    event = {"bus_id": "1-big", "bus_event_type": "huge", "bus_class_proxy": "QueueBus::Driver", "blob": "y" * 50_000}
    r.rpush("resque:queue:bus_incoming", job_with(json.dumps(event)))
    bus.publish("ok", {"n": 1})
    drain(bus, ["bus_incoming", "app_default"])
    assert seen == [1]
    (raw,) = r.lrange("resque:failed", 0, -1)
    assert len(raw) < 4_096
    entry = json.loads(raw)
    assert entry["exception"] == "bus.errors.MalformedJob"
    assert "bytes, over the bus's limit of 4,096 bytes" in entry["error"]
    shown = json.loads(entry["payload"]["args"][0])
    assert (shown["bus_id"], shown["bus_event_type"], shown["bus_truncated"]) == ("1-big", "huge", True)


def test_an_exception_escaping_the_loop_counts_a_crash_until_poison_job_ends_it(bus: Bus, r: redis.Redis) -> None:
    """A handler raising what only the grace period may raise gets past the job's own handling
    and ends the loop: the job counts a crash each time, until PoisonJob takes it out."""

    def escape(attributes: dict[str, Any]) -> None:
        raise GraceExpired()

    seen: list[int] = []
    bus.dispatch("app").add("escape", escape)
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    bus.publish("escape")
    bus.publish("ok", {"n": 1})
    codes = [bus.worker(["bus_incoming", "app_default"], burst=True, install_signals=False, settings=FAST).run()]
    while not r.llen("resque:failed") and len(codes) < 6:
        codes.append(bus.worker(["app_default"], burst=True, install_signals=False, settings=FAST).run())
    assert codes == [1, 1, 1, 0]  # crashed three times (max_crashes), then the job is failed and the rest runs
    (entry,) = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "bus.errors.PoisonJob"
    assert seen == [1] and r.llen("resque:queue:app_default") == 0


def test_cli_publish_refuses_deep_json_in_one_line(run: CliRun) -> None:
    code, out, err = run("publish", "ev", "[" * 1100 + "]" * 1100)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and "nested too deeply" in err


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], redis_url: str) -> CliRun:
    from bus.cli import main

    return CliRun(main, capsys, "--redis-url", redis_url)
