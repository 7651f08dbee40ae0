"""The switchboard's baseline: the provider called directly, no bus, no Redis.

The same provider class, built from the same settings, sending the same messages (rendered
before the clock starts) from as many threads as a switchboard worker has, in one process.
It reports its sends once they are all done (a shared counter per send would cost each send
a cross-process lock). The ChildSpec's ``config`` carries the emulators' endpoints, the
channel and the count.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from bench.notifications import Message, board_settings, rendered
from bench.systems.base import ChildSpec, Stop
from bench.workload import Handler
from switchboard.providers import FcmProvider, Provider, SendGridProvider, TwilioProvider
from switchboard.settings import SwitchboardSettings
from switchboard.templating import TemplateStore


class DirectService:
    """``threads`` threads take the next rendered message and call ``provider.send``."""

    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        config = json.loads(spec.config)
        settings = board_settings(config["endpoints"])
        channel: str = config["channel"]
        self.handler = handler
        self.threads = spec.concurrency or settings.concurrency
        self.provider = provider_for(settings, channel)
        store = TemplateStore(settings.templates_dir, default_locale=settings.default_locale, refresh_interval=None)
        self.messages: list[Message] = [rendered(store, settings, channel, seq) for seq in range(config["count"])]
        self._next = 0
        self._lock = threading.Lock()
        self.errors = 0
        self.first_error = ""

    def run(self, stop: Stop) -> None:
        senders = [threading.Thread(target=self._send_all, name=f"direct-{n}") for n in range(self.threads)]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        for _ in self.messages:
            self.handler({})
        stop.wait()
        self.provider.close()

    def _send_all(self) -> None:
        while True:
            with self._lock:
                if self._next >= len(self.messages):
                    return
                message = self.messages[self._next]
                self._next += 1
            try:
                self.provider.send(message)
            except Exception as exc:  # counted and reported: the parent checks there were none
                with self._lock:
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
    roles = ("email", "sms", "push")

    def prepare(self, url: str) -> None:
        """Nothing: no Redis at all."""

    def service(self, spec: ChildSpec, handler: Handler) -> DirectService:
        return DirectService(spec, handler)
