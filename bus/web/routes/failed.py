"""Failed: the list with filters and counts; retry or remove one, a selection, or all that match."""

from __future__ import annotations

import sys
from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.stores import failure_search
from bus.stores.failure_search import FailureFilter
from bus.stores.queues import JobRef
from bus.web.confirm import confirm_page, confirmed
from bus.web.dashboard import Dashboard, dashboard_of
from bus.web.failed import act_on_matching, act_on_selection, ref_of, refs_of
from bus.web.names import isolated
from bus.web.paging import Pager


def failed_context(dash: Dashboard, params: Any) -> dict[str, Any]:
    flt = FailureFilter.from_params(params)
    newest_first = params.get("order") != "oldest"
    live = bool(params.get("partial"))
    asked = Pager.of(params, sys.maxsize)
    pages = dash.filtered_pages
    result = pages.get(dash.failures, flt, asked.offset, asked.per_page, newest_first=newest_first, live=live)
    pager = Pager.of(params, result.matched)
    if pager.page != asked.page:  # asked beyond the end: show the last page
        result = pages.get(dash.failures, flt, pager.offset, pager.per_page, newest_first=newest_first, live=live)
    return {
        "title": "Failed",
        "filter": flt,
        "order": "newest" if newest_first else "oldest",
        "result": result,
        "pager": pager,
        "rows": [{"f": f, "ref": ref_of(f)} for f in result.entries],
        "breakdown": dash.breakdowns.get(dash.failures, live=live),
    }


def failed(request: Request) -> Response:
    dash = dashboard_of(request)
    context = failed_context(dash, request.query_params)
    return dash.render(request, "failed.html", context, partial="failed_live.html")


def failure(request: Request) -> Response:
    dash = dashboard_of(request)
    ref = JobRef.parse(request.path_params["ref"])
    entry = dash.failures.find(ref) if ref is not None else None
    if entry is None:
        raise HTTPException(404, "That failure is no longer in the list (retried or removed?).")
    context = {"title": f"Failure #{entry.index}", "f": entry, "ref": ref_of(entry)}
    return dash.render(request, "failure.html", context)


def _describe(form: FormData, action: str) -> tuple[str, bool]:
    """What the form asks for, and whether that needs confirming."""
    refs = form.getlist("ref")
    if form.get("scope") == "matching":
        flt = FailureFilter.from_params(form)
        which = "every failure" + (f" matching {_filter_text(flt)}" if flt.active else "")
        return f"{action.capitalize()} {which}.", True
    return f"{action.capitalize()} {len(refs)} selected failure(s).", action == "remove"


def _filter_text(flt: FailureFilter) -> str:
    parts = [f"{k}={isolated(v)}" for k, v in flt.params().items()]
    return ", ".join(parts)


async def act(request: Request, action: str) -> Response:
    dash = dashboard_of(request)
    form = await request.form()
    summary, needs_confirm = _describe(form, action)
    flt = FailureFilter.from_params(form)
    back = str(request.url_for("failed").path) + (f"?{urlencode(flt.params())}" if flt.active else "")
    if needs_confirm and not confirmed(form):
        count = len(form.getlist("ref"))
        if form.get("scope") == "matching":
            page = await run_in_threadpool(failure_search.page, dash.failures, flt, 0, 1)
            count = page.matched
        return confirm_page(
            dash,
            request,
            form,
            title=f"{action.capitalize()} {count:,} failure(s)?",
            message=summary + (" Removed failures are gone for good." if action == "remove" else ""),
            button=f"{action.capitalize()} {count:,} failure(s)",
            cancel=back,
        )
    if form.get("scope") == "matching":
        done, skipped = await run_in_threadpool(act_on_matching, dash.failures, flt, action)
    else:
        values = [str(r) for r in form.getlist("ref")]
        if not values:
            return dash.redirect(request, back, flash="Select some failures first.", level="error")
        refs = refs_of(values)
        done, skipped = await run_in_threadpool(act_on_selection, dash.failures, refs, action)
        skipped += len(values) - len(refs)
    verb = "Retried" if action == "retry" else "Removed"
    text = f"{verb} {done:,} failure(s)."
    if skipped:
        text += f" {skipped:,} had changed or could not be {verb.lower()}; reload and check."
    return dash.redirect(request, back, flash=text, level="ok" if done or not skipped else "error")


async def retry(request: Request) -> Response:
    return await act(request, "retry")


async def remove(request: Request) -> Response:
    return await act(request, "remove")


ROUTES = [
    Route("/failed", failed, name="failed"),
    Route("/failed/entry/{ref}", failure, name="failure"),
    Route("/failed/retry", retry, methods=["POST"], name="failed_retry"),
    Route("/failed/remove", remove, methods=["POST"], name="failed_remove"),
]
