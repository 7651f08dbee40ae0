"""Kept-open SMTP connections for one provider, on one event loop.

A relay takes many messages over one connection (TLS handshake and AUTH once), so the pool
hands out an idle connection when it has one. It closes one that served
``max_messages`` (relays cap messages per connection) or sat idle ``idle_seconds`` (relays
hang up on idle clients; reusing such a connection fails at its first command). Connections
belong to the event loop they were opened on: the pool lives on one loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiosmtplib


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
