"""The unsubscribe links' routes, served by ``switchboard hooks`` (they face the internet too).

``POST /unsubscribe/<token>`` is what a mail client sends for ``List-Unsubscribe-Post:
List-Unsubscribe=One-Click`` (RFC 8058), and what the confirmation page's button sends.
``GET`` only shows that page: link scanners and mail previews follow GETs, so a GET alone never
unsubscribes anyone. The token is the whole authority (signed, expiring, naming one recipient
key, category and channel), so there is no session and no CSRF token to check; a token that is
forged, damaged or expired is refused with 400 and changes nothing.
"""

from __future__ import annotations

import html
import logging
import time

import redis.exceptions
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from bus import Bus
from bus.errors import RedisRefused, RedisUnavailable
from switchboard.categories import opt_outs
from switchboard.channels import Channel
from switchboard.errors import SettingsError
from switchboard.keys import SwitchboardKeys
from switchboard.preference_changes import Change, PreferenceChanges
from switchboard.preferences import PreferenceRefused, Preferences, check_change
from switchboard.settings import SwitchboardSettings
from switchboard.unsubscribe import InvalidToken, Unsubscribe, UnsubscribeTokens

log = logging.getLogger("switchboard.unsubscribe")

PATH = "/unsubscribe/{token}"
SOURCE = "unsubscribe link"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}
STYLE = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2933}"


class UnsubscribeRoutes:
    """The handlers and what they share: the token reader, the preference changes."""

    def __init__(self, bus: Bus, settings: SwitchboardSettings) -> None:
        secret = settings.unsubscribe.secret
        if not secret:
            raise SettingsError(
                "unsubscribe links need switchboard.unsubscribe.secret (SWITCHBOARD_UNSUBSCRIBE_SECRET)"
            )
        self.tokens = UnsubscribeTokens(secret.reveal(), max_age=settings.unsubscribe.max_age_days * 86400)
        self.settings = settings
        preferences = Preferences(bus.redis, SwitchboardKeys(bus.keys), time.time)
        self.changes = PreferenceChanges(bus, preferences, settings)

    def routes(self) -> list[BaseRoute]:
        return [Route(PATH, self.confirm, methods=["GET"]), Route(PATH, self.unsubscribe, methods=["POST"])]

    async def confirm(self, request: Request) -> HTMLResponse:
        """The confirmation page: what the link stops, and a button that POSTs it."""
        try:
            asked = self.tokens.read(request.path_params["token"])
            check_change(asked.category, False, opt_outs(self.settings.categories))
        except (InvalidToken, PreferenceRefused) as exc:
            return _page("This link does not work", str(exc), status=400)
        what = self._describe(asked)
        form = (
            '<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
            f'<button type="submit">Unsubscribe from {html.escape(what)}</button></form>'
        )
        return _page("Unsubscribe?", f"You will no longer get {what}.", extra=form)

    async def unsubscribe(self, request: Request) -> HTMLResponse:
        """The one-click POST (from the mail client or the page's button): the recipient is opted out."""
        try:
            asked = self.tokens.read(request.path_params["token"])
        except InvalidToken as exc:
            return _page("This link does not work", str(exc), status=400)
        change = Change(asked.recipient_key, asked.category, Channel(asked.channel), False, SOURCE)
        try:
            await run_in_threadpool(self.changes.apply, change)
        except PreferenceRefused as exc:
            return _page("This link does not work", str(exc), status=400)
        except (RedisUnavailable, RedisRefused, redis.exceptions.RedisError):
            log.warning("unsubscribe: Redis is unreachable; answered 503")
            return _page("Please try again", "We could not record this just now.", status=503)
        return _page("You are unsubscribed", f"You will no longer get {self._describe(asked)}.")

    def _describe(self, asked: Unsubscribe) -> str:
        category = self.settings.categories.get(asked.category)
        name = category.description if category is not None and category.description else asked.category
        return f"{name.lower()} by {asked.channel}"


def _page(title: str, text: str, *, status: int = 200, extra: str = "") -> HTMLResponse:
    body = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p>{extra}"
        "</body></html>"
    )
    return HTMLResponse(body, status_code=status, headers=HEADERS)


def unsubscribe_routes(bus: Bus, settings: SwitchboardSettings) -> list[BaseRoute]:
    """The routes to mount into ``switchboard hooks`` (SettingsError without an unsubscribe secret)."""
    return UnsubscribeRoutes(bus, settings).routes()


def create_unsubscribe_app(bus: Bus, settings: SwitchboardSettings) -> Starlette:
    """The unsubscribe routes as an app of their own (tests; until they are mounted in the hooks app)."""
    return Starlette(routes=unsubscribe_routes(bus, settings))
