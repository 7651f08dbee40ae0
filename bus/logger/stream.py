"""The event log: a capped Redis stream of every logged event (the live feed, the shippers' source)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text
from bus.keys import Keys
from bus.safejson import read_json


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One stream entry: its id (``<ms>-<n>``, when it was logged) and the redacted event."""

    entry_id: str
    event: dict[str, Any]

    @property
    def bus_id(self) -> str:
        return str(self.event.get("bus_id") or "")

    @property
    def event_type(self) -> str:
        return str(self.event.get("bus_event_type") or "")

    @property
    def logged_at(self) -> float:
        return int(self.entry_id.split("-")[0]) / 1000

    def to_json(self) -> dict[str, Any]:
        return {"id": self.entry_id, "logged_at": self.logged_at, "event": self.event}


def entry_fields(event: dict[str, Any]) -> dict[str, str]:
    return {
        "bus_id": str(event.get("bus_id") or ""),
        "type": str(event.get("bus_event_type") or ""),
        "event": json.dumps(event, ensure_ascii=False, separators=(",", ":")),
    }


def parse_entry(entry_id: bytes | str, fields: dict[Any, Any]) -> LoggedEvent:
    raw = fields.get(b"event") or fields.get("event") or b"{}"
    try:
        event = read_json(raw)
    except ValueError:
        event = {"unreadable": as_text(raw)}
    return LoggedEvent(as_text(entry_id), event if isinstance(event, dict) else {"value": event})


class EventLog:
    """Append, read back, follow."""

    def __init__(self, redis: Any, keys: Keys, *, max_length: int) -> None:
        self.redis = redis
        self.key = keys.event_log
        self.max_length = max_length

    def append(self, pipe: Any, event: dict[str, Any]) -> None:
        """Queue an XADD on ``pipe`` (the rider's outcome pipeline: written with the job's ack)."""
        pipe.xadd(self.key, entry_fields(event), maxlen=self.max_length, approximate=True)

    def recent(
        self, *, since_ms: int | None = None, limit: int = 100, event_type: str | None = None
    ) -> list[LoggedEvent]:
        """Newest last, at most ``limit``, optionally only one type and only after ``since_ms``."""
        out: list[LoggedEvent] = []
        start = "+"
        while len(out) < limit:
            page = self.redis.xrevrange(self.key, max=start, min=f"{since_ms}-0" if since_ms else "-", count=500)
            if not page:
                break
            for entry_id, fields in page:
                logged = parse_entry(entry_id, fields)
                if event_type is None or logged.event_type == event_type:
                    out.append(logged)
                    if len(out) >= limit:
                        break
            if len(page) < 500:
                break
            start = "(" + as_text(page[-1][0])
        return list(reversed(out))

    def follow(self, *, last_id: str = "$", block_ms: int = 1000) -> Iterator[LoggedEvent | None]:
        """New entries as they arrive; ``None`` after each quiet ``block_ms`` so callers can stop."""
        while True:
            reply = self.redis.xread({self.key: last_id}, block=block_ms, count=500)
            if not reply:
                yield None
                continue
            for entry_id, fields in reply[0][1]:
                last_id = as_text(entry_id)
                yield parse_entry(entry_id, fields)

    def length(self) -> int:
        return int(self.redis.xlen(self.key))
