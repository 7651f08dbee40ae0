"""Tracing and live metrics: what happened to event X, and how many per minute right now."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import redis

from bus import Bus, Retry
from bus.cli import main
from bus.settings import BusSettings, ObserveSettings
from bus.stores.metrics import event_counts, latency, totals
from bus.stores.traces import driven_entry, read_trace, ride_entry, timeline, traced
from tests.bus.helpers import FAST, drain, failed_orders_in_and_out_of_the_sample
from tests.support.clirun import CliRun
from tests.support.polling import wait_for


def test_a_trace_shows_every_step_of_a_fan_out_with_a_retry(redis_url: str, r: redis.Redis) -> None:
    every = ObserveSettings(trace_sample=1.0)
    b = Bus(settings=BusSettings(redis_url=redis_url, hostname="web-7", observe=every))
    tries: list[int] = []

    def flaky(attributes: dict[str, Any]) -> None:
        tries.append(1)
        if len(tries) == 1:
            raise ConnectionError("crm unreachable")

    b.dispatch("mailer").add("signup", lambda a: None)
    b.dispatch("profile").add("signup", lambda a: None)
    b.dispatch("crm").add("signup", flaky, retry=Retry(max_retries=3, base_delay=0.01))
    b.subscribe_all()
    bus_id = b.publish("signup", {"user": 1})
    drain(b, ["bus_incoming", *b.app_queues()])

    steps = read_trace(r, b.keys, bus_id)
    kinds = [(s.data["step"], s.data.get("app"), s.data.get("outcome")) for s in steps]
    assert kinds[0] == ("published", None, None)
    assert steps[0].data["host"] == "web-7"
    assert kinds[1] == ("driven", None, None)
    assert sorted(t["app"] for t in steps[1].data["to"]) == ["crm", "mailer", "profile"]
    rides = sorted(kinds[2:], key=str)
    assert rides == [
        ("ride", "crm", "retried"),
        ("ride", "crm", "succeeded"),
        ("ride", "mailer", "succeeded"),
        ("ride", "profile", "succeeded"),
    ]
    retried = next(s.data for s in steps if s.data.get("outcome") == "retried")
    assert "ConnectionError: crm unreachable" in retried["error"] and retried["retry_in"] >= 0
    assert all(s.data["us"] >= 0 for s in steps if s.data["step"] == "ride")
    text = timeline(steps)
    assert "published by web-7" in text and "crm/signup on crm_default: retried" in text
    assert 0 < r.ttl(b.keys.trace(bus_id)) <= 600


def test_retries_and_failures_are_traced_even_when_not_sampled(redis_url: str, r: redis.Redis) -> None:
    b = Bus(settings=BusSettings(redis_url=redis_url, observe=ObserveSettings(trace_sample=0.0)))
    b.dispatch("app").add("ok", lambda a: None)
    b.dispatch("app").add("bad", lambda a: 1 / 0, retry=Retry(max_retries=0))
    b.subscribe_all()
    fine, broken = b.publish("ok"), b.publish("bad")
    drain(b, ["bus_incoming", "app_default"])
    assert read_trace(r, b.keys, fine) == []
    [step] = read_trace(r, b.keys, broken)
    assert (step.data["outcome"], step.data["error"]) == ("failed", "ZeroDivisionError: division by zero")


def test_sampling_traces_an_event_everywhere_or_nowhere() -> None:
    half = ObserveSettings(trace_sample=0.5)
    ids = [f"1-{n}" for n in range(2000)]
    chosen = [i for i in ids if traced(half, i)]
    assert 800 < len(chosen) < 1200
    assert chosen == [i for i in ids if traced(half, i)]  # the same answer every time
    assert not traced(ObserveSettings(tracing=False), "1-1")


def test_tracing_and_metrics_can_be_turned_off(redis_url: str, r: redis.Redis) -> None:
    b = Bus(settings=BusSettings(redis_url=redis_url, observe=ObserveSettings(tracing=False, metrics=False)))
    b.dispatch("app").add("x", lambda a: None)
    b.subscribe_all()
    b.publish("x")
    drain(b, ["bus_incoming", "app_default"])
    assert r.keys("resque:bus:trace:*") == [] and r.keys("resque:bus:metrics:*") == []


@pytest.mark.parametrize("interval", [60.0, 0.2])
def test_workers_hold_traces_and_metrics_until_the_interval_is_up_or_they_stop(
    redis_url: str, r: redis.Redis, interval: float
) -> None:
    observe = ObserveSettings(trace_sample=1.0, flush_interval=interval)
    b = Bus(settings=BusSettings(redis_url=redis_url, observe=observe))
    b.dispatch("app").add("x", lambda a: None)
    b.subscribe_all()
    worker = b.worker(["bus_incoming", "app_default"], install_signals=False, settings=FAST)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    bus_id = b.publish("x")
    wait_for(lambda: int(r.get(b.keys.stat_processed) or 0) == 2)  # driven and ridden, acked
    if interval > 1:
        waits = int(r.info("commandstats").get("cmdstat_blmove", {}).get("calls", 0))
        wait_for(  # an idle turn of the worker's loop ends in one blocking BLMOVE
            lambda: int(r.info("commandstats")["cmdstat_blmove"]["calls"]) >= waits + 3,
            message="three more turns of the worker's loop",
        )
        assert read_trace(r, b.keys, bus_id) == [] and r.keys("resque:bus:metrics:*") == []
    else:
        wait_for(lambda: len(read_trace(r, b.keys, bus_id)) == 3)
    worker.request_stop()
    thread.join(10)
    assert [s.data["step"] for s in read_trace(r, b.keys, bus_id)] == ["published", "driven", "ride"]
    counts = event_counts(r, b.keys, now=time.time(), minutes=5)
    assert {t: sum(c) for t, c in counts.items()} == {"x": 1}


def test_metrics_count_events_and_latency(redis_url: str, r: redis.Redis) -> None:
    settings = BusSettings(redis_url=redis_url, observe=ObserveSettings(precise_publish_time=True))
    b = Bus(settings=settings)
    b.dispatch("shop").add("order_placed", lambda a: None)
    b.dispatch("audit").add("all", lambda a: None, matcher={"bus_event_type": "(?-mix:.)"})
    b.subscribe_all()
    b.publish_many([("order_placed", {"n": n}) for n in range(7)] + [("user_seen", {})] * 3)
    drain(b, ["bus_incoming", *b.app_queues()])
    counts = event_counts(r, b.keys, now=time.time(), minutes=5)
    assert {t: sum(c) for t, c in counts.items()} == {"order_placed": 7, "user_seen": 3}
    stats = {(s.app, s.sub): s for s in latency(r, b.keys, now=time.time(), minutes=5)}
    assert stats[("shop", "order_placed")].count == 7 and stats[("audit", "all")].count == 10
    assert 0 < stats[("shop", "order_placed")].p50 <= 10_000  # milliseconds, from bus_published_at_ms
    running = totals(r, b.keys)
    assert running.events["order_placed"] == 7
    assert running.latency[("shop", "order_placed")].total() == 7
    assert running.latency[("audit", "all")].total() == 10
    assert 0 < running.latency_sum_ms[("shop", "order_placed")] <= 7 * 10_000


def test_steps_in_the_same_millisecond_read_in_causal_order(redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url)
    bus_id, at = "1795841391-0000-4000-8000-000000000001", 1795841391_000
    ride = ride_entry(
        {"bus_id": bus_id}, queue="q", outcome="succeeded", attempt=0, at_ms=at, duration_ms=0.1, worker="w"
    )
    driven = driven_entry({"bus_published_at": at // 1000}, [], at_ms=at, worker="w")
    r.hset(b.keys.trace(bus_id), bus_id, ride + b"\n" + driven + b"\n")  # written in the other order
    assert [s.data["step"] for s in read_trace(r, b.keys, bus_id)] == ["published", "driven", "ride"]
    b.close()


def test_trace_says_why_an_event_has_no_or_a_partial_trace(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    b, unsampled, sampled = failed_orders_in_and_out_of_the_sample(redis_url)
    run = CliRun(main, capsys, "--redis-url", redis_url)
    code, out, _ = run("trace", unsampled)
    assert code == 0 and "outside the trace sample" in out.splitlines()[0] and "failed" in out
    code, out, _ = run("trace", sampled)
    assert code == 0 and "outside the trace sample" not in out and "driven by" in out
    code, _, err = run("trace", "1-nope")
    expected = "outside the trace sample" if not traced(b.settings.observe, "1-nope") else "trace expired"
    assert code == 2 and expected in err


def test_trace_and_stats_commands(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    b = Bus(settings=BusSettings(redis_url=redis_url, observe=ObserveSettings(trace_sample=1.0)))
    b.dispatch("shop").add("order_placed", lambda a: None)
    b.subscribe_all()
    bus_id = b.publish("order_placed", {"n": 1})
    drain(b, ["bus_incoming", "shop_default"])
    run = CliRun(main, capsys, "--redis-url", redis_url)
    code, out, _ = run("trace", bus_id)
    assert code == 0 and "driven by" in out and "shop/order_placed on shop_default: succeeded" in out
    assert [s["step"] for s in run.json("trace", bus_id)] == ["published", "driven", "ride"]
    code, _, err = run("trace", "1-nope")
    assert code == 2 and "no trace for 1-nope" in err
    data = run.json("stats", "--since", "5m")
    assert data["events"][0]["type"] == "order_placed" and data["events"][0]["count"] == 1
    assert data["apps"] == [{"app": "shop", "processed": 1, "failed": 0, "per_min": 0.2}]
    assert data["latency"][0]["sub"] == "order_placed"
    code, out, _ = run("stats")
    assert "publish-to-handler latency" in out and "order_placed" in out
    assert json.loads(json.dumps(data))  # plain JSON
