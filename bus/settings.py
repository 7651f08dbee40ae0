"""Typed settings for the bus, loaded at the edge from ``settings.toml`` and the environment.

Library code receives a :class:`BusSettings`; only :func:`load_settings` looks at files
and environment variables. Precedence: explicit overrides (CLI flags) > environment >
settings file > defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bus.context import LocalMode, parse_local_mode
from bus.errors import ConfigurationError
from bus.pipeline.subscription import Retry
from bus.settings_loader import SettingsTable, apply, load


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """How workers reserve, heartbeat, recover and stop."""

    batch_size: int = 50
    concurrency: int = 1
    heartbeat_interval: float = 5.0
    dead_after: float = 30.0
    recovery_interval: float = 5.0
    max_crashes: int = 3
    shutdown_grace: float = 30.0
    idle_wait: float = 1.0
    retry_poll_interval: float = 1.0
    subscriptions_max_age: float = 2.0
    linger: float = 0.01
    """Seconds a worker whose jobs are running gathers their outcomes after a round trip before the
    next, so acks, fan-out and the next reservation travel together (0: a trip per outcome)."""

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            zero_ok = f.name == "linger"  # 0 turns it off
            if not is_number or value < 0 or (value == 0 and not zero_ok):
                wanted = "0 or a positive number" if zero_ok else "a positive number"
                raise ConfigurationError(f"worker.{f.name} must be {wanted}, got {value!r}")
        if self.dead_after <= self.heartbeat_interval:
            raise ConfigurationError("worker.dead_after must be longer than worker.heartbeat_interval")


MAX_REPLICA_TIMEOUT = 10.0
"""Well under the client's socket timeout (30 s): a WAIT outlasting it would be sent again."""
MAX_FLUSH_INTERVAL = 60.0
"""Traces held longer would show events as untraced for too long (and lose more on kill -9)."""


@dataclass(frozen=True, slots=True)
class ObserveSettings:
    """Tracing and live metrics, recorded by workers with each batch's outcome."""

    tracing: bool = True
    """Record each event's path: driven where, each ride's outcome and time (``bus trace``)."""
    trace_sample: float = 0.2
    """Share of events traced (chosen by ``bus_id``, so an event is traced everywhere or nowhere).

    Retries and failures are traced whatever the sample. 1.0 traces every event, for ~40% more
    worker CPU per event (the end-to-end benchmark runs at ~0.7x of both off); 0.2 keeps it near 0.87x.
    """
    trace_ttl: float = 600.0
    """Seconds a trace is kept: about 1.1 KB of Redis memory per traced event (~1.1 GB per million)."""
    metrics: bool = True
    """Counts per event type, and publish-to-handler latency per subscription (``bus stats``, /metrics)."""
    flush_interval: float = 1.0
    """Seconds a worker holds traces and metrics before writing them, in one round trip with
    its next batch: they cost a write per interval, not per batch, and never delay a job.
    A worker killed with -9 loses what it held; 0 writes them with every batch."""
    precise_publish_time: bool = False
    """Also stamp ``bus_published_at_ms`` on published events, for millisecond latency figures
    (an extra attribute Ruby and Node ignore; off, latency is measured to the second)."""

    def __post_init__(self) -> None:
        if not 0 <= self.trace_sample <= 1:
            raise ConfigurationError("observe.trace_sample must be between 0 and 1")
        if not 0 <= self.flush_interval <= MAX_FLUSH_INTERVAL:
            raise ConfigurationError(f"observe.flush_interval must be between 0 and {MAX_FLUSH_INTERVAL:g} seconds")
        if self.trace_ttl <= 0:
            raise ConfigurationError("observe.trace_ttl must be positive")
        if self.flush_interval >= self.trace_ttl:
            raise ConfigurationError("observe.flush_interval must be shorter than observe.trace_ttl")


@dataclass(frozen=True, slots=True)
class BusSettings:
    """Everything a :class:`bus.Bus` needs to know about its environment."""

    redis_url: str | None = None
    """None: use the embedded server under ``data_dir``."""
    namespace: str = "resque"
    data_dir: Path = Path("var")
    local_mode: LocalMode | None = field(
        default=None, metadata={"parse": lambda value: parse_local_mode(value or None)}
    )
    hostname: str | None = None
    environment: str = "production"
    """``development`` or ``test`` caps heartbeat back-fill, as queue-bus does."""
    log_format: str = "text"
    """How long-running commands log: ``text`` for people, ``json`` (one object per line, with
    bus_id and OpenTelemetry trace/span ids when known) for log pipelines; ``--log-format`` wins."""
    max_event_bytes: int = 1_048_576
    """The largest event (its JSON, in bytes) the bus carries: ``publish`` refuses a bigger one
    with InvalidEvent, and a worker sends a bigger job from another publisher to the failed
    list, keeping only its ``bus_id`` and type (the failed list stays small)."""
    publish_timeout: float = 30.0
    """How long ``publish`` keeps retrying an unreachable Redis before raising."""
    publish_replicas: int = 0
    """Replicas that must hold a published event before ``publish`` returns (Redis ``WAIT``).

    Replication is asynchronous: with 0, an event acknowledged by a master that dies before
    its replica got it is lost in the failover. 1 closes that window on Sentinel and Cluster
    for about one more replication round trip per publish (on a cluster, drivers also wait
    for the replicas of the queues they fan out to before they acknowledge an event)."""
    publish_replica_timeout: float = 1.0
    """Seconds a publish waits for those replicas (at most 10); then it returns and logs a warning."""
    worker: WorkerSettings = field(default_factory=WorkerSettings)
    retry: Retry = field(default_factory=Retry)
    observe: ObserveSettings = field(default_factory=ObserveSettings)

    def __post_init__(self) -> None:
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(f"bus.log_format must be text or json, got {self.log_format!r}")
        if self.max_event_bytes < 1024:
            raise ConfigurationError("bus.max_event_bytes must be at least 1024")
        if self.publish_replicas < 0:
            raise ConfigurationError("bus.publish_replicas must not be negative")
        if not 0 < self.publish_replica_timeout <= MAX_REPLICA_TIMEOUT:
            raise ConfigurationError(
                f"bus.publish_replica_timeout must be between 0 and {MAX_REPLICA_TIMEOUT:g} seconds"
            )

    def with_overrides(self, **overrides: Any) -> BusSettings:
        return apply(self, {k: v for k, v in overrides.items() if v is not None}, "override", table="bus")


BUS_TABLE = SettingsTable(
    "bus",
    {
        "BUS_REDIS_URL": "redis_url",
        "BUS_NAMESPACE": "namespace",
        "BUS_DATA_DIR": "data_dir",
        "BUS_LOCAL_MODE": "local_mode",
        "BUS_ENV": "environment",
        "BUS_PUBLISH_REPLICAS": "publish_replicas",
        "BUS_LOG_FORMAT": "log_format",
    },
)


def load_settings(
    path: str | Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> BusSettings:
    """Settings from the file (``$BUS_SETTINGS`` or ``./settings.toml``), env, then overrides."""
    return load(BusSettings, BUS_TABLE, path, environ=environ, overrides=overrides)
