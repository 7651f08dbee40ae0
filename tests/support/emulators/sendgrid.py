"""An emulator of SendGrid's v3 Mail Send API: ``POST /v3/mail/send`` with a Bearer API key."""

from __future__ import annotations

import re
import secrets
import threading
import time
from typing import Any

from tests.support.emulators.base import Emulator, RecordedRequest, Reply, Scripted
from tests.support.emulators.webhooks import Posted, WebhookKeys, post_sendgrid

HELP = "http://sendgrid.com/docs/API_Reference/Web_API_v3/Mail/errors.html"
MAX_RECIPIENTS = 1000
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_STATUS_MESSAGES = {
    400: "Bad Request",
    401: "The provided authorization grant is invalid, expired, or revoked",
    403: "access forbidden",
    404: "resource not found",
    413: "Payload Too Large",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
}


def errors_body(message: str, field: str | None = None, help: str | None = None) -> dict[str, Any]:
    """SendGrid's error JSON."""
    return {"errors": [{"message": message, "field": field, "help": help}]}


# What the Event Webhook reports for a recipient, by the start of its local part (designated
# recipients); anyone else: processed, then delivered. Each step: (event, extra fields, same id as
# the step at this index or None).
EVENT_SCRIPTS: dict[str, list[tuple[str, dict[str, Any], int | None]]] = {
    "bounce": [
        ("processed", {}, None),
        ("bounce", {"type": "bounce", "status": "5.1.1", "reason": "550 5.1.1 <{email}>: no such user"}, None),
    ],
    "blocked": [("processed", {}, None), ("bounce", {"type": "blocked", "reason": "421 try later"}, None)],
    "deferred": [
        ("processed", {}, None),
        ("deferred", {"response": "451 4.7.1 greylisted, try again", "attempt": "1"}, None),
        ("delivered", {"response": "250 OK"}, None),
    ],
    "late": [("delivered", {"response": "250 OK"}, None), ("deferred", {}, None), ("processed", {}, None)],
    "duplicate": [("processed", {}, None), ("delivered", {}, None), ("delivered", {}, 1)],
    "spam": [("processed", {}, None), ("delivered", {}, None), ("spamreport", {}, None)],
    "unsubscribe": [("processed", {}, None), ("delivered", {}, None), ("unsubscribe", {}, None)],
    "dropped": [("dropped", {"reason": "Bounced Address"}, None)],
    "silent": [],
}
DEFAULT_EVENTS: list[tuple[str, dict[str, Any], int | None]] = [("processed", {}, None), ("delivered", {}, None)]


class SendGridEmulator(Emulator):
    """Accepts mail for ``api_key`` with 202 and an ``X-Message-Id``, validates like SendGrid.

    With :meth:`send_webhooks_to`, each accepted message also queues the Event Webhook's events
    for its recipients (see EVENT_SCRIPTS); :meth:`flush_webhooks` posts them, signed, in batches.
    """

    def __init__(self, api_key: str = "SG.emulator-key.secret-part", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key
        self.webhook_url: str | None = None
        self.webhook_keys: WebhookKeys | None = None
        self.batch_size = 1000
        self._events: list[dict[str, Any]] = []
        self._events_lock = threading.Lock()
        self.posted: list[list[dict[str, Any]]] = []
        """Every batch posted so far (SendGrid posts one again when the answer was not 2xx)."""

    def send_webhooks_to(self, url: str, keys: WebhookKeys, *, batch_size: int = 1000) -> None:
        self.webhook_url, self.webhook_keys, self.batch_size = url, keys, batch_size

    def flush_webhooks(self) -> list[Posted]:
        """Post every queued event, signed, ``batch_size`` to a request; the receiver's answers."""
        with self._events_lock:
            events, self._events = self._events, []
        batches = [events[i : i + self.batch_size] for i in range(0, len(events), self.batch_size)]
        self.posted += batches
        return [self._post(batch) for batch in batches]

    def repost_webhooks(self) -> list[Posted]:
        """Post every batch posted so far again, freshly signed (as SendGrid's retries do)."""
        return [self._post(batch) for batch in self.posted]

    def _post(self, batch: list[dict[str, Any]]) -> Posted:
        if self.webhook_url is None or self.webhook_keys is None:
            raise RuntimeError("send_webhooks_to() first")
        return post_sendgrid(self.webhook_url, batch, self.webhook_keys)

    def discard_webhooks(self) -> None:
        """Forget the queued events (as if SendGrid never sent them)."""
        with self._events_lock:
            self._events.clear()

    def queue_events(self, mail: dict[str, Any], message_id: str) -> None:
        """Queue the Event Webhook's events for every recipient of ``mail`` (a Mail Send body)."""
        custom = {k: str(v) for k, v in (mail.get("custom_args") or {}).items()}
        now = int(time.time())
        for personalization in mail.get("personalizations") or []:
            args = {**custom, **{k: str(v) for k, v in (personalization.get("custom_args") or {}).items()}}
            for kind in ("to", "cc", "bcc"):
                for entry in personalization.get(kind) or []:
                    email = str(entry["email"])
                    script = next(
                        (steps for prefix, steps in EVENT_SCRIPTS.items() if email.startswith(prefix)), DEFAULT_EVENTS
                    )
                    ids: list[str] = []
                    for name, extra, same_as in script:
                        event_id = ids[same_as] if same_as is not None else secrets.token_urlsafe(16)
                        ids.append(event_id)
                        fields = {k: v.format(email=email) if isinstance(v, str) else v for k, v in extra.items()}
                        event = {
                            "email": email,
                            "timestamp": now,
                            "event": name,
                            "sg_event_id": event_id,
                            "sg_message_id": f"{message_id}.filter0001.{now}.0",
                            "smtp-id": f"<{message_id}@ismtpd0001p1>",
                            **fields,
                            **args,
                        }
                        with self._events_lock:
                            self._events.append(event)

    def route(self, method: str, path: str) -> str | None:
        return "send" if (method, path) == ("POST", "/v3/mail/send") else None

    def not_found(self, request: RecordedRequest) -> Reply:
        return Reply.json(404, errors_body("resource not found"))

    def respond(self, endpoint: str, request: RecordedRequest) -> Reply:
        header = request.header("authorization")
        if not header:
            return Reply.json(401, errors_body("authorization required"))
        if request.bearer != self.api_key:
            return Reply.json(401, errors_body(_STATUS_MESSAGES[401]))
        problem = validate_mail(request.json)
        if problem is not None:
            return Reply.json(400, errors_body(*problem))
        message_id = secrets.token_urlsafe(16)[:22]
        if self.webhook_url is not None:
            self.queue_events(request.json, message_id)
        return Reply(202, b"", {"X-Message-Id": message_id})

    def error(
        self, status: int, *, retry_after: float | None = None, message: str | None = None, field: str | None = None
    ) -> Scripted:
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        body = errors_body(message or _STATUS_MESSAGES.get(status, "error"), field)
        return Scripted(Reply.json(status, body, headers))

    def rate_limited(self, reset_in: int = 30, limit: int = 600) -> Scripted:
        """429 as SendGrid sends it: the wait is in X-RateLimit-Reset, a Unix time."""
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + reset_in),
        }
        return Scripted(Reply.json(429, errors_body(_STATUS_MESSAGES[429]), headers))


