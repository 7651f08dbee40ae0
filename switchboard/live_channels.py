"""Which provider each channel uses, as the running ``switchboard run`` workers record it.

The dashboard runs with its own environment, which may hold other credentials than the
workers' (often none): judged from it, a live channel would read as dev mode. Workers write
their providers at start and every :data:`REFRESH_SECONDS` while they run; the hash expires
:data:`TTL_SECONDS` after the last one stops, and the pages fall back to their own settings.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

import redis.exceptions

from bus.errors import RedisRefused, RedisUnavailable
from switchboard.channels import Channel
from switchboard.keys import SwitchboardKeys
from switchboard.settings import PROVIDERS

log = logging.getLogger("switchboard.live_channels")

TTL_SECONDS = 300
"""How long the record outlives the last worker that refreshed it."""
REFRESH_SECONDS = 60.0
OUTBOX = "outbox"
_CHANNELS = {channel.value: channel for channel in Channel}


class LiveChannels:
    """Records and reads the providers the workers send through (``outbox`` for dev mode)."""

    def __init__(self, redis: Any, keys: SwitchboardKeys, *, ttl: int = TTL_SECONDS) -> None:
        self.redis = redis
        self.key = keys.live_channels
        self.ttl = ttl

    def record(self, providers: Mapping[Channel, str]) -> None:
        """Write each channel's provider and push the expiry back (one MULTI on one key)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(self.key, mapping={channel.value: name for channel, name in providers.items()})
        pipe.expire(self.key, self.ttl)
        pipe.execute()

    def keep_recording(
        self, providers: Mapping[Channel, str], stop: threading.Event, *, every: float = REFRESH_SECONDS
    ) -> None:
        """:meth:`record` every ``every`` seconds until ``stop`` (the worker records once at start
        itself); a Redis outage is logged and tried again at the next refresh, never ends the loop."""
        while not stop.wait(every):
            try:
                self.record(providers)
            except (RedisUnavailable, RedisRefused, redis.exceptions.RedisError) as exc:
                log.warning("could not record the channels' providers (tried again in %gs): %s", every, exc)

    def recorded(self) -> dict[Channel, str]:
        """What the workers recorded, channel by channel; a field any client may have written is
        kept only if it names a provider of that channel (or the outbox)."""
        out = {}
        for field, value in self.redis.hgetall(self.key).items():
            channel, name = _CHANNELS.get(_text(field)), _text(value)
            if channel is not None and (name == OUTBOX or name in PROVIDERS[channel]):
                out[channel] = name
        return out


def _text(raw: bytes | str) -> str:
    """A field any client may have written, never a crash: bytes that are not UTF-8 match nothing."""
    return raw.decode(errors="replace") if isinstance(raw, bytes) else raw
