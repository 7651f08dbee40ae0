"""Every Redis key the bus reads or writes: the whole wire format in one place.

Resque's own keys keep their exact names so Ruby resque-bus / queue-bus, node-queue-bus
and Resque's web UI share them. Keys the bus adds are marked "ours". A key that must be
changed atomically together with a queue (in-flight lists, retry sets, crash counts)
carries the queue's full key as its hash tag, so on Redis Cluster it lives in the
queue's slot while different queues still spread over the shards.
"""

from __future__ import annotations

import zlib

INCOMING_QUEUE = "bus_incoming"
TRACE_SHARDS = 16
_HEX = frozenset("0123456789abcdef")  # a bus_id ends in a random hex digit: 16 shards for free


def hashed_part(key: str) -> str:
    """What Redis Cluster hashes of ``key``: the text between its first ``{`` and the next
    ``}`` when that is not empty (its hash tag), else the whole key."""
    opening = key.find("{")
    if opening >= 0:
        closing = key.find("}", opening + 1)
        if closing > opening + 1:
            return key[opening + 1 : closing]
    return key


def companion(head: str, key: str, tail: str = "") -> str:
    """``head{key}tail``: a key of its own in ``key``'s cluster slot. When the braces would
    pick another slot (``key`` holds a ``}``), ``key`` goes in bare: its own hash tag then
    decides. (A key with a ``}`` and no hash tag has no companion in its slot: our queue
    names have no braces; a Node app's may, and on a cluster it then fails with CROSSSLOT.)"""
    wrapped = f"{head}{{{key}}}{tail}"
    if hashed_part(wrapped) == hashed_part(key):
        return wrapped
    return f"{head}{key}{tail}"


