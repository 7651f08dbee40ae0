"""Interoperability with the real node-queue-bus 0.2.1 (npm) on one Redis.

Node's side runs node-queue-bus's own API (``tests/interop/node/*.js``) in real Node
processes; ours runs the library. Each direction is tested both ways: Node publishes and we
drive and ride, we publish and Node drives and rides, each side honours the other's
subscriptions, and delayed events cross over through either scheduler. How node's driver
matches, filter by filter, is in ``test_node_matcher.py``.

Where node-queue-bus departs from the shared wire-format document (Ruby's behaviour),
the test asserts what Node really does, then marks itself xfail with the reason and the
file:line in ``node_modules`` that causes it. If a deviation goes away, the assertion about
it fails, and the test must be updated.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from bus import PRESENT, Bus, on
from bus.cli import main
from tests.bus.helpers import drain, queue_jobs
from tests.interop.nodebus import NodeBus, deviation, failures, ridden, unavailable
from tests.support.clirun import CliRun
from tests.support.polling import wait_for

_why_not = unavailable()
if _why_not is not None:
    pytest.skip(_why_not, allow_module_level=True)

pytestmark = pytest.mark.timeout(120)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
RIDDEN = "interop:node:ridden"  # where the Node riders record the jobs they ran


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- publish: Node -> us ---------------------------------------------------------


def test_node_publishes_we_drive_and_ride(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    seen: list[dict[str, Any]] = []
    bus.dispatch("py_orders").add("order_placed", seen.append)
    bus.subscribe_all()

    node.publish("order_placed", {"order_id": 7, "total": 12.5, "paid": True, "note": "café ✓", "lines": [{"q": 2}]})

    [raw] = r.lrange("resque:queue:bus_incoming", 0, -1)
    envelope = json.loads(raw)
    assert list(envelope) == ["class", "queue", "args"]  # node-resque adds "queue"; readers ignore it
    assert (envelope["class"], envelope["queue"]) == ("QueueBus::Worker", "bus_incoming")
    assert isinstance(envelope["args"][0], str)  # the bus hash as a JSON string, as Ruby writes it
    assert "café ✓".encode() in raw  # raw UTF-8
    assert r.smembers("resque:queues") == {b"bus_incoming"}

    drain(bus, ["bus_incoming", "py_orders_default"])

    [event] = seen
    assert {k: event[k] for k in ("order_id", "total", "paid", "note", "lines")} == {
        "order_id": 7,
        "total": 12.5,
        "paid": True,
        "note": "café ✓",
        "lines": [{"q": 2}],
    }
    assert event["bus_event_type"] == "order_placed"
    assert isinstance(event["bus_published_at"], int)
    seconds, _, uuid = event["bus_id"].partition("-")
    assert re.fullmatch(UUID, uuid) and int(seconds) - event["bus_published_at"] in (0, 1)
    assert event["bus_app_hostname"] == socket.gethostname()
    # node-queue-bus stamps the process's zone ($TZ) and $LANG minus its encoding (publish.js:66-71),
    # and never bus_context (optional in the wire format).
    assert (event["bus_timezone"], event["bus_locale"]) == ("UTC", "en_US")
    assert "bus_context" not in event
    assert (event["bus_rider_app_key"], event["bus_rider_sub_key"]) == ("py_orders", "order_placed")
    assert event["bus_class_proxy"] == "::QueueBus::Rider"
    assert isinstance(event["bus_executed_at"], int)
    assert failures(r) == []


# --- publish: us -> Node ---------------------------------------------------------


def test_we_publish_node_drives_and_rides(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    queue = node.subscribe("billing", "default", "chargeCard", {"bus_event_type": "invoice_paid"})
    assert queue == "billing_default"
    rider = node.rider(queue, drive=True, jobs=("chargeCard",), record=RIDDEN)

    with bus.in_context("checkout", locale="fr", timezone="Europe/Paris"):
        bus_id = bus.publish("invoice_paid", {"invoice": 12, "amount": "49.90", "customer": {"id": 42}})

    entry = ridden(r, RIDDEN, rider)
    assert (entry["job"], entry["queue"]) == ("chargeCard", "billing_default")
    attributes = entry["attributes"]
    assert {k: attributes[k] for k in ("invoice", "amount", "customer")} == {
        "invoice": 12,
        "amount": "49.90",
        "customer": {"id": 42},
    }
    assert attributes["bus_id"] == bus_id
    assert (attributes["bus_context"], attributes["bus_locale"], attributes["bus_timezone"]) == (
        "checkout",
        "fr",
        "Europe/Paris",
    )
    assert attributes["bus_rider_queue"] == "billing_default"
    assert attributes["bus_rider_app_key"] == "billing"
    assert attributes["bus_rider_sub_key"] == "billing_default_chargeCard"
    assert attributes["bus_rider_class_name"] == attributes["bus_class_proxy"] == "chargeCard"
    assert isinstance(attributes["bus_driven_at"], int)
    wait_for(lambda: r.llen("resque:queue:bus_incoming") == 0)
    assert failures(r) == []


# --- subscriptions: Node's read by us --------------------------------------------


def test_node_subscription_is_listed_and_driven_by_us(
    node: NodeBus, bus: Bus, r: redis.Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    matcher = {"bus_event_type": {"regexp": "^payment_"}, "amount": "bus_special_value_present"}
    queue = node.subscribe("Payments", "high", "settle", matcher)
    assert queue == "payments_high"

    apps = CliRun(main, capsys, "--redis-url", redis_url).json("apps")
    assert apps == [
        {
            "app": "payments",
            "key": "payments_high_settle",
            "queue": "payments_high",
            "class": "settle",
            "matcher": {"bus_event_type": "(?-mix:^payment_)", "amount": "bus_special_value_present"},
        }
    ]
    assert [s.key for s in bus.who_gets("payment_made", {"amount": 10})] == ["payments_high_settle"]
    assert bus.who_gets("payment_made", {"amount": " "}) == []

    bus_id = bus.publish("payment_made", {"amount": 10, "currency": "EUR"})
    bus.publish("payment_made", {"currency": "EUR"})  # no amount: not for them
    drain(bus, ["bus_incoming"])
    [driven] = queue_jobs(r, "payments_high")
    assert (driven["bus_id"], driven["bus_class_proxy"]) == (bus_id, "settle")

    rider = node.rider("payments_high", jobs=("settle",), record=RIDDEN)
    entry = ridden(r, RIDDEN, rider)
    assert (entry["job"], entry["queue"]) == ("settle", "payments_high")
    attributes = entry["attributes"]
    assert (attributes["bus_id"], attributes["amount"], attributes["currency"]) == (bus_id, 10, "EUR")
    assert attributes["bus_rider_sub_key"] == "payments_high_settle"
    wait_for(lambda: r.llen("resque:queue:payments_high") == 0)
    assert failures(r) == []


# --- subscriptions: ours read by Node --------------------------------------------


def test_node_drives_our_subscriptions_and_we_ride(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    app = bus.dispatch("py_profile")
    app.add("user_created", lambda a: seen.append(("user_created", a)))
    app.add(
        "audit", lambda a: seen.append(("audit", a)), matcher={"bus_event_type": re.compile("^audit_")}, queue="high"
    )

    @app.subscriber
    class Ratings:
        @on("rating_created")
        def recalc(self, attributes: dict[str, Any]) -> None:
            seen.append(("Ratings.recalc", attributes))

    bus.subscribe_all()
    rider = node.rider(drive=True)  # node-queue-bus's driver alone: works bus_incoming only

    node.publish("user_created", {"user_id": 42})
    audit_id = bus.publish("audit_login", {"user_id": 42})
    bus.publish("rating_created", {"value": 5})
    wait_for(
        lambda: (
            r.llen("resque:queue:py_profile_default") == 2
            and r.llen("resque:queue:py_profile_high") == 1
            and r.llen("resque:queue:bus_incoming") == 0
        )
    )
    rider.stop()

    raw_jobs = [json.loads(raw) for raw in r.lrange("resque:queue:py_profile_default", 0, -1)]
    assert [(job["class"], job["queue"]) for job in raw_jobs] == [("QueueBus::Worker", "py_profile_default")] * 2
    assert sorted(json.loads(job["args"][0])["bus_class_proxy"] for job in raw_jobs) == ["::QueueBus::Rider", "Ratings"]
    assert {b"py_profile_default", b"py_profile_high"} <= r.smembers("resque:queues")

    drain(bus, ["py_profile_default", "py_profile_high"])

    got = dict(seen)
    assert set(got) == {"user_created", "audit", "Ratings.recalc"}
    assert got["audit"]["bus_id"] == audit_id
    assert got["audit"]["bus_rider_queue"] == "py_profile_high"
    assert got["user_created"]["bus_locale"] == "en_US"  # published by Node
    assert got["Ratings.recalc"]["bus_rider_class_name"] == "Ratings"
    assert all(a["bus_rider_app_key"] == "py_profile" and isinstance(a["bus_driven_at"], int) for a in got.values())
    assert failures(r) == []


# --- delayed publish, through either scheduler ------------------------------------


def test_node_publish_in_is_delivered_by_our_scheduler(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    seen: list[dict[str, Any]] = []
    bus.dispatch("py_reminders").add("trial_ending", seen.append)
    bus.subscribe_all()

    node.publish("trial_ending", {"user_id": 42}, "--in", "60000")

    [stamp] = r.zrange("resque:delayed_queue_schedule", 0, -1)
    ts = int(text(stamp))
    [job] = [text(raw) for raw in r.lrange(f"resque:delayed:{ts}", 0, -1)]
    assert r.smembers(f"resque:timestamps:{job}") == {f"delayed:{ts}".encode()}
    delayed = json.loads(json.loads(job)["args"][0])
    assert delayed["bus_class_proxy"] == "QueueBus::Publisher"
    assert "bus_published_at" not in delayed
    # node-resque files the job under round(ms / 1000) (queue.js:79) but node-queue-bus stamps
    # floor(ms / 1000) (publish.js:40): they may differ by a second; resque-scheduler uses one value.
    assert ts - delayed["bus_delayed_until"] in (0, 1)

    assert bus.scheduler(clock=lambda: time.time() + 120).move_due() == 1
    drain(bus, ["bus_incoming", "py_reminders_default"])

    [event] = seen
    assert event["bus_id"] == delayed["bus_id"]
    assert event["bus_delayed_until"] == delayed["bus_delayed_until"]
    assert isinstance(event["bus_published_at"], int)
    assert event["user_id"] == 42
    assert r.zcard("resque:delayed_queue_schedule") == 0
    assert r.keys("resque:timestamps:*") == []
    assert failures(r) == []


def test_our_publish_at_is_delivered_by_node_scheduler(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    queue = node.subscribe("mailer", "default", "remind", {"bus_event_type": "trial_ending"})
    rider = node.rider(queue, drive=True, jobs=("remind",), record=RIDDEN)
    node.start("scheduler.js")

    bus_id = bus.publish_in(1, "trial_ending", {"user_id": 42})
    assert r.zcard("resque:delayed_queue_schedule") == 1

    entry = ridden(r, RIDDEN, rider, timeout=20)
    attributes = entry["attributes"]
    assert (entry["job"], attributes["bus_id"], attributes["user_id"]) == ("remind", bus_id, 42)
    # node-queue-bus's Publisher re-publishes it (driver.js:30-35): a fresh bus_published_at, the rest kept
    # node-resque's scheduler rounds its clock (scheduler.js:183): it may deliver half a second early
    assert attributes["bus_published_at"] >= attributes["bus_delayed_until"] - 1
    wait_for(lambda: r.zcard("resque:delayed_queue_schedule") == 0)
    assert r.keys("resque:timestamps:*") == []
    assert failures(r) == []


# --- failures --------------------------------------------------------------------


def test_node_driver_failures_are_listed_and_retried_by_us(
    node: NodeBus, bus: Bus, r: redis.Redis, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[dict[str, Any]] = []
    bus.dispatch("py_profile").add("homepage", seen.append, matcher={"user_id": PRESENT, "page": "homepage"})
    bus.subscribe_all()
    rider = node.rider(drive=True)
    bus.publish("page_viewed", {"user_id": 42, "page": "homepage"})
    wait_for(lambda: r.llen("resque:failed") == 1)
    rider.stop()

    # node-queue-bus's driver calls .trim() on the number 42 (driver.js:229) and the event fails.
    # The entry is readable by us, but not in Resque's format: failed_at is JS Date#toString
    # (node-resque worker.js:451) and worker lacks the queues.
    cli = CliRun(main, capsys, "--redis-url", redis_url)
    [listed] = cli.json("failed", "list")["failures"]
    assert (listed["exception"], listed["error"]) == ("TypeError", "args[key].trim is not a function")
    assert listed["queue"] == "bus_incoming"
    assert not re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d UTC", listed["failed_at"])

    code, _, err = cli("failed", "retry", "0")
    assert code == 0, err
    drain(bus, ["bus_incoming", "py_profile_default"])  # our driver follows Ruby: PRESENT is "not blank"
    [event] = seen
    assert event["user_id"] == 42
    assert r.llen("resque:failed") == 0


# --- other deviations ------------------------------------------------------------


def test_node_app_keys_keep_non_word_characters(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    queue = node.subscribe("Node-Mailer", "default", "send", {"bus_event_type": "user_created"})
    assert queue == "node-mailer_default"  # node lowercases and replaces spaces only (utils.js:20-25)
    assert r.smembers("resque:bus_apps") == {b"node-mailer"}

    bus.publish("user_created", {"user_id": 42})
    drain(bus, ["bus_incoming"])
    # Ruby's Subscription normalises queue_name (\W -> _) when it reads it, and so do we.
    assert r.llen("resque:queue:node_mailer_default") == 1
    assert r.llen("resque:queue:node-mailer_default") == 0
    deviation(
        "app keys and queues keep non-word characters other than spaces (utils.js:20-25, "
        "subscriptions.js:49-51); Ruby's and our drivers route to node_mailer_default, which node's rider "
        "does not work: name node apps with [a-z0-9_ ] only"
    )


def test_node_heartbeat_job_is_run_by_our_worker(node: NodeBus, bus: Bus, r: redis.Redis) -> None:
    """bus.publishHeartbeat() (publish.js:20-30) queues a QueueBus::Worker job with bus_class_proxy
    QueueBus::Heartbeat on bus_incoming, as Ruby's sidekiq-bus schedule does: we run it like Ruby."""
    node.run("publish.js", "--heartbeat")
    [job] = queue_jobs(r, "bus_incoming")
    assert job["bus_class_proxy"] == job["bus_event_type"] == "QueueBus::Heartbeat"

    seen: list[dict[str, object]] = []
    bus.dispatch("cron").add("minutes", seen.append, matcher={"bus_event_type": "heartbeat_minutes"})
    bus.subscribe_all()
    drain(bus, ["bus_incoming", "cron_default"])
    assert failures(r) == []
    assert len(seen) == 1 and {"epoch_minutes", "yday", "wday"} <= set(seen[0])
    assert r.get("resque:bus:heartbeat:timestamp") is not None


def test_node_scripts_refuse_a_namespace_with_its_colon(node: NodeBus) -> None:
    """node-resque joins namespace and key with ':' (connection.js key()); 'resque:' would give 'resque::queue:...'."""
    with pytest.raises(AssertionError, match="without the trailing ':'"):
        node.run("publish.js", "x", "{}", "--namespace", "resque:")


def test_installed_versions_are_the_pinned_ones() -> None:
    """The versions the lockfile pins are the ones installed: node-queue-bus 0.2.1 and what it pins."""
    modules = Path(__file__).parent / "node" / "node_modules"

    def version(package: str) -> str:
        return str(json.loads((modules / package / "package.json").read_text())["version"])

    assert version("node-queue-bus") == "0.2.1"
    assert version("node-resque") == "2.1.2"
    assert version("node-resque/node_modules/ioredis") == "2.5.0"
