"""``switchboard``: run the worker, send test events, manage templates, inspect deliveries."""

from __future__ import annotations

import sys
import tempfile
import threading
import time
import webbrowser
from pathlib import Path
from typing import Any

import click

from bus.cli import Env, command_group, common, parse_attributes, run_cli
from bus.keys import INCOMING_QUEUE
from bus.output import table, to_json
from bus.scheduler import Scheduler
from switchboard.app import Switchboard
from switchboard.channels import Channel
from switchboard.client import send_email, send_push, send_sms
from switchboard.deliveries import Deliveries, Suppressions
from switchboard.errors import SettingsError, SwitchboardError, TemplateError
from switchboard.events import InvalidNotification
from switchboard.keys import SwitchboardKeys
from switchboard.outbox import Outbox
from switchboard.privacy import mask, recipient_digest
from switchboard.settings import SwitchboardSettings, load_switchboard_settings
from switchboard.templating import TemplateStore

CHANNELS = click.Choice([c.value for c in Channel])


def board_settings(env: Env) -> SwitchboardSettings:
    return load_switchboard_settings(env.settings_file)


def store(env: Env) -> TemplateStore:
    s = board_settings(env)
    return TemplateStore(s.templates_dir, default_locale=s.default_locale, refresh_interval=None)


@command_group
def cli() -> None:
    """The switchboard: the one bus app that sends email, SMS and push for every other app."""


# --- running ----------------------------------------------------------------------
@cli.command()
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Sends at once (threads).")
@click.option("--no-driver", is_flag=True, help="Do not drive bus_incoming in this process.")
@click.option("--no-scheduler", is_flag=True, help="Do not run a scheduler (send_at, heartbeat) here.")
@click.option("--burst", is_flag=True, help="Exit once the queues are empty.")
@common
def run(env: Env, concurrency: int | None, no_driver: bool, no_scheduler: bool, burst: bool) -> None:
    """Run the switchboard worker until SIGTERM (drives and rides its own queues)."""
    sys.exit(_run(env, concurrency=concurrency, driver=not no_driver, scheduler=not no_scheduler, burst=burst))


def _run(env: Env, *, concurrency: int | None, driver: bool, scheduler: bool, burst: bool) -> int:
    settings = board_settings(env)
    bus = env.bus()
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    for problem in board.templates.problems:
        click.echo(f"template problem: {problem}", err=True)
    queues = board.queues + ([INCOMING_QUEUE] if driver else [])
    worker = bus.worker(queues, concurrency=concurrency or settings.concurrency, burst=burst)
    live = ", ".join(f"{channel}: {provider}" for channel, provider in settings.live_channels().items())
    click.echo(f"switchboard worker {worker.id} ({live}); SIGTERM or Ctrl-C stops it", err=True)
    if scheduler:
        companion = Scheduler(bus)
        threading.Thread(target=companion.run, kwargs={"stop": worker.stop_event}, daemon=True).start()
    try:
        return worker.run()
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
@common
def demo(env: Env, once: bool) -> None:
    """Publish a sample of each event, send them (dev outbox by default), show the outbox, run on."""
    settings = board_settings(env)
    bus = env.bus()
    click.echo(f"bus: {bus.redis_url}")
    store = TemplateStore(settings.templates_dir, default_locale=settings.default_locale, refresh_interval=None)
    senders = {"email": send_email, "sms": send_sms, "push": send_push}
    for channel, sample in SAMPLES:
        data = {**store.get(channel, sample["template"]).sample, **sample["data"]}
        bus_id = senders[channel](bus=bus, **{**sample, "data": data})
        click.echo(f"published send_{channel} ({sample['template']}): {bus_id}")
    board = Switchboard(bus, settings)
    bus.subscribe_all()
    worker = bus.worker([*board.queues, INCOMING_QUEUE], burst=True, concurrency=settings.concurrency)
    worker.run()
    click.echo("\nthe outbox (what dev mode sent):")
    click.echo(_outbox_text(board.outbox.list(len(SAMPLES))))
    board.close()
    if not once:
        click.echo("\nrunning the switchboard; publish with `switchboard send ...`; Ctrl-C stops it")
        sys.exit(_run(env, concurrency=None, driver=True, scheduler=True, burst=False))


# --- sending test events ----------------------------------------------------------
@cli.group()
def send() -> None:
    """Publish a test notification event (as any app would)."""


