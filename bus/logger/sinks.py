"""Where logged events are shipped: JSON-lines files with rotation, and Elasticsearch ``_bulk``.

A sink writes a batch and says, per event, what happened: written, refused for good
(acknowledged and set aside), or worth another try (kept for the shipper's retry).
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bus.backend.connection import redact_url
from bus.errors import BusError, ConfigurationError
from bus.logger.settings import ElasticsearchSinkSettings, FileSinkSettings
from bus.logger.stream import LoggedEvent

log = logging.getLogger("bus.logger")


class SinkUnavailable(BusError):
    """The sink cannot take anything right now (down, rate limited); ``retry_after`` when it said."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class WriteResult:
    written: list[LoggedEvent] = field(default_factory=list)
    rejected: list[tuple[LoggedEvent, str]] = field(default_factory=list)
    retry: list[LoggedEvent] = field(default_factory=list)
    retry_after: float | None = None


class Sink(Protocol):
    name: str

    def write(self, events: list[LoggedEvent]) -> WriteResult: ...


def document(logged: LoggedEvent) -> dict[str, Any]:
    """The document a sink stores: the redacted event plus when it happened and was logged."""
    published = logged.event.get("bus_published_at")
    moment = published if isinstance(published, int | float) else logged.logged_at
    return {
        "@timestamp": datetime.fromtimestamp(moment, UTC).isoformat(),
        "logged_at": datetime.fromtimestamp(logged.logged_at, UTC).isoformat(),
        **logged.event,
    }


class FileSink:
    """Appends one JSON document per line; rotates ``path`` -> ``path.1`` ... past ``max_bytes``."""

    name = "file"

    def __init__(self, settings: FileSinkSettings) -> None:
        self.settings = settings
        settings.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, events: list[LoggedEvent]) -> WriteResult:
        lines = [(json.dumps(document(e), ensure_ascii=False) + "\n").encode() for e in events]
        path = self.settings.path
        size = path.stat().st_size if path.exists() else 0
        chunk: list[bytes] = []
        for line in lines:
            if size and size + len(line) > self.settings.max_bytes:
                self._append(chunk)
                self._rotate()
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        self._append(chunk)
        return WriteResult(written=list(events))

    def _append(self, lines: list[bytes]) -> None:
        if not lines:
            return
        with open(self.settings.path, "ab") as fh:
            fh.write(b"".join(lines))
            fh.flush()
            os.fsync(fh.fileno())

    def _rotate(self) -> None:
        path, backups = self.settings.path, self.settings.backups
        for n in range(backups - 1, 0, -1):
            older = Path(f"{path}.{n}")
            if older.exists():
                older.replace(f"{path}.{n + 1}")
        if backups > 0:
            path.replace(f"{path}.1")
        else:
            path.unlink()


class ElasticsearchSink:
    """``POST /_bulk`` with each event's ``bus_id`` as the document id: a retry never duplicates."""

    name = "elasticsearch"

    def __init__(self, settings: ElasticsearchSinkSettings) -> None:
        shown = redact_url(settings.url)
        if not settings.url.startswith(("http://", "https://")):
            raise ConfigurationError(f"logger.elasticsearch.url must be http(s)://, got {shown!r}")
        if "@" in settings.url:
            raise ConfigurationError(
                f"logger.elasticsearch.url {shown!r} holds credentials: "
                "set logger.elasticsearch.username and password (or api_key) instead"
            )
        try:
            urllib.parse.urlsplit(settings.url).port  # noqa: B018 - raises on a bad port
        except ValueError as exc:
            raise ConfigurationError(f"invalid logger.elasticsearch.url {shown!r}: {exc}") from None
        self.settings = settings
        self.url = settings.url.rstrip("/") + "/_bulk"

    def write(self, events: list[LoggedEvent]) -> WriteResult:
        if not events:
            return WriteResult()
        try:
            reply = self._post(self._body(events))
        except urllib.error.HTTPError as exc:
            return self._http_error(exc, events)
        except (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError) as exc:
            raise SinkUnavailable(f"elasticsearch unreachable: {getattr(exc, 'reason', exc)}") from None
        return self._items(events, reply)

    def _body(self, events: list[LoggedEvent]) -> bytes:
        lines = []
        for e in events:
            doc = document(e)
            index = datetime.fromisoformat(doc["@timestamp"]).strftime(self.settings.index)
            lines.append(json.dumps({"index": {"_index": index, "_id": e.bus_id or e.entry_id}}))
            lines.append(json.dumps(doc, ensure_ascii=False))
        return ("\n".join(lines) + "\n").encode()

    def _post(self, body: bytes) -> dict[str, Any]:
        request = urllib.request.Request(self.url, data=body, method="POST")  # noqa: S310 - http(s) checked
        request.add_header("Content-Type", "application/x-ndjson")
        s = self.settings
        if s.api_key:
            request.add_header("Authorization", f"ApiKey {s.api_key}")
        elif s.username and s.password:
            token = base64.b64encode(f"{s.username}:{s.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=s.timeout) as response:  # noqa: S310 - configured URL
            reply: dict[str, Any] = json.loads(response.read() or b"{}")
            return reply

    def _http_error(self, exc: urllib.error.HTTPError, events: list[LoggedEvent]) -> WriteResult:
        retry_after = _seconds(exc.headers.get("Retry-After")) if exc.headers else None
        if exc.code == 429 or exc.code >= 500:
            raise SinkUnavailable(f"elasticsearch answered {exc.code}", retry_after) from None
        if exc.code == 413 and len(events) > 1:
            half = len(events) // 2
            first, second = self.write(events[:half]), self.write(events[half:])
            return WriteResult(
                first.written + second.written, first.rejected + second.rejected, first.retry + second.retry
            )
        if exc.code in (401, 403):
            raise SinkUnavailable(f"elasticsearch refused our credentials ({exc.code}); fix [logger.elasticsearch]")
        return WriteResult(rejected=[(e, f"bulk request refused with {exc.code}") for e in events])

    @staticmethod
    def _items(events: list[LoggedEvent], reply: dict[str, Any]) -> WriteResult:
        result = WriteResult()
        items = reply.get("items") or []
        if len(items) != len(events):
            raise SinkUnavailable(f"elasticsearch answered {len(items)} items for {len(events)} documents")
        for event, item in zip(events, items, strict=True):
            outcome = next(iter(item.values())) if isinstance(item, dict) and item else {}
            status = int(outcome.get("status", 0))
            if 200 <= status < 300:
                result.written.append(event)
            elif status == 429 or status >= 500:
                result.retry.append(event)
            else:
                error = outcome.get("error") or {}
                reason = f"{status} {error.get('type', '')}: {error.get('reason', '')}".strip()
                result.rejected.append((event, reason))
        return result


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None
