"""Email through SendGrid's v3 Mail Send API: the official ``sendgrid`` SDK's ``Mail`` helper
builds the request body, which is POSTed over kept-alive connections (``providers.http``;
the SDK's own client opens a new connection per send).

SendGrid answers 202 when it accepts a message; bounces and drops arrive later through its
Event Webhook, so a ProviderResult here means "accepted", not "delivered".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import sendgrid
from sendgrid.helpers.mail import Bcc, Category, Cc, CustomArg, From, Header, Mail, ReplyTo, To
from sendgrid.helpers.mail.exceptions import SendGridException

from bus.settings_loader import Secret
from switchboard.addresses import address_of
from switchboard.channels import Channel
from switchboard.errors import (
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    TransientProviderError,
)
from switchboard.privacy import mask_text
from switchboard.providers.base import (
    EmailMessage,
    ProviderResult,
    check_timeout,
    parse_retry_after,
    redact,
    seconds_until,
)
from switchboard.providers.http import Answer, HttpClient
from switchboard.providers.loops import LoopThread

SENDGRID_API = "https://api.sendgrid.com"
# An error on one of these fields is about an address, not about the message.
_ADDRESS_FIELD = re.compile(r"^personalizations\.(?P<personalization>\d+)\.(?P<kind>to|cc|bcc)\.(?P<index>\d+)\.email$")
_SENDER_PROBLEM = re.compile(r"verified Sender Identity|from address does not match", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class SendGridConfig:
    """``[switchboard.sendgrid]``: email through SendGrid; without ``api_key`` email goes to the outbox.

    ``base_url`` None means SendGrid itself (set it for an emulator).
    """

    api_key: Secret | None = None
    base_url: str | None = None
    timeout: float = 10.0
    webhook_public_key: str | None = None
    """The Event Webhook's verification key (base64 DER, from SendGrid's settings): ``switchboard hooks``."""

    def __post_init__(self) -> None:
        check_timeout("sendgrid", self.timeout)

    @property
    def configured(self) -> bool:
        return bool(self.api_key)


class SendGridProvider:
    """Sends one EmailMessage per call, one HTTP request each over a kept-alive connection,
    classified into our errors."""

    channel = Channel.EMAIL
    name = "sendgrid"

    def __init__(self, config: SendGridConfig, *, sender: str) -> None:
        if config.api_key is None:
            raise ProviderConfigurationError("SendGrid needs an api_key")
        self._config = config
        self._api_key = config.api_key.reveal()
        self.sender = sender
        """The default ``from``, 'addr' or 'Name <addr>' (the first of ``[switchboard] senders``)."""
        self._url = f"{(config.base_url or SENDGRID_API).rstrip('/')}/v3/mail/send"
        self._headers = {
            "Authorization": f"Bearer {self._api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"sendgrid/{sendgrid.__version__};python",
        }
        self._http = HttpClient("SendGrid", timeout=config.timeout, safe=self._safe)
        self._thread = LoopThread("sendgrid-provider")

    def send(self, message: EmailMessage) -> ProviderResult:
        """Send from a thread; see ``asend``."""
        return self._thread.run(self.asend(message))

    async def asend(self, message: EmailMessage) -> ProviderResult:
        """Submit the email; raise a ProviderError subclass when SendGrid does not accept it."""
        body = json.dumps(self._mail(message)).encode("utf-8")
        answer = await self._http.post(self._url, headers=self._headers, data=body)
        if not 200 <= answer.status < 300:
            raise self._http_error(answer, message)
        return ProviderResult(provider=self.name, message_id=answer.headers.get("X-Message-Id"))

    def close(self) -> None:
        """Close the kept-alive connections and the private loop."""
        self._http.close()
        self._thread.stop()

    def _mail(self, message: EmailMessage) -> dict[str, Any]:
        """The request body, built by the SDK's Mail helper (which has checks of its own)."""
        try:
            mail = Mail(
                from_email=From(message.from_email or self.sender),
                to_emails=[_recipient(To, address) for address in message.to],
                subject=message.subject,
                plain_text_content=message.text,
                html_content=message.html,
            )
            for address in message.cc:
                mail.add_cc(_recipient(Cc, address))
            for address in message.bcc:
                mail.add_bcc(_recipient(Bcc, address))
            if message.reply_to:
                mail.reply_to = ReplyTo(message.reply_to)
            for key, value in message.headers.items():
                mail.add_header(Header(key, value))
            for category in message.categories:
                mail.add_category(Category(category))
            for key, value in message.custom_args.items():
                mail.add_custom_arg(CustomArg(key, value))
            body: dict[str, Any] = mail.get()
        except (SendGridException, ValueError, TypeError, KeyError) as exc:
            # The SDK refuses e.g. a body that contains an API key; retrying cannot help.
            raise PermanentProviderError(self._safe(f"SendGrid SDK refused the email: {type(exc).__name__}")) from None
        return body

    def _http_error(self, answer: Answer, message: EmailMessage) -> ProviderError:
        status = answer.status
        errors = _error_list(answer.json())
        detail = "; ".join(
            f"{e.get('message')} [{e.get('field')}]" if e.get("field") else str(e.get("message")) for e in errors
        )
        text = self._safe(f"SendGrid answered {status}: {detail or answer.reason}", message)
        if status == 403 and any(_SENDER_PROBLEM.search(str(e.get("message") or "")) for e in errors):
            # One sender is not verified: the others (and the channel) still work.
            sender = address_of(message.from_email or self.sender).lower()
            return ProviderConfigurationError(text, status=status, sender=sender)
        if status in (401, 403):
            return ProviderConfigurationError(text, status=status)
        headers = answer.headers
        if status == 429:
            wait = parse_retry_after(headers.get("Retry-After"))
            if wait is None:
                wait = seconds_until(headers.get("X-RateLimit-Reset"))
            return TransientProviderError(text, status=status, retry_after=wait)
        if status >= 500 or status == 408:
            return TransientProviderError(
                text, status=status, retry_after=parse_retry_after(headers.get("Retry-After"))
            )
        fields = [str(e.get("field") or "") for e in errors]
        about_addresses = bool(fields) and all(_ADDRESS_FIELD.match(f) for f in fields)
        named = tuple(a for a in (_address_at(f, message) for f in fields) if a is not None)
        return PermanentProviderError(
            text,
            status=status,
            recipient_problem=about_addresses,
            recipients=named if about_addresses and len(named) == len(fields) else (),
        )

    def _safe(self, text: str, message: EmailMessage | None = None) -> str:
        """Provider text fit to store and log: no API key, every recipient masked."""
        recipients = [*message.to, *message.cc, *message.bcc] if message is not None else []
        return mask_text(redact(text, [self._api_key]), recipients)


def _address_at(field: str, message: EmailMessage) -> str | None:
    """The address a SendGrid error field points at (``personalizations.0.cc.1.email``), if known.

    Every message goes out as one personalization holding its to, cc and bcc lists in order.
    """
    match = _ADDRESS_FIELD.match(field)
    if match is None or match.group("personalization") != "0":
        return None
    addresses = {"to": message.to, "cc": message.cc, "bcc": message.bcc}[match.group("kind")]
    index = int(match.group("index"))
    return addresses[index] if index < len(addresses) else None


def _recipient(kind: type[Any], address: str) -> Any:
    """A To/Cc/Bcc; the helper reads an address without one '@' as a bare name, so refuse it here."""
    recipient = kind(address)
    if not recipient.email:
        raise PermanentProviderError(
            f"not an email address: {mask_text(address, [address])!r}", recipient_problem=True, recipients=(address,)
        )
    return recipient


def _error_list(parsed: Any) -> list[dict[str, Any]]:
    """SendGrid's ``{"errors": [{"message", "field", "help"}]}``, or nothing when the body is not that."""
    errors = parsed.get("errors") if isinstance(parsed, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []
