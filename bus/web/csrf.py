"""CSRF protection: a signed double-submit token, checked on every state-changing request.

A random nonce lives in an HttpOnly, SameSite=Strict cookie; pages carry
``HMAC(app key, nonce + sign-in session id)`` in a hidden ``csrf_token`` field (or
``X-CSRF-Token`` header for ``fetch``). Another site can neither read the cookie nor compute
the MAC, so a POST, PUT, PATCH or DELETE without the right token is refused with 403 before
any route runs, including the routes other packages add. Binding the token to the session
means a nonce and token anyone can fetch from the open ``/login`` page, planted as a cookie
by a sibling site, are worthless once the victim is signed in.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs

from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.web.auth import session_of
from bus.web.params import parse_int
from bus.web.signing import Signer, new_nonce

COOKIE = "bus_csrf"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_BODY = 1024 * 1024
_NONCE = re.compile(r"[0-9a-f]{32}")


def csrf_token(request: Request) -> str:
    """The token to put in this page's forms."""
    return str(request.scope.get("state", {}).get("csrf_token", ""))


class CsrfMiddleware:
    """Issues the nonce cookie and rejects unsafe requests whose token does not match it."""

    def __init__(self, app: ASGIApp, signer: Signer, *, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.signer = signer
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        nonce = conn.cookies.get(COOKIE, "")
        fresh = not _NONCE.fullmatch(nonce)
        if fresh:
            nonce = new_nonce()
        bound = f"{nonce}:{session_of(self.signer, conn) or ''}"
        token = self.signer.mac("csrf", bound)
        scope.setdefault("state", {})["csrf_token"] = token
        if scope["method"] not in SAFE_METHODS:
            body = await _read_body(receive, self.max_body, conn.headers.get("content-length"))
            if body is None:
                await PlainTextResponse("request body too large", status_code=413)(scope, receive, send)
                return
            sent = conn.headers.get(HEADER) or _form_field(conn.headers.get("content-type", ""), body)
            if fresh or not sent or not self.signer.mac_matches("csrf", bound, sent):
                response = PlainTextResponse("CSRF check failed: reload the page and try again.", status_code=403)
                await response(scope, receive, send)
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, _setting_cookie(send, scope, nonce) if fresh else send)


async def _read_body(receive: Receive, limit: int, declared: str | None) -> bytes | None:
    size = parse_int(declared)
    if size is not None and size > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _form_field(content_type: str, body: bytes) -> str | None:
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return None
    values = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).get(FIELD)
    return values[0] if values else None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands the already-read body to the app, then waits as before."""
    given = False

    async def replay() -> Message:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _setting_cookie(send: Send, scope: Scope, nonce: str) -> Callable[[Message], Awaitable[None]]:
    path = scope.get("root_path") or "/"
    secure = "; Secure" if scope.get("scheme") == "https" else ""
    cookie = f"{COOKIE}={nonce}; Path={path}; HttpOnly; SameSite=Strict{secure}"

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers", []))
            headers.append((b"set-cookie", cookie.encode("latin-1")))
            message = {**message, "headers": headers}
        await send(message)

    return sending
