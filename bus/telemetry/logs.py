"""Log lines for people (text) or for log pipelines (one JSON object per line), chosen at start.

A JSON line carries time, level, logger and message, plus what correlates it with the rest of
the system when known: the ``bus_id`` of the event a handler is riding, and the OpenTelemetry
trace and span ids. Filters on the handler (the switchboard's secret redaction) still apply:
only the formatter changes.
"""

from __future__ import annotations

import logging
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
