"""One measured run of the ``switchboard`` scenario: N notifications through a switchboard
worker process, or the same N messages sent by the provider called directly.

Either way the process is started and ready before the clock starts; then it is released
and the clock runs until every notification is done: for the switchboard, until the bus
has recorded 3 finished jobs per notification (its event driven, ridden, and its outcome
event driven), read from the bus's own ``stat:processed``; for the direct baseline, until
the process has counted its sends. CPU of the process, the emulators and Redis is taken
over the same interval, and the emulators' TCP connections: new connections per 100 sends
per provider, over the whole run and (for the switchboard, whose progress is visible) over
its second half, once its connections are open: the steady state.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from bench.fleet import Fleet
from bench.harness import Bench
from bench.machine import MIB, busy_pct, cpu_seconds, machine_ticks, peak_rss_bytes, rss_bytes
from bench.notifications import publish
from bench.systems.emulators import EmulatorProcess
from bus import Bus, BusSettings
from bus.backend.connection import as_text
from bus.keys import Keys
from switchboard.keys import SwitchboardKeys

POLL = 0.003
CHECK_CHUNK = 10_000  # delivery records read per round trip when checking them (a soak has 200,000)


@dataclass
class Sends:
    count: int
    seconds: float
    worker_cpu: float
    emulator_cpu: float
    server_cpu: float
    machine_pct: float
    commands: dict[str, float] = field(default_factory=dict)
    connections: dict[str, float | None] = field(default_factory=dict)
    """New connections per 100 sends, per provider, over the whole run."""
    steady_connections: dict[str, float | None] = field(default_factory=dict)
    """The same over the run's second half (empty when progress is not visible mid-run)."""
    rss_mib: float = 0.0
    peak_rss_mib: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def cpu_ms(self) -> float:
        """The sending process's CPU time per notification."""
        return 1000 * self.worker_cpu / self.count

    def details(self) -> dict[str, Any]:
        pct = 100 / self.seconds
        return {
            "notifications": self.count,
            "seconds": round(self.seconds, 3),
            "worker_cpu_pct": round(pct * self.worker_cpu, 1),
            "worker_cpu_ms_per_notification": round(self.cpu_ms, 3),
            "emulators_cpu_pct": round(pct * self.emulator_cpu, 1),
            "redis_cpu_pct": round(pct * self.server_cpu, 1),
            "machine_busy_pct": round(self.machine_pct, 1),
            "others_cpu_pct": round(
                max(0.0, self.machine_pct - pct * (self.worker_cpu + self.emulator_cpu + self.server_cpu)), 1
            ),
            "rss_mib": round(self.rss_mib, 1),
            "peak_rss_mib": round(self.peak_rss_mib, 1),
            "new_connections_per_100_sends": self.connections,
            **({"steady_new_connections_per_100_sends": self.steady_connections} if self.steady_connections else {}),
            **({"redis_calls_per_notification": self.commands} if self.commands else {}),
        }


def through_switchboard(
    bench: Bench,
    emulators: EmulatorProcess,
    channel: str,
    count: int,
    *,
    profile: str | None = None,
    cpu: bool = False,
    processes: int = 1,
) -> Sends:
    """``count`` notifications sent by ``processes`` switchboard workers (CPU summed over them)."""
    bench.flush()
    config = child_config(emulators, channel, count)
    specs = [bench.spec("switchboard", channel, config=config) for _ in range(processes)]
    if profile:
        specs = [replace(spec, profile=profile, profile_threads=True, profile_cpu=cpu) for spec in specs]
    bus = Bus(settings=BusSettings(redis_url=bench.url))
    processed = bus.keys.stat_processed
    with Fleet(specs) as fleet:
        fleet.start()  # the worker has stored the switchboard's subscriptions
        for seq in range(count):
            publish(bus, channel, seq)
        bench.reset_stats()
        # Each notification is 3 jobs: the send event driven, then ridden, its outcome event driven.
        done = lambda: int(bench.redis.get(processed) or 0) // 3  # noqa: E731
        sends = _timed(bench, fleet, emulators, count, done=done, midway=True)
        # GET is left out: the benchmark's own polling of stat:processed.
        calls = {cmd: v["calls"] / count for cmd, v in bench.commandstats().items() if cmd != "get"}
        sends.commands = {cmd: round(n, 2) for cmd, n in sorted(calls.items(), key=lambda kv: -kv[1])}
        fleet.stop()
    check_deliveries(bench, bus.keys, channel, count)
    bus.close()
    return sends