class Keys:
    """Key names under one namespace (Resque's ``resque`` by default)."""

    __slots__ = ("namespace", "prefix")

    def __init__(self, namespace: str = "resque") -> None:
        self.namespace = namespace
        self.prefix = f"{namespace}:" if namespace else ""

    # --- Resque -------------------------------------------------------------
    @property
    def queues(self) -> str:
        """Set of every queue name (Resque)."""
        return f"{self.prefix}queues"

    def queue(self, name: str) -> str:
        """List of jobs of one queue (Resque)."""
        return f"{self.prefix}queue:{name}"

    @property
    def failed(self) -> str:
        """List of failure entries, shown by Resque's web UI."""
        return f"{self.prefix}failed"

    @property
    def stat_failed(self) -> str:
        return f"{self.prefix}stat:failed"

    @property
    def stat_processed(self) -> str:
        return f"{self.prefix}stat:processed"

    def stat_processed_of(self, worker_id: str) -> str:
        return f"{self.prefix}stat:processed:{worker_id}"

    def stat_failed_of(self, worker_id: str) -> str:
        return f"{self.prefix}stat:failed:{worker_id}"

    def applied(self, worker_id: str) -> str:
        """The token of the last round trip a worker's MULTI applied: after a lost reply, the
        worker asks it whether its writes went in before it sends them again."""
        return f"{self.prefix}bus:applied:{worker_id}"

    @property
    def workers(self) -> str:
        """Set of registered worker ids ``host:pid:queue,queue`` (Resque)."""
        return f"{self.prefix}workers"

    def worker(self, worker_id: str) -> str:
        """The job a worker is running, as JSON, while it runs (Resque)."""
        return f"{self.prefix}worker:{worker_id}"

    def worker_started(self, worker_id: str) -> str:
        return f"{self.prefix}worker:{worker_id}:started"

    @property
    def workers_heartbeat(self) -> str:
        """Hash worker id -> ISO-8601 time of its last heartbeat (Resque >= 1.26)."""
        return f"{self.prefix}workers:heartbeat"

    # --- resque-bus / queue-bus ---------------------------------------------
    @property
    def bus_apps(self) -> str:
        """Set of app keys that have subscriptions."""
        return f"{self.prefix}bus_apps"

    def bus_app(self, app_key: str) -> str:
        """Hash sub key -> subscription JSON of one app."""
        return f"{self.prefix}bus_app:{app_key}"

    # --- resque-scheduler ---------------------------------------------------
    @property
    def delayed_queue_schedule(self) -> str:
        return f"{self.prefix}delayed_queue_schedule"

    def delayed(self, timestamp: int) -> str:
        return f"{self.prefix}delayed:{timestamp}"

    def timestamps(self, job: str) -> str:
        return f"{self.prefix}timestamps:{job}"

    def delayed_moving(self, timestamp: int, scheduler_id: str) -> str:
        """Ours (Cluster only): items one scheduler is moving out of ``delayed:<ts>``, in its slot."""
        return companion(f"{self.prefix}bus:scheduler:moving:", self.delayed(timestamp), f":{scheduler_id}")

    def delayed_movers(self, timestamp: int) -> str:
        """Ours (Cluster only): hash scheduler id -> when it took items of ``delayed:<ts>``."""
        return companion(f"{self.prefix}bus:scheduler:movers:", self.delayed(timestamp))

    @property
    def heartbeat_lock(self) -> str:
        return f"{self.prefix}bus:heartbeat:lock"

    @property
    def heartbeat_timestamp(self) -> str:
        return f"{self.prefix}bus:heartbeat:timestamp"

    # --- ours -----------------------------------------------------------------
    def inflight(self, queue: str, worker_id: str) -> str:
        """Ours: jobs one worker has reserved from a queue and not yet acknowledged."""
        return companion(f"{self.prefix}inflight:", self.queue(queue), f":{worker_id}")

    def retries(self, queue: str) -> str:
        """Ours: sorted set of jobs waiting to be retried, scored by due time."""
        return companion(f"{self.prefix}bus:retry:", self.queue(queue))

    def replicated_mark(self, key: str) -> str:
        """Ours: a short-lived write in ``key``'s slot, sent before a Redis ``WAIT`` (which
        counts only its own connection's writes) so it covers every earlier write there."""
        return companion(f"{self.prefix}bus:replicated:", key)

    def crashes(self, queue: str) -> str:
        """Ours: hash sha1(job) -> times the job was in flight when its worker died."""
        return companion(f"{self.prefix}bus:crashes:", self.queue(queue))

    @property
    def bus_workers(self) -> str:
        """Ours: hash worker id -> JSON description of workers of this library."""
        return f"{self.prefix}bus:workers"

    def throughput(self, queue: str, kind: str, hour: int) -> str:
        """Ours: hash epoch minute -> jobs of one queue ``processed`` or ``failed`` in that minute.

        One key per queue and hour, expiring after two hours: the dashboard's last-hour chart.
        """
        return f"{self.prefix}bus:throughput:{kind}:{queue}:{hour}"

    @property
    def event_log(self) -> str:
        """Ours: capped stream of every event the logger saw, redacted (the live feed, the shippers' source)."""
        return f"{self.prefix}bus:log"

    @property
    def event_log_rejected(self) -> str:
        """Ours: capped list of logged events a sink refused for good (e.g. an index mapping error)."""
        return f"{self.prefix}bus:log:rejected"

    def trace(self, bus_id: str) -> str:
        """Ours: hash bus_id -> that event's steps (JSON lines), for events published in one minute.

        Sharded by the bus_id's last (random) hex digit into 16 hashes a minute, expiring: no key per event.
        """
        seconds, _, rest = bus_id.partition("-")
        minute = int(seconds) // 60 if seconds.isascii() and seconds.isdigit() and len(seconds) <= 19 else 0
        shard = rest[-1:] if rest[-1:] in _HEX else format(zlib.crc32(bus_id.encode()) % TRACE_SHARDS, "x")
        return f"{self.prefix}bus:trace:{minute}:{shard}"

    def metrics(self, kind: str, minute: int) -> str:
        """Ours: hash of one minute's counts, ``events`` (by type) or ``latency`` (by subscription
        and bucket); expires after two hours."""
        return f"{self.prefix}bus:metrics:{kind}:{minute}"

    def metrics_total(self, kind: str) -> str:
        """Ours: the same counts since the beginning (Prometheus counters)."""
        return f"{self.prefix}bus:metrics:{kind}:total"

    def web_session(self, session_id: str) -> str:
        """Ours: one open dashboard sign-in, expiring with it; deleted on sign-out."""
        return f"{self.prefix}bus:web:session:{session_id}"

    @property
    def subscriptions_version(self) -> str:
        """Ours: bumped on every subscription change so drivers reload at once."""
        return f"{self.prefix}bus:subscriptions_version"
