"""Provider events applied on Redis Cluster: the deciding script keeps to the delivery's slot."""

from __future__ import annotations

import time

from bus import Bus
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import recipient_digest
from switchboard.statuses import StatusApplier
from tests.support.topologies import RedisCluster


def test_provider_events_apply_on_a_cluster(cluster: RedisCluster) -> None:
    bus = Bus(cluster.url)
    bus.redis.flushall(target_nodes=bus.redis.__class__.PRIMARIES)
    keys = SwitchboardKeys(bus.keys)
    deliveries = Deliveries(bus.redis, keys, retention=3600, stale_after=60)
    applier = StatusApplier(bus=bus, deliveries=deliveries, suppressions=Suppressions(bus.redis, keys))
    now = time.time()
    ids = [f"email:cluster-{n}" for n in range(12)] + [
        "email:a{b}c",
        "email:a}b",
        "email:{}x",
    ]  # records on every shard
    for n, delivery_id in enumerate(ids):
        initial = {
            "channel": "email",
            "request_id": delivery_id,
            "recipient_digests": recipient_digest(f"user{n}@example.com"),
        }
        deliveries.claim(delivery_id, now, initial)
        deliveries.finish(delivery_id, "email", now, "accepted", provider="sendgrid", provider_message_id=delivery_id)
    for n, delivery_id in enumerate(ids):
        for status, event in (("bounced", "bounce"), ("deferred", "deferred")):  # the late deferred changes nothing
            applier.handle(
                {
                    "provider": "sendgrid",
                    "channel": "email",
                    "event_id": f"{event}-{n}",
                    "event": event,
                    "status": status,
                    "at": now + 1,
                    "recipient": "a***@example.com",
                    "recipient_digest": recipient_digest(f"user{n}@example.com"),
                    "message_id": delivery_id,  # matched by the provider's message id
                    "suppress": status == "bounced",
                }
            )
    for delivery_id in ids:
        record = deliveries.get(delivery_id)
        assert record is not None and record.status == "bounced"
        assert [s["status"] for s in deliveries.timeline(delivery_id)] == ["accepted", "deferred", "bounced"]
    assert Suppressions(bus.redis, keys).count("email") == len(ids)
    bus.close()