def directly(bench: Bench, emulators: EmulatorProcess, channel: str, count: int, system: str = "direct") -> Sends:
    """The same messages sent without the switchboard: by its provider classes (``direct``) or
    by the providers' official SDKs (``sdks``)."""
    spec = bench.spec(system, channel, config=child_config(emulators, channel, count))
    with Fleet([spec]) as fleet:
        fleet.start(timeout=120)  # renders the messages
        sends = _timed(bench, fleet, emulators, count, done=fleet.handled)
        result = fleet.stop()[0]
    if result.get("errors"):
        raise RuntimeError(f"{system} {channel}: {result['errors']} sends failed; first: {result['first_error']}")
    return sends


def child_config(emulators: EmulatorProcess, channel: str, count: int) -> str:
    """The ChildSpec ``config`` of a switchboard or direct process: the emulators' endpoints."""
    return json.dumps({"endpoints": emulators.endpoints, "channel": channel, "count": count})


def _timed(
    bench: Bench, fleet: Fleet, emulators: EmulatorProcess, count: int, done: Callable[[], int], midway: bool = False
) -> Sends:
    """Release the worker; poll ``done`` (notifications finished) until it reaches ``count``
    (with ``midway``, counting the emulators' connections at half of it too)."""
    pid, pids = fleet.pids[0], fleet.pids
    first = emulators.stats()
    worker0, emulator0, server0, machine0 = _cpu(pids), emulators.cpu(), bench.server_cpu(), machine_ticks()
    spec = fleet.specs[0]
    started = fleet.go()

    def progress(finished: int) -> None:
        bench.log(f"  ... {spec.system} {spec.role}: {finished:,} of {count:,}")

    timeout = 60 + count / 10
    half = first
    if midway:
        fleet.wait_done(done, count // 2, timeout, progress=progress, interval=POLL)
        half = emulators.stats()
    finished = fleet.wait_done(done, count, timeout, progress=progress, interval=POLL)
    seconds = finished - started
    worker1, emulator1, server1, machine1 = _cpu(pids), emulators.cpu(), bench.server_cpu(), machine_ticks()
    last, rss, peak = emulators.stats(), rss_bytes(pid), peak_rss_bytes(pid)
    return Sends(
        count,
        seconds,
        worker1 - worker0,
        emulator1 - emulator0,
        server1 - server0,
        busy_pct(machine0, machine1),
        connections=_per_100_sends(first, last),
        steady_connections=_per_100_sends(half, last) if midway else {},
        rss_mib=rss / MIB,
        peak_rss_mib=peak / MIB,
    )


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _per_100_sends(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]]) -> dict[str, float | None]:
    """New TCP connections per 100 sends, per provider that was sent to in between."""
    rates: dict[str, float | None] = {}
    for name, counts in after.items():
        sends = counts["sends"] - before[name]["sends"]
        if sends:
            rates[name] = round(100 * (counts["connections"] - before[name]["connections"]) / sends, 2)
    return rates


def check_deliveries(bench: Bench, keys: Keys, channel: str, count: int) -> None:
    """Every notification recorded ``sent``, none in the failed list: the figures count real sends
    (otherwise the error says what the others were, with one error of each)."""
    failed = int(bench.redis.llen(keys.failed))
    board_keys = SwitchboardKeys(keys)
    ids: list[Any] = bench.redis.zrange(board_keys.deliveries, 0, -1)
    statuses: Counter[str] = Counter()
    errors: dict[str, str] = {}
    for start in range(0, len(ids), CHECK_CHUNK):
        pipe = bench.redis.pipeline(transaction=False)
        for delivery_id in ids[start : start + CHECK_CHUNK]:
            pipe.hmget(board_keys.delivery(as_text(delivery_id)), "status", "error")
        for status, error in pipe.execute():
            statuses[as_text(status or b"")] += 1
            errors.setdefault(as_text(status or b""), as_text(error or b"")[:160])
    sent = statuses["accepted"] + statuses["sent"]
    if failed or sent != count:
        others = {status: (n, errors[status]) for status, n in statuses.items() if status not in ("accepted", "sent")}
        raise RuntimeError(
            f"switchboard {channel}: {sent} of {count} recorded sent, {failed} in the failed list; others: {others}"
        )
