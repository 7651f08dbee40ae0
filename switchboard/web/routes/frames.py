"""The frames: a template's HTML rendered from its sample, from typed data, or as the outbox kept it.

Served with the sandbox headers of :mod:`switchboard.web.frames`; answers are plain text
when there is nothing to show, since a dashboard page inside the frame could not style itself.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from switchboard.templating import TemplateError
from switchboard.web.board import board_of
from switchboard.web.frames import FRAME_PREFIX, frame_response


def sample_frame(request: Request) -> Response:
    board = board_of(request)
    channel, name, locale = (request.path_params[k] for k in ("channel", "name", "locale"))
    try:
        info = board.templates.get(channel, name)
    except TemplateError as exc:
        return PlainTextResponse(str(exc), status_code=404)
    if locale not in info.locales:
        return PlainTextResponse(f"{info.key} has no locale {locale}", status_code=404)
    try:
        message = board.templates.render_sample(channel, name, locale)
    except TemplateError as exc:
        return PlainTextResponse(str(exc), status_code=422)
    if message.html is None:
        return PlainTextResponse(f"{info.key} has no HTML part", status_code=404)
    return frame_response(message.html)


def preview_frame(request: Request) -> Response:
    html = board_of(request).previews.get(request.path_params["token"])
    if html is None:
        return PlainTextResponse("This preview has expired: preview the data again.", status_code=404)
    return frame_response(html)


def outbox_frame(request: Request) -> Response:
    board = board_of(request)
    wanted = request.path_params["message_id"]
    entry = next((e for e in board.outbox.list(board.outbox.size) if e.get("id") == wanted), None)
    html = entry.get("html") if entry else None
    if not isinstance(html, str):
        return PlainTextResponse("That message is no longer in the outbox, or has no HTML.", status_code=404)
    return frame_response(html)


ROUTES = [
    Route(FRAME_PREFIX + "templates/{channel}/{name}/{locale}", sample_frame, name="sb_sample_frame"),
    Route(FRAME_PREFIX + "previews/{token}", preview_frame, name="sb_preview_frame"),
    Route(FRAME_PREFIX + "outbox/{message_id}", outbox_frame, name="sb_outbox_frame"),
]
