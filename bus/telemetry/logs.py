"""Log lines for people (text) or for log pipelines (one JSON object per line), chosen at start.

A JSON line carries time, level, logger and message, plus what correlates it with the rest of
the system when known: the ``bus_id`` of the event a handler is riding, and the OpenTelemetry
trace and span ids. Filters on the handler (the switchboard's secret redaction) still apply:
only the formatter changes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson

from bus.errors import ConfigurationError
from bus.pipeline.rider import ride_in_progress
from bus.telemetry import otel

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ride = ride_in_progress()
        bus_id = getattr(record, "bus_id", None) or (ride.attributes.get("bus_id") if ride is not None else None)
        if isinstance(bus_id, str):
            entry["bus_id"] = bus_id
        ids = otel.current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return orjson.dumps(entry, default=str).decode()


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ConfigurationError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")


def configure_logging(level: int, log_format: str = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (handlers already there keep their filters)."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level)
    root.setLevel(level)
    use_format(log_format)


def use_format(log_format: str) -> None:
    """Switch every root handler to ``log_format`` (the ``[bus] log_format`` setting, read later)."""
    formatter = formatter_for(log_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)


# Credentials that can show up in any library's debug output whatever we configured: HTTP
# authorization headers (as text or as a dict's repr), SendGrid keys, PEM private keys.
_CREDENTIAL_PATTERNS = (
    re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?\s*)(?:bearer|basic|token)\s+[^\s'\",}]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]{12,}"),
    re.compile(r"(SG)\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
    re.compile(r"(-----BEGIN [A-Z ]*PRIVATE KEY-----)[^-]*(?:-----END [A-Z ]*PRIVATE KEY-----)?"),
)
MIN_SECRET_LENGTH = 6
"""Shorter values are not looked for: they would match ordinary words."""


class SecretRedaction(logging.Filter):
    """Replaces every configured secret, and anything shaped like a credential, in a record's
    message and traceback before any handler writes it (attach it to the handlers)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True)
        self.cleaners: list[Callable[[str], str]] = []
        """More rewriting an app adds (the switchboard masks recipients)."""

    def add(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted(
            {*self.secrets, *(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)}, key=len, reverse=True
        )

    def clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        for pattern in _CREDENTIAL_PATTERNS:
            text = pattern.sub(lambda m: f"{m.group(1)}[redacted]", text)
        for cleaner in self.cleaners:
            text = cleaner(text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.exc_info:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        record.msg, record.args = self.clean(message), None
        if record.exc_text:
            record.exc_text = self.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = self.clean(record.stack_info)
        return True


def redact_logs(secrets: Iterable[str], cleaner: Callable[[str], str] | None = None) -> SecretRedaction:
    """Make every root handler redact ``secrets`` (added to those already redacted), and pass each
    line through ``cleaner`` too; returns the filter."""
    handlers = logging.getLogger().handlers
    redaction = (
        next((f for handler in handlers for f in handler.filters if isinstance(f, SecretRedaction)), None)
        or SecretRedaction()
    )
    redaction.add(secrets)
    if cleaner is not None and cleaner not in redaction.cleaners:
        redaction.cleaners.append(cleaner)
    for handler in handlers:
        if redaction not in handler.filters:
            handler.addFilter(redaction)
    return redaction


WIRE_LOGGERS = ("python_http_client", "urllib3", "requests", "twilio.http_client", "google.auth", "aiohttp", "httpx")
"""Libraries that log every request (headers, bodies): quiet unless asked for with -vvv."""


def quiet_wire_loggers() -> None:
    for name in WIRE_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
