"""Recipients' preferences: which categories of message they take, on which channel.

Opt-out: a category nobody said anything about is allowed. Preferences belong to a
*recipient key*, never an address in clear: the publisher's ``user_id`` when it gives one
(so a person keeps their choices when their address changes), else the address or number,
each as a digest. One hash per recipient key, field ``<category>:<channel>`` -> JSON
``{"allowed": false, "at": <epoch>, "source": "unsubscribe link"}``. Whether a category may
be opted out of at all (``security`` may not) is the settings' business: see
:func:`check_change`. A change and the ``preference_changed`` event it owes are written by one
script (a second hash in the same slot holds the event until it is published).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text, pipe_eval
from bus.safejson import read_json
from switchboard.channels import Channel
from switchboard.errors import SwitchboardError
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import recipient_digest

# A change and the ``preference_changed`` event it owes are recorded together (the event is kept in
# the announcements hash until it is published), so a process dying in between loses no event.
# KEYS: the recipient's hash, its announcements. ARGV: field, entry JSON, allowed ("1"/"0"), event
# JSON ('' for none). Returns {1 when the choice changed else 0, then field, event of each owed}.
_SET = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local changed = 0
if not old then
  if ARGV[3] == '0' then changed = 1 end
else
  local ok, entry = pcall(cjson.decode, old)
  if not ok or type(entry) ~= 'table' or (entry['allowed'] == true) ~= (ARGV[3] == '1') then changed = 1 end
end
if changed == 1 and ARGV[4] ~= '' then redis.call('HSET', KEYS[2], ARGV[1], ARGV[4]) end
local owed = redis.call('HGETALL', KEYS[2])
table.insert(owed, 1, changed)
return owed
"""

# KEYS: the same. ARGV: field, event JSON ('' for none) pairs. A forgotten choice that was not
# "allowed" owes its event (allowed again). Returns {how many went, then field, event of each owed}.
_CLEAR = """
local removed = 0
for i = 1, #ARGV, 2 do
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    redis.call('HDEL', KEYS[1], ARGV[i])
    removed = removed + 1
    local ok, entry = pcall(cjson.decode, old)
    if ARGV[i + 1] ~= '' and not (ok and type(entry) == 'table' and entry['allowed'] == true) then
      redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
    end
  end
end
local owed = redis.call('HGETALL', KEYS[2])
table.insert(owed, 1, removed)
return owed
"""

# KEYS: the announcements. ARGV: field, the event published. A newer change owes its own: kept.
_ANNOUNCED = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class PreferenceRefused(SwitchboardError):
    """A preference that cannot be set: an unknown category, or one people may not opt out of."""


def recipient_key(user_id: str | None, recipient: str | None) -> str:
    """Whom preferences belong to: ``user:<digest>`` of the publisher's user id, else ``to:<digest>``."""
    if user_id is not None and user_id.strip():
        return "user:" + hashlib.sha256(f"user:{user_id.strip()}".encode()).hexdigest()[:32]
    if recipient is None or not recipient.strip():
        raise PreferenceRefused("a preference needs a user_id or a recipient")
    return "to:" + recipient_digest(recipient)


@dataclass(frozen=True, slots=True)
class Preference:
    """One stored choice."""

    category: str
    channel: str
    allowed: bool
    at: float | None
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "channel": self.channel,
            "allowed": self.allowed,
            "at": self.at,
            "source": self.source,
        }


def check_change(category: str, allowed: bool, opt_out: Mapping[str, bool]) -> None:
    """Refuse a change the settings do not permit: ``opt_out`` maps each category to whether
    people may opt out of it."""
    if category not in opt_out:
        known = ", ".join(sorted(opt_out)) or "none configured"
        raise PreferenceRefused(f"unknown category {category!r} (categories: {known})")
    if not allowed and not opt_out[category]:
        raise PreferenceRefused(f"category {category!r} cannot be opted out of")


