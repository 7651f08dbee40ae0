"""Resque's failed list: entries in Resque's own format, listing, retry and removal."""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bus.backend.connection import is_cluster
from bus.keys import Keys
from bus.pipeline.envelope import bus_hash, dumps
from bus.safejson import read_json

# KEYS: failed, queues, queue. ARGV: entry, payload, queue name.
# Removing the entry and pushing its job back happen together or not at all.
_RETRY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('RPUSH', KEYS[3], ARGV[2])
return 1
"""


def exception_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def ruby_backtrace(exc: BaseException) -> list[str]:
    """Frames innermost first, as ``file:line:in `function'`` like a Ruby backtrace."""
    frames = traceback.extract_tb(exc.__traceback__)
    return [f"{f.filename}:{f.lineno}:in `{f.name}'" for f in reversed(frames)]


def failure_entry(
    payload: dict[str, Any],
    exc: BaseException,
    *,
    queue: str,
    worker_id: str,
    now: float,
) -> str:
    """A failure entry exactly as Resque's ``Failure::Redis#save`` writes it."""
    failed_at = datetime.fromtimestamp(now, UTC).strftime("%Y/%m/%d %H:%M:%S UTC")
    return dumps(
        {
            "failed_at": failed_at,
            "payload": payload,
            "exception": exception_name(exc),
            "error": str(exc),
            "backtrace": ruby_backtrace(exc),
            "worker": worker_id,
            "queue": queue,
        }
    )


@dataclass(slots=True)
class Failure:
    """One decoded entry of the failed list; ``raw`` identifies it for retry/removal."""

    index: int
    raw: bytes
    data: dict[str, Any]

    @property
    def queue(self) -> str:
        return str(self.data.get("queue") or "")

    @property
    def exception(self) -> str:
        return str(self.data.get("exception") or "")

    @property
    def error(self) -> str:
        return str(self.data.get("error") or "")

    @property
    def failed_at(self) -> str:
        return str(self.data.get("failed_at") or "")

    @property
    def payload(self) -> dict[str, Any]:
        payload = self.data.get("payload")
        return payload if isinstance(payload, dict) else {}

    @property
    def attributes(self) -> dict[str, Any]:
        """The bus hash inside the payload, or {} if it is not one."""
        return bus_hash(self.payload)

    @property
    def app_key(self) -> str:
        return str(self.attributes.get("bus_rider_app_key") or "")

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, **self.data}


class Failures:
    """Operations on the ``failed`` list."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def count(self) -> int:
        return int(self.redis.llen(self.keys.failed))

    def list(self, start: int = 0, count: int = 50) -> list[Failure]:
        raws = self.redis.lrange(self.keys.failed, start, start + count - 1) if count > 0 else []
        return [_decode(start + i, raw) for i, raw in enumerate(raws)]

    def iterate(self, chunk: int = 1000) -> Iterator[Failure]:
        start = 0
        while True:
            page = self.list(start, chunk)
            yield from page
            if len(page) < chunk:
                return
            start += chunk

    def get(self, index: int) -> Failure | None:
        raw = self.redis.lindex(self.keys.failed, index)
        return None if raw is None else _decode(index, raw)

    def retry(self, failure: Failure) -> bool:
        """Push the failed job back to its queue and remove the entry; False if already gone."""
        queue = failure.queue
        if not queue:
            return False
        payload = {k: v for k, v in failure.payload.items() if k != "bus_attempt"}
        if is_cluster(self.redis):
            return self._retry_across_slots(failure, queue, dumps(payload))
        done = self.redis.eval(
            _RETRY,
            3,
            self.keys.failed,
            self.keys.queues,
            self.keys.queue(queue),
            failure.raw,
            dumps(payload),
            queue,
        )
        return bool(done)

    def _retry_across_slots(self, failure: Failure, queue: str, payload: str) -> bool:
        """Cluster: the failed list and the queue live on different shards; push, then remove.

        A crash in between leaves the entry in the list: a second retry would run it twice.
        """
        if self.redis.lpos(self.keys.failed, failure.raw) is None:
            return False
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), payload)
        pipe.execute()
        self.redis.lrem(self.keys.failed, 1, failure.raw)
        return True

    def remove(self, failure: Failure) -> bool:
        return bool(self.redis.lrem(self.keys.failed, 1, failure.raw))

    def clear(self) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.failed)
        pipe.delete(self.keys.failed)
        count, _ = pipe.execute()
        return int(count)


def _decode(index: int, raw: bytes) -> Failure:
    try:
        data = read_json(raw)
    except ValueError:
        data = {"error": "unreadable failure entry", "raw": raw.decode("utf-8", "replace")}
    if not isinstance(data, dict):
        data = {"error": "unreadable failure entry", "raw": raw.decode("utf-8", "replace")}
    return Failure(index, raw, data)