def _content_options(fn: Any) -> Any:
    fn = click.option("--template", help="Template name.")(fn)
    fn = click.option("--data", "data_json", help="Template data, a JSON object.")(fn)
    fn = click.option("--locale", help="Locale, e.g. fr or fr_CA.")(fn)
    fn = click.option("--sample", is_flag=True, help="Use the template's sample data.")(fn)
    return fn


def _publish(env: Env, sender: Any, channel: str, fields: dict[str, Any], sample: bool) -> None:
    fields = {k: v for k, v in fields.items() if v not in (None, (), [])}
    if sample:
        if not fields.get("template"):
            raise click.UsageError("--sample needs --template")
        fields["data"] = {**store(env).get(channel, fields["template"]).sample, **fields.get("data", {})}
    bus_id = sender(bus=env.bus(), **fields)
    env.emit({"bus_id": bus_id}, bus_id)


@send.command("email")
@click.option("--to", "to", multiple=True, required=True, help="Recipient (repeatable).")
@click.option("--subject")
@click.option("--text")
@click.option("--html")
@click.option("--from", "from_", help="Sender (must be allowed in settings).")
@_content_options
@common
def send_email_cmd(
    env: Env,
    to: tuple[str, ...],
    subject: str | None,
    text: str | None,
    html: str | None,
    from_: str | None,
    template: str | None,
    data_json: str | None,
    locale: str | None,
    sample: bool,
) -> None:
    """Publish send_email."""
    fields = {
        "to": list(to),
        "subject": subject,
        "text": text,
        "html": html,
        "from_": from_,
        "template": template,
        "data": parse_attributes(data_json) if data_json else None,
        "locale": locale,
    }
    _publish(env, send_email, "email", fields, sample)


@send.command("sms")
@click.option("--to", required=True, help="E.164 number, e.g. +14155550123.")
@click.option("--body")
@_content_options
@common
def send_sms_cmd(
    env: Env, to: str, body: str | None, template: str | None, data_json: str | None, locale: str | None, sample: bool
) -> None:
    """Publish send_sms."""
    fields = {
        "to": to,
        "body": body,
        "template": template,
        "data": parse_attributes(data_json) if data_json else None,
        "locale": locale,
    }
    _publish(env, send_sms, "sms", fields, sample)


@send.command("push")
@click.option("--to", "to", multiple=True, help="Device token (repeatable).")
@click.option("--topic")
@click.option("--title")
@click.option("--body")
@click.option("--data-payload", help="String map sent to the app, a JSON object.")
@_content_options
@common
def send_push_cmd(
    env: Env,
    to: tuple[str, ...],
    topic: str | None,
    title: str | None,
    body: str | None,
    data_payload: str | None,
    template: str | None,
    data_json: str | None,
    locale: str | None,
    sample: bool,
) -> None:
    """Publish send_push."""
    fields = {
        "to": list(to),
        "topic": topic,
        "title": title,
        "body": body,
        "data_payload": parse_attributes(data_payload) if data_payload else None,
        "template": template,
        "data": parse_attributes(data_json) if data_json else None,
        "locale": locale,
    }
    _publish(env, send_push, "push", fields, sample)


# --- templates --------------------------------------------------------------------
@cli.group()
def templates() -> None:
    """The message templates: list, show, render, check."""


@templates.command("list")
@common
def templates_list(env: Env) -> None:
    """Every template, its locales and whether it renders."""
    rows = [
        {"key": t.key, "locales": ",".join(t.locales), "ok": t.ok, "description": t.description}
        for t in store(env).templates()
    ]
    env.emit(
        rows,
        table(
            rows,
            [("key", "TEMPLATE"), ("locales", "LOCALES"), ("ok", "OK"), ("description", "DESCRIPTION")],
            empty="no templates",
        ),
    )


def _find_one(s: TemplateStore, name: str, channel: str | None) -> Any:
    found = s.find(name, channel)
    if not found:
        raise click.UsageError(f"no template {name!r}" + (f" for {channel}" if channel else ""))
    if len(found) > 1:
        choices = ", ".join(t.key for t in found)
        raise click.UsageError(f"{name!r} exists for several channels ({choices}); add --channel")
    return found[0]


