"""SMS through Twilio's Programmable Messaging API, with the official ``twilio`` SDK.

A 201 means Twilio queued the message; carrier failures (30003-30008) arrive later through
the status callback, never as an exception here.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from bus.settings_loader import Secret
from switchboard.channels import Channel
from switchboard.errors import (
    AmbiguousProviderError,
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
    request_reached_server,
)

# Codes about the recipient itself: invalid number, not a mobile, replied STOP, unreachable.
RECIPIENT_CODES = frozenset({21211, 21614, 21610, 21612})
BAD_CREDENTIALS = 20003
# The SDK falls back to os.environ when given an empty mapping (and reads TWILIO_EDGE/REGION,
# which rewrite the host): a non-empty mapping without those keys keeps the environment out.
_NO_ENVIRONMENT = {"SWITCHBOARD": "credentials are passed explicitly"}


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
    """Sends one SmsMessage per call over a kept-alive session, classified into our errors."""

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
        # TwilioRestException drops the response headers; this hook keeps Retry-After per thread.
        self._last = threading.local()
        self._http = TwilioHttpClient(
            pool_connections=True, timeout=config.timeout, request_hooks={"response": self._remember_headers}
        )
        self._client = Client(
            username=config.account_sid,
            password=self._auth_token,
            account_sid=config.account_sid,
            http_client=self._http,
            environment=_NO_ENVIRONMENT,
        )
        if config.base_url:
            self._client.api.base_url = config.base_url.rstrip("/")

    def send(self, message: SmsMessage) -> ProviderResult:
        """Create the Message resource; raise a ProviderError subclass when Twilio refuses it."""
        self._last.headers = None
        self._last.to = message.to
        try:
            created = self._client.messages.create(**self._params(message))
        except (TwilioRestException, TwilioServiceException) as exc:
            raise self._rest_error(exc, message) from None
        except requests.ReadTimeout as exc:
            # The request arrived: Twilio may have queued the message before the wait ran out.
            raise AmbiguousProviderError(self._safe(f"Twilio did not answer in time: {exc}")) from None
        except requests.RequestException as exc:
            # A connection cut after the request went out is as ambiguous as a timeout.
            kind = AmbiguousProviderError if request_reached_server(exc) else TransientProviderError
            raise kind(self._safe(f"Twilio unreachable: {type(exc).__name__}: {exc}")) from None
        except TwilioException as exc:
            raise PermanentProviderError(self._safe(f"Twilio SDK error: {exc}")) from None
        segments = int(created.num_segments) if created.num_segments is not None else None
        return ProviderResult(provider=self.name, message_id=created.sid, status=str(created.status), segments=segments)

    async def asend(self, message: SmsMessage) -> ProviderResult:
        """``send`` on a thread, off the event loop (the SDK blocks)."""
        return await asyncio.to_thread(self.send, message)

    def close(self) -> None:
        """Close the kept-alive connections."""
        if self._http.session is not None:
            self._http.session.close()

    def _params(self, message: SmsMessage) -> dict[str, str]:
        config = self._config
        sender = message.from_ or (None if message.messaging_service_sid else config.from_number)
        params = {
            "to": message.to,
            "body": message.body,
            "from_": sender,
            "messaging_service_sid": message.messaging_service_sid
            or (None if sender else config.messaging_service_sid),
            "status_callback": message.status_callback or config.status_callback,
        }
        return {key: value for key, value in params.items() if value is not None}

    def _remember_headers(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last.headers = response.headers

    def _rest_error(self, exc: TwilioRestException | TwilioServiceException, message: SmsMessage) -> ProviderError:
        status = int(exc.status)
        code = int(exc.code) if exc.code is not None else None
        detail = exc.msg if isinstance(exc, TwilioRestException) else (exc.detail or exc.title)
        text = self._safe(f"Twilio answered {status} (code {code}): {detail}")
        code_text = str(code) if code is not None else None
        if status == 401 or code == BAD_CREDENTIALS:
            return ProviderConfigurationError(text, status=status, code=code_text)
        if status == 429 or status >= 500:
            headers = getattr(self._last, "headers", None)
            wait = parse_retry_after(headers.get("Retry-After")) if headers is not None else None
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

    def _safe(self, text: str) -> str:
        """Provider text fit to store and log: no auth token, the recipient masked."""
        to = getattr(self._last, "to", None)
        return mask_text(redact(text, [self._auth_token]), [to] if to else [])
