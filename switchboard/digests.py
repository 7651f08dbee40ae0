"""Digests: events for one recipient and key, collected for a window, then sent as one message.

The collection in Redis is the state. The first item of a window opens it and the caller
schedules the flush (delayed publish) for the window's end; the item that makes ``max_items``
closes the window in the same script (a hard cap: the next item opens the next window) and the
caller flushes it at once. A flush first moves the window's items aside (so an item arriving
meanwhile opens the next window), sends them as one message under an idempotency key made of the window, and only
then forgets them: a flush redone after a worker died finds the same items and the same key,
so the message goes out once. Collecting is idempotent too (each item by its event id), so a
redelivered event is not collected twice. Scheduling a flush twice is harmless.

Items hold the events as published, recipient included, until their window is sent (as the
bus's own queues do); they expire with the window, plus a margin.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bus.backend.connection import as_text
from bus.safejson import read_json
from switchboard.keys import SwitchboardKeys

MAX_WINDOW = 7 * 86400
DEFAULT_MAX_ITEMS = 100
SEEN_MARGIN = 2
"""Events are remembered for this many windows, to refuse a redelivered one collected already."""

# KEYS: items, window, seen. ARGV: item id, item JSON, new window id, window seconds, max items, ttl,
# the flushing keys' prefix (a window's is the prefix and its id: the digest's hash tag, its slot).
# The item that fills the window closes it (its items moved aside for the flush), so the next
# one opens the next window: ``max_items`` is a hard cap. ``seen`` maps each item to its window.
# Returns {opened (1/0), window id, items collected, already collected (1/0), closed (1/0)}.
_COLLECT = """
local before = redis.call('HGET', KEYS[3], ARGV[1])
if before then
  return {0, before, redis.call('LLEN', KEYS[1]), 1, 0}
end
local window = redis.call('GET', KEYS[2])
local opened = 0
if not window then
  window = ARGV[3]
  redis.call('SET', KEYS[2], window, 'EX', ARGV[6])
  opened = 1
end
redis.call('HSET', KEYS[3], ARGV[1], window)
redis.call('EXPIRE', KEYS[3], ARGV[6])
local count = redis.call('RPUSH', KEYS[1], ARGV[2])
if count >= tonumber(ARGV[5]) then
  redis.call('DEL', KEYS[2])
  redis.call('RENAME', KEYS[1], ARGV[7] .. window)
  redis.call('EXPIRE', ARGV[7] .. window, ARGV[6])
  return {opened, window, count, 0, 1}
end
redis.call('EXPIRE', KEYS[1], ARGV[6])
return {opened, window, count, 0, 0}
"""

# KEYS: items, window, flushing. ARGV: the window to flush, ttl.
# 'taken': this window's items moved aside; 'again': moved by an earlier flush that did not finish;
# 'gone': nothing of this window is left (flushed and sent already).
_TAKE = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 'again' end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 'gone' end
redis.call('DEL', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 0 then return 'gone' end
redis.call('RENAME', KEYS[1], KEYS[3])
redis.call('EXPIRE', KEYS[3], ARGV[2])
return 'taken'
"""

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class DigestSpecError(ValueError):
    """A template's ``[digest]`` table that cannot work as written."""


@dataclass(frozen=True, slots=True)
class DigestSpec:
    """A template's ``[digest]``: how long a window stays open, its size cap, what groups items."""

    window: float
    max_items: int = DEFAULT_MAX_ITEMS
    key: tuple[str, ...] = ()
    """Fields of the event's data that, with the recipient, make one digest (e.g. ``post_id``)."""


