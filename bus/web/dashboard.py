"""The :class:`Dashboard`: what every page needs, built once by ``create_app`` and reached
through the request, so pages from other packages render with the same layout."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from bus.backend.connection import redact_url
from bus.core import Bus
from bus.stores.failures import Failures
from bus.stores.queues import Queues
from bus.web import snapshot
from bus.web.auth import OPEN_PATHS, OPEN_PREFIX, route_path, signed_in
from bus.web.csrf import csrf_token
from bus.web.failed import BreakdownCache, FilteredPages
from bus.web.rendering import environment
from bus.web.sessions import Sessions
from bus.web.settings import WebSettings
from bus.web.signing import Signer
from bus.web.throttle import FailedSignIns

FLASH_COOKIE = "bus_flash"
FLASH_SECONDS = 300
"""A one-time message not shown within this many seconds is dropped."""


@dataclass(frozen=True, slots=True)
class NavItem:
    """A link in the top navigation; ``path`` is below the dashboard's root (``/switchboard``)."""

    label: str
    path: str


BUS_NAV = (
    NavItem("Overview", "/"),
    NavItem("Apps", "/apps"),
    NavItem("Queues", "/queues"),
    NavItem("Failed", "/failed"),
    NavItem("Delayed", "/delayed"),
)


class Dashboard:
    """The bus, settings, templates and navigation shared by every page."""

    def __init__(
        self,
        bus: Bus,
        settings: WebSettings,
        *,
        signer: Signer,
        sign_ins: FailedSignIns | None = None,
        nav: Sequence[NavItem] = (),
        template_dirs: Sequence[str | Path] = (),
        live_interval: float = 2.0,
    ) -> None:
        self.bus = bus
        self.settings = settings
        self.signer = signer
        self.sign_ins = sign_ins or FailedSignIns()
        self.sessions = Sessions(bus.redis, bus.keys)
        self.nav = [*BUS_NAV, *nav]
        self.templates = Jinja2Templates(env=environment(template_dirs))
        self.live_interval = live_interval
        self.breakdowns = BreakdownCache()
        self.filtered_pages = FilteredPages()

    @property
    def redis(self) -> Any:
        return self.bus.redis

    @property
    def failures(self) -> Failures:
        return self.bus.failures

    @property
    def queues(self) -> Queues:
        return self.bus.queues

    def snapshot(self) -> snapshot.Snapshot:
        return snapshot.take(
            self.redis,
            self.bus.keys,
            now=time.time(),
            dead_after=self.bus.settings.worker.dead_after,
            hostname=self.bus.hostname,
        )

    def authorized(self, request: Request) -> bool:
        """Whether this request may learn about the deployment: the dashboard is open, or the
        request came past sign-in (``/login`` and the other open paths never do)."""
        if not self.settings.auth_required:
            return True
        path = route_path(request.scope)
        return path not in OPEN_PATHS and not path.startswith(OPEN_PREFIX)

    def where(self) -> str:
        """Which Redis and namespace this is, never with a password."""
        url = self.bus.settings.redis_url
        return f"{redact_url(url) if url else 'embedded server'} · {self.bus.keys.namespace}"

    # --- responses ------------------------------------------------------------
    def render(
        self,
        request: Request,
        template: str,
        context: dict[str, Any] | None = None,
        *,
        partial: str | None = None,
        status_code: int = 200,
    ) -> Response:
        """A page in the layout, or only its live region (``partial``) when JS polls for it."""
        name = partial if partial and request.query_params.get("partial") else template
        flash = self._flash(request)
        ctx = {**self.common(request), "flash": flash, **(context or {})}
        response = self.templates.TemplateResponse(request, name, ctx, status_code=status_code)
        if flash and name == template:
            response.delete_cookie(FLASH_COOKIE, path=self.root(request))
        return response

    def common(self, request: Request) -> dict[str, Any]:
        root = self.root(request).rstrip("/")
        here = request.url.path[len(root) :] or "/"
        active = max((i for i in self.nav if _under(here, i.path)), key=lambda i: len(i.path), default=None)
        return {
            "request": request,
            "nav": [{"label": i.label, "href": root + i.path, "active": i is active} for i in self.nav],
            "csrf_token": csrf_token(request),
            "where": self.where() if self.authorized(request) else None,
            "live_interval_ms": int(self.live_interval * 1000),
            "signed_in": signed_in(request),
            "now": time.time(),
        }

    def redirect(self, request: Request, url: str, *, flash: str | None = None, level: str = "ok") -> Response:
        """303 to ``url`` (a path from ``path_for``), carrying a one-time message."""
        response = RedirectResponse(url, status_code=303)
        if flash:
            self.set_cookie(request, response, FLASH_COOKIE, self.signer.sign("flash", f"{level}|{flash}"))
        return response

    def set_cookie(
        self, request: Request, response: Response, name: str, value: str, *, max_age: int | None = None
    ) -> None:
        """A cookie only this dashboard's pages send back: HttpOnly, SameSite=Strict, Secure over https."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=self.root(request),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )

    @staticmethod
    def root(request: Request) -> str:
        return str(request.scope.get("root_path") or "/")

    def _flash(self, request: Request) -> dict[str, str] | None:
        value = self.signer.unsign("flash", request.cookies.get(FLASH_COOKIE), max_age=FLASH_SECONDS)
        if not value or "|" not in value:
            return None
        level, _, text = value.partition("|")
        return {"level": level if level in ("ok", "error") else "ok", "text": text}


def dashboard_of(request: Request) -> Dashboard:
    """The dashboard serving this request (for routes other packages add)."""
    dash: Dashboard = request.app.state.dashboard
    return dash


def _under(path: str, prefix: str) -> bool:
    return path == prefix if prefix == "/" else path == prefix or path.startswith(prefix.rstrip("/") + "/")
