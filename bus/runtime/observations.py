"""Traces and metrics of finished jobs, held by a worker and written once per interval.

A worker writes them at most every ``observe.flush_interval`` (an idle worker's loop turns
at least every ``idle_wait``, so they land soon after the interval even then) and when it
stops. They ride with a batch's acks once per interval rather than with every batch, so
they cost throughput once per interval, not once per batch. What a worker killed with -9
held is lost; traces and metrics are observations, never the work itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.backend.connection import pipe_eval
from bus.keys import Keys
from bus.runtime.tally import Tally
from bus.stores import metrics

# KEYS: trace hashes. ARGV: ttl, then for each key: how many events, then (bus_id, lines) pairs.
# Appends each event's new steps to its field; a hash gets its expiry when it is created.
WRITE_TRACES = """
local ttl, a = tonumber(ARGV[1]), 2
for i = 1, #KEYS do
  local fresh = redis.call('EXISTS', KEYS[i]) == 0
  for j = 1, tonumber(ARGV[a]) do
    local field, lines = ARGV[a + 2 * j - 1], ARGV[a + 2 * j]
    local before = redis.call('HGET', KEYS[i], field)
    redis.call('HSET', KEYS[i], field, before and (before .. lines) or lines)
  end
  if fresh then redis.call('EXPIRE', KEYS[i], ttl) end
  a = a + 2 * tonumber(ARGV[a]) + 1
end
return #KEYS
"""


def write_traces(pipe: Any, keys: Keys, traces: dict[str, list[bytes]], ttl: int, *, one_script: bool) -> None:
    """One script for a batch's traces on one server; one per trace hash on a cluster (its slot)."""
    by_key: dict[str, list[Any]] = {}
    for bus_id, entries in traces.items():
        by_key.setdefault(keys.trace(bus_id), []).extend([bus_id, b"".join(e + b"\n" for e in entries)])
    if one_script:
        args: list[Any] = [ttl]
        for pairs in by_key.values():
            args += [len(pairs) // 2, *pairs]
        pipe_eval(pipe, WRITE_TRACES, list(by_key), *args)
        return
    for key, pairs in by_key.items():
        pipe_eval(pipe, WRITE_TRACES, [key], ttl, len(pairs) // 2, *pairs)


@dataclass(slots=True)
class Observations:
    """Traces by ``bus_id``, event counts, and latency buckets and sums per subscription."""

    traces: dict[str, list[bytes]] = field(default_factory=dict)
    event_counts: Tally[str] = field(default_factory=Tally)
    latencies: Tally[tuple[str, str, int]] = field(default_factory=Tally)
    latency_sums: dict[tuple[str, str], float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.traces or self.event_counts or self.latencies)

    def trace(self, bus_id: str, entry: bytes) -> None:
        self.traces.setdefault(bus_id, []).append(entry)

    def merge(self, other: Observations) -> None:
        for bus_id, entries in other.traces.items():
            self.traces.setdefault(bus_id, []).extend(entries)
        self.event_counts.add(other.event_counts)
        self.latencies.add(other.latencies)
        for key, total in other.latency_sums.items():
            self.latency_sums[key] = self.latency_sums.get(key, 0.0) + total

    def write(self, pipe: Any, keys: Keys, minute: int, trace_ttl: int, *, scripts: bool) -> None:
        """Queue the writes: one script each for traces and metrics on one server."""
        if self.traces:
            write_traces(pipe, keys, self.traces, trace_ttl, one_script=scripts)
        if self.event_counts or self.latencies:
            metrics.write(pipe, keys, minute, self.event_counts, self.latencies, self.latency_sums, one_script=scripts)
