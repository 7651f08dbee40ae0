"""``bus``: the command line. Thin: parse, call the library, print a table or JSON."""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from bus.core import Bus
from bus.delayed import DelayedEntry
from bus.errors import BusError, ConfigurationError
from bus.failures import Failure
from bus.keys import INCOMING_QUEUE
from bus.loader import load_bus
from bus.output import table, to_json
from bus.overview import queue_stats, totals, worker_stats
from bus.scheduler import Scheduler
from bus.server import EmbeddedServer
from bus.settings import BusSettings, load_settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Env:
    """What every command gets: resolved settings and whether to print JSON."""

    settings: BusSettings
    json: bool
    settings_file: str | None = None

    def bus(self) -> Bus:
        return Bus(settings=self.settings)

    def emit(self, data: Any, text: str) -> None:
        click.echo(to_json(data) if self.json else text)


def common(fn: F) -> F:
    """The options every command shares, defined once."""

    @click.option("--redis-url", envvar=None, help="Redis URL (default: $BUS_REDIS_URL, settings, embedded).")
    @click.option("--namespace", help="Key namespace (default: resque).")
    @click.option("--settings", "settings_file", type=click.Path(dir_okay=False), help="Settings TOML file.")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @functools.wraps(fn)
    def wrapper(
        *args: Any, redis_url: str | None, namespace: str | None, settings_file: str | None, as_json: bool, **kw: Any
    ) -> Any:
        settings = load_settings(settings_file, redis_url=redis_url, namespace=namespace)
        return fn(Env(settings, as_json, settings_file), *args, **kw)

    return wrapper  # type: ignore[return-value]


