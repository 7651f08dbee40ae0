"""Providers' circuits and rate limits, and who the per-recipient limits refused."""

from __future__ import annotations

import time
from typing import Any

import click

from bus.cli import Env, common
from bus.cli.output import table
from switchboard.channels import Channel
from switchboard.circuits import Circuits
from switchboard.cli.base import CHANNELS, board_settings, cli, store
from switchboard.events import check_recipient
from switchboard.keys import SwitchboardKeys
from switchboard.recipient_limits import RecipientCount, RecipientLimits, limit_for
from switchboard.standing import chained, provider_standings, recipient_limits, refused_recipients

CIRCUIT_COLUMNS = [
    ("provider", "PROVIDER"),
    ("channel", "CHANNEL"),
    ("state", "CIRCUIT"),
    ("failures", "FAILURES IN A ROW"),
    ("recent", "FAILED/SENT (WINDOW)"),
    ("reopens", "PROBED AT"),
    ("reason", "WHY"),
    ("limit", "RATE LIMIT"),
    ("waits", "WAITS"),
]


def _clock(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))


def _rate(per_second: float) -> str:
    return f"{per_second:g}/s" if per_second else "none"


@cli.command()
@click.option("--reset", "reset", metavar="PROVIDER", help="Close PROVIDER's circuit now (its cause is fixed).")
@common
def circuits(env: Env, reset: str | None) -> None:
    """Each provider's circuit (closed, open, half-open) and rate limit, shared by every worker."""
    settings = board_settings(env)
    b = env.bus()
    keys = SwitchboardKeys(b.keys)
    if reset is not None:
        known = chained(settings)
        if reset not in known:
            names = ", ".join(known) or "none (every channel is in dev mode)"
            raise click.UsageError(f"no provider {reset!r} in any channel's chain (they are: {names})")
        Circuits(b.redis, keys, settings.circuit).reset(reset)
        env.emit({"reset": reset}, f"circuit of {reset} closed")
        return
    standings = [s.to_json() for s in provider_standings(settings, b.redis, keys)]
    rows: list[dict[str, Any]] = [
        {
            **s,
            "channel": ", ".join(s["channels"]),
            "recent": f"{s['recent_failures']}/{s['recent_sends']}",
            "reopens": _clock(s["reopens_at"]),
            "limit": _rate(s["rate"]) + (f", {_rate(s['sender_rate'])} per sender" if s["sender_rate"] else ""),
        }
        for s in standings
    ]
    env.emit(standings, table(rows, CIRCUIT_COLUMNS, empty="no providers: every channel is in dev mode"))


@cli.command()
@click.option("--to", "recipient", help="One recipient's count (an address, an E.164 number or a device token).")
@click.option("--channel", type=CHANNELS, help="With --to: the channel to count in.")
@common
def limits(env: Env, recipient: str | None, channel: str | None) -> None:
    """Per-recipient limits and the recipients they refused lately (masked); --to: one recipient's count."""
    settings = board_settings(env)
    b = env.bus()
    store_ = RecipientLimits(b.redis, SwitchboardKeys(b.keys))
    if recipient is not None:
        if channel is None:
            raise click.UsageError("--to needs --channel (email, sms or push)")
        limit = limit_for(channel, settings.channel(Channel(channel)), None)
        if limit is None:
            env.emit({"channel": channel, "limit": None}, f"{channel} has no per-recipient limit")
            return
        count = store_.count(limit, check_recipient(channel, recipient))
        one = {"scope": limit.scope, "window": limit.window, **_count(count)}
        verdict = "under the limit" if count.allowed else f"AT THE LIMIT until {_clock(count.frees_at)}"
        env.emit(one, f"{count.recipient}: {count.count}/{count.limit} in {limit.window:g} s on {channel}: {verdict}")
        return
    found = refused_recipients(recipient_limits(settings, store(env)), store_)
    data = [
        {"scope": limit.scope, "limit": limit.count, "window": limit.window, "refused": [_count(c) for c in refused]}
        for limit, refused in found
    ]
    blocks = []
    for limit, refused in found:
        head = f"{limit.scope}: {limit.count} per {limit.window:g} s"
        rows = [{**_count(c), "frees": _clock(c.frees_at)} for c in refused]
        columns = [("recipient", "RECIPIENT"), ("count", "SENT"), ("frees", "ONE MORE AT")]
        blocks.append(f"{head}\n{table(rows, columns, empty='  nobody refused lately')}")
    env.emit(data, "\n\n".join(blocks) or "no per-recipient limits")


def _count(count: RecipientCount) -> dict[str, Any]:
    return {
        "recipient": count.recipient,
        "count": count.count,
        "limit": count.limit,
        "allowed": count.allowed,
        "frees_at": count.frees_at,
    }
