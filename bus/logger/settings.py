"""The logger's settings: the ``[logger]`` table of ``settings.toml`` plus environment secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from bus.errors import ConfigurationError
from bus.settings_loader import SettingsTable, load

SINKS = ("redis", "file", "elasticsearch")
LOGGER_TABLE = SettingsTable(
    "logger",
    {
        "BUS_LOGGER_ES_URL": "elasticsearch.url",
        "BUS_LOGGER_ES_API_KEY": "elasticsearch.api_key",
        "BUS_LOGGER_ES_USERNAME": "elasticsearch.username",
        "BUS_LOGGER_ES_PASSWORD": "elasticsearch.password",
    },
)
DEFAULT_REDACT = ("password", "password_confirmation", "token", "secret", "api_key", "authorization", "card_number")


@dataclass(frozen=True, slots=True)
class FileSinkSettings:
    """JSON lines, one event per line, rotated by size."""

    path: Path = Path("var/log/bus-events.jsonl")
    max_bytes: int = 50_000_000
    backups: int = 5


@dataclass(frozen=True, slots=True)
class ElasticsearchSinkSettings:
    """Elasticsearch or OpenSearch through ``_bulk``; documents are keyed by ``bus_id``."""

    url: str = "http://127.0.0.1:9200"
    index: str = "bus-events-%Y.%m.%d"
    """Index name; strftime codes take the event's publish date, so a document always lands in the same index."""
    batch_size: int = 500
    flush_interval: float = 1.0
    timeout: float = 10.0
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LoggerSettings:
    """What the logger records, where, and how much it keeps."""

    app_key: str = "bus_logger"
    sinks: tuple[str, ...] = ("redis",)
    include: tuple[str, ...] = ()
    """Event types to log (``fnmatch`` patterns); empty: every type."""
    exclude: tuple[str, ...] = ("heartbeat_minutes",)
    redact: tuple[str, ...] = DEFAULT_REDACT
    """Attribute names (any depth, any case) whose values are replaced before anything is written."""
    stream_length: int = 100_000
    """Events kept in the Redis stream ``bus:log`` (approximate cap)."""
    backpressure: float = 0.8
    """Fraction of ``stream_length`` a shipper may lag before the logger stops taking new events."""
    file: FileSinkSettings = field(default_factory=FileSinkSettings)
    elasticsearch: ElasticsearchSinkSettings = field(default_factory=ElasticsearchSinkSettings)

    def __post_init__(self) -> None:
        unknown = set(self.sinks) - set(SINKS)
        if unknown:
            raise ConfigurationError(f"logger.sinks: unknown sink(s) {', '.join(sorted(unknown))}; use {SINKS}")
        if "redis" not in self.sinks:  # always on: the other sinks ship from its stream
            object.__setattr__(self, "sinks", ("redis", *self.sinks))
        if self.stream_length <= 0:
            raise ConfigurationError("logger.stream_length must be positive")
        if not 0 < self.backpressure <= 1:
            raise ConfigurationError("logger.backpressure must be in (0, 1]")


def load_logger_settings(path: str | Path | None = None, *, environ: Mapping[str, str] | None = None) -> LoggerSettings:
    """``[logger]`` of the settings file, then the Elasticsearch credentials from the environment."""
    return load(LoggerSettings, LOGGER_TABLE, path, environ=environ)
