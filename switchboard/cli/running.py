"""Running the switchboard: the worker, the demo, the dashboard."""

from __future__ import annotations

import dataclasses
import sys
import threading
from typing import Any

import click

from bus.backend.connection import redact_url
from bus.cli import Env, common
from bus.cli.running import dashboard, run_worker, web_options
from switchboard.app import Switchboard, unusable
from switchboard.channels import Channel
from switchboard.cli.base import board_settings, cli, outbox_text, store
from switchboard.client import send_email, send_push, send_sms
from switchboard.live_channels import LiveChannels


# --- running ----------------------------------------------------------------------
@cli.command()
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Sends in flight per process.")
@click.option("--no-driver", is_flag=True, help="Do not drive bus_incoming in this process.")
@click.option("--no-scheduler", is_flag=True, help="Do not run a scheduler (send_at, heartbeat) here.")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@common
def run(env: Env, concurrency: int | None, no_driver: bool, no_scheduler: bool, burst: bool) -> None:
    """Run the switchboard worker until SIGTERM (drives and rides its own queues)."""
    sys.exit(_run(env, concurrency=concurrency, driver=not no_driver, scheduler=not no_scheduler, burst=burst))


def _run(env: Env, *, concurrency: int | None, driver: bool, scheduler: bool, burst: bool) -> int:
    settings = board_settings(env)
    if concurrency is not None:
        settings = dataclasses.replace(settings, concurrency=concurrency)
    bus = env.bus()
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    for problem in board.templates.problems:
        click.echo(f"template problem: {problem}", err=True)
    for channel, reason in unusable(board.providers).items():
        click.echo(f"{channel}: not sending until its settings are fixed (probed now and then): {reason}", err=True)
    worker = board.worker(driver=driver, burst=burst)
    providers = settings.live_channels()
    recorder = LiveChannels(bus.redis, board.keys)
    recorder.record(providers)  # the dashboard judges live channels from this, not its own environment
    threading.Thread(target=recorder.keep_recording, args=(providers, worker.stop_event), daemon=True).start()
    live = ", ".join(f"{channel}: {provider}" for channel, provider in providers.items())
    click.echo(f"switchboard worker {worker.id} ({live}); SIGTERM or Ctrl-C stops it", err=True)
    if scheduler:
        companion = bus.scheduler()
        threading.Thread(target=companion.run, kwargs={"stop": worker.stop_event}, daemon=True).start()
    try:
        return run_worker(env, worker)
    finally:
        board.close()


SAMPLES: list[tuple[str, dict[str, Any]]] = [
    (
        "email",
        {
            "to": "ada@example.com",
            "template": "welcome",
            "locale": "fr",
            "data": {"first_name": "Ada", "login_url": "https://app.example.com/login", "trial_days": 14},
        },
    ),
    ("sms", {"to": "+14155550123", "template": "password_reset", "data": {"code": "482913"}}),
    (
        "push",
        {
            "to": ["device-token-0123456789abcdef"],
            "template": "order_shipped",
            "data": {"order_number": "A-1042", "carrier": "UPS"},
        },
    ),
]


@cli.command()
@click.option("--once", is_flag=True, help="Exit after showing the outbox instead of running on.")
@click.option(
    "--to",
    "recipients",
    multiple=True,
    help="Where the samples go on a live channel: an address, an E.164 number or a device token (repeat).",
)
@common
def demo(env: Env, once: bool, recipients: tuple[str, ...]) -> None:
    """Publish a sample of each event, send them (dev outbox by default), show the outbox, run on."""
    settings = board_settings(env)
    samples = _demo_samples(settings.live_channels(), recipients)
    bus = env.bus()
    bus.connect()
    shown_url = redact_url(bus.url or "")
    say = click.echo if not env.json else lambda text: click.echo(text, err=True)
    say(f"bus: {shown_url}")
    templates = store(env)
    senders = {"email": send_email, "sms": send_sms, "push": send_push}
    published = []
    for channel, sample in samples:
        data = {**templates.get(channel, sample["template"]).sample, **sample["data"]}
        bus_id = senders[channel](bus=bus, **{**sample, "data": data})
        published.append({"channel": channel, "template": sample["template"], "bus_id": bus_id})
        say(f"published send_{channel} ({sample['template']}): {bus_id}")
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    worker = board.worker(burst=True)
    worker.run()
    sent = board.outbox.list(len(samples))
    board.close()
    summary = {
        "bus": shown_url,
        "published": published,
        "worker": {"processed": worker.processed, "failed": worker.failed},
        "outbox": sent,
    }
    env.emit(summary, f"\nthe outbox (what dev mode sent):\n{outbox_text(sent)}")
    if not once:
        say("\nrunning the switchboard; publish with `switchboard send ...`; Ctrl-C stops it")
        sys.exit(_run(env, concurrency=None, driver=True, scheduler=True, burst=False))


def _demo_samples(live: dict[Channel, str], recipients: tuple[str, ...]) -> list[tuple[str, dict[str, Any]]]:
    """The samples to send: to the built-in sample recipients on outbox channels only; a live
    channel sends real messages, so it needs ``--to`` for its kind of recipient."""
    given = {"email": [r for r in recipients if "@" in r], "sms": [r for r in recipients if r.startswith("+")]}
    given["push"] = [r for r in recipients if r not in given["email"] + given["sms"]]
    samples = []
    for channel, sample in SAMPLES:
        if live[Channel(channel)] == "outbox":
            samples.append((channel, sample))
        elif given[channel]:
            samples.append((channel, {**sample, "to": given[channel] if channel != "sms" else given[channel][0]}))
        else:
            raise click.UsageError(
                f"{channel} is live ({live[Channel(channel)]}): the demo would send real messages to its sample "
                f"recipient; give --to with a {channel} recipient of yours, or run it without credentials"
            )
    return samples


# --- web dashboard -----------------------------------------------------------------
@cli.command()
@web_options
@common
def web(env: Env, host: str | None, port: int | None) -> None:
    """Serve the dashboard: the bus pages plus templates, deliveries, outbox and suppressions."""
    serve, settings = dashboard(env, "switchboard.web.serving", host, port)
    serve(env.bus(), settings, board_settings(env))
