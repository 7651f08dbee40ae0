"""The switchboard's front page: which channels are live and which go to the outbox, and counts.

Settings hold provider credentials; this page says whether they are configured, never
what they are.
"""

from __future__ import annotations

import math
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from switchboard.channel_states import Stopped
from switchboard.channels import Channel
from switchboard.deliveries import OUTCOMES
from switchboard.settings import SwitchboardSettings
from switchboard.web.board import Board, board_of


def channel_rows(
    settings: SwitchboardSettings, providers: dict[Channel, str], stopped: list[Stopped]
) -> list[dict[str, Any]]:
    """One row per channel: its provider (as the workers recorded it), live or dev mode, stopped
    (and why) or running, and what is safe to say about its set-up."""
    return [
        {
            "channel": channel.value,
            "provider": provider,
            "live": provider != "outbox",
            "stopped": [s for s in stopped if s.scope == channel.value or s.scope.startswith(f"{channel.value}:")],
            "notes": notes(settings, channel, provider),
        }
        for channel, provider in providers.items()
    ]


def notes(settings: SwitchboardSettings, channel: Channel, provider: str) -> list[str]:
    """Non-secret facts about a channel's set-up (senders, timeouts), never a credential; only
    what the workers recorded when this dashboard's settings say otherwise."""
    if provider == "outbox":
        return ["no credentials configured: messages go to the outbox (dev mode)"]
    if settings.live_channels()[channel] != provider:
        return [f"sending through {provider}, as the running workers recorded (this dashboard's settings differ)"]
    if channel is Channel.EMAIL:
        return ["API key configured", f"from {settings.default_sender}", f"timeout {settings.sendgrid.timeout:g} s"]
    if channel is Channel.SMS:
        twilio = settings.twilio
        sender = twilio.from_number or ("a messaging service" if twilio.messaging_service_sid else "the default")
        return ["account and auth token configured", f"from {sender}", f"timeout {twilio.timeout:g} s"]
    return ["service account configured", f"timeout {settings.fcm.timeout:g} s"]


def overview_context(board: Board) -> dict[str, Any]:
    days = min(366, math.ceil(board.settings.delivery_retention_days))
    counts = board.deliveries.outcomes_since(time.time(), days)
    return {
        "title": "Switchboard",
        "channels": channel_rows(board.settings, board.providers_in_use(), board.channel_states.all()),
        "statuses": [status.value for status in OUTCOMES],
        "counts": {channel.value: counts.get(channel.value, {}) for channel in Channel},
        "suppressed": {channel.value: board.suppressed_count(channel.value) for channel in Channel},
        "outbox_count": board.outbox_count(),
        "template_count": len(board.templates.templates()),
        "problem_count": len(board.templates.problems),
        "senders": board.settings.senders,
        "templates_dir": str(board.settings.templates_dir),
        "days": days,
    }


def overview(request: Request) -> Response:
    context = overview_context(board_of(request))
    return dashboard_of(request).render(request, "sb_overview.html", context)


ROUTES = [Route("/switchboard", overview, name="sb_overview")]
