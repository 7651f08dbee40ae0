"""The floor: the same fan-out written directly on redis-py, with none of the bus's guarantees.

Batched pops (``LPOP key 50`` for every queue in one pipeline), a static fan-out to the
three app queues, the same double-encoded JSON jobs, and nothing else: no in-flight
list, no acks, no matching, no retries, no stats. What a Python worker on one Redis
connection can do at best; the bus's figures are also given as a share of it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis

from bench.systems.base import ChildSpec, Stop
from bench.workload import APPS, EVENT_TYPE, INCOMING, Handler, app_queue

BATCH = 50
_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def queue_key(queue: str) -> str:
    return f"resque:queue:{queue}"


def encode_job(attributes: dict[str, Any]) -> str:
    return _dumps({"class": "QueueBus::Worker", "args": [_dumps(attributes)]})


def decode_job(raw: bytes) -> dict[str, Any]:
    attributes: dict[str, Any] = json.loads(json.loads(raw)["args"][0])
    return attributes


class RawPublisher:
    def __init__(self, url: str) -> None:
        self.redis = redis.Redis.from_url(url)
        self.key = queue_key(INCOMING)

    def publish(self, attributes: dict[str, Any]) -> None:
        self.redis.rpush(self.key, encode_job({"bus_event_type": EVENT_TYPE, **attributes}))

    def publish_batch(self, batch: Sequence[dict[str, Any]]) -> None:
        self.redis.rpush(self.key, *(encode_job({"bus_event_type": EVENT_TYPE, **a}) for a in batch))

    def close(self) -> None:
        self.redis.close()


class RawService:
    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        self.redis = redis.Redis.from_url(spec.url)
        self.handler = handler
        self.riders = [queue_key(app_queue(app)) for app in APPS]
        self.keys = [queue_key(INCOMING), *self.riders]
        self.redis.ping()

    def run(self, stop: Stop) -> None:
        while not stop.is_set():
            replies = self._pop()
            if replies is None:
                continue
            incoming, *riders = replies
            fanout: dict[str, list[str]] = {}
            for raw in incoming or ():
                attributes = decode_job(raw)
                for app, key in zip(APPS, self.riders, strict=True):
                    driven = {"bus_rider_app_key": app, "bus_rider_sub_key": "on_order_placed", **attributes}
                    fanout.setdefault(key, []).append(encode_job(driven))
            for jobs in riders:
                for raw in jobs or ():
                    self.handler(decode_job(raw))
            if fanout:
                pipe = self.redis.pipeline(transaction=False)
                for key, jobs in fanout.items():
                    pipe.rpush(key, *jobs)
                pipe.execute()

    def _pop(self) -> list[Any] | None:
        pipe = self.redis.pipeline(transaction=False)
        for key in self.keys:
            pipe.lpop(key, BATCH)
        replies: list[Any] = pipe.execute()
        if any(replies):
            return replies
        popped: Any = self.redis.blpop(self.keys, timeout=0.1)
        if popped is None:
            return None
        key, raw = popped
        return [[raw] if k.encode() == key else None for k in self.keys]


class RawSystem:
    name = "raw"
    roles = ("all",)

    def prepare(self, url: str) -> None:
        return None

    def publisher(self, url: str) -> RawPublisher:
        return RawPublisher(url)

    def service(self, spec: ChildSpec, handler: Handler) -> RawService:
        return RawService(spec, handler)
