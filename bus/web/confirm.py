"""Confirmation of destructive actions: the action runs only when the form says ``confirm=yes``.

Without it the route answers with a page that explains what will happen and repeats the
form with ``confirm=yes``. The page's JavaScript may ask first with a dialog and set the
field itself; either way the server, not the script, decides.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from bus.web.dashboard import Dashboard
from bus.web.rendering import url_path

FIELD = "confirm"


def confirmed(form: FormData) -> bool:
    return form.get(FIELD) == "yes"


def confirm_page(
    dash: Dashboard,
    request: Request,
    form: FormData,
    *,
    title: str,
    message: str,
    button: str,
    cancel: str,
    details: Sequence[str] = (),
) -> Response:
    """The page asking to confirm; it re-posts the same fields to the same route.

    The action is built from the route and its parameters, not ``request.url``: that path
    is already decoded, so a queue named ``q%41`` would confirm onto queue ``qA``.
    """
    route = request.scope["route"]
    action = url_path(request, route.name, **request.path_params)
    fields = [(k, str(v)) for k, v in form.multi_items() if k not in (FIELD, "csrf_token") and isinstance(v, str)]
    context = {
        "title": title,
        "message": message,
        "details": list(details),
        "button": button,
        "action": action,
        "fields": fields,
        "cancel": cancel,
    }
    return dash.render(request, "confirm.html", context)
