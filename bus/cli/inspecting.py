"""What is on the bus: queues, workers and the failed list."""

from __future__ import annotations

import functools
import itertools
import time
from typing import Any

import click

from bus.cli.base import Env, F, cli, common
from bus.cli.output import table, to_json
from bus.core import Bus
from bus.stores.failure_search import FailureFilter, matching
from bus.stores.failures import Failure
from bus.stores.overview import queue_stats, totals, worker_stats


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


def filter_options(fn: F) -> F:
    """The filter options, handed to the command as one ``flt: FailureFilter``."""

    @click.option("--app", help="Only failures of this app.")
    @click.option("--grep", "text", help="Only failures whose message, payload or backtrace has this text.")
    @click.option("--exception", help="Only failures with this exception class.")
    @click.option("--queue", help="Only failures from this queue.")
    @functools.wraps(fn)
    def filtered(
        *args: Any, queue: str | None, exception: str | None, app: str | None, text: str | None, **kw: Any
    ) -> Any:
        return fn(*args, flt=FailureFilter(queue or "", exception or "", app or "", text or ""), **kw)

    return filtered  # type: ignore[return-value]


@failed.command("list")
@click.option("--start", default=0, show_default=True, type=click.IntRange(min=0), help="Index of the first entry.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1), help="How many entries.")
@filter_options
@common
def failed_list(env: Env, start: int, limit: int, flt: FailureFilter) -> None:
    """List failures (oldest first, as Resque stores them)."""
    b = env.bus()
    if flt.active:
        entries = list(itertools.islice(matching(b.failures, flt), start, start + limit))
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
def failed_retry(env: Env, indexes: tuple[int, ...], everything: bool, flt: FailureFilter) -> None:
    """Push failures back onto their queues and remove them from the list."""
    done, skipped = _act(env.bus(), "retry", indexes, everything, flt)
    env.emit({"retried": done, "skipped": skipped}, f"retried {done} failure(s){_skipped(skipped)}")


@failed.command("remove")
@click.argument("indexes", type=int, nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Remove every failure (that matches the filters).")
@filter_options
@common
def failed_remove(env: Env, indexes: tuple[int, ...], everything: bool, flt: FailureFilter) -> None:
    """Remove failures without retrying them."""
    done, skipped = _act(env.bus(), "remove", indexes, everything, flt)
    env.emit({"removed": done, "skipped": skipped}, f"removed {done} failure(s){_skipped(skipped)}")


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


def _act(b: Bus, action: str, indexes: tuple[int, ...], everything: bool, flt: FailureFilter) -> tuple[int, int]:
    """(done, skipped): entries named by index, or every entry the filter matches, a chunk
    (one script) at a time; an entry that moved or left meanwhile is skipped, never the wrong one."""
    if indexes and everything:
        raise click.UsageError("give INDEXES or --all, not both")
    if indexes:
        chosen = [_get_failure(b, i) for i in indexes]
        act = b.failures.retry_many if action == "retry" else b.failures.remove_many
        done = act(chosen)
        return done, len(chosen) - done
    if everything or flt.active:
        return b.failures.act_on_each(flt.matches, action)
    raise click.UsageError("give failure INDEXES, --all, or a filter")


def _skipped(skipped: int) -> str:
    return f" ({skipped} skipped: moved, gone or not retryable)" if skipped else ""
