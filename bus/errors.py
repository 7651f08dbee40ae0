"""The bus's exceptions: one small tree, so callers can catch exactly what they mean."""

from __future__ import annotations


class BusError(Exception):
    """Base of every error the bus raises on purpose."""


class ConfigurationError(BusError):
    """Settings, a URL or a CLI option that cannot work as given."""


class InvalidSubscription(BusError):
    """An app key, queue name, matcher or handler rejected at declaration time."""


class InvalidEvent(BusError):
    """An event type or attributes that cannot be published (nothing was written)."""


class RetryLater(BusError):
    """Raised by a handler: try this job again after ``delay`` seconds (it counts as an attempt).

    For waits the handler knows better than the backoff policy, e.g. a provider's Retry-After.
    """

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class Reject(BusError):
    """Raised by a handler: this job can never succeed; record it as failed without retrying."""


class MalformedJob(BusError):
    """A job read from Redis that is not a bus job (bad JSON, missing fields)."""


class UnknownSubscription(BusError):
    """A driven job names an app or subscription this process does not handle."""


class PoisonJob(BusError):
    """A job that killed its worker too many times; it is moved to failed, not run again."""


class RedisUnavailable(BusError):
    """Redis could not be reached within the configured patience; nothing was acknowledged."""


class RedisRefused(BusError):
    """Redis answered but refused us (wrong password, no such database, no permission): retrying
    cannot help, so it is raised at once, never waited out like an outage."""


class EmbeddedServerError(BusError):
    """The embedded Redis/Valkey server could not be found or started."""
