"""Byte-level compatibility with Ruby resque-bus/queue-bus and node-queue-bus."""

from __future__ import annotations

import json
import re
from typing import Any

import redis

from bus import Bus, Retry
from bus.pipeline.envelope import decode_job
from tests.bus.helpers import FAST, drain, queue_jobs

NOW = 1795823508


def fixed_clock() -> float:
    return NOW + 0.7


def test_publish_writes_exactly_what_queue_bus_writes(redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url, hostname="web-1", clock=fixed_clock)
    bus_id = b.publish("rating_created", {"id": 7, "rabbit_id": 42, "value": 5})

    assert re.fullmatch(rf"{NOW}-[0-9a-f]{{8}}-[0-9a-f]{{4}}-4[0-9a-f]{{3}}-[89ab][0-9a-f]{{3}}-[0-9a-f]{{12}}", bus_id)
    assert r.smembers("resque:queues") == {b"bus_incoming"}
    expected = (
        '{"class":"QueueBus::Worker","args":["{\\"bus_published_at\\":1795823508,'
        '\\"bus_event_type\\":\\"rating_created\\",\\"bus_id\\":\\"' + bus_id + '\\",'
        '\\"bus_app_hostname\\":\\"web-1\\",\\"id\\":7,\\"rabbit_id\\":42,'
        '\\"value\\":5,\\"bus_class_proxy\\":\\"QueueBus::Driver\\"}"]}'
    ).encode()
    assert r.lrange("resque:queue:bus_incoming", 0, -1) == [expected]


def test_publish_keeps_utf8_raw_and_metadata_order(redis_url: str, r: redis.Redis) -> None:
    b = Bus(redis_url, hostname="web-1", clock=fixed_clock)
    with b.in_context("checkout", locale="fr", timezone="Europe/Paris"):
        b.publish("note", {"text": "café ✓"})
    raw = r.lindex("resque:queue:bus_incoming", 0)
    assert raw is not None
    assert "café ✓".encode() in raw  # raw UTF-8 like Ruby, not \u escapes
    event = json.loads(json.loads(raw)["args"][0])
    assert list(event) == [
        "bus_published_at",
        "bus_event_type",
        "bus_id",
        "bus_app_hostname",
        "bus_context",
        "bus_locale",
        "bus_timezone",
        "text",
        "bus_class_proxy",
    ]
    assert (event["bus_context"], event["bus_locale"], event["bus_timezone"]) == ("checkout", "fr", "Europe/Paris")


def test_subscriptions_are_stored_as_rake_queuebus_subscribe_writes_them(bus: Bus, r: redis.Redis) -> None:
    profile = bus.dispatch("Profile-App")
    profile.add("rating_created", lambda a: None)
    profile.add("user_actions", lambda a: None, matcher={"bus_event_type": re.compile("^user_")}, queue="critical")
    bus.subscribe_all()

    assert r.smembers("resque:bus_apps") == {b"profile_app"}
    assert r.hgetall("resque:bus_app:profile_app") == {
        b"rating_created": b'{"queue_name":"profile_app_default","key":"rating_created",'
        b'"class":"::QueueBus::Rider","matcher":{"bus_event_type":"rating_created"}}',
        b"user_actions": b'{"queue_name":"profile_app_critical","key":"user_actions",'
        b'"class":"::QueueBus::Rider","matcher":{"bus_event_type":"(?-mix:^user_)"}}',
    }


# What Ruby writes when a Rails app (I18n.locale :en, Time.zone UTC) publishes. Without a context
# queue-bus leaves bus_context out (lib/queue_bus/publishing.rb, v0.12.0 to v0.13.3:
# `bus_attr['bus_context'] = ::QueueBus.context unless ::QueueBus.context.nil?`), and so do we.
RUBY_INCOMING = (
    b'{"class":"QueueBus::Worker","args":["{\\"bus_published_at\\":1795820000,\\"bus_event_type\\":'
    b'\\"user_created\\",\\"bus_id\\":\\"1795820000-0f0e0d0c-0b0a-4908-8706-050403020100\\",'
    b'\\"bus_app_hostname\\":\\"rails-1\\",\\"bus_locale\\":\\"en\\",'
    b'\\"bus_timezone\\":\\"UTC\\",\\"user_id\\":42,\\"email\\":\\"ann@example.com\\",'
    b'\\"bus_class_proxy\\":\\"QueueBus::Driver\\"}"]}'
)


def test_driver_fans_out_a_ruby_published_event_byte_for_byte(bus: Bus, r: redis.Redis) -> None:
    bus.dispatch("mailer").add("user_created", lambda a: None)
    bus.subscribe_all()
    r.sadd("resque:queues", "bus_incoming")
    r.rpush("resque:queue:bus_incoming", RUBY_INCOMING)

    drain(bus, ["bus_incoming"], clock=fixed_clock)

    assert r.lrange("resque:queue:mailer_default", 0, -1) == [
        b'{"class":"QueueBus::Worker","args":["{\\"bus_driven_at\\":1795823508,'
        b'\\"bus_rider_queue\\":\\"mailer_default\\",\\"bus_rider_app_key\\":\\"mailer\\",'
        b'\\"bus_rider_sub_key\\":\\"user_created\\",\\"bus_rider_class_name\\":\\"::QueueBus::Rider\\",'
        b'\\"bus_published_at\\":1795820000,\\"bus_event_type\\":\\"user_created\\",'
        b'\\"bus_id\\":\\"1795820000-0f0e0d0c-0b0a-4908-8706-050403020100\\",'
        b'\\"bus_app_hostname\\":\\"rails-1\\",\\"bus_locale\\":\\"en\\",'
        b'\\"bus_timezone\\":\\"UTC\\",\\"user_id\\":42,\\"email\\":\\"ann@example.com\\",'
        b'\\"bus_class_proxy\\":\\"::QueueBus::Rider\\"}"]}'
    ]
    assert r.sismember("resque:queues", "mailer_default")
    assert r.llen("resque:queue:bus_incoming") == 0