def parse_attributes(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.UsageError(f"attributes are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise click.UsageError("attributes must be a JSON object")
    return value


def command_group(fn: Callable[[], None]) -> click.Group:
    """A top-level group with ``-h`` and ``-v``/``-vv`` logging, as both CLIs have."""

    @click.group(name=fn.__name__, help=fn.__doc__, context_settings={"help_option_names": ["-h", "--help"]})
    @click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
    def group(verbose: int) -> None:
        level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    return group


@command_group
def cli() -> None:
    """The event bus: publish, subscribe, drive and ride, on Resque's Redis layout."""


# --- publishing -------------------------------------------------------------------
@cli.command()
@click.argument("event_type")
@click.argument("attributes", required=False)
@common
def publish(env: Env, event_type: str, attributes: str | None) -> None:
    """Publish EVENT_TYPE with ATTRIBUTES (a JSON object); prints the bus_id."""
    attrs = parse_attributes(attributes)
    bus_id = env.bus().publish(event_type, attrs)
    env.emit({"bus_id": bus_id, "event_type": event_type}, bus_id)


# --- subscriptions ----------------------------------------------------------------
@cli.command()
@click.argument("app_module")
@common
def subscribe(env: Env, app_module: str) -> None:
    """Store the subscriptions declared by APP_MODULE (module[:bus]) in Redis."""
    app_bus = _app_bus(env, app_module)
    if not app_bus.dispatches:
        raise ConfigurationError(f"{app_module} declares no dispatches")
    counts = app_bus.subscribe_all()
    rows = [_subscription_row(sub) for key in counts for sub in app_bus.dispatches[key].subscriptions]
    env.emit(
        {"apps": counts, "subscriptions": rows},
        "\n".join(f"subscribed {app}: {n} subscription(s)" for app, n in counts.items()),
    )


@cli.command()
@click.argument("app_module", required=False)
@click.option("--app", "app_keys", multiple=True, help="App key to unsubscribe (repeatable).")
@common
def unsubscribe(env: Env, app_module: str | None, app_keys: tuple[str, ...]) -> None:
    """Remove the subscriptions of APP_MODULE's apps, or of --app KEY."""
    if not app_module and not app_keys:
        raise click.UsageError("give APP_MODULE or --app KEY")
    b = env.bus()
    keys = list(app_keys)
    if app_module:
        keys += list(_app_bus(env, app_module).dispatches)
    removed = {key: b.unsubscribe(key) for key in keys}
    env.emit(removed, "\n".join(f"{k}: {'unsubscribed' if v else 'was not subscribed'}" for k, v in removed.items()))


@cli.command()
@common
def apps(env: Env) -> None:
    """Every app and its subscriptions, as stored in Redis."""
    subs = env.bus().registry.load()
    rows = [_subscription_row(sub) for sub in subs]
    env.emit(rows, table(rows, SUBSCRIPTION_COLUMNS, empty="no apps are subscribed"))


@cli.command("who-gets")
@click.argument("event_type")
@click.argument("attributes", required=False)
@common
def who_gets(env: Env, event_type: str, attributes: str | None) -> None:
    """Which subscriptions would receive this event (a dry run of the matchers)."""
    subs = env.bus().who_gets(event_type, parse_attributes(attributes))
    rows = [_subscription_row(sub) for sub in subs]
    env.emit(rows, table(rows, SUBSCRIPTION_COLUMNS, empty="no subscription matches"))


SUBSCRIPTION_COLUMNS = [
    ("app", "APP"),
    ("key", "SUBSCRIPTION"),
    ("queue", "QUEUE"),
    ("class", "CLASS"),
    ("matcher", "MATCHER"),
]


def _subscription_row(sub: Any) -> dict[str, Any]:
    return {
        "app": sub.app_key,
        "key": sub.key,
        "queue": sub.queue_name,
        "class": sub.class_name,
        "matcher": sub.matcher.to_redis(),
    }


# --- state ------------------------------------------------------------------------
@cli.command()
@common
def queues(env: Env) -> None:
    """Depth of every queue: pending, in flight, and waiting to be retried."""
    b = env.bus()
    stats = [s.to_json() for s in queue_stats(b.redis, b.keys)]
    counters = totals(b.redis, b.keys)
    text = table(
        stats,
        [("name", "QUEUE"), ("pending", "PENDING"), ("in_flight", "IN FLIGHT"), ("retrying", "RETRYING")],
        empty="no queues",
    )
    text += (
        f"\n\nprocessed {counters['processed']}, failed {counters['failed']}"
        f" ({counters['failed_entries']} in the failed list)"
    )
    env.emit({"queues": stats, **counters}, text)


@cli.command()
@common
def workers(env: Env) -> None:
    """Registered workers, their queues, heartbeat and in-flight jobs."""
    b = env.bus()
    stats = worker_stats(b.redis, b.keys, dead_after=env.settings.worker.dead_after, hostname=b.hostname)
    rows = [s.to_json() for s in stats]
    now = time.time()
    for row in rows:
        row["last_heartbeat"] = f"{now - row['heartbeat']:.0f}s ago" if row["heartbeat"] else None
    env.emit(
        rows,
        table(
            rows,
            [
                ("id", "WORKER"),
                ("alive", "ALIVE"),
                ("last_heartbeat", "HEARTBEAT"),
                ("in_flight", "IN FLIGHT"),
                ("processed", "PROCESSED"),
                ("failed", "FAILED"),
            ],
            empty="no workers",
        ),
    )


# --- failures ---------------------------------------------------------------------
@cli.group()
def failed() -> None:
    """The failed list: list, show, retry, remove, clear."""


FAILURE_COLUMNS = [
    ("index", "#"),
    ("failed_at", "FAILED AT"),
    ("queue", "QUEUE"),
    ("app", "APP"),
    ("exception", "EXCEPTION"),
    ("error", "ERROR"),
]


def _failure_row(f: Failure) -> dict[str, Any]:
    error = f.error if len(f.error) <= 60 else f.error[:57] + "..."
    return {
        "index": f.index,
        "failed_at": f.failed_at,
        "queue": f.queue,
        "app": f.app_key,
        "exception": f.exception,
        "error": error,
    }


def _matching_failures(b: Bus, queue: str | None, exception: str | None, app: str | None) -> list[Failure]:
    return [
        f
        for f in b.failures.iterate()
        if (queue is None or f.queue == queue)
        and (exception is None or f.exception == exception)
        and (app is None or f.app_key == app)
    ]


def filter_options(fn: F) -> F:
    fn = click.option("--queue", help="Only failures from this queue.")(fn)
    fn = click.option("--exception", help="Only failures with this exception class.")(fn)
    return click.option("--app", help="Only failures of this app.")(fn)


@failed.command("list")
@click.option("--start", default=0, show_default=True, help="Index of the first entry.")
@click.option("--limit", default=50, show_default=True, help="How many entries.")
@filter_options
@common
def failed_list(env: Env, start: int, limit: int, queue: str | None, exception: str | None, app: str | None) -> None:
    """List failures (newest last, as Resque stores them)."""
    b = env.bus()
    if queue or exception or app:
        entries = _matching_failures(b, queue, exception, app)[start : start + limit]
    else:
        entries = b.failures.list(start, limit)
    total = b.failures.count()
    if env.json:
        click.echo(to_json({"total": total, "failures": [f.to_json() for f in entries]}))
    else:
        click.echo(table([_failure_row(f) for f in entries], FAILURE_COLUMNS, empty="no failures"))
        click.echo(f"\n{total} failure(s) in all")


@failed.command("show")
@click.argument("index", type=int)
@common
def failed_show(env: Env, index: int) -> None:
    """Everything about failure INDEX: payload (decoded), exception, backtrace."""
    f = _get_failure(env.bus(), index)
    data = f.to_json()
    data["attributes"] = f.attributes
    if env.json:
        click.echo(to_json(data))
        return
    click.echo(f"failure #{f.index} at {f.failed_at} on queue {f.queue} (worker {f.data.get('worker')})")
    click.echo(f"{f.exception}: {f.error}")
    for line in f.data.get("backtrace") or []:
        click.echo(f"    {line}")
    click.echo("event:")
    click.echo(to_json(f.attributes))


@failed.command("retry")
@click.argument("indexes", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Retry every failure (that matches the filters).")
@filter_options
@common
def failed_retry(
    env: Env, indexes: tuple[int, ...], everything: bool, queue: str | None, exception: str | None, app: str | None
) -> None:
    """Push failures back onto their queues and remove them from the list."""
    b = env.bus()
    chosen = _choose(b, indexes, everything, queue, exception, app)
    done = sum(1 for f in chosen if b.failures.retry(f))
    env.emit({"retried": done}, f"retried {done} failure(s)")


@failed.command("remove")
@click.argument("indexes", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every failure (that matches the filters).")
@filter_options
@common
def failed_remove(
    env: Env, indexes: tuple[int, ...], everything: bool, queue: str | None, exception: str | None, app: str | None
) -> None:
    """Remove failures without retrying them."""
    b = env.bus()
    chosen = _choose(b, indexes, everything, queue, exception, app)
    done = sum(1 for f in chosen if b.failures.remove(f))
    env.emit({"removed": done}, f"removed {done} failure(s)")


@failed.command("clear")
@common
def failed_clear(env: Env) -> None:
    """Empty the failed list."""
    count = env.bus().failures.clear()
    env.emit({"removed": count}, f"removed {count} failure(s)")


def _get_failure(b: Bus, index: int) -> Failure:
    f = b.failures.get(index)
    if f is None:
        raise click.UsageError(f"no failure #{index} (there are {b.failures.count()})")
    return f


def _choose(
    b: Bus, indexes: tuple[int, ...], everything: bool, queue: str | None, exception: str | None, app: str | None
) -> list[Failure]:
    if indexes and everything:
        raise click.UsageError("give INDEXES or --all, not both")
    if indexes:
        return [_get_failure(b, i) for i in indexes]
    if everything or queue or exception or app:
        return _matching_failures(b, queue, exception, app)
    raise click.UsageError("give failure INDEXES, --all, or a filter")


# --- workers ----------------------------------------------------------------------
def worker_options(fn: F) -> F:
    fn = click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Jobs run at once (threads).")(fn)
    fn = click.option("--batch", type=click.IntRange(min=1), help="Jobs reserved per round trip.")(fn)
    return click.option("--burst", is_flag=True, help="Exit once the queues (and due retries) are empty.")(fn)


@cli.command()
@click.argument("app_module")
@click.option("--queues", "queue_list", help="Comma-separated queues, in priority order (default: the app's).")
@click.option("--driver", "with_driver", is_flag=True, help="Also drive bus_incoming in this process.")
@click.option("--scheduler", "with_scheduler", is_flag=True, help="Also run a scheduler (delayed events, heartbeat).")
@click.option("--no-subscribe", is_flag=True, help="Do not store the app's subscriptions at start.")
@worker_options
@common
def work(
    env: Env,
    app_module: str,
    queue_list: str | None,
    with_driver: bool,
    with_scheduler: bool,
    no_subscribe: bool,
    concurrency: int | None,
    batch: int | None,
    burst: bool,
) -> None:
    """Run APP_MODULE's riders (module[:bus]) until SIGTERM."""
    app_bus = _app_bus(env, app_module)
    names = [q.strip() for q in queue_list.split(",") if q.strip()] if queue_list else app_bus.app_queues()
    if with_driver and INCOMING_QUEUE not in names:
        names.append(INCOMING_QUEUE)
    if not no_subscribe and app_bus.dispatches:
        app_bus.subscribe_all()
    worker = app_bus.worker(names, concurrency=concurrency, batch_size=batch, burst=burst)
    _announce(worker.id)
    if with_scheduler:
        _companion_scheduler(app_bus, worker.stop_event)
    sys.exit(worker.run())


@cli.command()
@worker_options
@common
def driver(env: Env, concurrency: int | None, batch: int | None, burst: bool) -> None:
    """Drive bus_incoming: fan every event out to its subscribers' queues."""
    worker = env.bus().worker([INCOMING_QUEUE], concurrency=concurrency, batch_size=batch, burst=burst)
    _announce(worker.id)
    sys.exit(worker.run())


def _companion_scheduler(b: Bus, stop: threading.Event) -> None:
    scheduler = Scheduler(b)
    threading.Thread(target=scheduler.run, kwargs={"stop": stop}, name="bus-scheduler", daemon=True).start()


@cli.command()
@click.option(
    "--interval", default=1.0, show_default=True, type=click.FloatRange(min=0.01), help="Seconds between rounds."
)
@click.option("--burst", is_flag=True, help="One round, then exit.")
@common
def scheduler(env: Env, interval: float, burst: bool) -> None:
    """Deliver delayed events when due and publish the heartbeat (run one per host)."""
    click.echo("scheduler running; SIGTERM or Ctrl-C stops it", err=True)
    sys.exit(Scheduler(env.bus(), interval=interval).run(burst=burst))


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
@click.option("--limit", default=50, show_default=True, help="How many entries, earliest first.")
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


def _announce(worker_id: str) -> None:
    click.echo(f"worker {worker_id} running; SIGTERM or Ctrl-C stops it gracefully", err=True)


def _app_bus(env: Env, spec: str) -> Bus:
    app_bus = load_bus(spec)
    if not app_bus.configured:
        app_bus.configure(env.settings)
    return app_bus


# --- embedded server --------------------------------------------------------------
@cli.command()
@click.argument("action", type=click.Choice(["start", "stop", "status"]), default="status")
@common
def server(env: Env, action: str) -> None:
    """The embedded Redis-compatible server under the data directory."""
    embedded = EmbeddedServer(env.settings.data_dir)
    if action == "start":
        url = embedded.ensure()
        env.emit({"url": url, "running": True}, f"embedded server running at {url}")
    elif action == "stop":
        stopped = embedded.stop()
        env.emit({"stopped": stopped}, "stopped" if stopped else "not running")
    else:
        running = embedded.running()
        where = embedded.url if running else None
        env.emit(
            {"running": running, "url": where, "directory": str(embedded.directory)},
            f"running at {where}" if running else f"not running (data in {embedded.directory})",
        )


# --- web dashboard ----------------------------------------------------------------
@cli.command()
@click.option("--host", help="Address to listen on (default: [web] host, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [web] port, else 8484).")
@common
def web(env: Env, host: str | None, port: int | None) -> None:
    """Serve the web dashboard; beyond 127.0.0.1 only with a token or user/password set."""
    try:
        from bus.web.server import serve
        from bus.web.settings import load_web_settings
    except ImportError as exc:  # the web extra is optional
        raise ConfigurationError(f"the dashboard needs {exc.name or exc}: pip install 'switchboard-bus[web]'") from exc
    serve(env.bus(), load_web_settings(env.settings_file, host=host, port=port))


# --- logger, event feed ------------------------------------------------------------
@cli.command()
@click.option("--sinks", help="Comma-separated sinks (redis, file, elasticsearch); default: [logger] sinks.")
@worker_options
@common
def logger(env: Env, sinks: str | None, concurrency: int | None, batch: int | None, burst: bool) -> None:
    """Run the logger app: every event into the event log, shipped to files / Elasticsearch."""
    from dataclasses import replace

    from bus.logger import LoggerApp, load_logger_settings

    settings = load_logger_settings(env.settings_file)
    if sinks:
        settings = replace(settings, sinks=tuple(s.strip() for s in sinks.split(",") if s.strip()))
    app = LoggerApp(env.bus(), settings)
    click.echo(f"logger running (sinks: {', '.join(settings.sinks)}); SIGTERM or Ctrl-C stops it", err=True)
    sys.exit(app.run(burst=burst, concurrency=concurrency))


def parse_since(text: str) -> float:
    """``90s``, ``10m``, ``2h``, ``1d`` (or plain seconds) -> seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = (text[:-1], text[-1]) if text and text[-1] in units else (text, "s")
    try:
        return float(number) * units[unit]
    except ValueError:
        raise click.UsageError(f"--since {text!r}: expected e.g. 90s, 10m, 2h or 1d") from None


@cli.command()
@click.option("--type", "event_type", help="Only events of this type.")
@click.option("--since", help="Only the last 90s / 10m / 2h / 1d.")
@click.option("--limit", default=50, show_default=True, help="How many past events.")
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
    from bus.tracing import read_trace, timeline

    b = env.bus()
    steps = read_trace(b.redis, b.keys, bus_id)
    if not steps:
        raise click.UsageError(f"no trace for {bus_id} (not traced, expired after [bus.observe] trace_ttl, or unknown)")
    env.emit([{"at": s.at, **s.data} for s in steps], timeline(steps))


@cli.command()
@click.option("--since", default="10m", show_default=True, help="Window: 90s, 10m, 2h (at most 2h).")
@common
def stats(env: Env, since: str) -> None:
    """Events per type and per app, rates, and publish-to-handler latency per subscription."""
    from bus.metrics import event_counts, latency
    from bus.overview import throughput

    b = env.bus()
    minutes = max(1, min(120, round(parse_since(since) / 60)))
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


def run_cli(
    group: click.Group,
    prog: str,
    argv: list[str] | None,
    *,
    bad_input: tuple[type[Exception], ...] = (),
    failures: tuple[type[Exception], ...] = (),
) -> None:
    """Run a click group: errors are one line on stderr and a non-zero exit, never a traceback.

    Usage and configuration mistakes exit 2; other expected failures exit 1.
    """
    usage: tuple[type[Exception], ...] = (ConfigurationError, *bad_input)
    failed: tuple[type[Exception], ...] = (BusError, *failures)
    try:
        group.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.UsageError as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"{prog}: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except usage as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(2)
    except failed as exc:
        click.echo(f"{prog}: error: {exc}", err=True)
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """The ``bus`` entry point."""
    run_cli(cli, "bus", argv)


if __name__ == "__main__":
    main()
