"""Kept-open SMTP connections for one provider, and the event loop a synchronous caller sends on.

A relay takes many messages over one connection (TLS handshake and AUTH once), so the pool
hands out an idle connection when it has one. It closes one that served
``max_messages`` (relays cap messages per connection) or sat idle ``idle_seconds`` (relays
hang up on idle clients; reusing such a connection fails at its first command). Connections
belong to the event loop they were opened on: the pool lives on one loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosmtplib

T = TypeVar("T")


@dataclass(slots=True)
class Connection:
    """One open connection and how much it has served."""

    smtp: aiosmtplib.SMTP
    reused: bool = False
    messages: int = 0
    last_used: float = field(default_factory=time.monotonic)


class ConnectionPool:
    """At most ``size`` connections open at once; idle ones are reused, newest first."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[aiosmtplib.SMTP]],
        *,
        size: int,
        max_messages: int,
        idle_seconds: float,
    ) -> None:
        self._connect = connect
        self._slots = asyncio.Semaphore(size)
        self._idle: list[Connection] = []
        self._max_messages = max_messages
        self._idle_seconds = idle_seconds
        self.opened = 0

    async def acquire(self) -> Connection:
        """An idle connection still fit to use, else a new one (waits while ``size`` are busy)."""
        await self._slots.acquire()
        try:
            while self._idle:
                connection = self._idle.pop()
                fresh_enough = time.monotonic() - connection.last_used < self._idle_seconds
                if connection.smtp.is_connected and fresh_enough:
                    connection.reused = True
                    return connection
                connection.smtp.close()
            smtp = await self._connect()
            self.opened += 1
            return Connection(smtp)
        except BaseException:
            self._slots.release()
            raise

    def release(self, connection: Connection, *, sent: bool, reusable: bool) -> None:
        """Give a connection back: kept for the next send, or closed when it cannot serve one."""
        connection.messages += int(sent)
        connection.last_used = time.monotonic()
        if reusable and connection.smtp.is_connected and connection.messages < self._max_messages:
            self._idle.append(connection)
        else:
            connection.smtp.close()
        self._slots.release()

    def close(self) -> None:
        for connection in self._idle:
            connection.smtp.close()
        self._idle.clear()


class LoopThread:
    """A private event loop on a daemon thread, for callers that are not async themselves."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop and wait for its result (or its exception)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._started()).result()

    def stop(self, last: Callable[[], Any] | None = None) -> None:
        """Call ``last`` on the loop, then stop it and wait for its thread."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        if last is not None:
            loop.call_soon_threadsafe(last)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
        loop.close()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=self._loop.run_forever, name=self._name, daemon=True)
                self._thread.start()
            return self._loop
