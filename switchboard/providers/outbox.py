"""Dev mode: a provider that 'sends' by keeping the rendered message in a capped Redis list.

With no credentials configured every channel sends here, so the switchboard runs fully
on a fresh machine and ``switchboard outbox`` (and the dashboard) show what would have
gone out.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import asdict
from typing import Any

from bus.safejson import read_json
from switchboard.channels import Channel
from switchboard.keys import SwitchboardKeys
from switchboard.providers import EmailMessage, ProviderResult, PushMessage, PushResult, SmsMessage
from switchboard.providers.base import PushOutcome


class Outbox:
    """The capped list of messages dev mode delivered, newest first."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, *, size: int) -> None:
        self.redis = redis
        self.keys = keys
        self.size = size

    def add(self, entry: dict[str, Any]) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.lpush(self.keys.outbox, json.dumps(entry, ensure_ascii=False))
        pipe.ltrim(self.keys.outbox, 0, self.size - 1)
        pipe.execute()

    def count(self) -> int:
        """Messages in the outbox, without reading them."""
        return int(self.redis.llen(self.keys.outbox))

    def list(self, limit: int = 20, channel: str | None = None) -> list[dict[str, Any]]:
        entries = [_entry(raw) for raw in self.redis.lrange(self.keys.outbox, 0, self.size - 1)]
        if channel:
            entries = [e for e in entries if e.get("channel") == channel]
        return entries[:limit]

    def clear(self, channel: str | None = None) -> int:
        """Empty the outbox, or remove one channel's messages; how many went."""
        if channel:
            return int(self.redis.eval(_CLEAR_CHANNEL, 1, self.keys.outbox, channel))
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.outbox)
        pipe.delete(self.keys.outbox)
        return int(pipe.execute()[0])


def _entry(raw: bytes) -> dict[str, Any]:
    """A stored message; what another client wrote in its place is shown as unreadable, not a crash."""
    try:
        entry = read_json(raw)
    except ValueError as exc:
        return {"subject": f"(an unreadable outbox entry: {exc})"}
    return entry if isinstance(entry, dict) else {"subject": "(an unreadable outbox entry: not a JSON object)"}


# Keeps the other channels' messages in order: one pass, not an LREM (a scan) per message.
_CLEAR_CHANNEL = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
local removed = 0
for _, raw in ipairs(items) do
  local ok, entry = pcall(cjson.decode, raw)
  if ok and type(entry) == 'table' and entry.channel == ARGV[1] then
    removed = removed + 1
  else
    redis.call('RPUSH', KEYS[1], raw)
  end
end
return removed
"""


class OutboxProvider:
    """Stands in for a channel's real provider in dev mode."""

    name = "outbox"

    def __init__(self, channel: Channel, outbox: Outbox) -> None:
        self.channel = channel
        self.outbox = outbox

    def send(self, message: EmailMessage | SmsMessage | PushMessage) -> ProviderResult:
        message_id = f"outbox-{uuid.uuid4().hex[:16]}"
        entry = {"id": message_id, "channel": self.channel.value, "at": time.time(), **_plain(asdict(message))}
        self.outbox.add(entry)
        if isinstance(message, PushMessage):
            targets = list(message.tokens) or [f"topic:{message.topic}"]
            outcomes = tuple(PushOutcome(target, f"{message_id}-{i}", None) for i, target in enumerate(targets))
            return PushResult(provider=self.name, message_id=message_id, outcomes=outcomes)
        return ProviderResult(provider=self.name, message_id=message_id)

    async def asend(self, message: EmailMessage | SmsMessage | PushMessage) -> ProviderResult:
        """``send`` on a thread, off the event loop (its Redis client blocks)."""
        return await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        """Nothing to release."""


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
