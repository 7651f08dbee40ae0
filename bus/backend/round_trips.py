"""The pipelines of concurrent tasks on one event loop, sent to Redis as one (group commit).

A switchboard keeps a hundred sends in flight on its loop, each with two pipelines of its own.
Sent one by one, every pipeline pays redis-py's fixed cost (a pooled connection taken and
given back, the retry wrapper, a write and a read of its own), more CPU than its commands.
Here the pipelines queued while a round trip is in flight wait for it to end and then go
together, on one connection, in one write: under load a round trip carries dozens of
pipelines; alone, a pipeline goes at once, as before.

The pipelines are independent, as they would be on separate connections: none is a MULTI,
and each caller gets its own replies (and its own first error). A round trip that fails
(Redis unreachable) fails every pipeline in it, and each caller handles that as it did alone.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.exceptions

Batch = list[tuple[list[Any], asyncio.Future[list[Any]]]]


ROUND_TRIP_TIMEOUT = 30.0
"""Seconds a round trip may take before its pipelines fail with a TimeoutError (Redis hung)."""


class RoundTrips:
    """Group commit for the non-transactional pipelines of one asyncio client (one loop).

    Each round trip is bounded as a whole (``timeout``), so the client may read its replies
    without a timeout of its own (``connect_async(url, socket_timeout=None)``)."""

    def __init__(self, client: Any, *, timeout: float = ROUND_TRIP_TIMEOUT) -> None:
        self.client = client
        self.timeout = timeout
        self._waiting: Batch = []
        self._flushing: asyncio.Task[None] | None = None

    async def execute(self, pipe: Any, *, raise_on_error: bool = True) -> list[Any]:
        """Send ``pipe``'s commands with those of the other waiting pipelines; its replies, in order."""
        stack = getattr(pipe, "command_stack", None)
        if stack is None:  # a cluster pipeline: it routes its commands by slot, so it goes alone
            replies: list[Any] = await pipe.execute(raise_on_error=raise_on_error)
            return replies
        if not stack:
            return []
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._waiting.append((stack, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        replies = await done
        if raise_on_error:
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
        return replies

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                merged = self.client.pipeline(transaction=False)
                for stack, _ in batch:
                    merged.command_stack.extend(stack)
                try:
                    async with asyncio.timeout(self.timeout):
                        replies = await merged.execute(raise_on_error=False)
                except TimeoutError:
                    _fail(batch, redis.exceptions.TimeoutError(f"Redis did not answer in {self.timeout:g}s"))
                    continue
                except Exception as exc:  # noqa: BLE001 - handed to every pipeline of the round trip
                    _fail(batch, exc)
                    continue
                except BaseException:
                    _fail(batch, _cancelled())
                    raise
                _settle(batch, replies)
        finally:
            self._flushing = None
            if self._waiting:  # queued while this task was being cancelled (the loop is ending)
                _fail(self._waiting, _cancelled())
                self._waiting = []


def _settle(batch: Batch, replies: list[Any]) -> None:
    at = 0
    for stack, done in batch:
        if not done.done():  # its caller was cancelled
            done.set_result(replies[at : at + len(stack)])
        at += len(stack)


def _cancelled() -> Exception:
    return redis.exceptions.ConnectionError("the round trip was cancelled before Redis answered")


def _fail(batch: Batch, error: Exception) -> None:
    for _, done in batch:
        if not done.done():
            done.set_exception(error)
