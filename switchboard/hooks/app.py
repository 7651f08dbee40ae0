"""The webhook receiver: verify, read, publish ``provider_status`` events, answer.

Stateless and quick on purpose: a request is checked (size, signature, freshness) before
anything reads it, then its events go onto the bus in one ``publish_many`` round trip (shared
with the requests waiting at the same time: see ``coalescing``) and the switchboard worker
applies them. Any number of receivers can run behind a load
balancer; while Redis is unreachable a request answers 503 and the provider sends it again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qs

import redis.exceptions
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bus import Bus
from bus.errors import RedisRefused, RedisUnavailable
from bus.safejson import read_json
from switchboard.callbacks import TWILIO_STATUS_PATH
from switchboard.errors import SettingsError
from switchboard.hooks.coalescing import Coalescer
from switchboard.hooks.config import hook_problems
from switchboard.hooks.parsing import EVENT_TYPE, Parsed, sendgrid_events, twilio_inbound, twilio_status
from switchboard.hooks.verify import (
    SENDGRID_SIGNATURE,
    SENDGRID_TIMESTAMP,
    TWILIO_SIGNATURE,
    Refused,
    SendGridVerifier,
    TwilioVerifier,
)
from switchboard.settings import SwitchboardSettings
from switchboard.unsubscribe_app import unsubscribe_routes

log = logging.getLogger("switchboard.hooks")

SENDGRID_PATH = "/hooks/sendgrid"
TWILIO_INBOUND_PATH = "/hooks/twilio/inbound"
MAX_FORM_FIELDS = 100
EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response></Response>'


class Receiver:
    """The hooks' handlers, with what they share: the verifiers, the limits, the bus."""

    def __init__(self, bus: Bus, settings: SwitchboardSettings, *, clock: Callable[[], float] = time.time) -> None:
        found = hook_problems(settings)
        if found:
            raise SettingsError(found[0])
        self.coalescer = Coalescer(bus)
        self.hooks = settings.hooks
        self.public_url = (settings.public_url or "").rstrip("/")
        self.clock = clock
        key = settings.sendgrid.webhook_public_key
        self.sendgrid = (
            SendGridVerifier(key, tolerance=self.hooks.tolerance, clock=clock)
            if key and "sendgrid" in self.hooks.enabled
            else None
        )
        token = settings.twilio.auth_token
        self.twilio = TwilioVerifier(token.reveal()) if token and "twilio" in self.hooks.enabled else None

    async def sendgrid_events(self, request: Request) -> Response:
        async def read(body: bytes) -> Parsed:
            assert self.sendgrid is not None
            self.sendgrid.check(body, request.headers.get(SENDGRID_SIGNATURE), request.headers.get(SENDGRID_TIMESTAMP))
            try:
                return sendgrid_events(read_json(body))
            except ValueError:
                raise Refused(400, "not a JSON array of events") from None

        return await self._receive(request, read, JSONResponse)

    async def twilio_status(self, request: Request) -> Response:
        async def read(body: bytes) -> Parsed:
            form = self._twilio_form(request, body)
            return twilio_status(form, parse_qs(request.url.query), self.clock())

        return await self._receive(request, read, lambda summary: Response(status_code=204))

    async def twilio_inbound(self, request: Request) -> Response:
        async def read(body: bytes) -> Parsed:
            return twilio_inbound(self._twilio_form(request, body), self.clock())

        return await self._receive(request, read, lambda summary: Response(EMPTY_TWIML, media_type="text/xml"))

    def _twilio_form(self, request: Request, body: bytes) -> dict[str, list[str]]:
        """The posted form, once its signature over the public URL and the form checks out."""
        assert self.twilio is not None
        try:
            form = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
        except (UnicodeDecodeError, ValueError):
            raise Refused(403, "unreadable form: cannot be verified") from None
        query = f"?{request.url.query}" if request.url.query else ""
        self.twilio.check(f"{self.public_url}{request.url.path}{query}", form, request.headers.get(TWILIO_SIGNATURE))
        return form

    async def _receive(
        self,
        request: Request,
        read: Callable[[bytes], Awaitable[Parsed]],
        answer: Callable[[dict[str, int]], Response],
    ) -> Response:
        try:
            parsed = await read(await self._body(request))
        except Refused as refused:
            log.warning("refused %s %s: %s", request.method, request.url.path, refused)
            return JSONResponse({"error": str(refused)}, status_code=refused.status)
        if parsed.rejected:
            log.warning("%s: %d event(s) rejected (malformed or unknown)", request.url.path, parsed.rejected)
        if parsed.events:
            try:
                await self.coalescer.publish([(EVENT_TYPE, e) for e in parsed.events])
            except (RedisUnavailable, RedisRefused, redis.exceptions.RedisError) as exc:
                log.error("%s: Redis unreachable, answering 503 (the provider retries): %s", request.url.path, exc)
                return JSONResponse({"error": "try again later"}, status_code=503)
        return answer(parsed.summary())

    async def _body(self, request: Request) -> bytes:
        """The raw body, refused past the size limit (413) or the time limit (408) without reading the rest."""
        try:
            async with asyncio.timeout(self.hooks.body_timeout):
                return await self._read(request)
        except TimeoutError:
            raise Refused(408, f"body not received within {self.hooks.body_timeout:g} s") from None

    async def _read(self, request: Request) -> bytes:
        limit = self.hooks.max_body_bytes
        length = request.headers.get("content-length")
        # isascii: '\xb2' (superscript two) is a digit to isdigit() but not to int().
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) > limit):
            raise Refused(413, f"body over {limit} bytes")
        chunks, size = [], 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise Refused(413, f"body over {limit} bytes")
                chunks.append(chunk)
        except ClientDisconnect:
            raise Refused(400, "the client hung up before the end of the body") from None
        return b"".join(chunks)


def hook_routes(receiver: Receiver, enabled: Sequence[str]) -> list[BaseRoute]:
    """Every route of the receiver, in one place (other hooks join this list)."""
    routes: list[BaseRoute] = []
    if "sendgrid" in enabled:
        routes.append(Route(SENDGRID_PATH, receiver.sendgrid_events, methods=["POST"], name="hooks_sendgrid"))
    if "twilio" in enabled:
        routes.append(Route(TWILIO_STATUS_PATH, receiver.twilio_status, methods=["POST"], name="hooks_twilio_status"))
        routes.append(
            Route(TWILIO_INBOUND_PATH, receiver.twilio_inbound, methods=["POST"], name="hooks_twilio_inbound")
        )
    routes.append(Route("/healthz", _healthz, name="hooks_healthz"))
    return routes


async def _healthz(request: Request) -> Response:
    return Response("ok\n", media_type="text/plain")


def create_hooks_app(bus: Bus, settings: SwitchboardSettings, *, clock: Callable[[], float] = time.time) -> Starlette:
    """The receiver's ASGI app (refuses settings it cannot verify requests with)."""
    receiver = Receiver(bus, settings, clock=clock)
    routes = hook_routes(receiver, settings.hooks.enabled)
    if settings.unsubscribe.secret:  # the one-click unsubscribe links of emails point here too
        routes += unsubscribe_routes(bus, settings)
    return Starlette(routes=routes)
