"""Making Redis clients from URLs, and retrying operations while Redis is unreachable.

Three topologies, one API: a single server (``redis://``, ``rediss://``, ``unix://``),
Redis Cluster (``redis+cluster://host:port,host:port/``) and Sentinel
(``redis+sentinel://host:port,host:port/service_name/db``). Code that needs to know which
one it talks to asks :func:`is_cluster`: only a cluster refuses multi-key steps across slots.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

import redis
import redis.cluster
import redis.exceptions
import redis.sentinel

from bus.backend.packing import pack_fast
from bus.backoff import Backoff
from bus.errors import BusError, ConfigurationError, RedisRefused, RedisUnavailable

log = logging.getLogger("bus.connection")
T = TypeVar("T")

# Errors after which the same call may succeed once Redis is back.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.ClusterError,  # redis-py's "TTL exhausted" after TRYAGAIN/MOVED storms
    ConnectionResetError,
)

# Errors that mean Redis answered and said no: never retried (AuthenticationError is a
# ConnectionError to redis-py, so these are checked first).
REFUSALS: tuple[type[Exception], ...] = (
    redis.exceptions.AuthenticationError,
    redis.exceptions.AuthorizationError,
    redis.exceptions.NoPermissionError,
)

_SINGLE_SCHEMES = ("redis://", "rediss://", "unix://")
CLUSTER_SCHEME = "redis+cluster://"
SENTINEL_SCHEME = "redis+sentinel://"
_OPTIONS: dict[str, Any] = {"socket_connect_timeout": 5.0, "socket_keepalive": True}
# (redis-py leaves ClusterNode, Sentinel and master_for untyped: hence the ignores below.)


@dataclass(frozen=True, slots=True)
class Topology:
    """A parsed bus URL: which kind of deployment, its addresses and credentials."""

    kind: str  # "single", "cluster" or "sentinel"
    url: str
    addresses: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def parse_url(url: str) -> Topology:
    """Check a bus URL and say what it points at; errors name the URL without its password."""
    prefix, _, rest = url.partition("://")
    creds, after = _split_userinfo(prefix, rest)
    if any(c in creds for c in "/?#"):
        raise ConfigurationError(
            f"the user name or password in {redact_url(url)!r} holds '/', '?' or '#': "
            "percent-encode them (%2F, %3F, %23; and @ as %40)"
        )
    if url.startswith(_SINGLE_SCHEMES):
        if prefix in ("redis", "rediss"):
            _check_database(url, after)
        return Topology("single", url)
    for scheme, kind in ((CLUSTER_SCHEME, "cluster"), (SENTINEL_SCHEME, "sentinel")):
        if url.startswith(scheme):
            return _parse_multi(url, scheme, kind, creds, after)
    raise ConfigurationError(
        f"unsupported Redis URL {redact_url(url)!r}: expected redis://, rediss://, unix://, "
        "redis+cluster://host:port,host:port/ or redis+sentinel://host:port,.../service/db"
    )


def _check_database(url: str, rest: str) -> None:
    """``redis://host:port/<db>``: the database must be a number (redis-py would quietly use 0)."""
    path = rest.split("?", 1)[0].split("#", 1)[0]
    _, slash, db = path.partition("/")
    db = db.rstrip("/")
    if slash and db and not (db.isascii() and db.isdigit()):
        raise ConfigurationError(f"{redact_url(url)!r}: the database {db!r} is not a number (redis://host:port/0)")


