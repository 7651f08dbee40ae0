"""Suppressions: recipients the switchboard will not contact, by channel; add one, remove one.

A recipient typed into the add form is stored as its digest and masked form only (as the
sender does); removing asks for confirmation, since it lets messages reach them again.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from bus.web.confirm import confirm_page, confirmed
from bus.web.paging import Pager
from switchboard.privacy import mask, recipient_digest
from switchboard.web.board import board_of
from switchboard.web.search import CHANNELS

DEFAULT_REASON = "added by an operator on the dashboard"
MAX_REASON = 200


def suppressions(request: Request) -> Response:
    board = board_of(request)
    channel = request.query_params.get("channel", "")
    channel = channel if channel in CHANNELS else ""
    rows: list[dict[str, Any]] = [row for c in CHANNELS if channel in ("", c) for row in board.suppressions.list(c)]
    rows.sort(key=lambda row: row.get("added_at") or 0, reverse=True)
    pager = Pager.of(request.query_params, len(rows))
    context = {
        "title": "Suppressions",
        "channel": channel,
        "channels": CHANNELS,
        "rows": rows[pager.offset : pager.offset + pager.per_page],
        "pager": pager,
        "default_reason": DEFAULT_REASON,
    }
    return dashboard_of(request).render(request, "sb_suppressions.html", context)


async def add(request: Request) -> Response:
    board, dash = board_of(request), dashboard_of(request)
    form = await request.form()
    channel = str(form.get("channel") or "")
    recipient = str(form.get("recipient") or "").strip()
    reason = str(form.get("reason") or "").strip()[:MAX_REASON] or DEFAULT_REASON
    back = str(request.url_for("sb_suppressions").path)
    if channel not in CHANNELS or not recipient:
        return dash.redirect(request, back, flash="Give a channel and a recipient to suppress.", level="error")
    masked = mask(recipient)
    added = await run_in_threadpool(
        board.suppressions.add, channel, recipient_digest(recipient), masked, reason, time.time()
    )
    text = f"Suppressed {masked} on {channel}." if added else f"Updated the suppression of {masked} on {channel}."
    return dash.redirect(request, back, flash=text)


async def remove(request: Request) -> Response:
    board, dash = board_of(request), dashboard_of(request)
    form = await request.form()
    channel, digest = str(form.get("channel") or ""), str(form.get("digest") or "")
    back = str(request.url_for("sb_suppressions").path)
    entries = await run_in_threadpool(board.suppressions.list, channel) if channel in CHANNELS else []
    entry = next((e for e in entries if e["digest"] == digest), None)
    if entry is None:
        return dash.redirect(request, back, flash="That recipient is not suppressed (any more).", level="error")
    who = str(entry.get("recipient") or "this recipient")
    if not confirmed(form):
        return confirm_page(
            dash,
            request,
            form,
            title=f"Contact {who} on {channel} again?",
            message=f"Remove the suppression of {who} on {channel}. New {channel} messages will be sent to them again.",
            details=[f"Suppressed because: {entry.get('reason') or 'no reason recorded'}"],
            button="Remove the suppression",
            cancel=back,
        )
    await run_in_threadpool(board.suppressions.remove, channel, digest)
    return dash.redirect(request, back, flash=f"{who} is no longer suppressed on {channel}.")


ROUTES = [
    Route("/switchboard/suppressions", suppressions, name="sb_suppressions"),
    Route("/switchboard/suppressions/add", add, methods=["POST"], name="sb_suppressions_add"),
    Route("/switchboard/suppressions/remove", remove, methods=["POST"], name="sb_suppressions_remove"),
]
