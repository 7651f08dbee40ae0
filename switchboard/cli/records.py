"""What was sent and to whom not: deliveries, the outbox, suppressions, settings."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import redis.exceptions

from bus.cli import Env, common, parse_since
from bus.cli.output import table
from switchboard.app import provider_problems
from switchboard.channel_states import ChannelStates
from switchboard.channels import Channel
from switchboard.cli.base import CHANNELS, board_settings, cli, outbox_text, store
from switchboard.deliveries import Deliveries, Status, Suppressions
from switchboard.events import check_recipient
from switchboard.hooks.config import hook_problems, served
from switchboard.keys import SwitchboardKeys
from switchboard.privacy import mask, recipient_digest
from switchboard.providers.outbox import Outbox
from switchboard.resending import resend
from switchboard.settings import SwitchboardSettings


# --- deliveries, outbox, suppressions -----------------------------------------------
def _deliveries(env: Env) -> Deliveries:
    b = env.bus()
    s = board_settings(env)
    return Deliveries(b.redis, SwitchboardKeys(b.keys), retention=s.retention_seconds, stale_after=60.0)


DELIVERY_COLUMNS = [
    ("when", "WHEN"),
    ("channel", "CHANNEL"),
    ("status", "STATUS"),
    ("template", "TEMPLATE"),
    ("recipients", "TO"),
    ("attempts", "TRIES"),
    ("provider_message_id", "PROVIDER ID"),
    ("error", "ERROR"),
]


def _since(text: str | None) -> float | None:
    """``--since 10m`` as the epoch it means (None without one)."""
    return time.time() - parse_since(text) if text else None


def _when(epoch: Any) -> str:
    return "-" if not isinstance(epoch, int | float) else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


@cli.group(invoke_without_command=True)
@click.option(
    "--status",
    type=click.Choice([s.value for s in Status]),
    help="Only records with this status (accepted also finds the older 'sent').",
)
@click.option("--channel", type=CHANNELS)
@click.option("--to", "recipient", help="A recipient's exact address, number or token.")
@click.option("--since", help="Only the last 90s, 10m, 2h, 1d...")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(min=1))
@common
@click.pass_context
def deliveries(
    ctx: click.Context,
    env: Env,
    status: str | None,
    channel: str | None,
    recipient: str | None,
    since: str | None,
    limit: int,
) -> None:
    """Delivery records, newest first (recipients masked); ``show`` one, or ``retry`` failed ones."""
    if ctx.invoked_subcommand is not None:
        return
    records = _deliveries(env)
    found = records.search(
        status=status,
        channel=channel,
        recipient_digest=recipient_digest(recipient) if recipient else None,
        since=_since(since),
        limit=limit,
    )
    if found.cut_short:
        click.echo(f"searched the newest {records.scan_limit:,} records only: narrow it with --since", err=True)
    rows = [d.to_json() for d in found.deliveries]
    for row in rows:
        row["when"] = _when(row.get("created_at"))
    env.emit(rows, table(rows, DELIVERY_COLUMNS, empty="no deliveries"))


@deliveries.command("show")
@click.argument("delivery_id")
@common
def deliveries_show(env: Env, delivery_id: str) -> None:
    """One delivery: its record and its timeline (every attempt, every provider event)."""
    records = _deliveries(env)
    record = records.get(delivery_id)
    if record is None:
        raise click.UsageError(f"no delivery {delivery_id!r} (ids look like email:<idempotency key or bus_id>)")
    data = {**record.to_json(), "timeline": records.timeline(delivery_id)}
    lines = [f"{key}: {value}" for key, value in data.items() if key != "timeline" and value not in (None, "")]
    lines.append("timeline:")
    lines += [
        f"  {_when(step.get('at'))}  {step.get('status')}"
        + "".join(
            f"  {key}={step[key]}" for key in ("provider", "event", "reason", "error_code", "error") if step.get(key)
        )
        for step in data["timeline"]
    ] or ["  (nothing yet)"]
    env.emit(data, "\n".join(lines))


@deliveries.command("retry")
@click.argument("delivery_ids", nargs=-1)
@click.option("--status", type=click.Choice([Status.FAILED.value, Status.STALLED.value]), help="Every record so.")
@click.option("--channel", type=CHANNELS)
@click.option("--since", help="With --status: only the last 90s, 10m, 2h, 1d...")
@common
def deliveries_retry(
    env: Env, delivery_ids: tuple[str, ...], status: str | None, channel: str | None, since: str | None
) -> None:
    """Send failed deliveries again, once their cause is fixed (those already sent never are)."""
    if bool(delivery_ids) == bool(status):
        raise click.UsageError("give delivery ids, or --status failed|stalled (with --since, --channel), not both")
    records = _deliveries(env)
    ids = list(delivery_ids)
    if status:
        ids = [
            d.id for d in records.search(status=status, channel=channel, since=_since(since), limit=10_000).deliveries
        ]
    done = resend(records, env.bus().failures, ids, time.time())
    rows = [r.to_json() for r in done]
    env.emit(rows, table(rows, [("delivery_id", "DELIVERY"), ("outcome", "OUTCOME")], empty="nothing to resend"))
    if ids and not any(r.requeued for r in done):
        sys.exit(1)


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
    """Suppressed recipients (masked), since when and why."""
    s = _suppressions(env)
    rows = [row for c in Channel if channel in (None, c.value) for row in s.list(c.value)]
    for row in rows:
        row["added"] = _when(row.get("added_at"))
    env.emit(
        rows,
        table(
            rows,
            [
                ("channel", "CHANNEL"),
                ("recipient", "RECIPIENT"),
                ("added", "ADDED"),
                ("reason", "REASON"),
                ("code", "CODE"),
            ],
            empty="nobody is suppressed",
        ),
    )


@suppressions.command("add")
@click.argument("channel", type=CHANNELS)
@click.argument("recipient")
@click.option("--reason", default="added by an operator", show_default=True)
@common
def suppressions_add(env: Env, channel: str, recipient: str, reason: str) -> None:
    """Stop sending to RECIPIENT on CHANNEL (an address, an E.164 number or a device token)."""
    recipient = check_recipient(channel, recipient)
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
    """Validate the settings as ``switchboard run`` would: channels (live, dev mode, broken or stopped),
    senders, templates. Exits 1 when anything would not work."""
    settings = board_settings(env)
    live = {channel.value: provider for channel, provider in settings.live_channels().items()}
    chains = {channel.value: list(settings.provider_chain(channel)) for channel in settings.live_channels()}
    broken = {channel.value: problem for channel, problem in provider_problems(settings).items()}
    problems = [str(p) for p in store(env).problems]
    hooks_problems = hook_problems(settings)
    try:
        b = env.bus()
        stopped = [s.to_json() for s in ChannelStates(b.redis, SwitchboardKeys(b.keys), time.time).all()]
        states_known = True
    except redis.exceptions.RedisError:
        stopped, states_known = [], False
    data = {
        "channels": live,
        "providers": chains,
        "broken": broken,
        "stopped": stopped,
        "senders": list(settings.senders),
        "templates_dir": str(settings.templates_dir),
        "template_problems": problems,
        "hooks_problems": hooks_problems,
        "unsubscribe_links": unsubscribe_links(settings),
    }
    lines = []
    for channel in live:
        shown = " -> ".join(chains[channel]) or "outbox (dev mode)"
        lines.append(f"{channel}: {shown} BROKEN: {broken[channel]}" if channel in broken else f"{channel}: {shown}")
    lines += [
        f"{s['scope']}: STOPPED since {_when(s['since'])}: {s['reason']} (probed at {_when(s['probe_after'])})"
        for s in stopped
    ]
    if not states_known:
        lines.append("stopped channels: unknown (Redis unreachable)")
    lines.append(f"senders: {', '.join(settings.senders)}\ntemplates: {settings.templates_dir}")
    hooks = ", ".join(served(settings))
    lines += [f"switchboard hooks would not start: {p}" for p in hooks_problems] or [
        f"switchboard hooks: ready ({hooks}) for {settings.public_url}"
    ]
    lines.append(f"unsubscribe links: {data['unsubscribe_links']}")
    lines += [f"template problem: {p}" for p in problems] or ["all templates render"]
    env.emit(data, "\n".join(lines))
    if broken or problems:
        sys.exit(1)


def unsubscribe_links(settings: SwitchboardSettings) -> str:
    """Whether emails carry one-click unsubscribe links, and if not what is missing."""
    missing = [
        name
        for name, value in (
            ("[switchboard] public_url", settings.public_url),
            ("[switchboard.unsubscribe] secret", settings.unsubscribe.secret),
        )
        if not value
    ]
    return f"off (set {' and '.join(missing)})" if missing else f"on ({settings.public_url}/unsubscribe/...)"