def _parse_multi(url: str, scheme: str, kind: str, creds: str, rest: str) -> Topology:
    """``rest``: what follows the userinfo ``creds`` of ``url``."""
    if "?" in rest or "#" in rest:
        raise ConfigurationError(
            f"{redact_url(url)!r}: a {scheme} URL takes no query parameters; "
            "put the user name and password before the @"
        )
    hosts, _, path = rest.partition("/")
    addresses = []
    for item in hosts.split(","):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"invalid address {item!r} in {redact_url(url)!r}: expected host:port")
        addresses.append((host, int(port)))
    username, _, password = (unquote(part) for part in creds.partition(":"))
    parts = [p for p in path.split("/") if p]
    service, db = "", 0
    if kind == "sentinel":
        if not parts:
            raise ConfigurationError(f"{redact_url(url)!r} needs the Sentinel service name: {scheme}h:p,h:p/mymaster")
        service = parts[0]
        if len(parts) > 1 and not (parts[1].isascii() and parts[1].isdigit()):
            raise ConfigurationError(f"{redact_url(url)!r}: the database {parts[1]!r} is not a number")
        db = int(parts[1]) if len(parts) > 1 else 0
    elif parts:
        raise ConfigurationError(f"{redact_url(url)!r}: a cluster has no databases; drop the path")
    return Topology(kind, url, tuple(addresses), service, db, username or None, password or None)


def connect(url: str, *, socket_timeout: float = 30.0) -> Any:
    """A Redis client for ``url`` that returns bytes (jobs are decoded by the bus)."""
    topology = parse_url(url)
    try:
        if topology.kind == "cluster":
            nodes = [redis.cluster.ClusterNode(host, port) for host, port in topology.addresses]  # type: ignore[no-untyped-call]
            return redis.cluster.RedisCluster(
                startup_nodes=nodes,
                username=topology.username,
                password=topology.password,
                socket_timeout=socket_timeout,
                **_OPTIONS,
            )
        if topology.kind == "sentinel":
            sentinel = redis.sentinel.Sentinel(list(topology.addresses), socket_timeout=5.0, **_OPTIONS)  # type: ignore[no-untyped-call, unused-ignore]
            return pack_fast(
                sentinel.master_for(  # type: ignore[no-untyped-call, unused-ignore]
                    topology.service,
                    db=topology.db,
                    username=topology.username,
                    password=topology.password,
                    socket_timeout=socket_timeout,
                    health_check_interval=30,
                    **_OPTIONS,
                )
            )
        return pack_fast(redis.Redis.from_url(url, socket_timeout=socket_timeout, health_check_interval=30, **_OPTIONS))
    except ValueError as exc:
        # redis-py's reason may quote a piece of the password: say it only for URLs without one.
        shown = redact_url(url)
        reason = "check the host, port and database, and percent-encode the password" if shown != url else exc
        raise ConfigurationError(f"invalid Redis URL {shown!r}: {reason}") from None


def connect_async(url: str, *, socket_timeout: float | None = 30.0) -> Any:
    """An asyncio client for ``url``. ``socket_timeout`` None: no bound per reply, for callers
    that bound a whole exchange themselves (redis-py opens a timeout context for every reply
    it reads, a timer set and cancelled each time)."""
    import redis.asyncio
    import redis.asyncio.cluster
    import redis.asyncio.sentinel

    topology = parse_url(url)
    if topology.kind == "cluster":
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in topology.addresses]
        return redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, username=topology.username, password=topology.password, socket_timeout=socket_timeout
        )
    if topology.kind == "sentinel":
        sentinel = redis.asyncio.sentinel.Sentinel(list(topology.addresses), socket_timeout=5.0)  # type: ignore[no-untyped-call, unused-ignore]
        master = sentinel.master_for(
            topology.service, db=topology.db, username=topology.username, password=topology.password
        )
        return pack_fast(master)
    return pack_fast(redis.asyncio.Redis.from_url(url, socket_connect_timeout=5.0, socket_timeout=socket_timeout))


_CLUSTER_TYPES: dict[type, bool] = {}


def is_cluster(client: Any) -> bool:
    """True for a Redis Cluster client: multi-key steps must then stay within one slot.

    Asked several times per send; redis-py's client classes derive from a ``Protocol``, whose
    ``isinstance`` is slow, so the answer is kept per class."""
    kind = type(client)
    answer = _CLUSTER_TYPES.get(kind)
    if answer is None:
        answer = _CLUSTER_TYPES[kind] = isinstance(client, redis.cluster.RedisCluster)
    return answer


