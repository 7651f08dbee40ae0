"""Making Redis clients from URLs, and retrying operations while Redis is unreachable."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.exceptions

from bus.errors import ConfigurationError, RedisUnavailable

log = logging.getLogger("bus.connection")
T = TypeVar("T")

# Errors after which the same call may succeed once Redis is back.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    ConnectionResetError,
)

_SUPPORTED_SCHEMES = ("redis://", "rediss://", "unix://")


def connect(url: str, *, socket_timeout: float = 30.0) -> Any:
    """A Redis client for ``url`` that returns bytes (jobs are decoded by the bus)."""
    if not url.startswith(_SUPPORTED_SCHEMES):
        raise ConfigurationError(f"unsupported Redis URL {_redact(url)!r}: expected redis://, rediss:// or unix://")
    try:
        return redis.Redis.from_url(
            url,
            socket_connect_timeout=5.0,
            socket_timeout=socket_timeout,
            socket_keepalive=True,
            health_check_interval=30,
        )
    except ValueError as exc:
        raise ConfigurationError(f"invalid Redis URL {_redact(url)!r}: {exc}") from None


def connect_async(url: str) -> Any:
    import redis.asyncio

    return redis.asyncio.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=30.0)


def with_retries(
    call: Callable[[], T],
    *,
    what: str,
    patience: float | None,
    should_stop: Callable[[], bool] = lambda: False,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``call``, retrying with backoff while Redis is unreachable.

    ``patience`` None retries until ``should_stop()``; otherwise :class:`RedisUnavailable`
    is raised once that many seconds have passed.
    """
    delay = 0.05
    started = time.monotonic()
    failures = 0
    while True:
        try:
            result = call()
            if failures:
                log.warning("Redis is reachable again; %s succeeded after %d retries", what, failures)
            return result
        except TRANSIENT_ERRORS as exc:
            failures += 1
            waited = time.monotonic() - started
            if (patience is not None and waited + delay > patience) or should_stop():
                raise RedisUnavailable(f"{what} failed: Redis unreachable for {waited:.1f}s ({exc})") from exc
            if failures == 1 or failures % 10 == 0:
                log.warning("Redis unreachable during %s (%s); retrying in %.2fs", what, exc, delay)
            sleep(delay)
            delay = min(delay * 2, 2.0)


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def redact_url(url: str) -> str:
    return _redact(url)


def _redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{scheme}://{user + ':' if user else ''}***@{host}"
