"""SMS through Twilio's Programmable Messaging API: a form POST to ``Messages.json`` with
HTTP Basic auth, over kept-alive connections (``providers.http``), the way the ``twilio`` SDK
sends it, without a thread per call.

A 201 means Twilio queued the message; carrier failures (30003-30008) arrive later through
the status callback, never as an exception here. Errors come as Twilio's JSON (``code``,
``message``) or, from newer APIs, as RFC 9457 problem details (``code``, ``title``, ``detail``).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import twilio

from bus.settings_loader import Secret
from switchboard.channels import Channel
from switchboard.errors import (
    PermanentProviderError,
    ProviderConfigurationError,
    ProviderError,
    TransientProviderError,
)
from switchboard.privacy import mask_text
from switchboard.providers.base import (
    ProviderResult,
    SmsMessage,
    check_timeout,
    parse_retry_after,
    redact,
)
from switchboard.providers.http import Answer, HttpClient
from switchboard.providers.loops import LoopThread

# Codes about the recipient itself: invalid number, not a mobile, replied STOP, unreachable.
RECIPIENT_CODES = frozenset({21211, 21614, 21610, 21612})
BAD_CREDENTIALS = 20003
TWILIO_API = "https://api.twilio.com"


@dataclass(frozen=True, slots=True)
class TwilioConfig:
    """``[switchboard.twilio]``: SMS through Twilio; without ``account_sid`` and ``auth_token`` SMS goes
    to the outbox. ``base_url`` None means Twilio itself (set it for an emulator)."""

    account_sid: str | None = None
    auth_token: Secret | None = None
    from_number: str | None = None
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    base_url: str | None = None
    timeout: float = 10.0

    def __post_init__(self) -> None:
        check_timeout("twilio", self.timeout)

    @property
    def configured(self) -> bool:
        return bool(self.account_sid) and bool(self.auth_token)


class TwilioProvider:
    """Sends one SmsMessage per call over a kept-alive connection, classified into our errors."""

    channel = Channel.SMS
    name = "twilio"

    def __init__(self, config: TwilioConfig) -> None:
        if not config.account_sid or config.auth_token is None:
            raise ProviderConfigurationError("Twilio needs an account_sid and an auth_token")
        if not config.from_number and not config.messaging_service_sid:
            raise ProviderConfigurationError(
                "Twilio needs a from_number or a messaging_service_sid ([switchboard.twilio]) to send from"
            )
        self._config = config
        self._auth_token = config.auth_token.reveal()
        # Credentials and host come from the settings only (the SDK would read TWILIO_* variables).
        base = (config.base_url or TWILIO_API).rstrip("/")
        self._url = f"{base}/2010-04-01/Accounts/{quote(config.account_sid, safe='')}/Messages.json"
        basic = base64.b64encode(f"{config.account_sid}:{self._auth_token}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {basic}",
            "Accept": "application/json",
            "User-Agent": f"twilio-python/{twilio.__version__}",
            # The form is encoded here, as the SDK's requests does (aiohttp's FormData costs more).
            "Content-Type": "application/x-www-form-urlencoded",
        }
        self._http = HttpClient("Twilio", timeout=config.timeout, safe=self._safe)
        self._thread = LoopThread("twilio-provider")

    def send(self, message: SmsMessage) -> ProviderResult:
        """Send from a thread; see ``asend``."""
        return self._thread.run(self.asend(message))

    async def asend(self, message: SmsMessage) -> ProviderResult:
        """Create the Message resource; raise a ProviderError subclass when Twilio refuses it."""
        form = urlencode(self._params(message)).encode()
        answer = await self._http.post(self._url, headers=self._headers, data=form)
        if not 200 <= answer.status < 300:
            raise self._rest_error(answer, message)
        created = answer.json()
        if not isinstance(created, dict):
            # Twilio took the message; only its answer is unreadable (sent again it would duplicate).
            return ProviderResult(provider=self.name, message_id=None)
        sid, status, segments = created.get("sid"), created.get("status"), created.get("num_segments")
        return ProviderResult(
            provider=self.name,
            message_id=str(sid) if sid else None,
            status=str(status) if status else "accepted",
            segments=int(segments) if isinstance(segments, int | str) and str(segments).isdigit() else None,
        )

    def close(self) -> None:
        """Close the kept-alive connections and the private loop."""
        self._http.close()
        self._thread.stop()

    def _params(self, message: SmsMessage) -> dict[str, str]:
        """The form Twilio's Messages resource takes."""
        config = self._config
        sender = message.from_ or (None if message.messaging_service_sid else config.from_number)
        params = {
            "To": message.to,
            "Body": message.body,
            "From": sender,
            "MessagingServiceSid": message.messaging_service_sid or (None if sender else config.messaging_service_sid),
            "StatusCallback": message.status_callback or config.status_callback,
        }
        return {key: value for key, value in params.items() if value is not None}

    def _rest_error(self, answer: Answer, message: SmsMessage) -> ProviderError:
        status = answer.status
        body = answer.json()
        body = body if isinstance(body, dict) else {}
        code = _code(body.get("code"))
        if all(key in body for key in ("type", "title", "status", "code")):  # RFC 9457 problem details
            detail = body.get("detail") or body.get("title")
        else:
            detail = body.get("message") or answer.reason or answer.text(200)
        text = self._safe(f"Twilio answered {status} (code {code}): {detail}", message.to)
        code_text = str(code) if code is not None else None
        if status == 401 or code == BAD_CREDENTIALS:
            return ProviderConfigurationError(text, status=status, code=code_text)
        if status == 429 or status >= 500:
            wait = parse_retry_after(answer.headers.get("Retry-After"))
            return TransientProviderError(text, status=status, code=code_text, retry_after=wait)
        if status == 403:
            return ProviderConfigurationError(text, status=status, code=code_text)
        about_recipient = code in RECIPIENT_CODES
        return PermanentProviderError(
            text,
            status=status,
            code=code_text,
            recipient_problem=about_recipient,
            recipients=(message.to,) if about_recipient else (),
        )

    def _safe(self, text: str, to: str | None = None) -> str:
        """Provider text fit to store and log: no auth token, the recipient masked."""
        return mask_text(redact(text, [self._auth_token]), [to] if to else [])


def _code(value: Any) -> int | None:
    """Twilio's error code (a number), None when the answer has none."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None
