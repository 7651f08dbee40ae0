"""Delayed: what is scheduled and when, a page of timestamps at a time; unschedule an entry."""

from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.stores.delayed import Delayed, DelayedEntry
from bus.stores.queues import JobRef
from bus.web.confirm import confirm_page, confirmed
from bus.web.dashboard import dashboard_of
from bus.web.delayed import DelayedSlot
from bus.web.paging import Pager
from bus.web.params import parse_scheduled
from bus.web.rendering import utc

JOBS_PER_TIMESTAMP = 10
"""Jobs read per timestamp on the list: enough to name its first event types."""


def delayed(request: Request) -> Response:
    dash = dashboard_of(request)
    now = time.time()
    summary = dash.bus.delayed.summary(now)
    pager = Pager.of(request.query_params, summary.timestamps)
    slots = [
        DelayedSlot.of(s) for s in dash.bus.delayed.slots(pager.offset, pager.per_page, per_slot=JOBS_PER_TIMESTAMP)
    ]
    context = {"title": "Delayed", "summary": summary, "pager": pager, "slots": slots, "now": now}
    return dash.render(request, "delayed.html", context, partial="delayed_live.html")


def delayed_slot(request: Request) -> Response:
    dash = dashboard_of(request)
    timestamp = parse_scheduled(request.path_params["ts"])
    if timestamp is None:
        raise HTTPException(404, "Nothing can be scheduled at that timestamp.")
    total = dash.bus.delayed.slot(timestamp, 0, 0).count
    pager = Pager.of(request.query_params, total)
    slot = DelayedSlot.of(dash.bus.delayed.slot(timestamp, pager.offset, pager.per_page), pager.offset)
    context = {"title": "Delayed", "slot": slot, "pager": pager, "now": time.time()}
    return dash.render(request, "delayed_slot.html", context)


async def remove(request: Request) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    timestamp = parse_scheduled(str(form.get("ts") or ""))
    ref = JobRef.parse(str(form.get("ref") or ""))
    back = str(request.url_for("delayed").path)
    if timestamp is None or ref is None:
        return dash.redirect(request, back, flash="No such scheduled entry.", level="error")
    if not confirmed(form):
        when = utc(timestamp)
        return confirm_page(
            dash,
            request,
            form,
            title="Unschedule this event?",
            message=f"Remove the job scheduled for {when}. It will never be published.",
            button="Unschedule",
            cancel=back,
        )
    removed = await run_in_threadpool(dash.bus.delayed.remove_ref, timestamp, ref)
    if removed:
        return dash.redirect(request, back, flash="Unscheduled the event.")
    return dash.redirect(request, back, flash="That entry is no longer scheduled (already delivered?).", level="error")


class DigitsConvertor(Convertor[str]):
    """A number in a path, kept as text for :func:`parse_scheduled` to bound: Starlette's ``int``
    convertor reads any length, and 5,000 digits are more than ``int()`` will read."""

    regex = "-?[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("digits", DigitsConvertor())


async def remove_time(request: Request) -> Response:
    """Unschedule every job at one timestamp (the list's row button)."""
    dash = dashboard_of(request)
    form = await request.form()
    timestamp = parse_scheduled(str(form.get("ts") or ""))
    back = str(request.url_for("delayed").path)
    slot = await run_in_threadpool(dash.bus.delayed.slot, timestamp, 0, 0) if timestamp is not None else None
    if timestamp is None or slot is None or not slot.count:
        return dash.redirect(request, back, flash="Nothing is scheduled at that time.", level="error")
    count = slot.count
    if not confirmed(form):
        return confirm_page(
            dash,
            request,
            form,
            title=f"Unschedule {count:,} job(s)?",
            message=f"Remove every job scheduled for {utc(timestamp)}. They will never be published.",
            button=f"Unschedule {count:,} job(s)",
            cancel=back,
        )
    removed = await run_in_threadpool(unschedule_all, dash.bus.delayed, timestamp)
    return dash.redirect(request, back, flash=f"Unscheduled {removed:,} job(s) at {utc(timestamp)}.")


def unschedule_all(delayed: Delayed, timestamp: int, chunk: int = 1000) -> int:
    """Every job at ``timestamp``, a chunk at a time; how many were removed (not already gone)."""
    removed = 0
    while jobs := delayed.slot(timestamp, 0, chunk).jobs:
        done = sum(delayed.remove(DelayedEntry(timestamp, raw)) for raw in jobs)
        removed += done
        if not done:  # what is left is being removed by someone else
            break
    return removed


ROUTES = [
    Route("/delayed", delayed, name="delayed"),
    Route("/delayed/{ts:digits}", delayed_slot, name="delayed_slot"),
    Route("/delayed/remove", remove, methods=["POST"], name="delayed_remove"),
    Route("/delayed/remove-time", remove_time, methods=["POST"], name="delayed_remove_time"),
]