class Preferences:
    """The preferences store: looked up with the claim, changed by people, apps and operators."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock

    def queue_lookup(self, pipe: Any, key: str, category: str, channel: Channel | str) -> None:
        """Queue the lookup of one category on one channel; read its reply with :func:`allows`."""
        pipe.hget(self.keys.preferences(key), f"{category}:{channel}")

    def set(
        self,
        key: str,
        category: str,
        channel: Channel | str,
        allowed: bool,
        source: str,
        event: Mapping[str, Any] | None = None,
    ) -> Changed:
        """Record a choice, with the ``event`` it owes when it changes what the recipient gets."""
        entry = json.dumps({"allowed": allowed, "at": self.clock(), "source": source})
        reply = self.redis.eval(
            _SET,
            2,
            self.keys.preferences(key),
            self.keys.preference_announcements(key),
            f"{category}:{channel}",
            entry,
            "1" if allowed else "0",
            json.dumps(event) if event is not None else "",
        )
        return _changed(reply)

    def clear(
        self,
        key: str,
        category: str | None = None,
        channel: Channel | str | None = None,
        event_for: Callable[[Preference], Mapping[str, Any] | None] = lambda p: None,
    ) -> Changed:
        """Forget choices (all of a recipient's, or one category and/or channel); ``count`` says how
        many went, each opt-out forgotten owes ``event_for`` it."""
        args: list[str] = []
        for p in self.show(key):
            if (category is None or p.category == category) and (channel is None or p.channel == str(channel)):
                event = event_for(p)
                args += [f"{p.category}:{p.channel}", json.dumps(event) if event is not None else ""]
        if not args:
            return Changed(0, self.owed(key))
        reply = self.redis.eval(_CLEAR, 2, self.keys.preferences(key), self.keys.preference_announcements(key), *args)
        return _changed(reply)

    def owed(self, key: str) -> dict[str, str]:
        """The events changes of this recipient still owe (field -> event JSON)."""
        found = self.redis.hgetall(self.keys.preference_announcements(key))
        return {as_text(f): as_text(v) for f, v in found.items()}

    def queue_announced(self, pipe: Any, key: str, field: str, event: str) -> None:
        """Queue forgetting an owed event once published (unless a newer change replaced it)."""
        pipe_eval(pipe, _ANNOUNCED, [self.keys.preference_announcements(key)], field, event)

    def show(self, key: str) -> list[Preference]:
        """Every stored choice of a recipient, by category then channel."""
        found = [_preference(as_text(f), raw) for f, raw in self.redis.hgetall(self.keys.preferences(key)).items()]
        return sorted(found, key=lambda p: (p.category, p.channel))


@dataclass(frozen=True, slots=True)
class Changed:
    """What a change did: ``count`` choices changed (or forgotten), and the events still owed."""

    count: int
    owed: dict[str, str]

    @property
    def changed(self) -> bool:
        return self.count > 0


def _changed(reply: Any) -> Changed:
    count, *pairs = reply
    return Changed(int(count), {as_text(f): as_text(v) for f, v in zip(pairs[::2], pairs[1::2], strict=True)})


def allows(reply: Any) -> bool:
    """What a looked-up entry says: no entry allows; an entry nobody can read does not (when in
    doubt, a message people may have refused is not sent)."""
    if reply is None:
        return True
    entry = _entry(reply)
    return entry is not None and entry.get("allowed") is True


def _preference(field: str, raw: Any) -> Preference:
    category, _, channel = field.rpartition(":")
    entry = _entry(raw) or {}
    at = entry.get("at")
    when = float(at) if isinstance(at, int | float) and math.isfinite(at) else None
    source = entry.get("source")
    return Preference(
        category, channel, entry.get("allowed") is True, when, source if isinstance(source, str) else "unreadable"
    )


def _entry(raw: Any) -> dict[str, Any] | None:
    try:
        entry = read_json(raw)
    except (TypeError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None
