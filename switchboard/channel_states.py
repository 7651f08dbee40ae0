"""Channels (and single senders) stopped because the provider refused our configuration.

The state lives in Redis (``switchboard:channels``), so every worker process, the dashboard,
``switchboard check-settings`` and /metrics see the same thing. A stopped channel is not
tried until ``probe_after``; then exactly one send (whichever worker takes the probe lock)
goes out as a probe: if it works the channel resumes by itself, if not it stays stopped
for another ``configuration_delay``. A sender the provider refused (an unverified from
address) stops alone, under ``email:sender:<address>``: the other senders keep sending.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text
from bus.safejson import read_json
from switchboard.keys import SwitchboardKeys

PROBE_LOCK_SECONDS = 60.0
"""How long one worker holds the probe: others wait rather than probe at once."""


def sender_scope(channel: str, sender: str) -> str:
    """The state key of one sender on a channel (``email:sender:no-reply@acme.example``)."""
    return f"{channel}:sender:{sender.lower()}"


@dataclass(frozen=True, slots=True)
class Stopped:
    """Why and since when a channel (or sender) is stopped, and when it is probed."""

    scope: str
    reason: str
    since: float
    probe_after: float
    provider: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "reason": self.reason,
            "since": self.since,
            "probe_after": self.probe_after,
            "provider": self.provider,
        }


class ChannelStates:
    """Reads and changes the stopped channels and senders."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, clock: Callable[[], float]) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock

    def queue_lookup(self, pipe: Any, scopes: list[str]) -> None:
        """Queue the lookup of these scopes; read the reply with :func:`stopped_in`."""
        pipe.hmget(self.keys.channels, scopes)

    def stop(self, scope: str, reason: str, *, delay: float, provider: str | None = None) -> bool:
        """Stop ``scope`` until probed after ``delay`` seconds; True when it was running until now."""
        now = self.clock()
        entry = Stopped(scope, reason, now, now + delay, provider)
        previous = self.redis.hget(self.keys.channels, scope)
        since = _read(scope, previous)
        if since is not None:  # stopped already: keep when it first stopped
            entry = Stopped(scope, reason, since.since, now + delay, provider)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hset(self.keys.channels, scope, json.dumps(entry.to_json()))
        pipe.delete(self.keys.channel_probe(scope))  # the probe (if this was one) is over
        pipe.execute()
        return since is None

    def resume(self, scope: str) -> bool:
        """The probe went through: the scope runs again. True when it was stopped."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hdel(self.keys.channels, scope)
        pipe.delete(self.keys.channel_probe(scope))
        return bool(pipe.execute()[0])

    def take_probe(self, scope: str) -> bool:
        """Whether this worker sends the one probe of a stopped scope now (others wait)."""
        return bool(self.redis.set(self.keys.channel_probe(scope), "1", nx=True, ex=int(PROBE_LOCK_SECONDS)))

    def all(self) -> list[Stopped]:
        """Every stopped channel and sender."""
        found = [_read(as_text(k), v) for k, v in self.redis.hgetall(self.keys.channels).items()]
        return sorted((s for s in found if s is not None), key=lambda s: s.scope)


def stopped_in(scopes: list[str], reply: list[Any]) -> list[Stopped]:
    """The stopped entries among the scopes looked up with :meth:`ChannelStates.queue_lookup`."""
    found = [_read(scope, raw) for scope, raw in zip(scopes, reply, strict=True)]
    return [s for s in found if s is not None]


def _read(scope: str, raw: Any) -> Stopped | None:
    if raw is None:
        return None
    try:
        data = read_json(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # a state nobody can read: stopped, and probed at once
        return Stopped(scope, "unreadable channel state", 0.0, 0.0)
    since, probe = data.get("since"), data.get("probe_after")
    return Stopped(
        scope,
        str(data.get("reason") or ""),
        float(since) if isinstance(since, int | float) and math.isfinite(since) else 0.0,
        float(probe) if isinstance(probe, int | float) and math.isfinite(probe) else 0.0,
        data.get("provider") if isinstance(data.get("provider"), str) else None,
    )
