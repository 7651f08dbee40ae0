"""The ``heartbeat_minutes`` event: once a minute across every scheduler, missed minutes back-filled.

queue-bus's keys and attributes: a lock ``bus:heartbeat:lock`` whose value is its expiry
(so Ruby's heartbeat and ours exclude each other) and the last published minute in
``bus:heartbeat:timestamp``. Publishing a minute and recording it is one atomic
check-and-set, so a minute is published exactly once even if a lock holder stalls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bus.backend.connection import is_cluster
from bus.keys import INCOMING_QUEUE, Keys
from bus.pipeline.publisher import Publisher

log = logging.getLogger("bus.heartbeat")

HEARTBEAT_EVENT = "heartbeat_minutes"
LOCK_SECONDS = 60
BACKFILL_CAP_ENVIRONMENTS = ("development", "test")
BACKFILL_CAP_MINUTES = 3

# KEYS: timestamp, queue:bus_incoming, queues. ARGV: minute, job.
_PUBLISH_MINUTE = """
local last = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) <= last then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[2])
redis.call('SADD', KEYS[3], 'bus_incoming')
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""

# KEYS: lock. ARGV: the value we set. Release only our own lock.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def heartbeat_attributes(epoch_minute: int) -> dict[str, int]:
    """The attributes queue-bus publishes for one minute (calendar fields in UTC)."""
    seconds = epoch_minute * 60
    moment = datetime.fromtimestamp(seconds, UTC)
    return {
        "epoch_seconds": seconds,
        "epoch_minutes": epoch_minute,
        "epoch_hours": epoch_minute // 60,
        "epoch_days": epoch_minute // (60 * 24),
        "minute": moment.minute,
        "hour": moment.hour,
        "day": moment.day,
        "month": moment.month,
        "year": moment.year,
        "yday": moment.timetuple().tm_yday,
        "wday": (moment.weekday() + 1) % 7,  # Ruby: Sunday is 0
    }


class Heartbeat:
    """Publishes each minute's heartbeat event once, from whichever scheduler gets the lock."""

    def __init__(
        self, redis: Any, keys: Keys, publisher: Publisher, clock: Callable[[], float], *, environment: str
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.publisher = publisher
        self.clock = clock
        self.capped = environment in BACKFILL_CAP_ENVIRONMENTS
        self._done_minute = -1

    def tick(self) -> int:
        """Publish every minute due since the last one; how many were published."""
        now = self.clock()
        current = int(now // 60)
        if current <= self._done_minute:
            return 0
        redis = self.redis
        lock_value = self._acquire(redis, int(now))
        if lock_value is None:
            return 0
        try:
            published = 0
            for minute in self._due_minutes(redis, current):
                published += self._publish(redis, minute)
            self._done_minute = current
            return published
        finally:
            redis.eval(_RELEASE, 1, self.keys.heartbeat_lock, lock_value)

    def _due_minutes(self, redis: Any, current: int) -> range:
        last = redis.get(self.keys.heartbeat_timestamp)
        if last is None:
            return range(current, current + 1)
        start = int(last) + 1
        if self.capped:
            start = max(start, current - BACKFILL_CAP_MINUTES + 1)
        return range(start, current + 1)

    def _publish(self, redis: Any, minute: int) -> int:
        publisher = self.publisher
        job = publisher.job(publisher.build(HEARTBEAT_EVENT, heartbeat_attributes(minute)))
        keys = self.keys
        if is_cluster(redis):  # keys on different shards: publish, then record (under the lock)
            last = redis.get(keys.heartbeat_timestamp)
            if last is not None and minute <= int(last):
                return 0
            publisher.push(redis, [job])
            redis.set(keys.heartbeat_timestamp, minute)
            return 1
        return int(
            redis.eval(
                _PUBLISH_MINUTE, 3, keys.heartbeat_timestamp, keys.queue(INCOMING_QUEUE), keys.queues, minute, job
            )
        )

    def _acquire(self, redis: Any, now: int) -> str | None:
        """queue-bus's lock: SETNX an expiry, or take over an expired one with GETSET."""
        value = str(now + LOCK_SECONDS + 2)
        key = self.keys.heartbeat_lock
        if redis.setnx(key, value):
            return value
        current = redis.get(key)
        if current is not None and now <= int(current):
            return None
        previous = redis.getset(key, value)
        if previous is None or now > int(previous):
            return value
        return None
