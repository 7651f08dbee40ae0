"""Looking back and ahead: delayed events, the event feed, traces and stats."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from bus.cli.base import Env, cli, common, parse_since
from bus.cli.output import table, to_json
from bus.core import Bus
from bus.stores.delayed import DelayedEntry


# --- delayed ----------------------------------------------------------------------
@cli.group()
def delayed() -> None:
    """Events scheduled for later: list, show, remove, clear."""


DELAYED_COLUMNS = [
    ("due", "DUE (UTC)"),
    ("in", "IN"),
    ("event_type", "EVENT"),
    ("bus_id", "BUS ID"),
    ("queue", "QUEUE"),
]


@delayed.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many, earliest first.")
@common
def delayed_list(env: Env, limit: int) -> None:
    """What is scheduled, and when."""
    d = env.bus().delayed
    entries = [e.to_json() for e in d.entries(limit)]
    now = time.time()
    for row in entries:
        row["due"] = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["timestamp"]))
        row["in"] = _duration(row["timestamp"] - now)
    total = d.count()
    if env.json:
        click.echo(to_json({"total": total, "entries": entries}))
    else:
        click.echo(table(entries, DELAYED_COLUMNS, empty="nothing is scheduled"))
        click.echo(f"\n{total} scheduled in all")


@delayed.command("show")
@click.argument("bus_id")
@common
def delayed_show(env: Env, bus_id: str) -> None:
    """One scheduled event, decoded."""
    entry = _delayed_entry(env.bus(), bus_id)
    env.emit(entry.to_json(), to_json(entry.to_json()))


@delayed.command("remove")
@click.argument("bus_ids", nargs=-1, required=True)
@common
def delayed_remove(env: Env, bus_ids: tuple[str, ...]) -> None:
    """Unschedule events by bus_id before they fire."""
    b = env.bus()
    removed = sum(1 for bus_id in bus_ids if b.delayed.remove(_delayed_entry(b, bus_id)))
    env.emit({"removed": removed}, f"removed {removed} scheduled event(s)")


@delayed.command("clear")
@common
def delayed_clear(env: Env) -> None:
    """Unschedule everything."""
    removed = env.bus().delayed.clear()
    env.emit({"removed": removed}, f"removed {removed} scheduled event(s)")


def _delayed_entry(b: Bus, bus_id: str) -> DelayedEntry:
    entry = b.delayed.find(bus_id)
    if entry is None:
        raise click.UsageError(f"nothing scheduled with bus_id {bus_id}")
    return entry


def _duration(seconds: float) -> str:
    if seconds <= 0:
        return "due"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


@cli.command()
@click.option("--type", "event_type", help="Only events of this type.")
@click.option("--since", help="Only the last 90s / 10m / 2h / 1d.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many past events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they are logged.")
@common
def events(env: Env, event_type: str | None, since: str | None, limit: int, follow: bool) -> None:
    """The logged event feed (what `bus logger` recorded), oldest first."""
    from bus.logger.stream import EventLog, LoggedEvent

    b = env.bus()
    log_ = EventLog(b.redis, b.keys, max_length=0)
    since_ms = int((time.time() - parse_since(since)) * 1000) if since else None
    past = log_.recent(since_ms=since_ms, limit=limit, event_type=event_type)

    def show(e: LoggedEvent) -> None:
        if env.json:
            click.echo(json.dumps(e.to_json(), ensure_ascii=False))
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(e.logged_at))
            attrs = {k: v for k, v in e.event.items() if not k.startswith("bus_")}
            click.echo(f"{stamp}  {e.event_type:<24} {e.bus_id}  {json.dumps(attrs, ensure_ascii=False)}")

    for entry in past:
        show(entry)
    if not follow:
        if not past and not env.json:
            click.echo("no logged events (is `bus logger` running?)")
        return
    last = past[-1].entry_id if past else "$"
    for new in log_.follow(last_id=last):
        if new is not None and (event_type is None or new.event_type == event_type):
            show(new)


@cli.command()
@click.argument("bus_id")
@common
def trace(env: Env, bus_id: str) -> None:
    """What happened to event BUS_ID: published, driven to whom, each ride's outcome."""
    from bus.stores.traces import gap_in, read_trace, timeline, why_untraced

    b = env.bus()
    observe = b.settings.observe
    steps = read_trace(b.redis, b.keys, bus_id)
    if not steps:
        raise click.UsageError(f"no trace for {bus_id}: {why_untraced(observe, bus_id)}")
    gap = gap_in(steps, observe, bus_id)
    env.emit([{"at": s.at, **s.data} for s in steps], f"({gap})\n{timeline(steps)}" if gap else timeline(steps))


@cli.command()
@click.option("--since", default="10m", show_default=True, help="Window: 90s, 10m, 2h (at most 2h).")
@common
def stats(env: Env, since: str) -> None:
    """Events per type and per app, rates, and publish-to-handler latency per subscription."""
    from bus.stores.metrics import MINUTE_TTL, event_counts, latency
    from bus.stores.overview import throughput

    b = env.bus()
    seconds = parse_since(since)
    if seconds > MINUTE_TTL:
        raise click.UsageError(f"--since {since}: workers keep per-minute counts for 2h; give at most 2h")
    minutes = max(1, round(seconds / 60))
    now = time.time()
    events = event_counts(b.redis, b.keys, now=now, minutes=minutes)
    event_rows = [
        {"type": t, "count": sum(c), "per_min": round(sum(c) / minutes, 1), "last_min": c[-1]}
        for t, c in sorted(events.items(), key=lambda item: -sum(item[1]))
    ]
    queue_app = {s.queue_name: s.app_key for s in b.registry.load()}
    per_queue = throughput(b.redis, b.keys, sorted(queue_app), now=now, minutes=minutes)
    apps: dict[str, dict[str, Any]] = {}
    for queue, counts in per_queue.items():
        row = apps.setdefault(queue_app[queue], {"app": queue_app[queue], "processed": 0, "failed": 0})
        row["processed"] += sum(c.processed for c in counts)
        row["failed"] += sum(c.failed for c in counts)
    for row in apps.values():
        row["per_min"] = round(row["processed"] / minutes, 1)
    lat = [s.to_json() for s in latency(b.redis, b.keys, now=now, minutes=minutes)]
    app_rows = sorted(apps.values(), key=lambda r: str(r["app"]))
    data = {"minutes": minutes, "events": event_rows, "apps": app_rows, "latency": lat}
    text = f"last {minutes} minute(s)\n\nevents\n" + table(
        event_rows,
        [("type", "TYPE"), ("count", "COUNT"), ("per_min", "PER MIN"), ("last_min", "LAST MIN")],
        empty="no events",
    )
    text += "\n\napps\n" + table(
        app_rows,
        [("app", "APP"), ("processed", "PROCESSED"), ("failed", "FAILED"), ("per_min", "PER MIN")],
        empty="no apps",
    )
    text += "\n\npublish-to-handler latency (upper bounds)\n" + table(
        lat,
        [
            ("app", "APP"),
            ("sub", "SUBSCRIPTION"),
            ("count", "RIDES"),
            ("p50_ms", "P50 MS"),
            ("p95_ms", "P95 MS"),
            ("p99_ms", "P99 MS"),
        ],
        empty="no rides",
    )
    env.emit(data, text)
