"""The switchboard's baseline: the providers called directly, no bus, no Redis.

The same provider classes, built from the same settings, sending the same messages (rendered
before the clock starts) with as many in flight as a switchboard worker keeps (its
``concurrency``), on one event loop in one process: the best client of these providers we
know how to write. It reports its sends once they are all done (a shared counter per send
would cost each send a cross-process lock). The ChildSpec's ``config`` carries the
emulators' endpoints, the channel (or ``mixed``) and the count.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bench.notifications import Message, board_settings, channel_of, rendered
from bench.systems.base import ChildSpec, Stop
from bench.workload import Handler
from switchboard.providers import FcmProvider, Provider, SendGridProvider, TwilioProvider
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore


class DirectService:
    """``concurrency`` tasks take the next rendered message and await its provider's ``asend``."""

    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        config = json.loads(spec.config)
        settings = board_settings(config["endpoints"])
        channel: str = config["channel"]
        self.handler = handler
        self.concurrency = spec.concurrency or settings.concurrency
        channels = sorted({channel_of(channel, seq) for seq in range(min(3, config["count"]))})
        self.providers = {c: provider_for(settings, c) for c in channels}
        store = TemplateStore(settings.templates_dir, default_locale=settings.default_locale, refresh_interval=None)
        self.messages: list[tuple[str, Message]] = [
            (channel_of(channel, seq), rendered(store, settings, channel_of(channel, seq), seq))
            for seq in range(config["count"])
        ]
        self._next = 0
        self.errors = 0
        self.first_error = ""

    def run(self, stop: Stop) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._send_all())
            for _ in self.messages:
                self.handler({})
            stop.wait()
            for provider in self.providers.values():
                provider.close()  # the loop still open: its sessions close on it
        finally:
            loop.close()

    async def _send_all(self) -> None:
        await asyncio.gather(*(self._sender() for _ in range(self.concurrency)))

    async def _sender(self) -> None:
        while self._next < len(self.messages):
            channel, message = self.messages[self._next]
            self._next += 1
            try:
                await self.providers[channel].asend(message)
            except Exception as exc:  # counted and reported: the parent checks there were none
                self.errors += 1
                self.first_error = self.first_error or f"{type(exc).__name__}: {exc}"

    def summary(self) -> dict[str, Any]:
        return {"errors": self.errors, "first_error": self.first_error}


def provider_for(settings: SwitchboardSettings, channel: str) -> Provider[Any]:
    """The provider the switchboard would build for ``channel`` from these settings."""
    if channel == "email" and settings.sendgrid.configured:
        return SendGridProvider(settings.sendgrid, sender=settings.default_sender)
    if channel == "sms" and settings.twilio.configured:
        return TwilioProvider(settings.twilio)
    if channel == "push" and settings.fcm.configured:
        return FcmProvider(settings.fcm)
    raise ValueError(f"no provider configured for {channel}")


class DirectSystem:
    name = "direct"
    roles = ("email", "sms", "push", "mixed")

    def prepare(self, url: str) -> None:
        """Nothing: no Redis at all."""

    def service(self, spec: ChildSpec, handler: Handler) -> DirectService:
        return DirectService(spec, handler)