def test_subscriptions_written_by_ruby_and_node_are_honoured(bus: Bus, r: redis.Redis) -> None:
    # Ruby's Subscriber mixin stores the class name and "Class.method" keys; node stores a job name.
    r.sadd("resque:bus_apps", "billing", "nodeapp")
    r.hset(
        "resque:bus_app:billing",
        "BillingSubscriber.user_paid",
        '{"queue_name":"billing_default","key":"BillingSubscriber.user_paid",'
        '"class":"BillingSubscriber","matcher":{"bus_event_type":"user_paid"}}',
    )
    r.hset(
        "resque:bus_app:nodeapp",
        "nodeapp_default_charge",
        '{"queue_name":"nodeapp_default","key":"nodeapp_default_charge","class":"charge",'
        '"matcher":{"bus_event_type":"(?-mix:^user_)","amount":"bus_special_value_present"}}',
    )
    # an entry Ruby itself would skip (no queue) must not break driving
    r.hset("resque:bus_app:nodeapp", "broken", '{"key":"broken"}')

    assert {s.key for s in bus.who_gets("user_paid", {"amount": 10})} == {
        "BillingSubscriber.user_paid",
        "nodeapp_default_charge",
    }
    bus.publish("user_paid", {"amount": 10})
    drain(bus, ["bus_incoming"])

    [billing] = queue_jobs(r, "billing_default")
    [node] = queue_jobs(r, "nodeapp_default")
    assert (billing["bus_class_proxy"], billing["bus_rider_sub_key"]) == (
        "BillingSubscriber",
        "BillingSubscriber.user_paid",
    )
    assert (node["bus_class_proxy"], node["bus_rider_class_name"]) == ("charge", "charge")


def test_node_shaped_jobs_are_read(bus: Bus, r: redis.Redis) -> None:
    """node-queue-bus adds "queue" to the envelope and old versions put an object in args."""
    seen: list[dict[str, Any]] = []
    bus.dispatch("app").add("ping", seen.append)
    bus.subscribe_all()
    event = {
        "bus_event_type": "ping",
        "bus_published_at": 1,
        "bus_id": "1-x",
        "n": 1,
        "bus_class_proxy": "QueueBus::Driver",
    }
    r.rpush(
        "resque:queue:bus_incoming", json.dumps({"class": "QueueBus::Worker", "queue": "bus_incoming", "args": [event]})
    )
    r.rpush(
        "resque:queue:bus_incoming",
        json.dumps(
            {"class": "QueueBus::Worker", "queue": "bus_incoming", "args": [json.dumps({**event, "n": 2}, indent=1)]}
        ),
    )
    drain(bus, ["bus_incoming", "app_default"])
    assert sorted(a["n"] for a in seen) == [1, 2]


def test_ruby_driven_job_rides_in_our_worker(bus: Bus, r: redis.Redis) -> None:
    seen: list[dict[str, Any]] = []
    bus.dispatch("profile").add("rating_created", seen.append)
    r.rpush(
        "resque:queue:profile_default",
        b'{"class":"QueueBus::Worker","args":["{\\"bus_driven_at\\":1795820001,\\"bus_rider_queue\\":'
        b'\\"profile_default\\",\\"bus_rider_app_key\\":\\"profile\\",\\"bus_rider_sub_key\\":\\"rating_created\\",'
        b'\\"bus_rider_class_name\\":\\"::QueueBus::Rider\\",\\"bus_published_at\\":1795820000,'
        b'\\"bus_event_type\\":\\"rating_created\\",\\"bus_id\\":\\"1795820000-abc\\",\\"id\\":7,'
        b'\\"bus_class_proxy\\":\\"::QueueBus::Rider\\"}"]}',
    )
    drain(bus, clock=fixed_clock)
    assert len(seen) == 1
    assert seen[0]["id"] == 7
    assert seen[0]["bus_executed_at"] == NOW
    assert seen[0]["bus_rider_sub_key"] == "rating_created"


def test_failure_entries_have_resques_shape(bus: Bus, r: redis.Redis) -> None:
    def explode(attributes: dict[str, Any]) -> None:
        raise ValueError("no profile for 42")

    bus.dispatch("profile").add("rating_created", explode, retry=Retry(max_retries=0))
    bus.subscribe_all()
    bus.publish("rating_created", {"id": 7})
    drain(bus, ["bus_incoming", "profile_default"], clock=fixed_clock)

    [raw] = r.lrange("resque:failed", 0, -1)
    entry = json.loads(raw)
    assert list(entry) == ["failed_at", "payload", "exception", "error", "backtrace", "worker", "queue"]
    assert entry["failed_at"] == "2026/11/27 23:51:48 UTC"
    assert entry["exception"] == "ValueError"
    assert entry["error"] == "no profile for 42"
    assert entry["queue"] == "profile_default"
    assert re.fullmatch(r".+:\d+:bus_incoming,profile_default", entry["worker"])
    assert re.fullmatch(r".*test_wire_format\.py:\d+:in `explode'", entry["backtrace"][0])
    assert list(entry["payload"]) == ["class", "args"]
    job = decode_job(json.dumps(entry["payload"]).encode())
    assert job.attributes["bus_rider_sub_key"] == "rating_created"
    assert r.get("resque:stat:failed") == b"1"
    assert FAST.dead_after == 1.0  # the fast settings the drain used