def parse_digest(table: Any) -> DigestSpec:
    """``[digest]`` of template.toml: ``window = "1h"`` (or seconds), ``max_items``, ``key = [...]``."""
    if not isinstance(table, Mapping):
        raise DigestSpecError("[digest] must be a table")
    unknown = set(table) - {"window", "max_items", "key"}
    if unknown:
        raise DigestSpecError(f"[digest]: unknown key(s) {', '.join(sorted(unknown))}")
    window = _seconds(table.get("window"))
    max_items = table.get("max_items", DEFAULT_MAX_ITEMS)
    if isinstance(max_items, bool) or not isinstance(max_items, int) or not 1 <= max_items <= 10_000:
        raise DigestSpecError("[digest] max_items must be a whole number from 1 to 10000")
    key = table.get("key", [])
    if isinstance(key, str):
        key = [key]
    if not isinstance(key, list) or not all(isinstance(k, str) and k for k in key):
        raise DigestSpecError("[digest] key must be a field name or a list of them")
    return DigestSpec(window=window, max_items=max_items, key=tuple(key))


def _seconds(value: Any) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise DigestSpecError('[digest] window must be a duration like "30m", "1h" or seconds')
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not 0 < seconds <= MAX_WINDOW:
        raise DigestSpecError(f"[digest] window must be more than 0 and at most {MAX_WINDOW // 86400} days")
    return seconds


def digest_id_of(channel: str, template: str, recipient_key: str, key_values: Sequence[Any]) -> str:
    """One digest: a channel, a template, a recipient key and the values of the spec's key fields."""
    material = json.dumps([channel, template, recipient_key, [str(v) for v in key_values]])
    return hashlib.sha256(material.encode()).hexdigest()[:32]


class Flush(StrEnum):
    TAKEN = "taken"
    AGAIN = "again"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Collected:
    """What collecting one item did."""

    window: str
    count: int
    opened: bool
    """This item opened the window: schedule its flush."""
    duplicate: bool
    """This event was collected already (a redelivery): nothing changed; ``window`` is the one it joined."""
    closed: bool = False
    """This item filled the window (``max_items``): it is closed, flush it now."""


class Digests:
    """The collections of every digest, in Redis."""

    def __init__(self, redis: Any, keys: SwitchboardKeys) -> None:
        self.redis = redis
        self.keys = keys

    def collect(self, digest_id: str, spec: DigestSpec, item_id: str, item: Mapping[str, Any]) -> Collected:
        """Add an event to its digest's open window (opening one if none is)."""
        ttl = int(spec.window * SEEN_MARGIN) + 3600
        opened, window, count, duplicate, closed = self.redis.eval(
            _COLLECT,
            3,
            self.keys.digest_items(digest_id),
            self.keys.digest_window(digest_id),
            self.keys.digest_seen(digest_id),
            item_id,
            json.dumps(item),
            uuid.uuid4().hex,
            spec.window,
            spec.max_items,
            ttl,
            self.keys.digest_flushing(digest_id, ""),
        )
        return Collected(as_text(window), int(count), bool(opened), bool(duplicate), bool(closed))

    def take(self, digest_id: str, window: str, spec: DigestSpec) -> tuple[Flush, list[dict[str, Any]]]:
        """Move a window's items aside for sending (or find them moved by a flush that died)."""
        flushing = self.keys.digest_flushing(digest_id, window)
        ttl = int(spec.window * SEEN_MARGIN) + 3600
        state = Flush(
            as_text(
                self.redis.eval(
                    _TAKE,
                    3,
                    self.keys.digest_items(digest_id),
                    self.keys.digest_window(digest_id),
                    flushing,
                    window,
                    ttl,
                )
            )
        )
        if state is Flush.GONE:
            return state, []
        items = [_item(raw) for raw in self.redis.lrange(flushing, 0, -1)]
        return state, [i for i in items if i is not None]

    def sent(self, digest_id: str, window: str) -> None:
        """The window's message is recorded: forget its items."""
        self.redis.delete(self.keys.digest_flushing(digest_id, window))

    def pending(self, digest_id: str) -> int:
        """Items waiting in the open window."""
        return int(self.redis.llen(self.keys.digest_items(digest_id)))


def _item(raw: Any) -> dict[str, Any] | None:
    try:
        item = read_json(raw)
    except (TypeError, ValueError):
        return None
    return item if isinstance(item, dict) else None
