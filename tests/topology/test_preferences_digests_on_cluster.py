"""Preferences and digests on Redis Cluster: each script keeps to one hash slot."""

from __future__ import annotations

import time

from bus import Bus
from switchboard.channels import Channel
from switchboard.digests import Digests, DigestSpec
from switchboard.keys import SwitchboardKeys
from switchboard.preference_changes import PREFERENCE_CHANGED, Change, PreferenceChanges
from switchboard.preferences import Preferences, recipient_key
from switchboard.settings import SwitchboardSettings
from tests.support.topologies import RedisCluster


def test_a_change_and_its_announcement_on_a_cluster(cluster: RedisCluster) -> None:
    bus = Bus(cluster.url)
    bus.redis.flushall(target_nodes=bus.redis.__class__.PRIMARIES)
    preferences = Preferences(bus.redis, SwitchboardKeys(bus.keys), time.time)
    changes = PreferenceChanges(bus, preferences, SwitchboardSettings())
    keys = [recipient_key(f"user-{n}", None) for n in range(12)]  # on every shard
    for key in keys:
        assert changes.apply(Change(key, "marketing", Channel.EMAIL, False, "test"))
        assert changes.clear(key, "test") == 1
        assert preferences.owed(key) == {}  # both announced
    queued = bus.redis.lrange(bus.keys.queue("bus_incoming"), 0, -1)
    assert sum(PREFERENCE_CHANGED.encode() in job for job in queued) == 2 * len(keys)
    bus.close()


def test_a_full_digest_window_closes_on_a_cluster(cluster: RedisCluster) -> None:
    bus = Bus(cluster.url)
    bus.redis.flushall(target_nodes=bus.redis.__class__.PRIMARIES)
    digests = Digests(bus.redis, SwitchboardKeys(bus.keys))
    spec = DigestSpec(window=60.0, max_items=3)
    for digest in (f"{n:032x}" for n in range(8)):
        collected = [digests.collect(digest, spec, f"event-{i}", {"n": i}) for i in range(4)]
        assert [c.closed for c in collected] == [False, False, True, False]
        assert collected[3].opened and collected[3].window != collected[0].window
        _, items = digests.take(digest, collected[0].window, spec)
        assert [i["n"] for i in items] == [0, 1, 2]
    bus.close()
