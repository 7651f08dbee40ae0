"""What every ``switchboard`` command shares: its settings, the templates, the group."""

from __future__ import annotations

import time
from typing import Any

import click

from bus.cli import Env, command_group
from bus.telemetry.logs import redact_logs
from switchboard.channels import Channel
from switchboard.privacy import mask_log_line
from switchboard.settings import SwitchboardSettings, load_switchboard_settings
from switchboard.templating import TemplateStore

CHANNELS = click.Choice([c.value for c in Channel])


def board_settings(env: Env) -> SwitchboardSettings:
    """The switchboard's settings; from here on, no log line shows one of their secrets."""
    settings = load_switchboard_settings(env.settings_file)
    redact_logs(settings.secrets(), mask_log_line)
    return settings


def store(env: Env) -> TemplateStore:
    s = board_settings(env)
    # The commands report problems themselves (templates check/list/show): no log lines besides.
    return TemplateStore(
        s.templates_dir,
        default_locale=s.default_locale,
        refresh_interval=None,
        log_problems=False,
        categories=s.categories,
    )


@command_group
def cli() -> None:
    """The switchboard: the one bus app that sends email, SMS and push for every other app."""


def outbox_text(entries: list[dict[str, Any]]) -> str:
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
