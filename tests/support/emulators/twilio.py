"""An emulator of Twilio's Messages resource: ``POST /2010-04-01/Accounts/{Sid}/Messages.json``.

Recipients behave like Twilio's magic test numbers (+15005550001 invalid, ...0004 STOP, ...);
``reject`` adds more.
"""

from __future__ import annotations

import math
import re
import secrets
import threading
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted
from tests.support.emulators.webhooks import Posted, post_twilio

_MESSAGES_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>[^/]+)/Messages\.json$")
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_SENDER = re.compile(r"^(\+[1-9]\d{6,14}|\d{5,6}|[A-Za-z0-9 ]{1,11})$")
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")  # each takes two septets
MAX_BODY = 1600

# Twilio's test-credential magic "To" numbers and the code each fails with.
MAGIC_RECIPIENTS = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
_CODE_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "An internal server error has occurred",
    20503: "Service Unavailable",
    21211: "The 'To' number {to} is not a valid phone number.",
    21212: "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID.",
    21408: "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}.",
    21602: "Message body is required.",
    21603: "A 'From' phone number is required.",
    21604: "A 'To' phone number is required.",
    21610: "Attempt to send to unsubscribed recipient",
    21612: "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS.",
    21614: "'To' number is not a valid mobile number",
    21617: "The concatenated message body exceeds the 1600 character limit.",
}
# What the status callback reports for designated recipients, in order: (MessageStatus, ErrorCode).
# Anyone else: sent, then delivered.
CALLBACK_SCRIPTS: dict[str, list[tuple[str, str | None]]] = {
    "+14155550030": [("sent", None), ("undelivered", "30005")],  # unknown handset: permanent
    "+14155550031": [("sent", None), ("undelivered", "30003")],  # unreachable for now: not permanent
    "+14155550032": [("delivered", None), ("sent", None)],  # out of order
    "+14155550033": [("sent", None), ("delivered", None), ("delivered", None)],  # a duplicate
}
DEFAULT_CALLBACKS: list[tuple[str, str | None]] = [("sent", None), ("delivered", None)]
_STATUS_CODES = {400: 21604, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


def error_body(status: int, code: int, message: str) -> dict[str, Any]:
    """Twilio's (legacy) error JSON, the one TwilioRestException is built from."""
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def segments(body: str) -> int:
    """How many SMS segments Twilio bills: GSM-7 160/153, else UCS-2 70/67."""
    if all(c in _GSM7 or c in _GSM7_EXTENDED for c in body):
        units, single, multi = len(body) + sum(c in _GSM7_EXTENDED for c in body), 160, 153
    else:
        units, single, multi = len(body.encode("utf-16-le")) // 2, 70, 67
    return 1 if units <= single else math.ceil(units / multi)


class TwilioEmulator(Emulator):
    """Creates Message resources for one account, checking HTTP Basic auth and parameters."""

    def __init__(
        self, account_sid: str = "AC" + "e" * 32, auth_token: str = "emulator-auth-token-0123456789ab", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.recipient_errors: dict[str, int] = dict(MAGIC_RECIPIENTS)
        self._callbacks: list[tuple[str, dict[str, str]]] = []
        self._callbacks_lock = threading.Lock()

    def flush_webhooks(self) -> list[Posted]:
        """Post every queued status callback, signed with the auth token, one request each, in order."""
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        return [post_twilio(url, params, self.auth_token) for url, params in callbacks]

    def send_inbound(self, url: str, from_: str, body: str, to: str = "+15550001111") -> Posted:
        """An incoming SMS to our number, posted (signed) as Twilio posts it."""
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": self.account_sid,
            "From": from_,
            "To": to,
            "Body": body,
            "NumMedia": "0",
        }
        return post_twilio(url, params, self.auth_token)

    def reject(self, number: str, code: int) -> None:
        """Make every message to ``number`` fail with Twilio error ``code`` (e.g. 21610 for STOP)."""
        self.recipient_errors[number] = code

    def route(self, method: str, path: str) -> str | None:
        return "send" if method == "POST" and _MESSAGES_PATH.match(path) else None

    def not_found(self, request: RecordedRequest) -> Reply:
        return Reply.json(404, error_body(404, 20404, _CODE_MESSAGES[20404]))

    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        if request.basic_auth != (self.account_sid, self.auth_token):
            return Reply.json(401, error_body(401, 20003, _CODE_MESSAGES[20003]))
        match = _MESSAGES_PATH.match(request.path)
        if match is None or match["sid"] != self.account_sid:
            return self.not_found(request)
        to, from_ = request.form_value("To"), request.form_value("From")
        service, body = request.form_value("MessagingServiceSid"), request.form_value("Body")
        code = self._problem(to, from_, service, body, bool(request.form.get("MediaUrl")))
        if code is not None:
            message = _CODE_MESSAGES[code].format(to=to, from_=from_)
            return Reply.json(400, error_body(400, code, message))
        created = self._message(to or "", from_, service, body or "")
        callback = request.form_value("StatusCallback")
        if callback:
            self._queue_callbacks(callback, created)
        return Reply.json(201, created)

    def _queue_callbacks(self, url: str, message: dict[str, Any]) -> None:
        for status, code in CALLBACK_SCRIPTS.get(message["to"], DEFAULT_CALLBACKS):
            params = {
                "MessageSid": message["sid"],
                "SmsSid": message["sid"],
                "AccountSid": self.account_sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "To": message["to"],
                "From": message["from"] or "",
                "ApiVersion": "2010-04-01",
            }
            if code:
                params["ErrorCode"] = code
            with self._callbacks_lock:
                self._callbacks.append((url, params))

    def _problem(
        self, to: str | None, from_: str | None, service: str | None, body: str | None, media: bool
    ) -> int | None:
        if not to:
            return 21604
        if not from_ and not service:
            return 21603
        if not body and not media:
            return 21602
        if body and len(body) > MAX_BODY:
            return 21617
        if not _E164.match(to):
            return 21211
        if from_ and not _SENDER.match(from_):
            return 21212
        return self.recipient_errors.get(to)

    def _message(self, to: str, from_: str | None, service: str | None, body: str) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = format_datetime(datetime.now(UTC))
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        # With a Messaging Service and no sender Twilio answers "accepted" with 0 segments.
        pooled = service is not None and from_ is None
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": from_,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if pooled else str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if pooled else "queued",
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": to,
            "uri": f"{uri}.json",
        }

    def error(
        self, status: int, *, retry_after: float | None = None, code: int | None = None, message: str | None = None
    ) -> Scripted:
        code = code or _STATUS_CODES.get(status, 20500)
        text = message or _CODE_MESSAGES.get(code, "Error").format(to="", from_="")
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        return Scripted(Reply.json(status, error_body(status, code, text), headers))
