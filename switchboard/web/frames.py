"""Rendered HTML (emails, outbox messages) served for ``<iframe sandbox>`` only.

Everything under :data:`FRAME_PREFIX` is a message, not a dashboard page, so it gets its own
headers in place of the dashboard's: a policy that runs no script, loads nothing but inline
styles and images, submits no form, and is itself a sandbox (opened directly in a tab, it
still cannot run anything); framing is allowed by the dashboard's own pages only. Pages
embed it with a bare ``sandbox`` attribute (no ``allow-scripts``, no ``allow-same-origin``):
see the ``frame`` macro in ``templates/sb_macros.html``.

Outbox messages carry data other apps published, which may point images at a server that
learns when an operator looks; their frames load no remote image unless the URL asks for
them with ``?images=remote`` (the outbox page's "load remote images" link), as mail
clients do. Template previews are the dashboard's own templates, so they load them.
"""

from __future__ import annotations

from starlette.responses import HTMLResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bus.web.auth import route_path

FRAME_PREFIX = "/switchboard/frames/"
OUTBOX_FRAMES = FRAME_PREFIX + "outbox/"
REMOTE_IMAGES = "images=remote"
FRAME_POLICY = (
    "sandbox; default-src 'none'; img-src data: https:; style-src 'unsafe-inline'; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'"
)
NO_REMOTE_IMAGES_POLICY = FRAME_POLICY.replace("img-src data: https:", "img-src data:")
_REPLACED = frozenset({b"content-security-policy", b"x-frame-options"})


def frame_response(html: str) -> Response:
    """A message's HTML as it would reach an inbox; the headers come from :class:`FrameHeaders`."""
    return HTMLResponse(html)


class FrameHeaders:
    """Swaps the dashboard's page policy for the frame policy on frame routes.

    Added outside the dashboard's own security middleware (``add_middleware`` puts it
    first), so it sees, and replaces, the headers that middleware set.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if not path.startswith(FRAME_PREFIX):
            await self.app(scope, receive, send)
            return
        asked = REMOTE_IMAGES in scope.get("query_string", b"").decode("latin-1").split("&")
        policy = NO_REMOTE_IMAGES_POLICY if path.startswith(OUTBOX_FRAMES) and not asked else FRAME_POLICY

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _REPLACED]
                headers += [
                    (b"content-security-policy", policy.encode()),
                    (b"x-frame-options", b"SAMEORIGIN"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, sending)
