"""What was sent and to whom not: deliveries, the outbox, suppressions, settings."""

from __future__ import annotations

import time

import click

from bus.cli import Env, common
from bus.cli.output import table
from switchboard.channels import Channel
from switchboard.cli.base import CHANNELS, board_settings, cli, outbox_text, store
from switchboard.deliveries import Deliveries, Status, Suppressions
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import mask, recipient_digest
from switchboard.providers.outbox import Outbox


# --- deliveries, outbox, suppressions -----------------------------------------------
def _deliveries(env: Env) -> Deliveries:
    b = env.bus()
    s = board_settings(env)
    return Deliveries(b.redis, SwitchboardKeys(b.keys), retention=s.retention_seconds, stale_after=60.0)


@cli.command()
@click.option("--status", type=click.Choice([s.value for s in Status]), help="Only records with this status.")
@click.option("--channel", type=CHANNELS)
@click.option("--to", "recipient", help="A recipient's exact address, number or token.")
@click.option("--since", type=click.FloatRange(min=0, min_open=True), help="Only the last N seconds.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@common
def deliveries(
    env: Env, status: str | None, channel: str | None, recipient: str | None, since: float | None, limit: int
) -> None:
    """Delivery records, newest first (recipients masked)."""
    records = _deliveries(env)
    found = records.search(
        status=status,
        channel=channel,
        recipient_digest=recipient_digest(recipient) if recipient else None,
        since=time.time() - since if since else None,
        limit=limit,
    )
    if found.cut_short:
        click.echo(f"searched the newest {records.scan_limit:,} records only: narrow it with --since", err=True)
    rows = [d.to_json() for d in found.deliveries]
    for row in rows:
        created = row.get("created_at")
        row["when"] = "-" if created is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
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


@cli.command()
@click.option("--limit", default=20, show_default=True, type=click.IntRange(min=1))
@click.option("--channel", type=CHANNELS)
@click.option("--clear", is_flag=True, help="Empty the outbox (with --channel: that channel's messages).")
@common
def outbox(env: Env, limit: int, channel: str | None, clear: bool) -> None:
    """Messages dev mode 'sent' (channels without credentials), newest first."""
    b = env.bus()
    box = Outbox(b.redis, SwitchboardKeys(b.keys), size=board_settings(env).outbox_size)
    if clear:
        count = box.clear(channel)
        env.emit({"removed": count}, f"removed {count} message(s)")
        return
    entries = box.list(limit, channel)
    env.emit(entries, outbox_text(entries))


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


@cli.command("check-settings")
@common
def check_settings(env: Env) -> None:
    """Validate the settings file; say which channels are live and which use the outbox."""
    settings = board_settings(env)
    live = {channel.value: provider for channel, provider in settings.live_channels().items()}
    chains = {channel.value: list(settings.provider_chain(channel)) for channel in settings.live_channels()}
    problems = [str(p) for p in store(env).problems]
    data = {
        "channels": live,
        "providers": chains,
        "senders": settings.senders,
        "templates_dir": str(settings.templates_dir),
        "template_problems": problems,
    }
    text = "\n".join(f"{channel}: {' -> '.join(chains[channel]) or 'outbox (dev mode)'}" for channel in live)
    text += f"\nsenders: {', '.join(settings.senders)}\ntemplates: {settings.templates_dir}"
    text += "".join(f"\ntemplate problem: {p}" for p in problems) or "\nall templates render"
    env.emit(data, text)
