"""Authentication, when a token or a user/password is configured.

People sign in once on ``/login`` and get a signed session cookie; scripts (Prometheus,
curl) send ``Authorization: Bearer <token>`` or HTTP Basic with every request.
``/healthz``, ``/login`` and the static files stay open. Without configured credentials
(only allowed on a loopback address) everything is open.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from bus.errors import RedisUnavailable
from bus.web.sessions import SESSION_SECONDS, Sessions
from bus.web.settings import WebSettings
from bus.web.signing import Signer
from bus.web.throttle import FailedSignIns, client_address

SESSION_COOKIE = "bus_session"
OPEN_PATHS = frozenset({"/healthz", "/login", "/logout"})  # /logout must clear even a dead cookie
SIGNED_IN = "bus_signed_in"
OPEN_PREFIX = "/static/"


def credentials_match(settings: WebSettings, *, token: str = "", username: str = "", password: str = "") -> bool:
    """True if the token, or the user and password, are the configured ones (constant time)."""
    if settings.token and token and hmac.compare_digest(token.encode(), settings.token.encode()):
        return True
    if settings.username and settings.password and username and password:
        user_ok = hmac.compare_digest(username.encode(), settings.username.encode())
        pass_ok = hmac.compare_digest(password.encode(), settings.password.encode())
        return user_ok and pass_ok
    return False


def session_cookie(signer: Signer, session_id: str) -> str:
    """The cookie of a signed-in session: its random id, so each sign-in has its own form tokens."""
    return signer.sign("session", session_id)


def session_of(signer: Signer, conn: HTTPConnection) -> str | None:
    """The id of the correctly signed session this request carries, if any (open or not)."""
    return signer.unsign("session", conn.cookies.get(SESSION_COOKIE), max_age=SESSION_SECONDS)


def route_path(scope: Scope) -> str:
    """The request path below the app's mount point."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


class AuthMiddleware:
    """Lets a request through if it is open, signed in, or carries valid credentials."""

    def __init__(
        self, app: ASGIApp, settings: WebSettings, signer: Signer, sign_ins: FailedSignIns, sessions: Sessions
    ) -> None:
        self.app = app
        self.settings = settings
        self.signer = signer
        self.sign_ins = sign_ins
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.settings.auth_required:
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        conn = HTTPConnection(scope)
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIX):
            await self.app(scope, receive, send)
            return
        try:
            signed_in = await self._signed_in(conn)
        except RedisUnavailable:
            await session_unknown()(scope, receive, send)
            return
        if signed_in:
            scope.setdefault("state", {})[SIGNED_IN] = True
            await self.app(scope, receive, send)
            return
        header = conn.headers.get("authorization")
        if header is not None:
            client = client_address(scope)
            wait = self.sign_ins.retry_after(client)
            if wait:
                await too_many_attempts(wait)(scope, receive, send)
                return
            if self._header_matches(header):
                await self.app(scope, receive, send)
                return
            self.sign_ins.failed(client)
        await self._refuse(conn, scope, path)(scope, receive, send)

    async def _signed_in(self, conn: HTTPConnection) -> bool:
        session_id = session_of(self.signer, conn)
        return session_id is not None and await run_in_threadpool(self.sessions.is_open, session_id)

    def _header_matches(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer":
            return credentials_match(self.settings, token=value.strip())
        if scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return credentials_match(self.settings, username=user, password=password, token=password)
        return False

    def _refuse(self, conn: HTTPConnection, scope: Scope, path: str) -> Response:
        wants_page = scope["method"] == "GET" and "text/html" in conn.headers.get("accept", "")
        if wants_page:
            target = path + (f"?{scope['query_string'].decode('latin-1')}" if scope.get("query_string") else "")
            root = scope.get("root_path", "")
            return RedirectResponse(f"{root}/login?next={quote(target)}", status_code=303)
        challenge = 'Basic realm="bus dashboard"' if self.settings.username else 'Bearer realm="bus dashboard"'
        return PlainTextResponse("authentication required", status_code=401, headers={"WWW-Authenticate": challenge})


def session_unknown() -> Response:
    return PlainTextResponse(
        "Redis is unreachable, so this sign-in cannot be checked: reload when it answers.",
        status_code=503,
        headers={"Retry-After": "5"},
    )


def signed_in(conn: HTTPConnection) -> bool:
    """True when this request came through on an open sign-in session."""
    return bool(conn.scope.get("state", {}).get(SIGNED_IN))


def too_many_attempts(wait: int) -> Response:
    return PlainTextResponse(
        f"Too many wrong sign-ins from this address: try again in {wait} s.",
        status_code=429,
        headers={"Retry-After": str(wait)},
    )


def safe_next(target: str | None) -> str:
    """Only a path on this site may be a post-login destination (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target
