"""Driving and riding in one process: several apps and queues, retries, bad jobs, middleware."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from bus import PRESENT, Bus, InvalidSubscription, Retry, Ride, on
from tests.bus.helpers import FAST, drain, queue_jobs
from tests.support.polling import wait_for


def test_publish_drive_ride_across_apps_and_queues(bus: Bus, r: redis.Redis) -> None:
    calls: Counter[str] = Counter()

    def record(name: str) -> Callable[[dict[str, Any]], None]:
        return lambda attributes: calls.update([f"{name}:{attributes['n']}"])

    profile, mailer, audit = (
        bus.dispatch("profile"),
        bus.dispatch("mailer"),
        bus.dispatch("audit"),
    )
    profile.add("rating_created", record("profile"))
    profile.add("user_paid", record("paid"), queue="critical")
    mailer.add("welcome", record("mailer"), matcher={"bus_event_type": "user_created", "email": PRESENT})
    audit.add("everything", record("audit"), matcher={"bus_event_type": "(?-mix:.)"})
    bus.subscribe_all()

    for n in range(20):
        bus.publish("rating_created", {"n": n})
        bus.publish("user_paid", {"n": n})
        bus.publish("user_created", {"n": n, "email": "a@b.c" if n % 2 else ""})
    processed = drain(bus, ["bus_incoming", *bus.app_queues()])

    assert all(calls[f"profile:{n}"] == 1 and calls[f"paid:{n}"] == 1 for n in range(20))
    assert sum(1 for k in calls if k.startswith("mailer:")) == 10
    assert sum(calls[k] for k in calls if k.startswith("audit:")) == 60
    assert processed == 60 + 20 + 20 + 10 + 60
    assert r.get("resque:stat:processed") == str(processed).encode()
    assert all(r.llen(f"resque:queue:{q}") == 0 for q in ["bus_incoming", *bus.app_queues()])
    assert r.keys("resque:inflight:*") == []


def test_retries_with_backoff_then_success(bus: Bus, r: redis.Redis) -> None:
    attempts: list[int] = []

    def flaky(attributes: dict[str, Any]) -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise ConnectionError("upstream down")

    seen_attempts: list[int] = []

    def watch(ride: Ride, call_next: Callable[[], Any]) -> Any:
        seen_attempts.append(ride.attempt)
        return call_next()

    bus.use(watch)
    bus.dispatch("app").add("sync", flaky, retry=Retry(max_retries=5, delays=(0.05, 0.1)))
    bus.subscribe_all()
    bus.publish("sync")
    drain(bus, ["bus_incoming", "app_default"])
    assert len(attempts) == 3
    assert seen_attempts == [0, 1, 2]
    assert r.llen("resque:failed") == 0
    assert r.zcard("resque:bus:retry:{resque:queue:app_default}") == 0


def test_exhausted_retries_land_in_failed_once(bus: Bus, r: redis.Redis) -> None:
    calls: list[int] = []

    def always_fails(attributes: dict[str, Any]) -> None:
        calls.append(1)
        raise KeyError("missing")

    bus.dispatch("app").add("sync", always_fails, retry=Retry(max_retries=2, base_delay=0.01, jitter=False))
    bus.subscribe_all()
    bus.publish("sync", {"id": 3})
    drain(bus, ["bus_incoming", "app_default"])
    assert len(calls) == 3
    [entry] = [json.loads(raw) for raw in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "KeyError"
    assert "bus_attempt" not in entry["payload"]  # Resque-clean payload


def test_retry_delays_grow_exponentially() -> None:
    policy = Retry(max_retries=5, base_delay=1.0, max_delay=10.0, jitter=False)
    assert [policy.delay(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 8.0, 10.0]
    jittered = Retry(base_delay=4.0)
    assert all(2.0 <= jittered.delay(1) <= 4.0 for _ in range(50))
    assert Retry(delays=(5, 30)).delay(7) == 30


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"not json at all", "not valid JSON"),
        (b"\xff\xfe", "not valid UTF-8"),
        (b'["a list"]', "not a JSON object"),
        (b'{"class":"QueueBus::Worker"}', "no args"),
        (b'{"class":"QueueBus::Worker","args":["{bad"]}', "argument is not valid JSON"),
        (b'{"class":"SomeRubyJob","args":[1]}', "argument is not a JSON object"),
        (b'{"class":"SomeRubyJob","args":["{}"]}', "unknown job class 'SomeRubyJob'"),
        (b'{"class":"QueueBus::Worker","args":["{\\"bus_rider_sub_key\\":\\"x\\"}"]}', "no bus_rider_app_key"),
        (
            b'{"class":"QueueBus::Worker","args":["{\\"bus_rider_app_key\\":\\"nope\\",\\"bus_rider_sub_key\\":\\"x\\"}"]}',
            "app 'nope' is not handled by this process",
        ),
        (
            b'{"class":"QueueBus::Worker","args":["{\\"bus_rider_app_key\\":\\"app\\",\\"bus_rider_sub_key\\":\\"gone\\"}"]}',
            "app 'app' has no subscription 'gone'",
        ),
    ],
)
def test_bad_jobs_go_to_failed_with_the_reason_and_the_worker_goes_on(
    bus: Bus, r: redis.Redis, raw: bytes, reason: str
) -> None:
    seen: list[int] = []
    bus.dispatch("app").add("ok", lambda a: seen.append(a["n"]))
    bus.subscribe_all()
    r.rpush("resque:queue:app_default", raw)
    bus.publish("ok", {"n": 1})
    drain(bus, ["app_default", "bus_incoming"])
    assert seen == [1]
    [entry] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert reason in entry["error"]
    assert entry["queue"] == "app_default"


def test_an_incoming_event_without_attributes_fails(bus: Bus, r: redis.Redis) -> None:
    r.rpush("resque:queue:bus_incoming", b'{"class":"QueueBus::Worker","args":["{}"]}')
    drain(bus, ["bus_incoming"])
    [entry] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["queue"] == "bus_incoming"


def test_middleware_wraps_in_order_and_can_fail_a_job(bus: Bus, r: redis.Redis) -> None:
    trail: list[str] = []

    def outer(ride: Ride, call_next: Callable[[], Any]) -> Any:
        trail.append(f"outer>{ride.sub_key}")
        result = call_next()
        trail.append("outer<")
        return result

    def guard(ride: Ride, call_next: Callable[[], Any]) -> Any:
        if ride.attributes.get("blocked"):
            raise PermissionError("blocked by middleware")
        return call_next()

    bus.use(outer)
    bus.use(guard)
    bus.dispatch("app").add("x", lambda a: trail.append("handler"), retry=Retry(max_retries=0))
    bus.subscribe_all()
    bus.publish("x")
    bus.publish("x", {"blocked": True})
    drain(bus, ["bus_incoming", "app_default"])
    assert trail == ["outer>x", "handler", "outer<", "outer>x"]
    [entry] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "PermissionError"


def test_class_based_subscribers(bus: Bus, r: redis.Redis) -> None:
    seen: list[tuple[str, Any]] = []
    billing = bus.dispatch("billing")

    @billing.subscriber
    class Invoices:
        @on("user_paid")
        def record_payment(self, attributes: dict[str, Any]) -> None:
            seen.append(("paid", attributes["amount"]))

        @on(queue="critical")
        def refund_issued(self, attributes: dict[str, Any]) -> None:
            seen.append(("refund", attributes["amount"]))

    bus.subscribe_all()
    stored = {s.key: s for s in bus.registry.load()}
    assert set(stored) == {"Invoices.record_payment", "Invoices.refund_issued"}
    assert stored["Invoices.refund_issued"].class_name == "Invoices"
    assert stored["Invoices.refund_issued"].queue_name == "billing_critical"
    bus.publish("user_paid", {"amount": 5})
    bus.publish("refund_issued", {"amount": 2})
    drain(bus, ["bus_incoming", *bus.app_queues()])
    assert sorted(seen) == [("paid", 5), ("refund", 2)]
    assert sorted(billing.queues) == ["billing_critical", "billing_default"]


def test_async_handlers_are_awaited(bus: Bus) -> None:
    seen: list[int] = []

    async def handler(attributes: dict[str, Any]) -> None:
        seen.append(attributes["n"])

    bus.dispatch("app").add("x", handler)
    bus.subscribe_all()
    bus.publish("x", {"n": 4})
    drain(bus, ["bus_incoming", "app_default"])
    assert seen == [4]


def test_handlers_see_the_ridden_events_locale_when_they_publish(bus: Bus, r: redis.Redis) -> None:
    def chain(attributes: dict[str, Any]) -> None:
        bus.publish("second")

    bus.dispatch("app").add("first", chain)
    bus.subscribe_all()
    with bus.in_context(locale="de", timezone="Europe/Berlin"):
        bus.publish("first")
    drain(bus, ["bus_incoming"])
    drain(bus, ["app_default"])  # the handler publishes "second" to bus_incoming
    bus.publish("third")  # outside any ride: no locale
    events = {e["bus_event_type"]: e for e in queue_jobs(r, "bus_incoming")}
    assert (events["second"]["bus_locale"], events["second"]["bus_timezone"]) == ("de", "Europe/Berlin")
    assert "bus_locale" not in events["third"]


def test_concurrency_runs_jobs_in_parallel_threads(bus: Bus) -> None:
    lock = threading.Lock()
    running = 0
    peak = 0
    done: list[int] = []

    def slow(attributes: dict[str, Any]) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1
            done.append(attributes["n"])

    bus.dispatch("app").add("x", slow)
    bus.subscribe_all()
    bus.publish_many([("x", {"n": n}) for n in range(24)])
    drain(bus, ["bus_incoming", "app_default"], concurrency=4)
    assert sorted(done) == list(range(24))
    assert peak >= 2


def test_unsubscribe_takes_effect_for_a_running_driver(bus: Bus, r: redis.Redis) -> None:
    bus.dispatch("app").add("x", lambda a: None)
    bus.subscribe_all()
    bus.publish("x")
    drain(bus, ["bus_incoming"])
    assert r.llen("resque:queue:app_default") == 1
    assert bus.unsubscribe("app")
    bus.publish("x")
    drain(bus, ["bus_incoming"])
    assert r.llen("resque:queue:app_default") == 1
    assert r.smembers("resque:bus_apps") == set()


@pytest.mark.parametrize(
    ("declare", "message"),
    [
        (lambda b: b.dispatch("___"), "invalid application name"),
        (lambda b: b.dispatch("app").add("", print), "non-empty"),
        (lambda b: b.dispatch("app").add("x", "not callable"), "not callable"),
        (lambda b: b.dispatch("app").add("x", print, queue="!!"), "invalid queue name"),
        (lambda b: b.dispatch("app").add("x", print, retry=3), "bus.Retry"),
        (lambda b: (b.dispatch("app").add("x", print), b.dispatch("app").add("x", print)), "already has"),
        (lambda b: Retry(max_retries=-1), "negative"),
    ],
)
def test_bad_declarations_raise_at_once(declare: Callable[[Bus], Any], message: str) -> None:
    with pytest.raises(InvalidSubscription, match=message):
        declare(Bus("redis://127.0.0.1:1/0"))


def test_app_keys_and_queues_normalise_like_ruby() -> None:
    b = Bus("redis://127.0.0.1:1/0")
    d = b.dispatch("My App-2")
    sub = d.add("Rating.Created", print, queue="High Priority")
    assert (d.app_key, sub.queue_name, sub.key) == ("my_app_2", "my_app_2_high_priority", "Rating.Created")
    assert b.dispatch("my app 2") is d


def test_a_worker_needs_queues(bus: Bus) -> None:
    from bus import ConfigurationError

    with pytest.raises(ConfigurationError, match="at least one queue"):
        bus.worker([], settings=FAST)


def test_per_queue_throughput_is_counted_per_minute(bus: Bus, r: redis.Redis) -> None:
    from bus.stores.overview import throughput

    bus.dispatch("app").add("ok", lambda a: None)
    bus.dispatch("app").add("bad", lambda a: 1 / 0, retry=Retry(max_retries=0))
    bus.subscribe_all()
    bus.publish_many([("ok", {})] * 5 + [("bad", {})] * 2)
    drain(bus, ["bus_incoming", "app_default"], clock=lambda: 6000.0 * 60 + 5)
    counts = throughput(r, bus.keys, ["bus_incoming", "app_default"], now=6000 * 60 + 30, minutes=3)
    assert [(c.minute, c.processed, c.failed) for c in counts["app_default"]] == [
        (5998, 0, 0),
        (5999, 0, 0),
        (6000, 7, 2),
    ]
    assert counts["bus_incoming"][-1].processed == 7
    assert 0 < r.ttl("resque:bus:throughput:processed:app_default:100") <= 7200


def test_handlers_can_reject_or_ask_for_a_later_retry(bus: Bus, r: redis.Redis) -> None:
    from bus import Reject, RetryLater

    calls: list[str] = []

    def rejecting(attributes: dict[str, Any]) -> None:
        calls.append("reject")
        raise Reject("this event can never be handled")

    def later(attributes: dict[str, Any]) -> None:
        calls.append("later")
        if calls.count("later") == 1:
            raise RetryLater("provider says wait", delay=0.2)

    bus.dispatch("app").add("a", rejecting, retry=Retry(max_retries=5, base_delay=0))
    bus.dispatch("app").add("b", later, retry=Retry(max_retries=5, base_delay=0))
    bus.subscribe_all()
    bus.publish("a")
    bus.publish("b")
    started = time.monotonic()
    drain(bus, ["bus_incoming", "app_default"])
    assert calls.count("reject") == 1  # never retried
    assert calls.count("later") == 2
    assert time.monotonic() - started >= 0.2  # the handler's own wait beat the zero backoff
    [entry] = [json.loads(x) for x in r.lrange("resque:failed", 0, -1)]
    assert entry["exception"] == "bus.errors.Reject"


def test_acks_by_position_fall_back_when_another_worker_took_the_jobs_back(bus: Bus, r: redis.Redis) -> None:
    from bus.runtime.recovery import requeue_inflight

    seen: list[int] = []
    worker = bus.worker(["app_default"], burst=True, install_signals=False, settings=FAST)

    def handler(attributes: dict[str, Any]) -> None:
        seen.append(attributes["n"])
        if len(seen) == 1:  # mid-batch, another worker wrongly declares this one dead
            assert requeue_inflight(r, bus.keys, worker.id, ["app_default"], crashed=False) == 5

    bus.dispatch("app").add("x", handler)
    bus.subscribe_all()
    bus.publish_many([("x", {"n": n}) for n in range(5)])
    drain(bus, ["bus_incoming"])
    worker.run()
    assert sorted(seen) == sorted([*range(5), *range(5)])  # at least once: the batch ran again, nothing lost
    assert r.llen("resque:queue:app_default") == 0
    assert r.keys("resque:inflight:*") == []


def test_a_batch_is_acknowledged_with_one_command_per_queue(bus: Bus, r: redis.Redis) -> None:
    bus.dispatch("app").add("x", lambda a: None)
    bus.subscribe_all()
    bus.publish_many([("x", {"n": n}) for n in range(40)])
    drain(bus, ["bus_incoming"])
    r.config_resetstat()
    drain(bus, ["app_default"])
    stats = r.info("commandstats")
    assert stats.get("cmdstat_lrem", {}).get("calls", 0) == 0  # no job was carried back to be removed
    assert stats["cmdstat_ltrim"]["calls"] >= 1


def test_a_draining_worker_keeps_its_heartbeat_so_peers_do_not_declare_it_dead(bus: Bus, r: redis.Redis) -> None:
    """A stop waits for running jobs (up to ``shutdown_grace``); a silent heartbeat meanwhile
    would let another worker requeue those jobs and run them twice."""
    started, release = threading.Event(), threading.Event()

    def slow(attributes: dict[str, Any]) -> None:
        started.set()
        release.wait(10)

    bus.dispatch("app").add("x", slow)
    bus.subscribe_all()
    now = [time.time()]
    worker = bus.worker(["bus_incoming", "app_default"], concurrency=2, install_signals=False, settings=FAST)
    worker.clock = lambda: now[0]
    worker.presence.clock = worker.clock
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    bus.publish("x")
    assert started.wait(10)
    worker.request_stop()
    now[0] += 100  # the heartbeat records this worker's clock
    expected = datetime.fromtimestamp(int(now[0]), UTC).isoformat().encode()
    try:
        wait_for(lambda: r.hget(bus.keys.workers_heartbeat, worker.id) == expected, timeout=5)
    finally:
        release.set()
        thread.join(10)
    assert not thread.is_alive() and r.hget(bus.keys.workers_heartbeat, worker.id) is None


def test_identical_jobs_running_at_once_are_each_waited_for(bus: Bus, r: redis.Redis) -> None:
    """Two jobs with the same bytes (a scheduler on two hosts enqueueing the same heartbeat, say)
    in flight at once: the second finishing first must not make the worker think it holds
    nothing, or a burst worker stops and puts the first back in its queue mid-run."""
    calls: list[float] = []

    def handler(attributes: dict[str, Any]) -> None:
        calls.append(time.monotonic())
        if len(calls) == 1:
            time.sleep(0.5)  # still running when its twin is done

    bus.dispatch("app").add("tick", handler)
    bus.subscribe_all()
    bus.publish("tick", {"n": 1})
    drain(bus, ["bus_incoming"])  # driven: one rider job in app_default
    [job] = r.lrange("resque:queue:app_default", 0, -1)
    r.rpush("resque:queue:app_default", job)  # its identical twin
    worker = bus.worker(["app_default"], burst=True, install_signals=False, settings=FAST, concurrency=3)
    assert worker.run() == 0
    assert len(calls) == 2 and worker.processed == 2
    assert r.llen("resque:queue:app_default") == 0
    assert [k for k in r.scan_iter("resque:inflight:*") if r.llen(k)] == []
