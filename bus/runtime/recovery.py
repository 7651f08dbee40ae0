"""Finding dead workers and putting their in-flight jobs back: a query anyone can run."""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from typing import Any

from bus.backend.connection import as_text
from bus.keys import Keys
from bus.safejson import read_json
from bus.stores.reservations import REQUEUE

log = logging.getLogger("bus.recovery")


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A worker of this library as registered in ``bus:workers``."""

    id: str
    host: str
    pid: int
    queues: tuple[str, ...]
    started_at: float
    heartbeat: float | None

    @classmethod
    def parse(cls, worker_id: str, raw: bytes | str, heartbeat: float | None) -> WorkerInfo:
        try:
            data: Any = read_json(raw)
        except ValueError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        host, _, rest = worker_id.partition(":")
        pid_text, _, queues_text = rest.partition(":")
        queues = data.get("queues")
        if not isinstance(queues, list) or not queues:
            queues = [q for q in queues_text.split(",") if q]
        return cls(
            id=worker_id,
            host=str(data.get("host") or host),
            pid=int(_number(data.get("pid")) or _number(pid_text if pid_text.isascii() else 0)),
            queues=tuple(str(q) for q in queues),
            started_at=_number(data.get("started_at")),
            heartbeat=heartbeat,
        )

    def values(self) -> dict[str, Any]:
        """Its fields by name, to build a fuller view of the same worker."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def is_dead(self, *, now: float, dead_after: float, hostname: str) -> bool:
        """Dead if its heartbeat is stale, or it ran on this host and its pid is gone."""
        if self.host == hostname and self.pid and not pid_alive(self.pid):
            return True
        last = self.heartbeat if self.heartbeat is not None else self.started_at
        return now - last > dead_after


def iso_time(epoch: float) -> str:
    """Resque's heartbeat format (``Time#iso8601``)."""
    return datetime.fromtimestamp(int(epoch), UTC).isoformat()


def parse_iso_time(value: bytes | str | None) -> float | None:
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _number(value: Any) -> float:
    """A number another client wrote (``"abc"``, ``1e400``, a list): 0 when it is none."""
    try:
        number = float(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) and abs(number) < 2**53 else 0.0


def registered_workers(redis: Any, keys: Keys) -> list[WorkerInfo]:
    pipe = redis.pipeline(transaction=False)
    pipe.hgetall(keys.bus_workers)
    pipe.hgetall(keys.workers_heartbeat)
    infos, beats = pipe.execute()
    heartbeats = {as_text(k): parse_iso_time(v) for k, v in beats.items()}
    return [WorkerInfo.parse(as_text(k), v, heartbeats.get(as_text(k))) for k, v in infos.items()]


def requeue_inflight(
    redis: Any, keys: Keys, worker_id: str, queues: tuple[str, ...] | list[str], *, crashed: bool
) -> int:
    """Move a worker's in-flight jobs back to the head of their queues, in order."""
    moved = 0
    for queue in queues:
        moved += int(
            redis.eval(
                REQUEUE,
                3,
                keys.inflight(queue, worker_id),
                keys.queue(queue),
                keys.crashes(queue),
                "1" if crashed else "0",
            )
        )
    return moved


def unregister(redis: Any, keys: Keys, worker_id: str) -> None:
    pipe = redis.pipeline(transaction=False)
    pipe.srem(keys.workers, worker_id)
    for key in (
        keys.worker(worker_id),
        keys.worker_started(worker_id),
        keys.stat_processed_of(worker_id),
        keys.stat_failed_of(worker_id),
        keys.applied(worker_id),
    ):
        pipe.delete(key)  # one key each: a cluster pipeline cannot delete keys of several slots at once
    pipe.hdel(keys.workers_heartbeat, worker_id)
    pipe.hdel(keys.bus_workers, worker_id)
    pipe.execute()


def recover_dead_workers(
    redis: Any, keys: Keys, *, now: float, dead_after: float, hostname: str, exclude: str = ""
) -> int:
    """Requeue the in-flight jobs of every dead worker and unregister it; jobs moved."""
    moved = 0
    for info in registered_workers(redis, keys):
        if info.id == exclude or not info.is_dead(now=now, dead_after=dead_after, hostname=hostname):
            continue
        count = requeue_inflight(redis, keys, info.id, info.queues, crashed=True)
        unregister(redis, keys, info.id)
        moved += count
        log.warning("worker %s is dead; requeued %d in-flight job(s)", info.id, count)
    return moved
