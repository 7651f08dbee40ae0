"""Preferences: look a recipient up (by the apps' user id, or an address, number or token) and
turn categories on or off for them, channel by channel.

A typed recipient or user id becomes its recipient key (a digest) before it reaches a URL, as the
deliveries search does; changes are POSTs with the dashboard's CSRF token, and are announced as
``preference_changed`` like any other.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from switchboard.categories import opt_outs
from switchboard.channels import Channel
from switchboard.preference_changes import Change
from switchboard.preferences import PreferenceRefused, recipient_key
from switchboard.web.board import board_of

SOURCE = "dashboard"
_KEY = re.compile(r"^(user|to):[0-9a-f]{32}$")


def preferences(request: Request) -> Response:
    board = board_of(request)
    key = request.query_params.get("key", "")
    key = key if _KEY.match(key) else ""
    rows: list[dict[str, Any]] = []
    if key:
        stored = {(p.category, p.channel): p for p in board.preference_changes.preferences.show(key)}
        for category, may_opt_out in opt_outs(board.settings.categories).items():
            for channel in Channel:
                choice = stored.get((category, channel.value))
                rows.append(
                    {
                        "category": category,
                        "description": board.settings.categories[category].description,
                        "channel": channel.value,
                        "may_opt_out": may_opt_out,
                        "allowed": not may_opt_out or choice is None or choice.allowed,
                        "at": choice.at if choice else None,
                        "source": choice.source if choice else "",
                    }
                )
    context = {"title": "Preferences", "key": key, "rows": rows}
    return dashboard_of(request).render(request, "sb_preferences.html", context)


async def find(request: Request) -> Response:
    """The lookup form: the typed user id or recipient becomes a recipient key before any URL."""
    form = await request.form()
    user_id, recipient = str(form.get("user_id") or "").strip(), str(form.get("recipient") or "").strip()
    back = str(request.url_for("sb_preferences").path)
    dash = dashboard_of(request)
    if bool(user_id) == bool(recipient):
        return dash.redirect(request, back, flash="Give a user id or a recipient (one of the two).", level="error")
    key = recipient_key(user_id or None, recipient or None)
    return dash.redirect(request, f"{back}?{urlencode({'key': key})}")


async def change(request: Request) -> Response:
    board, dash = board_of(request), dashboard_of(request)
    form = await request.form()
    key, category = str(form.get("key") or ""), str(form.get("category") or "")
    channel, allowed = str(form.get("channel") or ""), str(form.get("allowed") or "")
    page = str(request.url_for("sb_preferences").path)
    if not _KEY.match(key) or channel not in {c.value for c in Channel} or allowed not in ("yes", "no"):
        return dash.redirect(request, page, flash="That is not a preference to change.", level="error")
    back = f"{page}?{urlencode({'key': key})}"
    wanted = Change(key, category, Channel(channel), allowed == "yes", SOURCE)
    try:
        changed = await run_in_threadpool(board.preference_changes.apply, wanted)
    except PreferenceRefused as exc:
        return dash.redirect(request, back, flash=str(exc), level="error")
    state = "on" if wanted.allowed else "off"
    return dash.redirect(request, back, flash=f"{category} on {channel}: {state}" + ("." if changed else " already."))


ROUTES = [
    Route("/switchboard/preferences", preferences, name="sb_preferences"),
    Route("/switchboard/preferences/find", find, methods=["POST"], name="sb_preferences_find"),
    Route("/switchboard/preferences/change", change, methods=["POST"], name="sb_preferences_change"),
]