def pipe_eval(pipe: Any, script: str, keys: Sequence[str], *args: Any) -> None:
    """Queue an EVAL on a pipeline; the one spelling both plain and cluster pipelines accept."""
    pipe.execute_command("EVAL", script, len(keys), *keys, *args)


def disconnect(client: Any) -> None:
    """Drop every pooled connection (after a signal interrupted one mid-reply)."""
    if is_cluster(client):
        client.disconnect_connection_pools()
    else:
        client.connection_pool.disconnect()


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
    attempts = _Attempts(what, patience, should_stop)
    while True:
        try:
            return attempts.succeeded(call())
        except REFUSALS as exc:
            raise redis_problem(exc) from None
        except TRANSIENT_ERRORS as exc:
            sleep(attempts.failed(exc))


async def awith_retries(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    patience: float | None,
    should_stop: Callable[[], bool] = lambda: False,
) -> T:
    """:func:`with_retries` for a coroutine, waiting on the event loop."""
    attempts = _Attempts(what, patience, should_stop)
    while True:
        try:
            return attempts.succeeded(await call())
        except REFUSALS as exc:
            raise redis_problem(exc) from None
        except TRANSIENT_ERRORS as exc:
            await asyncio.sleep(attempts.failed(exc))


class _Attempts:
    """The bookkeeping of a retried Redis call: backoff, patience, what the log says."""

    def __init__(self, what: str, patience: float | None, should_stop: Callable[[], bool]) -> None:
        self.what = what
        self.patience = patience
        self.should_stop = should_stop
        self.backoff = Backoff(first=0.05, cap=2.0)
        self.started = time.monotonic()
        self.failures = 0

    def succeeded(self, result: T) -> T:
        if self.failures:
            log.warning("Redis is reachable again; %s succeeded after %d retries", self.what, self.failures)
        return result

    def failed(self, exc: BaseException) -> float:
        """How long to wait before the next try; raises RedisUnavailable when patience ran out."""
        self.failures += 1
        waited = time.monotonic() - self.started
        if (self.patience is not None and waited >= self.patience) or self.should_stop():
            raise RedisUnavailable(f"{self.what} failed: Redis unreachable for {waited:.1f}s ({exc})") from exc
        delay = self.backoff.next()
        if self.failures == 1 or self.failures % 10 == 0:
            log.warning("Redis unreachable during %s (%s); retrying in %.2fs", self.what, exc, delay)
        # The last wait ends at the deadline, for one more try there.
        return delay if self.patience is None else min(delay, self.patience - waited)


