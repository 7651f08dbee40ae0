"""An emulator of Vonage's SMS API: ``POST /sms/json`` on the REST host, over https only.

Like the real API it answers 200 even when a message fails, with a ``status`` per message
part (1 throttled, 4 bad credentials, 6 unroutable, 7 barred...); scripted answers add the
HTTP-level failures a gateway gives (429 with Retry-After, 5xx, a hang-up, a slow answer).
Recipients behave like magic numbers: 15005550001 unroutable, ...0004 barred, ...0009
de-activated; ``reject`` adds more.
"""

from __future__ import annotations

import secrets
from typing import Any

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted
from tests.support.emulators.twilio import segments

STATUS_TEXT = {
    1: "Throttled",
    2: "Missing to param",
    3: "Invalid to address",
    4: "Bad Credentials",
    5: "Internal Error",
    6: "Invalid Message",
    7: "Number barred.",
    8: "Partner account barred.",
    9: "Partner quota exceeded.",
    12: "Message too long",
    15: "Invalid sender address",
    29: "Non White-listed Destination - rejected",
    33: "Number de-activated",
}
MAGIC_RECIPIENTS = {"15005550001": 6, "15005550004": 7, "15005550009": 33}
MAX_PARTS = 6  # Vonage refuses longer concatenated messages with status 12


def sms_answer(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"message-count": str(len(parts)), "messages": list(parts)}


def failed_part(status: int, to: str | None = None) -> dict[str, Any]:
    part: dict[str, Any] = {"status": str(status), "error-text": STATUS_TEXT.get(status, "Error")}
    if to:
        part["to"] = to
    return part


class VonageEmulator(Emulator):
    """Accepts SMS for one API key and secret (HTTP Basic, as the v4 SDK sends them)."""

    def __init__(
        self, api_key: str = "emukey01", api_secret: str = "emulator-secret-0123456789", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.api_secret = api_secret
        self.recipient_errors: dict[str, int] = dict(MAGIC_RECIPIENTS)

    @property
    def host(self) -> str:
        """What the SDK takes as its REST host: ``127.0.0.1:PORT``."""
        return self.url.split("://", 1)[1]

    def reject(self, number: str, status: int) -> None:
        """Every message to ``number`` (digits, no '+') fails with ``status``."""
        self.recipient_errors[number] = status

    def route(self, method: str, path: str) -> str | None:
        return "send" if (method, path) == ("POST", "/sms/json") else None

    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        key = request.form_value("api_key")
        credentials = request.basic_auth or (key, request.form_value("api_secret"))
        if credentials != (self.api_key, self.api_secret):
            return Reply.json(200, sms_answer(failed_part(4)))
        to, sender, text = request.form_value("to"), request.form_value("from"), request.form_value("text")
        if not to or not sender or text is None:
            return Reply.json(200, sms_answer(failed_part(2)))
        if not to.isdigit() or not 7 <= len(to) <= 15:
            return Reply.json(200, sms_answer(failed_part(3, to)))
        if to in self.recipient_errors:
            return Reply.json(200, sms_answer(failed_part(self.recipient_errors[to], to)))
        parts = segments(text)
        if parts > MAX_PARTS:
            return Reply.json(200, sms_answer(failed_part(12, to)))
        return Reply.json(200, sms_answer(*(self._part(to) for _ in range(parts))))

    def status(self, status: int, *, parts: int = 1, failing: int = 0) -> Scripted:
        """A 200 whose part number ``failing`` has ``status`` (the others are accepted)."""
        answer = [failed_part(status) if n == failing else self._part("15550001234") for n in range(parts)]
        return Scripted(Reply.json(200, sms_answer(*answer)))

    def error(self, status: int, *, retry_after: float | None = None) -> Scripted:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = {"type": "https://developer.vonage.com/api-errors", "title": STATUS_TEXT.get(status, "Error")}
        if status == 429:
            body["title"] = "Too Many Requests"
        return Scripted(Reply.json(status, body, headers))

    def _part(self, to: str) -> dict[str, Any]:
        return {
            "to": to,
            "message-id": secrets.token_hex(8).upper(),
            "status": "0",
            "remaining-balance": "15.53590000",
            "message-price": "0.03330000",
            "network": "23410",
        }