@templates.command("show")
@click.argument("name")
@click.option("--channel", type=CHANNELS)
@common
def templates_show(env: Env, name: str, channel: str | None) -> None:
    """A template's description, fields, sample data, files and problems."""
    info = _find_one(store(env), name, channel)
    data = info.to_dict()
    if env.json:
        click.echo(to_json(data))
        return
    click.echo(f"{info.key}: {info.description}")
    click.echo(f"locales: {', '.join(info.locales)}")
    click.echo("fields:")
    for field in info.fields:
        click.echo(f"  {field}")
    click.echo("sample data:")
    click.echo(to_json(info.sample))
    for problem in info.problems:
        click.echo(f"problem: {problem}")


@templates.command("render")
@click.argument("name")
@click.option("--channel", type=CHANNELS)
@click.option("--data", "data_json", help="Data, a JSON object (default: the template's sample).")
@click.option("--locale")
@click.option("--open", "open_html", is_flag=True, help="Open the HTML part in a browser.")
@common
def templates_render(
    env: Env, name: str, channel: str | None, data_json: str | None, locale: str | None, open_html: bool
) -> None:
    """Render a template with data (or its sample) and print every part."""
    s = store(env)
    info = _find_one(s, name, channel)
    data = parse_attributes(data_json) if data_json else info.sample
    message = s.render(info.channel, info.name, data, locale)
    if env.json:
        click.echo(to_json(message.to_dict()))
    else:
        click.echo(f"{info.key} [{message.locale}]")
        for part, text in message.parts().items():
            click.echo(f"--- {part} ---")
            click.echo(text)
    if open_html and message.html:
        path = Path(tempfile.mkstemp(suffix=".html", prefix=f"{info.name}-")[1])
        path.write_text(message.html)
        webbrowser.open(path.as_uri())


@templates.command("check")
@common
def templates_check(env: Env) -> None:
    """Render every template in every locale with its sample data; exit 1 on any problem."""
    problems = store(env).check()
    if env.json:
        click.echo(to_json([p.to_dict() for p in problems]))
    else:
        for problem in problems:
            click.echo(str(problem))
        if not problems:
            click.echo("all templates render")
    if problems:
        sys.exit(1)


# --- deliveries, outbox, suppressions -----------------------------------------------
def _deliveries(env: Env) -> Deliveries:
    b = env.bus()
    s = board_settings(env)
    return Deliveries(b.redis, SwitchboardKeys(b.keys), retention=s.retention_seconds, stale_after=60.0)


@cli.command()
@click.option("--status", help="sent, failed, retrying, sending, suppressed, stalled.")
@click.option("--channel", type=CHANNELS)
@click.option("--to", "recipient", help="A recipient's exact address, number or token.")
@click.option("--since", type=float, help="Only the last N seconds.")
@click.option("--limit", default=50, show_default=True)
@common
def deliveries(
    env: Env, status: str | None, channel: str | None, recipient: str | None, since: float | None, limit: int
) -> None:
    """Delivery records, newest first (recipients masked)."""
    found = _deliveries(env).search(
        status=status,
        channel=channel,
        recipient_digest=recipient_digest(recipient) if recipient else None,
        since=time.time() - since if since else None,
        limit=limit,
    )
    rows = [d.to_json() for d in found]
    for row in rows:
        row["when"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.get("created_at", 0)))
    env.emit(
        rows,
        table(
            rows,
            [
                ("when", "WHEN"),
                ("channel", "CHANNEL"),
                ("status", "STATUS"),
                ("template", "TEMPLATE"),
                ("recipients", "TO"),
                ("attempts", "TRIES"),
                ("provider_message_id", "PROVIDER ID"),
                ("error", "ERROR"),
            ],
            empty="no deliveries",
        ),
    )


def _outbox_text(entries: list[dict[str, Any]]) -> str:
    if not entries:
        return "(the outbox is empty)"
    blocks = []
    for e in entries:
        lines = [f"[{e['channel']}] {e['id']} at {time.strftime('%H:%M:%S', time.localtime(e['at']))}"]
        for key in ("to", "tokens", "topic", "from_email", "subject", "title", "body", "text"):
            if e.get(key):
                value = ", ".join(e[key]) if isinstance(e[key], list) else e[key]
                lines.append(f"  {key}: {value}")
        if e.get("html"):
            lines.append(f"  html: {len(e['html'])} characters")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