def redis_problem(exc: BaseException, url: str | None = None) -> BusError:
    """What went wrong talking to Redis, in one line a person can act on (the URL redacted)."""
    at = f" at {redact_url(url)}" if url else ""
    text = str(exc)
    if isinstance(exc, redis.exceptions.AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH")):
        return RedisRefused(f"Redis{at}: authentication failed: check the user name and password")
    if isinstance(exc, redis.exceptions.NoPermissionError | redis.exceptions.AuthorizationError):
        return RedisRefused(f"Redis{at}: the user has no permission for this ({text.splitlines()[0][:200]})")
    if "DB index is out of range" in text or "invalid DB index" in text:
        return RedisRefused(f"Redis{at}: no such database (the server has fewer databases than the URL asks for)")
    if isinstance(exc, RedisUnavailable | RedisRefused):
        return exc if not at or at in text else type(exc)(f"{exc}{at}")
    if isinstance(exc, TRANSIENT_ERRORS):
        reason = text.splitlines()[0][:200] if text else type(exc).__name__
        return RedisUnavailable(f"Redis unreachable{at}: {reason}")
    return RedisUnavailable(f"Redis{at} failed: {type(exc).__name__}: {text.splitlines()[0][:200] if text else ''}")


def as_text(value: bytes | str) -> str:
    """A Redis reply as text (clients here return bytes)."""
    return value.decode() if isinstance(value, bytes) else value


def redact_url(url: str) -> str:
    """The URL without its password, for messages, logs and pages.

    Hides the password of ``user:password@`` (also one holding an unencoded ``/``, ``?`` or
    ``#``) and the value of every query parameter whose name says it is secret
    (``password``, ``sentinel_password``, ``client_secret``...).
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    creds, after = _split_userinfo(scheme, rest)
    if ":" in creds:  # a user name alone is no secret
        user = creds.split(":", 1)[0]
        rest = f"{user + ':' if user else ''}***@{after}"
    rest, question, query = rest.partition("?")
    if question:
        query = "&".join(_redact_parameter(part) for part in query.split("&"))
    return f"{scheme}://{rest}{question}{query}"


def url_password(url: str | None) -> str:
    """The password a Redis URL carries (in its userinfo or a secret query parameter), or "":
    what log redaction must look for."""
    if not url:
        return ""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return ""
    creds, _ = _split_userinfo(scheme, rest)
    if ":" in creds:
        return unquote(creds.split(":", 1)[1])
    for part in rest.partition("?")[2].split("&"):
        name, equals, value = part.partition("=")
        if equals and _SECRET_PARAMETER.search(unquote(name)):
            return unquote(value)
    return ""


def _split_userinfo(scheme: str, rest: str) -> tuple[str, str]:
    """``(userinfo, the rest)`` of what follows ``scheme://``; userinfo is "" when there is none.

    Lenient on purpose, so that a password someone forgot to percent-encode is still found
    (and hidden, and refused): the userinfo ends at the last ``@`` that is not inside a query
    value (``?client_name=a@b``). A socket path (``unix://u:p@/run/x@y.sock``) starts at the
    first ``@/``; a URL whose authority is empty (``unix:///...``, ``redis:///0``) has none.
    """
    if rest.startswith("/"):
        return "", rest
    if scheme == "unix":
        at = rest.find("@/")
        return (rest[:at], rest[at + 1 :]) if at >= 0 else ("", rest)
    at = len(rest)
    while (at := rest.rfind("@", 0, at)) >= 0:
        if not _in_query_value(rest, at) or _TARGET.fullmatch(rest[at + 1 :]):
            return rest[:at], rest[at + 1 :]
    return "", rest


def _in_query_value(rest: str, at: int) -> bool:
    """True if ``rest[at]`` sits in a ``name=value`` of a query that follows a real host list."""
    question = rest.rfind("?", 0, at)
    if question < 0:
        return False
    start = max(question, rest.rfind("&", question, at)) + 1
    return "=" in rest[start:at] and bool(_LOCATION.fullmatch(rest[:question]))


_HOST = r"(?:\[[^\]]*\]|[^:,\[\]@/?#]+)"
_ADDRESSES = rf"{_HOST}(?::\d+)?(?:,\s*{_HOST}(?::\d+)?)*"
_HOSTS_WITH_PORTS = rf"{_HOST}:\d+(?:,\s*{_HOST}:\d+)*"
_PATH = r"/[^@?#]*"
_LOCATION = re.compile(rf"(?:.*@)?{_ADDRESSES}(?:{_PATH})?")
# What follows the userinfo of a URL whose password holds an unencoded "?...=": hosts with
# a port or a path, as a query value such as "/etc/a@b.pem" or "a@b" never looks.
_TARGET = re.compile(rf"(?:{_HOSTS_WITH_PORTS}(?:{_PATH})?|{_ADDRESSES}{_PATH})(?:\?.*)?")
_SECRET_PARAMETER = re.compile(r"pass|secret|token|credential|auth", re.IGNORECASE)


def _redact_parameter(part: str) -> str:
    name, equals, _ = part.partition("=")
    return f"{name}=***" if equals and _SECRET_PARAMETER.search(unquote(name)) else part