def validate_mail(mail: Any) -> tuple[str, str | None, str] | None:
    """The first problem SendGrid would report as (message, field, help), or None."""
    if not isinstance(mail, dict):
        return ("Bad Request", None, HELP)
    sender = mail.get("from")
    if not isinstance(sender, dict) or not sender.get("email"):
        return (
            "The from object must be provided for every email send. It is an object that requires the email "
            "parameter, but may also contain a name parameter.",
            "from.email",
            f"{HELP}#message.from",
        )
    if not _ADDRESS.match(str(sender["email"])):
        return ("The from email does not contain a valid address.", "from.email", f"{HELP}#message.from")
    personalizations = mail.get("personalizations")
    if not isinstance(personalizations, list) or not personalizations:
        return (
            "The personalizations field is required and must have at least one personalization.",
            "personalizations",
            f"{HELP}#-Personalizations-Errors",
        )
    problem = _validate_personalizations(personalizations)
    if problem is not None:
        return problem
    if not mail.get("subject") and not mail.get("template_id"):
        return (
            "The subject is required. You can get around this requirement if you use a template with a subject "
            "defined or if every personalization has a subject defined.",
            "subject",
            f"{HELP}#message.subject",
        )
    return _validate_content(mail.get("content"), mail.get("template_id"))


def _validate_personalizations(personalizations: list[Any]) -> tuple[str, str | None, str] | None:
    total = 0
    for index, personalization in enumerate(personalizations):
        to = personalization.get("to") if isinstance(personalization, dict) else None
        if not isinstance(to, list) or not to:
            return (
                "The to array is required for all personalization objects, and must have at least one email "
                "object with a valid email address.",
                f"personalizations.{index}.to",
                f"{HELP}#message.personalizations.to",
            )
        seen: dict[str, str] = {}
        for kind in ("to", "cc", "bcc"):
            for position, entry in enumerate(personalization.get(kind) or []):
                address = str(entry.get("email", "")) if isinstance(entry, dict) else ""
                field = f"personalizations.{index}.{kind}.{position}.email"
                if not _ADDRESS.match(address):
                    return ("Does not contain a valid address.", field, f"{HELP}#message.personalizations")
                if address.lower() in seen:
                    return (
                        "Each email address in the personalization block should be unique between to, cc, and bcc. "
                        f"We found the first duplicate instance of [{address}] in the "
                        f"personalizations.{index}.{kind} field.",
                        f"personalizations.{index}",
                        f"{HELP}#message.recipient_errors",
                    )
                seen[address.lower()] = kind
                total += 1
    if total > MAX_RECIPIENTS:
        return (
            f"The total number of recipients must be less than {MAX_RECIPIENTS}.",
            "personalizations",
            f"{HELP}#message.personalizations",
        )
    return None


def _validate_content(content: Any, template_id: Any) -> tuple[str, str | None, str] | None:
    if not content and not template_id:
        return (
            "Unless a valid template_id is provided, the content parameter is required. There must be at least "
            "one defined content block.",
            "content",
            f"{HELP}#message.content",
        )
    types = [block.get("type") for block in content or [] if isinstance(block, dict)]
    if "text/plain" in types and types.index("text/plain") != 0:
        return (
            "If present, text/plain and text/html may only be provided in that order, text/plain first.",
            "content",
            f"{HELP}#message.content",
        )
    return None
