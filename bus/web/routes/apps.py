"""Apps: every app's subscriptions with their matchers in words, unsubscribe, and who gets an event."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.pipeline.subscription import Subscription
from bus.safejson import read_json
from bus.web.confirm import confirm_page, confirmed
from bus.web.dashboard import Dashboard, dashboard_of
from bus.web.describe import describe
from bus.web.names import isolated


def apps_context(dash: Dashboard) -> dict[str, Any]:
    """Apps and their subscriptions, with the depth of each subscription's queue."""
    subs = dash.bus.registry.load()
    queues = sorted({s.queue_name for s in subs})
    depth = dash.queues.depths(queues)
    by_app: dict[str, list[dict[str, Any]]] = {app: [] for app in dash.bus.registry.apps()}
    for sub in subs:
        by_app.setdefault(sub.app_key, []).append(_row(sub, depth.get(sub.queue_name, 0)))
    return {"title": "Apps", "apps": by_app}


def _row(sub: Subscription, depth: int) -> dict[str, Any]:
    return {
        "key": sub.key,
        "queue": sub.queue_name,
        "class": sub.class_name,
        "matcher": describe(sub.matcher),
        "stored": sub.matcher.to_redis(),
        "depth": depth,
    }


def apps(request: Request) -> Response:
    dash = dashboard_of(request)
    context = {**apps_context(dash), "event_type": "", "event": "", "result": None, "error": None}
    return dash.render(request, "apps.html", context)


def parse_event(event_type: str, text: str) -> dict[str, Any]:
    """The pasted event as attributes; the event type field, if given, sets ``bus_event_type``."""
    attributes: Any = read_json(text) if text.strip() else {}
    if not isinstance(attributes, dict):
        raise ValueError("the event must be a JSON object")
    if event_type:
        attributes["bus_event_type"] = event_type
    if not attributes.get("bus_event_type"):
        raise ValueError("give an event type, or bus_event_type in the event")
    return attributes


async def who_gets(request: Request) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    event_type = str(form.get("event_type") or "").strip()
    text = str(form.get("event") or "")
    result: list[dict[str, Any]] | None = None
    error = None
    try:
        attributes = parse_event(event_type, text)
    except ValueError as exc:
        error = f"Could not read the event: {exc}"
    else:
        matched = await run_in_threadpool(dash.bus.who_gets, str(attributes["bus_event_type"]), attributes)
        result = [{"app": s.app_key, **_row(s, 0)} for s in matched]
    context = await run_in_threadpool(apps_context, dash)
    context.update(event_type=event_type, event=text, result=result, error=error)
    return dash.render(request, "apps.html", context, status_code=400 if error else 200)


async def unsubscribe(request: Request) -> Response:
    dash = dashboard_of(request)
    app = request.path_params["app"]
    form = await request.form()
    back = str(request.url_for("apps").path)
    if not confirmed(form):
        return confirm_page(
            dash,
            request,
            form,
            title=f"Unsubscribe {isolated(app)}?",
            message=f"Remove every subscription of {isolated(app)}. New events stop reaching its queues; "
            "jobs already queued stay. Its workers store the subscriptions again when they restart "
            "(bus work subscribes unless --no-subscribe).",
            button=f"Unsubscribe {isolated(app)}",
            cancel=back,
        )
    removed = await run_in_threadpool(dash.bus.registry.remove, app)
    text = f"Unsubscribed {isolated(app)}." if removed else f"{isolated(app)} was not subscribed."
    return dash.redirect(request, back, flash=text, level="ok" if removed else "error")


ROUTES = [
    Route("/apps", apps, name="apps"),
    Route("/apps/who-gets", who_gets, methods=["POST"], name="who_gets"),
    Route("/apps/{app:path}/unsubscribe", unsubscribe, methods=["POST"], name="unsubscribe"),
]