@cli.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--channel", type=CHANNELS)
@click.option("--clear", is_flag=True, help="Empty the outbox.")
@common
def outbox(env: Env, limit: int, channel: str | None, clear: bool) -> None:
    """Messages dev mode 'sent' (channels without credentials), newest first."""
    b = env.bus()
    box = Outbox(b.redis, SwitchboardKeys(b.keys), size=board_settings(env).outbox_size)
    if clear:
        count = box.clear()
        env.emit({"removed": count}, f"removed {count} message(s)")
        return
    entries = box.list(limit, channel)
    env.emit(entries, _outbox_text(entries))


@cli.group()
def suppressions() -> None:
    """Recipients the switchboard will not contact: list, add, remove."""


def _suppressions(env: Env) -> Suppressions:
    b = env.bus()
    return Suppressions(b.redis, SwitchboardKeys(b.keys))


@suppressions.command("list")
@click.option("--channel", type=CHANNELS)
@common
def suppressions_list(env: Env, channel: str | None) -> None:
    """Suppressed recipients (masked) and why."""
    s = _suppressions(env)
    rows = [row for c in Channel if channel in (None, c.value) for row in s.list(c.value)]
    env.emit(
        rows,
        table(
            rows,
            [("channel", "CHANNEL"), ("recipient", "RECIPIENT"), ("reason", "REASON"), ("code", "CODE")],
            empty="nobody is suppressed",
        ),
    )


@suppressions.command("add")
@click.argument("channel", type=CHANNELS)
@click.argument("recipient")
@click.option("--reason", default="added by an operator", show_default=True)
@common
def suppressions_add(env: Env, channel: str, recipient: str, reason: str) -> None:
    """Stop sending to RECIPIENT on CHANNEL."""
    added = _suppressions(env).add(channel, recipient_digest(recipient), mask(recipient), reason, time.time())
    env.emit({"added": added}, f"{mask(recipient)} suppressed on {channel}" if added else "already suppressed")


@suppressions.command("remove")
@click.argument("channel", type=CHANNELS)
@click.argument("recipient")
@common
def suppressions_remove(env: Env, channel: str, recipient: str) -> None:
    """Allow sending to RECIPIENT on CHANNEL again."""
    removed = _suppressions(env).remove(channel, recipient_digest(recipient))
    env.emit({"removed": removed}, "removed" if removed else f"{mask(recipient)} was not suppressed on {channel}")


# --- web dashboard -----------------------------------------------------------------
@cli.command()
@click.option("--host", help="Address to listen on (default: [web] host, else 127.0.0.1).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: [web] port, else 8484).")
@common
def web(env: Env, host: str | None, port: int | None) -> None:
    """Serve the dashboard: the bus pages plus templates, deliveries, outbox and suppressions."""
    from bus.errors import ConfigurationError

    try:
        from bus.web.settings import load_web_settings
        from switchboard.web.server import serve
    except ImportError as exc:  # the web extra is optional
        raise ConfigurationError(f"the dashboard needs {exc.name or exc}: pip install 'switchboard-bus[web]'") from exc
    serve(env.bus(), load_web_settings(env.settings_file, host=host, port=port), board_settings(env))


@cli.command("check-settings")
@common
def check_settings(env: Env) -> None:
    """Validate the settings file; say which channels are live and which use the outbox."""
    settings = board_settings(env)
    live = {channel.value: provider for channel, provider in settings.live_channels().items()}
    problems = [
        str(p)
        for p in TemplateStore(
            settings.templates_dir, default_locale=settings.default_locale, refresh_interval=None
        ).problems
    ]
    data = {
        "channels": live,
        "senders": settings.senders,
        "templates_dir": str(settings.templates_dir),
        "template_problems": problems,
    }
    text = "\n".join(
        f"{channel}: {provider}{' (dev mode)' if provider == 'outbox' else ''}" for channel, provider in live.items()
    )
    text += f"\nsenders: {', '.join(settings.senders)}\ntemplates: {settings.templates_dir}"
    text += "".join(f"\ntemplate problem: {p}" for p in problems) or "\nall templates render"
    env.emit(data, text)


def main(argv: list[str] | None = None) -> None:
    """The ``switchboard`` entry point."""
    run_cli(
        cli,
        "switchboard",
        argv,
        bad_input=(SettingsError, InvalidNotification, TemplateError),
        failures=(SwitchboardError,),
    )


if __name__ == "__main__":
    main()
