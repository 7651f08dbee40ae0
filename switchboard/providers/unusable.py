"""A provider whose settings cannot work (a service-account file missing, no SMS sender).

It stands in for the real one so the other channels still start: every send raises a
``ProviderConfigurationError`` (so the channel stops and is probed now and then like any
refused configuration) after trying to build the real provider again, so the channel
resumes by itself once its settings work (a file put in place, say).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

from switchboard.channels import Channel
from switchboard.errors import ProviderConfigurationError
from switchboard.providers.base import Provider, ProviderResult


class UnusableProvider:
    """The channel's provider, not built yet; ``problem`` says why."""

    def __init__(self, channel: Channel, name: str, problem: str, build: Callable[[], Provider[Any]]) -> None:
        self.channel = channel
        self.name = name
        self.problem = problem
        self._build = build
        self._real: Provider[Any] | None = None
        self._lock = threading.Lock()

    def send(self, message: Any) -> ProviderResult:
        return self._provider().send(message)

    async def asend(self, message: Any) -> ProviderResult:
        real = self._real if self._real is not None else await asyncio.to_thread(self._provider)
        return await real.asend(message)  # (building reads files: off the loop)

    def _provider(self) -> Provider[Any]:
        """The real provider, built on first need (raises while the settings still do not work)."""
        with self._lock:
            if self._real is None:
                try:
                    self._real = self._build()
                except ProviderConfigurationError as exc:
                    self.problem = str(exc)
                    raise
            return self._real

    def close(self) -> None:
        if self._real is not None:
            self._real.close()


def build_or_stand_in(channel: Channel, name: str, build: Callable[[], Provider[Any]]) -> Provider[Any]:
    """The real provider, or an :class:`UnusableProvider` saying why it cannot be built now."""
    try:
        return build()
    except ProviderConfigurationError as exc:
        return UnusableProvider(channel, name, str(exc), build)
