"""Retrying and removing many failures at once, each checked to be still where the page saw it.

A selection names entries by ``index:sha``; "all matching" walks the list oldest first a
chunk at a time. Each chunk is one script: entries still at their index are marked with
a tombstone (and, to retry, pushed back to their queue), then the tombstones leave the list.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import is_cluster
from bus.pipeline.envelope import dumps
from bus.stores.failures import Failure, Failures
from bus.web.failed import FailureFilter, selected

ACT_CHUNK = 500

# KEYS: failed. ARGV: tombstone, then (index, entry) pairs.
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

# KEYS: failed, queues, then one queue key per entry. ARGV: tombstone, then
# (index, entry, queue name, payload) per entry. Each entry still in place is pushed
# back to its queue and leaves the list in the same step, as Failures.retry does.
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


@dataclass(frozen=True, slots=True)
class Outcome:
    done: int
    skipped: int


def act(failures: Failures, entries: Sequence[Failure], action: str) -> int:
    """Retry or remove entries (each checked to be still at its index), in one script per call."""
    if not entries:
        return 0
    tombstone = f"bus-web-removing:{uuid.uuid4()}"
    if action == "remove":
        args: list[Any] = [tombstone]
        for f in entries:
            args += [f.index, f.raw]
        return int(failures.redis.eval(_REMOVE_MANY, 1, failures.keys.failed, *args))
    retryable = [f for f in entries if f.queue and f.payload]
    if not retryable:
        return 0
    if is_cluster(failures.redis):  # the list and the queues are on different shards
        return sum(1 for f in retryable if failures.retry(f))
    keys = [failures.keys.failed, failures.keys.queues, *(failures.keys.queue(f.queue) for f in retryable)]
    args = [tombstone]
    for f in retryable:
        args += [f.index, f.raw, f.queue, dumps({k: v for k, v in f.payload.items() if k != "bus_attempt"})]
    return int(failures.redis.eval(_RETRY_MANY, len(keys), *keys, *args))


def act_on_selection(failures: Failures, refs: Sequence[str], action: str) -> Outcome:
    entries = selected(failures, refs)
    done = act(failures, entries, action)
    return Outcome(done, len(refs) - done)


def act_on_matching(failures: Failures, flt: FailureFilter, action: str) -> Outcome:
    """Every entry matching the filter, oldest first; entries added meanwhile are left alone.

    Retried jobs that fail again are appended while this runs; counting only the entries
    that were there at the start keeps it from retrying them a second time.
    """
    if action == "remove" and not flt.active:
        return Outcome(failures.clear(), 0)
    remaining = failures.count()
    position = done = skipped = 0
    while remaining > 0:
        chunk = failures.list(position, min(ACT_CHUNK, remaining))
        if not chunk:
            break
        remaining -= len(chunk)
        chosen = [f for f in chunk if flt.matches(f)]
        acted = act(failures, chosen, action)
        done += acted
        skipped += len(chosen) - acted
        position += len(chunk) - acted
    return Outcome(done, skipped)
