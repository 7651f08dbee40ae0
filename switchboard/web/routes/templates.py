"""Templates: the list with locales and problems; one template previewed in every locale,
from its sample data or from data typed into the editor."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from bus.web.rendering import pretty, url_path
from switchboard.templating import TemplateError, TemplateInfo
from switchboard.web.board import Board, board_of
from switchboard.web.preview import DataError, FrameUrl, parse_data, preview_locales, version


def template_path(request: Request, info: TemplateInfo) -> str:
    return url_path(request, "sb_template", channel=info.channel.value, name=info.name)


def templates_list(request: Request) -> Response:
    board = board_of(request)
    infos = board.templates.templates()
    rows = [{"info": info, "href": template_path(request, info)} for info in infos]
    keys = {info.key for info in infos}
    shared = [problem for problem in board.templates.problems if problem.where not in keys]
    context = {"title": "Templates", "rows": rows, "shared_problems": shared, "root": str(board.templates.root)}
    return dashboard_of(request).render(request, "sb_templates.html", context)


def lookup(board: Board, request: Request) -> TemplateInfo:
    """The template named in the path, or 404 (with the store's suggestion)."""
    try:
        return board.templates.get(request.path_params["channel"], request.path_params["name"])
    except TemplateError as exc:
        raise HTTPException(404, str(exc)) from None


def page_context(request: Request, info: TemplateInfo) -> dict[str, Any]:
    board = board_of(request)
    siblings = [t for t in board.templates.templates() if t.name == info.name and t.channel is not info.channel]
    return {
        "title": f"Template {info.key}",
        "info": info,
        "siblings": [{"key": t.key, "href": template_path(request, t)} for t in siblings],
        "action": template_path(request, info),
    }


def sample_frames(request: Request, info: TemplateInfo) -> FrameUrl:
    """Frame URLs that render the sample again; ``v`` changes with the HTML so edits reload it."""

    def url(locale: str, html: str) -> str:
        path = url_path(request, "sb_sample_frame", channel=info.channel.value, name=info.name, locale=locale)
        return f"{path}?v={version(html)}"

    return url


def typed_frames(request: Request, board: Board) -> FrameUrl:
    """Frame URLs for typed data: the HTML waits in the preview store under a token."""

    def url(locale: str, html: str) -> str:
        return str(request.url_for("sb_preview_frame", token=board.previews.put(html)).path)

    return url


def template_page(request: Request) -> Response:
    board = board_of(request)
    info = lookup(board, request)
    previews = preview_locales(board.templates, info, info.sample, sample_frames(request, info))
    context = {**page_context(request, info), "data_text": pretty(dict(info.sample)), "previews": previews}
    context.update(custom=False, data_error=None)
    return dashboard_of(request).render(request, "sb_template.html", context, partial="sb_previews.html")


async def template_try(request: Request) -> Response:
    """The editor's data: rendering changes nothing, but a POST keeps the data out of URLs and logs."""
    board = board_of(request)
    info = await run_in_threadpool(lookup, board, request)
    form = await request.form()
    text = str(form.get("data") or "")
    context = {**await run_in_threadpool(page_context, request, info), "data_text": text, "custom": True}
    try:
        data = parse_data(text)
    except DataError as exc:
        context.update(previews=[], data_error=f"Could not read the data: {exc}")
        return dashboard_of(request).render(request, "sb_template.html", context, status_code=400)
    previews = await run_in_threadpool(preview_locales, board.templates, info, data, typed_frames(request, board))
    context.update(previews=previews, data_error=None)
    return dashboard_of(request).render(request, "sb_template.html", context)


ROUTES = [
    Route("/switchboard/templates", templates_list, name="sb_templates"),
    Route("/switchboard/templates/{channel}/{name}", template_page, name="sb_template"),
    Route("/switchboard/templates/{channel}/{name}", template_try, methods=["POST"], name="sb_template_try"),
]
