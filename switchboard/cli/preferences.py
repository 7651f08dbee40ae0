"""``switchboard preferences``: what a recipient chose to get, by category and channel."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ParamSpec

import click

from bus.cli import Env, common
from bus.cli.output import table
from switchboard.categories import opt_outs
from switchboard.channels import Channel
from switchboard.cli.base import CHANNELS, board_settings, cli
from switchboard.events import check_recipient
from switchboard.keys import SwitchboardKeys
from switchboard.preference_changes import Change, PreferenceChanges
from switchboard.preferences import Preferences, recipient_key

SOURCE = "cli"
P = ParamSpec("P")


def _who(user_id: str | None, recipient: str | None, channel: str | None) -> str:
    """The recipient key the options name (exactly one of --user and --to)."""
    if (user_id is None) == (recipient is None):
        raise click.UsageError("name the recipient with exactly one of --user and --to")
    if recipient is not None and channel is not None:
        recipient = check_recipient(channel, recipient)
    return recipient_key(user_id, recipient)


def _changes(env: Env) -> PreferenceChanges:
    b = env.bus()
    settings = board_settings(env)
    return PreferenceChanges(b, Preferences(b.redis, SwitchboardKeys(b.keys), time.time), settings)


def _recipient_options(command: Callable[P, None]) -> Callable[P, None]:
    command = click.option("--to", "recipient", help="Their address, number or device token (no user id).")(command)
    return click.option("--user", "user_id", help="The publishing apps' user id (user_id in events).")(command)


@cli.group()
def preferences() -> None:
    """A recipient's choices: which categories they get on which channel (opted out: not sent)."""


@preferences.command("show")
@_recipient_options
@common
def preferences_show(env: Env, user_id: str | None, recipient: str | None) -> None:
    """Every category on every channel for one recipient: sent, opted out, or always sent."""
    key = _who(user_id, recipient, None)
    settings = board_settings(env)
    stored = {(p.category, p.channel): p for p in _changes(env).preferences.show(key)}
    rows: list[dict[str, Any]] = []
    for category, may_opt_out in opt_outs(settings.categories).items():
        for channel in Channel:
            choice = stored.get((category, channel.value))
            state = "always" if not may_opt_out else "opted out" if choice and not choice.allowed else "sent"
            rows.append(
                {
                    "category": category,
                    "channel": channel.value,
                    "state": state,
                    "changed_at": choice.at if choice else None,
                    "source": choice.source if choice else None,
                }
            )
    shown = [{**r, "changed": _when(r["changed_at"]), "source": r["source"] or "-"} for r in rows]
    columns = [("category", "CATEGORY"), ("channel", "CHANNEL"), ("state", "STATE"), ("changed", "CHANGED")]
    env.emit(rows, table(shown, [*columns, ("source", "SOURCE")], empty="no categories configured"))


@preferences.command("set")
@click.argument("category")
@click.argument("channel", type=CHANNELS)
@click.argument("state", type=click.Choice(["on", "off"]))
@_recipient_options
@common
def preferences_set(
    env: Env, category: str, channel: str, state: str, user_id: str | None, recipient: str | None
) -> None:
    """Turn CATEGORY on or off on CHANNEL for one recipient (announced as preference_changed)."""
    key = _who(user_id, recipient, channel)
    change = Change(key, category, Channel(channel), state == "on", SOURCE, user_id)
    changed = _changes(env).apply(change)
    env.emit({"changed": changed}, f"{category} on {channel}: {state}" + ("" if changed else " (already)"))


@preferences.command("clear")
@click.option("--category", help="Only this category.")
@click.option("--channel", type=CHANNELS, help="Only this channel.")
@_recipient_options
@common
def preferences_clear(
    env: Env, category: str | None, channel: str | None, user_id: str | None, recipient: str | None
) -> None:
    """Forget a recipient's choices (all, or of one category and/or channel): everything is sent again."""
    key = _who(user_id, recipient, channel)
    removed = _changes(env).clear(
        key, SOURCE, category=category, channel=Channel(channel) if channel else None, user_id=user_id
    )
    env.emit({"removed": removed}, f"{removed} choice(s) forgotten")


def _when(epoch: float | None) -> str:
    return "-" if epoch is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(epoch))
