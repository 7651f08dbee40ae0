"""Resque's failed list: entries in Resque's own format, listing, retry and removal."""

from __future__ import annotations

import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bus.backend.connection import is_cluster
from bus.keys import Keys
from bus.pipeline.envelope import bus_hash, dumps
from bus.safejson import read_json
from bus.stores.queues import JobRef, digest

ACT_CHUNK = 500

# KEYS: failed. ARGV: tombstone, then (index, entry) pairs: each entry still at its index is
# marked with the tombstone, then the tombstones leave the list in one LREM.
_REMOVE_MANY = """
local done = 0
for i = 2, #ARGV, 2 do
  local index = tonumber(ARGV[i])
  if redis.call('LINDEX', KEYS[1], index) == ARGV[i + 1] then
    redis.call('LSET', KEYS[1], index, ARGV[1])
    done = done + 1
  end
end
if done > 0 then redis.call('LREM', KEYS[1], 0, ARGV[1]) end
return done
"""

# KEYS: failed, queues, then one queue key per entry. ARGV: tombstone, then (index, entry,
# queue name, payload) per entry. Each entry still in place is pushed back to its queue and
# leaves the list in the same step, as Failures.retry does.
_RETRY_MANY = """
local done = 0
for i = 3, #KEYS do
  local base = 2 + (i - 3) * 4
  local index = tonumber(ARGV[base])
  if redis.call('LINDEX', KEYS[1], index) == ARGV[base + 1] then
    redis.call('LSET', KEYS[1], index, ARGV[1])
    redis.call('SADD', KEYS[2], ARGV[base + 2])
    redis.call('RPUSH', KEYS[i], ARGV[base + 3])
    done = done + 1
  end
end
if done > 0 then redis.call('LREM', KEYS[1], 0, ARGV[1]) end
return done
"""

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


Found = list[Failure]
"""Entries found (a name the class's own ``list`` method does not shadow)."""


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

    def select(self, refs: Sequence[JobRef]) -> Found:
        """The entries named by ``refs`` that are still where they were seen, in one round trip."""
        if not refs:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for ref in refs:
            pipe.lindex(self.keys.failed, ref.index)
        found = []
        for ref, raw in zip(refs, pipe.execute(), strict=True):
            if raw is not None and digest(raw) == ref.sha:
                found.append(_decode(ref.index, raw))
        return found

    def find(self, ref: JobRef) -> Failure | None:
        """One entry by reference; if it moved (entries before it left), searched for by its digest."""
        found = self.select([ref])
        if found:
            return found[0]
        return next((f for f in self.iterate() if digest(f.raw) == ref.sha), None)

    def retry_many(self, entries: Sequence[Failure]) -> int:
        """Push entries back to their queues and out of the list, each only if still at its index: one
        script (one round trip) on a single server."""
        retryable = [f for f in entries if f.queue and f.payload]
        if not retryable:
            return 0
        if is_cluster(self.redis):  # the list and the queues are on different shards
            return sum(1 for f in retryable if self.retry(f))
        keys = [self.keys.failed, self.keys.queues, *(self.keys.queue(f.queue) for f in retryable)]
        args: list[Any] = [_tombstone()]
        for f in retryable:
            args += [f.index, f.raw, f.queue, dumps({k: v for k, v in f.payload.items() if k != "bus_attempt"})]
        return int(self.redis.eval(_RETRY_MANY, len(keys), *keys, *args))

    def remove_many(self, entries: Sequence[Failure]) -> int:
        """Remove entries, each only if still at its index, in one script."""
        if not entries:
            return 0
        args: list[Any] = [_tombstone()]
        for f in entries:
            args += [f.index, f.raw]
        return int(self.redis.eval(_REMOVE_MANY, 1, self.keys.failed, *args))

    def act_on_each(self, keep: Callable[[Failure], bool], action: str, *, chunk: int = ACT_CHUNK) -> tuple[int, int]:
        """Retry or remove every entry ``keep`` says, oldest first, a chunk (one script) at a time:
        (done, skipped). Entries added meanwhile (retried jobs failing again) are left alone."""
        remaining = self.count()
        position = done = skipped = 0
        act = self.retry_many if action == "retry" else self.remove_many
        while remaining > 0:
            entries = self.list(position, min(chunk, remaining))
            if not entries:
                break
            remaining -= len(entries)
            chosen = [f for f in entries if keep(f)]
            acted = act(chosen)
            done += acted
            skipped += len(chosen) - acted
            position += len(entries) - acted  # acted entries left the list
        return done, skipped

    def version(self) -> tuple[Any, ...]:
        """What changes whenever the list does (length, first and last entries): for caches."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.llen(self.keys.failed)
        pipe.lindex(self.keys.failed, -1)
        pipe.lindex(self.keys.failed, 0)
        return tuple(pipe.execute())

    def clear(self) -> int:
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.failed)
        pipe.delete(self.keys.failed)
        count, _ = pipe.execute()
        return int(count)


def _tombstone() -> str:
    """A value no entry can hold: entries to drop are set to it, then removed in one LREM."""
    return f"bus-removing:{uuid.uuid4()}"


def _decode(index: int, raw: bytes) -> Failure:
    try:
        data = read_json(raw)
    except ValueError:
        data = {"error": "unreadable failure entry", "raw": raw.decode("utf-8", "replace")}
    if not isinstance(data, dict):
        data = {"error": "unreadable failure entry", "raw": raw.decode("utf-8", "replace")}
    return Failure(index, raw, data)
