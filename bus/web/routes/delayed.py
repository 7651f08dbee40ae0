"""Delayed: what is scheduled and when, a page of timestamps at a time; unschedule an entry."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import delayed as schedule
from bus.web.confirm import confirm_page, confirmed
from bus.web.dashboard import dashboard_of
from bus.web.paging import Pager

JOBS_PER_TIMESTAMP = 10


def delayed(request: Request) -> Response:
    dash = dashboard_of(request)
    redis, keys = dash.redis, dash.bus.keys
    now = time.time()
    summary = schedule.summary(redis, keys, now)
    pager = Pager.of(request.query_params, summary.timestamps)
    slots = schedule.slots(redis, keys, pager.offset, pager.per_page, per_slot=JOBS_PER_TIMESTAMP)
    context = {"title": "Delayed", "summary": summary, "pager": pager, "slots": slots, "now": now}
    return dash.render(request, "delayed.html", context, partial="delayed_live.html")


def delayed_slot(request: Request) -> Response:
    dash = dashboard_of(request)
    timestamp = int(request.path_params["ts"])
    total = int(dash.redis.llen(dash.bus.keys.delayed(timestamp)))
    pager = Pager.of(request.query_params, total)
    _, entries = schedule.slot_jobs(dash.redis, dash.bus.keys, timestamp, pager.offset, pager.per_page)
    slot = schedule.DelayedSlot(timestamp, total, entries)
    context = {"title": "Delayed", "slot": slot, "pager": pager, "now": time.time()}
    return dash.render(request, "delayed_slot.html", context)


async def remove(request: Request) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    ts_text = str(form.get("ts") or "")
    ref = str(form.get("ref") or "")
    back = str(request.url_for("delayed").path)
    if not ts_text.lstrip("-").isdigit():
        return dash.redirect(request, back, flash="No such scheduled entry.", level="error")
    timestamp = int(ts_text)
    if not confirmed(form):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(timestamp))
        return confirm_page(
            dash,
            request,
            form,
            title="Unschedule this event?",
            message=f"Remove the job scheduled for {when}. It will never be published.",
            button="Unschedule",
            cancel=back,
        )
    removed = await run_in_threadpool(schedule.remove, dash.redis, dash.bus.keys, timestamp, ref)
    if removed:
        return dash.redirect(request, back, flash="Unscheduled the event.")
    return dash.redirect(request, back, flash="That entry is no longer scheduled (already delivered?).", level="error")


ROUTES = [
    Route("/delayed", delayed, name="delayed"),
    Route("/delayed/{ts:int}", delayed_slot, name="delayed_slot"),
    Route("/delayed/remove", remove, methods=["POST"], name="delayed_remove"),
]
