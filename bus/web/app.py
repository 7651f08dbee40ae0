"""``create_app``: the dashboard wired once: routes, middleware, templates, error pages.

Another package adds its pages with ``extra_routes`` (handlers reach the bus and the
layout through :func:`bus.web.dashboard_of`), its links with ``nav`` and its templates
with ``template_dirs`` (they may ``{% extends "layout.html" %}``)::

    create_app(bus, settings,
               extra_routes=[Route("/switchboard", page, name="switchboard")],
               nav=[NavItem("Switchboard", "/switchboard")],
               template_dirs=[Path(__file__).parent / "templates"])
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.backend.connection import TRANSIENT_ERRORS
from bus.core import Bus
from bus.errors import RedisUnavailable
from bus.web.auth import AuthMiddleware
from bus.web.csrf import CsrfMiddleware
from bus.web.dashboard import Dashboard, NavItem, dashboard_of
from bus.web.rendering import STATIC
from bus.web.routes import bus_routes, events
from bus.web.settings import WebSettings, is_loopback
from bus.web.signing import Signer
from bus.web.throttle import FailedSignIns

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
PAGE_ERRORS = {404: "Not found", 405: "Not allowed: use the page's buttons"}
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


def create_app(
    bus: Bus,
    settings: WebSettings | None = None,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    nav: Sequence[NavItem] = (),
    template_dirs: Sequence[str | Path] = (),
    allowed_hosts: Sequence[str] | None = None,
    live_interval: float = 2.0,
) -> Starlette:
    """The dashboard for ``bus``; ``allowed_hosts`` defaults to loopback names on a loopback bind."""
    settings = settings or WebSettings()
    signer = Signer(settings.signing_key())
    sign_ins = FailedSignIns()
    dashboard = Dashboard(
        bus,
        settings,
        signer=signer,
        sign_ins=sign_ins,
        nav=[NavItem("Events", "/events"), *nav],
        template_dirs=template_dirs,
        live_interval=live_interval,
    )
    routes: list[BaseRoute] = [
        *events.ROUTES,
        *bus_routes(),
        *extra_routes,
        Mount("/static", app=StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [
        Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts or default_hosts(settings))),
        Middleware(SecurityHeaders),
        Middleware(AuthMiddleware, settings=settings, signer=signer, sign_ins=sign_ins, sessions=dashboard.sessions),
        Middleware(CsrfMiddleware, signer=signer),
    ]
    handlers = {
        HTTPException: http_error,
        RedisUnavailable: redis_down,
        **dict.fromkeys(TRANSIENT_ERRORS, redis_down),
    }
    app = Starlette(routes=routes, middleware=middleware, exception_handlers=handlers)
    app.state.dashboard = dashboard
    return app


def default_hosts(settings: WebSettings) -> list[str]:
    """On a loopback bind, only loopback Host headers: a DNS-rebinding page cannot reach us."""
    if is_loopback(settings.host):
        return sorted({*LOOPBACK_HOSTS, settings.host})
    return ["*"]


class SecurityHeaders:
    """CSP without inline scripts, no framing, no sniffing, no caching of pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(f"{scope.get('root_path', '')}/static/")
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers += [
                    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
                    (b"x-content-type-options", b"nosniff"),
                    (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"),
                ]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:
            # Starlette's own 500 page is made outside every middleware: answer here instead,
            # with the headers, then let the error go on to be logged.
            if not started:
                await PlainTextResponse("Internal Server Error", status_code=500)(scope, receive, sending)
            raise


def http_error(request: Request, exc: Exception) -> Response:
    """404 and 405 as a page in the layout for browsers; any other HTTP error as plain text."""
    status = getattr(exc, "status_code", 500)
    detail = str(getattr(exc, "detail", "error"))
    if status in PAGE_ERRORS and "text/html" in request.headers.get("accept", ""):
        context = {"title": PAGE_ERRORS[status], "status": status, "detail": detail}
        return dashboard_of(request).render(request, "error.html", context, status_code=status)
    return PlainTextResponse(detail, status_code=status, headers=getattr(exc, "headers", None))


def redis_down(request: Request, exc: Exception) -> Response:
    """Redis is unreachable: say so (without the URL's credentials) rather than a traceback."""
    dash = dashboard_of(request)
    context = {
        "title": "Redis unreachable",
        "status": 503,
        "detail": f"Redis{f' ({dash.where()})' if dash.authorized(request) else ''} is not answering: "
        f"{type(exc).__name__}. This page retries when reloaded.",
    }
    return dash.render(request, "error.html", context, status_code=503)
