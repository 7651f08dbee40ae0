"""The dev-mode outbox: what channels without credentials 'sent', newest first; clear it.

Recipients are masked as on every page; an HTML body is shown in the sandboxed frame.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from bus.web.confirm import confirm_page, confirmed
from bus.web.paging import Pager
from switchboard.privacy import mask
from switchboard.web.board import board_of
from switchboard.web.frames import REMOTE_IMAGES
from switchboard.web.search import CHANNELS

PER_PAGE = 20
RECIPIENT_FIELDS = ("to", "cc", "bcc", "tokens")
_ID = re.compile(r"[A-Za-z0-9_.-]{1,100}")  # what OutboxProvider makes; others get no frame link
TEXT_FIELDS = ("from_email", "reply_to", "subject", "title", "body", "text", "image", "topic")


def texts(value: Any) -> list[str]:
    """A field that may be a string or a list (or anything a hand-made entry holds) as strings."""
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def entry_view(request: Request, entry: dict[str, Any]) -> dict[str, Any]:
    """What the page shows of one outbox entry; recipients masked."""
    recipients = {name: [mask(r) for r in texts(entry.get(name))] for name in RECIPIENT_FIELDS}
    html = entry.get("html")
    message_id = str(entry.get("id", ""))
    frame = None
    if isinstance(html, str) and _ID.fullmatch(message_id):
        frame = str(request.url_for("sb_outbox_frame", message_id=message_id).path)
        if request.query_params.get("images") == "remote":
            frame += "?" + REMOTE_IMAGES
    return {
        "id": message_id,
        "channel": str(entry.get("channel", "")),
        "at": entry.get("at") if isinstance(entry.get("at"), int | float) else None,
        "recipients": {k: v for k, v in recipients.items() if v},
        "fields": [(name, ", ".join(texts(entry.get(name)))) for name in TEXT_FIELDS if texts(entry.get(name))],
        "extra": {k: entry[k] for k in ("data", "headers", "categories") if entry.get(k)},
        "html_size": len(html) if isinstance(html, str) else None,
        "frame": frame,
    }


def outbox(request: Request) -> Response:
    board = board_of(request)
    channel = request.query_params.get("channel", "")
    channel = channel if channel in CHANNELS else ""
    entries = board.outbox.list(board.outbox.size, channel or None)
    pager = Pager.of(request.query_params, len(entries), per_page=PER_PAGE)
    shown = entries[pager.offset : pager.offset + pager.per_page]
    context = {
        "title": "Outbox",
        "channel": channel,
        "channels": CHANNELS,
        "pager": pager,
        "entries": [entry_view(request, e) for e in shown],
        "total": board.outbox_count(),
        "live": {c: p for c, p in board.providers_in_use().items() if p != "outbox"},
        "remote_images": request.query_params.get("images") == "remote",
    }
    return dashboard_of(request).render(request, "sb_outbox.html", context, partial="sb_outbox_live.html")


async def clear(request: Request) -> Response:
    board, dash = board_of(request), dashboard_of(request)
    form = await request.form()
    back = str(request.url_for("sb_outbox").path)
    if not confirmed(form):
        count = await run_in_threadpool(board.outbox_count)
        return confirm_page(
            dash,
            request,
            form,
            title="Clear the outbox?",
            message=f"Delete all {count:,} message(s) dev mode kept. Nothing is sent; they are only gone.",
            button="Clear the outbox",
            cancel=back,
        )
    removed = await run_in_threadpool(board.outbox.clear)
    return dash.redirect(request, back, flash=f"Cleared the outbox: removed {removed:,} message(s).")


ROUTES = [
    Route("/switchboard/outbox", outbox, name="sb_outbox"),
    Route("/switchboard/outbox/clear", clear, methods=["POST"], name="sb_outbox_clear"),
]
