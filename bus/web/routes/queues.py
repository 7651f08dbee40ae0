"""Queues: depth of each; one queue's jobs decoded, a page at a time; remove a job; clear."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.runtime.recovery import registered_workers
from bus.stores.overview import queue_names
from bus.stores.queues import JobRef
from bus.web import job_views
from bus.web.confirm import confirm_page, confirmed
from bus.web.dashboard import Dashboard, dashboard_of
from bus.web.names import isolated
from bus.web.paging import Pager
from bus.web.rendering import url_path

IN_FLIGHT_SHOWN = 50


def queues(request: Request) -> Response:
    dash = dashboard_of(request)
    snap = dash.snapshot()
    return dash.render(request, "queues.html", {"title": "Queues", "snap": snap}, partial="queues_live.html")


def queue_context(dash: Dashboard, name: str, params: Any) -> dict[str, Any]:
    queues = dash.queues
    depth = queues.depth(name)
    retry_count, retry_entries = queues.retrying(name, IN_FLIGHT_SHOWN)
    pager = Pager.of(params, depth)
    in_flight = [
        {"worker": info.id, "job": job}
        for info in registered_workers(dash.redis, dash.bus.keys)
        if name in info.queues
        for job in job_views.view_jobs(0, queues.in_flight(name, info.id, IN_FLIGHT_SHOWN))
    ]
    retrying = [{"due": due, "job": job_views.view_job(i, raw)} for i, (raw, due) in enumerate(retry_entries)]
    return {
        "title": f"Queue {isolated(name)}",
        "name": name,
        "known": queues.known(name) or bool(depth),
        "pager": pager,
        "jobs": job_views.view_jobs(pager.offset, queues.peek(name, pager.offset, pager.per_page)),
        "in_flight": in_flight,
        "retrying": retrying,
        "retry_count": retry_count,
        "now": time.time(),
    }


ACTIONS = (b"clear", b"remove")


def names_an_action(request: Request, name: str) -> bool:
    """Whether this GET asks for ``/queues/<q>/clear`` (an action, POST only) rather than the queue
    named ``<q>/clear``: page links encode the slashes of a name (``q%2Fclear``), the action's is literal."""
    raw: bytes = request.scope.get("raw_path") or request.url.path.encode()
    return raw.rsplit(b"/", 1)[-1] in ACTIONS and "/" in name and not raw.endswith(quote(name, safe=":").encode())


def queue(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.path_params["name"]
    if names_an_action(request, name):
        raise HTTPException(405, headers={"Allow": "POST"})
    context = queue_context(dash, name, request.query_params)
    if not context["known"] and name not in queue_names(dash.redis, dash.bus.keys):
        raise HTTPException(404, f"There is no queue {isolated(name)}.")
    return dash.render(request, "queue.html", context, partial="queue_live.html")


async def remove(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.path_params["name"]
    form = await request.form()
    ref = str(form.get("ref") or "")
    back = url_path(request, "queue", name=name)
    if not confirmed(form):
        index = ref.partition(":")[0]
        return confirm_page(
            dash,
            request,
            form,
            title="Remove this job?",
            message=f"Remove job #{index} from {isolated(name)}. It will not run.",
            button="Remove the job",
            cancel=back,
        )
    parsed = JobRef.parse(ref)
    removed = parsed is not None and await run_in_threadpool(dash.queues.remove, name, parsed)
    if removed:
        return dash.redirect(request, back, flash=f"Removed a job from {isolated(name)}.")
    return dash.redirect(request, back, flash="That job is no longer in the queue (a worker took it?).", level="error")


async def clear(request: Request) -> Response:
    dash = dashboard_of(request)
    name = request.path_params["name"]
    form = await request.form()
    back = url_path(request, "queue", name=name)
    if not confirmed(form):
        depth = await run_in_threadpool(dash.queues.depth, name)
        return confirm_page(
            dash,
            request,
            form,
            title=f"Clear {isolated(name)}?",
            message=f"Delete all {int(depth):,} job(s) waiting in {isolated(name)}. They will not run. "
            "Jobs in flight and waiting to be retried are not touched.",
            button=f"Clear {isolated(name)}",
            cancel=back,
        )
    count = await run_in_threadpool(dash.queues.clear, name)
    return dash.redirect(request, back, flash=f"Cleared {isolated(name)}: removed {count:,} job(s).")


ROUTES = [
    Route("/queues", queues, name="queues"),
    Route("/queues/{name:path}/remove", remove, methods=["POST"], name="queue_remove"),
    Route("/queues/{name:path}/clear", clear, methods=["POST"], name="queue_clear"),
    Route("/queues/{name:path}", queue, name="queue"),
]
