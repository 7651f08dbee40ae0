"""A shipper: reads the event log through a consumer group and writes batches to one sink.

An entry is acknowledged only once its sink wrote it (or refused it for good, then it is
set aside in ``bus:log:rejected``); a shipper that dies leaves its entries pending, and
the next one to start claims them. Together with document ids, nothing is lost or
duplicated in the sink.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any

import redis.exceptions

from bus.backend.connection import TRANSIENT_ERRORS, as_text
from bus.backoff import Backoff
from bus.keys import Keys
from bus.logger.sinks import Sink, SinkUnavailable
from bus.logger.stream import LoggedEvent, parse_entry

log = logging.getLogger("bus.logger")
REJECTED_KEEP = 10_000
CLAIM_IDLE_MS = 60_000


class Shipper:
    """Moves the event log into one sink, with retries and backoff, until ``stop`` is set."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        sink: Sink,
        *,
        batch: int = 500,
        block_ms: int = 1000,
        claim_idle_ms: int = CLAIM_IDLE_MS,
    ) -> None:
        self.redis = redis
        self.claim_idle_ms = claim_idle_ms
        self.keys = keys
        self.sink = sink
        self.batch = batch
        self.block_ms = block_ms
        self.group = sink.name
        self.consumer = f"{socket.gethostname()}:{os.getpid()}"
        self.shipped = 0
        self.rejected = 0

    def ensure_group(self) -> None:
        try:
            self.redis.xgroup_create(self.keys.event_log, self.group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def run(self, stop: threading.Event) -> None:
        backoff = Backoff(first=0.1, cap=5.0)
        while not stop.is_set():
            try:
                self.ensure_group()
                self.ship_pending(stop)
                while not stop.is_set():
                    self.ship_once(stop)
                backoff.reset()
            except TRANSIENT_ERRORS as exc:
                delay = backoff.next()
                log.warning("shipper %s: Redis unreachable (%s); retrying in %.1fs", self.group, exc, delay)
                stop.wait(delay)

    def ship_pending(self, stop: threading.Event) -> None:
        """Entries this consumer, or one idle for a minute (dead), took but never acknowledged."""
        self.redis.xautoclaim(
            self.keys.event_log, self.group, self.consumer, self.claim_idle_ms, "0-0", count=self.batch
        )
        while not stop.is_set():
            reply = self.redis.xreadgroup(self.group, self.consumer, {self.keys.event_log: "0"}, count=self.batch)
            entries = reply[0][1] if reply else []
            if not entries:
                return
            self._deliver([parse_entry(i, f) for i, f in entries if f], stop)

    def ship_once(self, stop: threading.Event) -> int:
        reply = self.redis.xreadgroup(
            self.group, self.consumer, {self.keys.event_log: ">"}, count=self.batch, block=self.block_ms
        )
        entries = reply[0][1] if reply else []
        events = [parse_entry(i, f) for i, f in entries]
        self._deliver(events, stop)
        return len(events)

    def _deliver(self, events: list[LoggedEvent], stop: threading.Event) -> None:
        backoff = Backoff(first=0.2, cap=30.0)
        while events and not stop.is_set():
            try:
                result = self.sink.write(events)
            except SinkUnavailable as exc:
                wait = max(backoff.next(), exc.retry_after or 0.0)
                log.warning("sink %s: %s; retrying %d event(s) in %.1fs", self.sink.name, exc, len(events), wait)
                stop.wait(wait)
                continue
            done = [e.entry_id for e in result.written] + [e.entry_id for e, _ in result.rejected]
            pipe = self.redis.pipeline(transaction=False)
            for event, reason in result.rejected:
                pipe.lpush(
                    self.keys.event_log_rejected,
                    json.dumps({"sink": self.sink.name, "reason": reason, "event": event.event}),
                )
            if result.rejected:
                pipe.ltrim(self.keys.event_log_rejected, 0, REJECTED_KEEP - 1)
                log.error(
                    "sink %s refused %d event(s) for good, e.g.: %s",
                    self.sink.name,
                    len(result.rejected),
                    result.rejected[0][1],
                )
            if done:
                pipe.xack(self.keys.event_log, self.group, *done)
            pipe.execute()
            self.shipped += len(result.written)
            self.rejected += len(result.rejected)
            events = result.retry
            if events:
                stop.wait(max(backoff.next(), result.retry_after or 0.0))

    def lag(self) -> int:
        """Entries not yet read by this group (0 if the group does not exist yet)."""
        return group_lag(self.redis, self.keys, self.group)


def group_lag(client: Any, keys: Keys, group: str) -> int:
    """How far a consumer group is behind: entries not yet read plus read but not acknowledged."""
    try:
        groups = client.xinfo_groups(keys.event_log)
    except redis.exceptions.ResponseError:  # no stream yet
        return 0
    for info in groups:
        if as_text(info.get("name", b"")) == group:
            lag = info.get("lag")
            pending = int(info.get("pending") or 0)
            return int(lag or 0) + pending
    return 0
