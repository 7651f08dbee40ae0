"""Publishing that waits for replicas (Redis ``WAIT``), so a failover cannot lose the event.

Redis replicates asynchronously: a push acknowledged by a master that dies before its
replica received it is gone once the replica takes over. ``WAIT`` on the connection that
pushed blocks until that many replicas hold everything it wrote. It would block for its
whole timeout on a master with fewer replicas (one just promoted, whose old master is
down), so the number waited for is capped by the replicas the master has, read from
``INFO replication`` now and then.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, NoReturn

import redis.exceptions

from bus.backend.connection import TRANSIENT_ERRORS, is_cluster
from bus.keys import Keys

log = logging.getLogger("bus.replication")

REPLICAS_MAX_AGE = 5.0
"""Seconds a master's replica count is trusted (a missed WAIT reads it again at once)."""

# MovedError subclasses AskError: it must be caught first. A slot no node serves (mid-failover)
# is a RedisClusterException, which is not a RedisError.
_MOVED_OR_GONE: tuple[type[Exception], ...] = (
    redis.exceptions.MovedError,
    redis.exceptions.RedisClusterException,
    *TRANSIENT_ERRORS,
)


class ReplicaWait:
    """How many replicas a push waits for, and for how long; warns when they fall short."""

    def __init__(self, wanted: int, timeout: float) -> None:
        self.wanted = wanted
        self.timeout = timeout
        self._counts: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def command(self, client: Any, node: str = "") -> tuple[Any, ...] | None:
        """The ``WAIT`` to send after the push on ``client`` (the master's own connection),
        or None when that master has no replica to wait for."""
        target = min(self.wanted, self._replicas_of(client, node))
        return ("WAIT", target, max(1, int(self.timeout * 1000))) if target else None

    def check(self, command: tuple[Any, ...] | None, held: Any, node: str = "") -> None:
        """Read the ``WAIT`` reply: a shortfall is logged, and the replica count read anew."""
        if command is not None and int(held) < command[1]:
            with self._lock:
                self._counts.pop(node, None)
            log.warning(
                "published, but held by %d of %d replicas after %gs: a failover now could lose it",
                int(held),
                command[1],
                self.timeout,
            )

    def _replicas_of(self, client: Any, node: str) -> int:
        now = time.monotonic()
        with self._lock:
            seen = self._counts.get(node)
        if seen is not None and now - seen[0] < REPLICAS_MAX_AGE:
            return seen[1]
        count = int(client.info("replication").get("connected_slaves", 0))
        if count < self.wanted and (seen is None or seen[1] != count):
            log.warning(
                "the master%s has %d replica(s) connected; publishes wait for %d, not %d, until more connect",
                f" {node}" if node else "",
                count,
                count,
                self.wanted,
            )
        with self._lock:
            self._counts[node] = (now, count)
        return count


def rpush_on_replicas(client: Any, key: str, values: Sequence[str], waits: ReplicaWait) -> None:
    """RPUSH, then WAIT on the same connection: one round trip.

    On a cluster the push goes straight to the master of ``key``'s slot; when that master
    moved or went away the slot map is refreshed and a transient error raised, so the
    caller's retry reaches the new one.
    """
    if not is_cluster(client):
        pipe = client.pipeline(transaction=False)
        pipe.rpush(key, *values)
        command = waits.command(client)
        if command is not None:
            pipe.execute_command(*command)
        waits.check(command, pipe.execute()[-1])
        return
    try:
        name, node_client = _master_of(client, key)
        pipe = node_client.pipeline(transaction=False)
        pipe.rpush(key, *values)
        command = waits.command(node_client, name)
        if command is not None:
            pipe.execute_command(*command)
        waits.check(command, pipe.execute()[-1], name)
    except _MOVED_OR_GONE as exc:
        _moved_or_gone(client, key, exc)
    except redis.exceptions.AskError:
        # The slot is migrating: the cluster client follows ASK; the replicas are not awaited.
        client.execute_command("RPUSH", key, *values)
        log.warning("published while %s's slot migrates: not waiting for replicas this once", key)


def wait_on_cluster(client: Any, keys: Keys, written: Sequence[str], waits: ReplicaWait) -> None:
    """Return once replicas hold what was written to the ``written`` keys of a cluster
    (a driver's fan-out, before it acknowledges the event).

    The writes went through the cluster client's pooled connections, and ``WAIT`` counts
    only its own connection's writes: each master involved gets a small write of its own
    first. The replication stream is ordered, so a replica holding it holds all before it.
    A master that took writes is waited on even when it also takes the ack: had it failed
    over between the writes and the ack, the retried ack would reach a replica that may
    lack the writes.
    """
    masters: dict[str, tuple[Any, str]] = {}
    for key in written:
        try:
            name, node_client = _master_of(client, key)
        except _MOVED_OR_GONE as exc:
            _moved_or_gone(client, key, exc)
        masters.setdefault(name, (node_client, key))
    for name, (node_client, key) in masters.items():
        try:
            command = waits.command(node_client, name)
            if command is None:
                continue
            pipe = node_client.pipeline(transaction=False)
            pipe.set(keys.replicated_mark(key), "1", px=60_000)
            pipe.execute_command(*command)
            waits.check(command, pipe.execute()[-1], name)
        except _MOVED_OR_GONE as exc:
            _moved_or_gone(client, key, exc)
        except redis.exceptions.AskError:
            log.warning("%s's slot migrates: not waiting for its replicas this once", key)


def _master_of(client: Any, key: str) -> tuple[str, Any]:
    node = client.get_node_from_key(key)
    node_client = getattr(node, "redis_connection", None)
    if node_client is None:
        raise redis.exceptions.ConnectionError(f"no connection to the master of {key}")
    return str(node.name), node_client


def _moved_or_gone(client: Any, key: str, exc: Exception) -> NoReturn:
    """Refresh the slot map, then raise an error the caller's retry takes as transient."""
    with contextlib.suppress(redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError):
        client.nodes_manager.initialize()  # failing now, it is tried again with the retry
    raise redis.exceptions.TryAgainError(f"the master of {key} moved or went away ({exc})") from exc
