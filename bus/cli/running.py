"""Long-running processes: workers, the driver, the scheduler, the logger, the dashboard, the server."""

from __future__ import annotations

import importlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import click

from bus.backend.embedded import EmbeddedServer
from bus.cli.base import Env, F, announce, app_bus_of, cli, common, worker_options
from bus.core import Bus
from bus.errors import ConfigurationError
from bus.keys import INCOMING_QUEUE
from bus.runtime.collector import tune_collector
from bus.runtime.worker import Worker

if TYPE_CHECKING:
    from bus.web.settings import WebSettings


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
    app_bus = app_bus_of(env, app_module)
    names = [q.strip() for q in queue_list.split(",") if q.strip()] if queue_list else app_bus.app_queues()
    if with_driver and INCOMING_QUEUE not in names:
        names.append(INCOMING_QUEUE)
    with stoppable_start():
        if not no_subscribe and app_bus.dispatches:
            app_bus.subscribe_all()
        worker = app_bus.worker(names, concurrency=concurrency, batch_size=batch, burst=burst)
        announce(worker.id)
        if with_scheduler:
            _companion_scheduler(app_bus, worker.stop_event)
        sys.exit(run_worker(env, worker))


@cli.command()
@worker_options
@common
def driver(env: Env, concurrency: int | None, batch: int | None, burst: bool) -> None:
    """Drive bus_incoming: fan every event out to its subscribers' queues."""
    with stoppable_start():
        worker = env.bus().worker([INCOMING_QUEUE], concurrency=concurrency, batch_size=batch, burst=burst)
        announce(worker.id)
        sys.exit(run_worker(env, worker))


class _StoppedBeforeStart(BaseException):
    """SIGTERM or Ctrl-C while a worker was still starting (subscribing, connecting)."""


@contextmanager
def stoppable_start() -> Iterator[None]:
    """Until the worker installs its own signal handling, a stop ends the command at once, with
    exit 0: nothing was taken yet, so there is nothing to finish or give back."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _StoppedBeforeStart()

    previous = {signum: signal.signal(signum, stop) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    except _StoppedBeforeStart:
        click.echo("stopped before the worker started: it took nothing", err=True)
        sys.exit(0)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def run_worker(env: Env, worker: Worker, run: Callable[[], int] | None = None) -> int:
    """Run ``worker`` (or ``run``, which runs it) until stopped, then say what was done."""
    tune_collector()  # this command owns its process: set the collector for a worker
    code = (run or worker.run)()
    summary = {"worker": worker.id, "processed": worker.processed, "failed": worker.failed}
    env.emit(summary, f"worker {worker.id} stopped: {worker.processed:,} job(s) processed, {worker.failed:,} failed")
    return code


def _companion_scheduler(b: Bus, stop: threading.Event) -> None:
    scheduler = b.scheduler()
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
    runner = env.bus().scheduler(interval=interval)
    code = runner.run(burst=burst)
    summary = {"scheduler": runner.id, "delivered": runner.moved, "failed": runner.failed}
    env.emit(
        summary, f"scheduler {runner.id} stopped: {runner.moved:,} delayed event(s) delivered, {runner.failed:,} failed"
    )
    sys.exit(code)


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
def web_options(fn: F) -> F:
    """``--host`` and ``--port`` of a dashboard command."""
    fn = click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [web] port, else 8484).")(fn)
    return click.option("--host", help="Address to listen on (default: [web] host, else 127.0.0.1).")(fn)


def dashboard(env: Env, serving: str, host: str | None, port: int | None) -> tuple[Callable[..., None], WebSettings]:
    """The ``serve`` of module ``serving`` and the ``[web]`` settings with the flags applied;
    without the web extra, one line saying how to install it."""
    try:
        serve = importlib.import_module(serving).serve
        from bus.web.settings import load_web_settings
    except ImportError as exc:  # the web extra is optional
        raise ConfigurationError(f"the dashboard needs {exc.name or exc}: pip install 'switchboard-bus[web]'") from exc
    return serve, load_web_settings(env.settings_file, host=host, port=port)


@cli.command()
@web_options
@common
def web(env: Env, host: str | None, port: int | None) -> None:
    """Serve the web dashboard; beyond 127.0.0.1 only with a token or user/password set."""
    serve, settings = dashboard(env, "bus.web.serving", host, port)
    serve(env.bus(), settings)


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
    worker = app.worker(burst=burst, concurrency=concurrency)
    sys.exit(run_worker(env, worker, lambda: app.ride(worker, burst=burst)))
