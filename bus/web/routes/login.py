"""Signing in and out, when the dashboard is configured with a token or a user and password."""

from __future__ import annotations

import asyncio

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.errors import RedisUnavailable
from bus.web.auth import SESSION_COOKIE, credentials_match, safe_next, session_cookie, session_of
from bus.web.dashboard import dashboard_of
from bus.web.sessions import SESSION_SECONDS
from bus.web.throttle import client_address

FAILED_SIGN_IN_DELAY = 0.5


async def login(request: Request) -> Response:
    dash = dashboard_of(request)
    settings = dash.settings
    target = safe_next(request.query_params.get("next"))
    context = {"title": "Sign in", "next": target, "error": None, "auth_required": settings.auth_required}
    if request.method == "GET":
        return dash.render(request, "login.html", context)
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    client = client_address(request.scope)
    wait = dash.sign_ins.retry_after(client)
    if wait:
        context.update(next=target, error=f"Too many wrong sign-ins from this address: try again in {wait} s.")
        refused = dash.render(request, "login.html", context, status_code=429)
        refused.headers["Retry-After"] = str(wait)
        return refused
    given = {k: str(form.get(k) or "") for k in ("token", "username", "password")}
    if not settings.auth_required or not credentials_match(settings, **given):
        dash.sign_ins.failed(client)
        await asyncio.sleep(FAILED_SIGN_IN_DELAY)
        context.update(next=target, error="Those credentials are not right.")
        return dash.render(request, "login.html", context, status_code=401)
    try:
        previous = session_of(dash.signer, request)
        if previous is not None:  # a new sign-in replaces the one this browser had
            await run_in_threadpool(dash.sessions.end, previous)
        session_id = await run_in_threadpool(dash.sessions.start)
    except RedisUnavailable:
        context.update(next=target, error="Redis is unreachable, so no sign-in can be recorded: try again soon.")
        return dash.render(request, "login.html", context, status_code=503)
    root = dash.root(request).rstrip("/")
    response = dash.redirect(request, root + target)
    dash.set_cookie(request, response, SESSION_COOKIE, session_cookie(dash.signer, session_id), max_age=SESSION_SECONDS)
    return response


async def logout(request: Request) -> Response:
    """Ends the session in Redis, so every copy of its cookie stops working, then drops the cookie."""
    dash = dashboard_of(request)
    session_id = session_of(dash.signer, request)
    flash = None
    if session_id is not None:
        try:
            await run_in_threadpool(dash.sessions.end, session_id)
        except RedisUnavailable:
            flash = (
                "Signed out in this browser only: Redis is unreachable, so a copy of this sign-in "
                f"would stay valid for up to {SESSION_SECONDS // 3600} hours (a new web.secret_key ends them all)."
            )
    login_page = str(request.url_for("login").path)
    response = dash.redirect(request, login_page, flash=flash, level="error")
    response.delete_cookie(SESSION_COOKIE, path=dash.root(request))
    return response


ROUTES = [
    Route("/login", login, methods=["GET", "POST"], name="login"),
    Route("/logout", logout, methods=["POST"], name="logout"),
]
